"""input_effects with input_layer= naming the first Linear of a tabular MLP ([N, D] -> [N, H]): 484c5f5's
hint for a code column's embedding ('it embeds a part of the input (one category-code column of several,
each with its own embedding?)') was given to every [N, H] output, also to a layer that reads the whole
input. Such a layer now gets its own hint; a code column's embedding keeps the code hint."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects, unit_effects


def test_a_linear_layer_over_the_whole_input_is_not_called_a_code_embedding() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 2))
    x = torch.randn(4, 5)
    with pytest.raises(ValueError, match=r"maps the whole input to other features.*input_layer=None.*unit_effects") as err:
        input_effects(model, x, input_layer="0")
    assert "category-code" not in str(err.value)
    assert unit_effects(model, x, "0").shape == (4, 8)  # the way out it names runs


class _Codes(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.region = nn.Embedding(3, 2)
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [x0, x1, region code as a float]
        return self.head(torch.cat([x[:, :2], self.region(x[:, 2].long())], 1))


def test_a_code_columns_embedding_keeps_the_code_hint() -> None:
    x = torch.tensor([[0.1, 0.2, 0.0], [0.3, 0.4, 2.0]])
    with pytest.raises(ValueError, match="category-code column"):
        input_effects(_Codes(), x, input_layer="region")
