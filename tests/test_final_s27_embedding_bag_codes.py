"""A category code kept in float columns and looked up by an ``nn.EmbeddingBag`` with offsets (a bag of genre codes,
``self.genres(x[:, 2:].long().reshape(-1), offsets)``) set to a code the bag lacks: on the CPU ``F.embedding_bag``
raises a ``RuntimeError`` (``Expected i < index_size``, or ``... not in the valid range``) where ``nn.Embedding`` raises an ``IndexError``, so the pass's
failure reached the user bare, naming no argument (review_s27j). It is named now, as an ``nn.Embedding``'s is; a
``RuntimeError`` of the model's own passes unchanged."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import average_causal_effect, input_effects


class Genres(nn.Module):
    """Two numeric columns and two genre codes 0..9 kept as float columns, averaged by an EmbeddingBag."""

    def __init__(self, fail: bool = False) -> None:
        super().__init__()
        self.genres = nn.EmbeddingBag(10, 2, mode="mean")
        self.head = nn.Linear(4, 2)
        self.fail = fail

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.fail and bool((x[:, 0] == 7.0).any()):
            raise RuntimeError("the model's own failure (index_size of my table)")
        ids = x[:, 2:].long().reshape(-1)
        return self.head(torch.cat([x[:, :2], self.genres(ids, torch.arange(0, ids.numel(), 2))], 1))


def _data() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.cat([torch.randn(8, 2, generator=g), torch.randint(0, 10, (8, 2), generator=g).float()], 1)


def test_a_bag_code_past_the_last_is_named_after_the_failed_pass() -> None:
    x = _data()
    with pytest.raises(ValueError, match=r"argument `baseline`.*EmbeddingBag.*category code"):
        input_effects(Genres().eval(), x, baseline=torch.tensor([0.0, 0.0, 12.0, 4.0]))
    values = torch.tensor([[0.0, 1.0], [0.0, 1.0], [0.0, 3.0], [0.0, 12.0]])
    with pytest.raises(ValueError, match=r"argument `values`.*EmbeddingBag"):
        average_causal_effect(Genres().eval(), x, values=values)


def test_a_bag_code_in_range_gives_the_hand_computed_effect_and_a_models_own_error_passes() -> None:
    x, model = _data(), Genres().eval()
    effects = input_effects(model, x, baseline=torch.tensor([0.0, 0.0, 3.0, 4.0]), target=1)
    set_to = x.clone()
    set_to[:, 2] = 3.0
    with torch.no_grad():
        torch.testing.assert_close(effects[:, 2], model(x)[:, 1] - model(set_to)[:, 1])
    with pytest.raises(RuntimeError, match="the model's own failure"):
        input_effects(Genres(fail=True).eval(), x, baseline=torch.tensor([7.0, 0.0, 3.0, 4.0]))
