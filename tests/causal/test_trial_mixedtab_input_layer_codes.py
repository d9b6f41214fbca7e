"""input_layer= on the embedding of one category-code column of a tabular model (codes as float
columns, cast inside the model, an output [N, d] beside an input [N, D]): refused by shape, and the
message now says why and what to do instead (as the message for integer codes did)."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects


class Codes(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.region = nn.Embedding(4, 3)
        self.head = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # x [N, 4]: three numeric columns, a code
        return self.head(torch.cat([x[:, :3], self.region(x[:, 3].long())], 1))


def test_embedding_of_one_code_column_names_the_way_out() -> None:
    x = torch.cat([torch.randn(6, 3), torch.tensor([[0.0], [1.0], [2.0], [3.0], [1.0], [0.0]])], 1)
    with pytest.raises(ValueError, match=r"one category-code column.*input_layer=None.*reference code"):
        input_effects(Codes(), x, input_layer="region")
    effects = input_effects(Codes(), x, baseline=torch.tensor([0.0, 0.0, 0.0, 1.0]))  # the way out: code 1 as reference
    assert effects.shape == (6, 4) and bool((effects[x[:, 3] == 1, 3] == 0).all())
