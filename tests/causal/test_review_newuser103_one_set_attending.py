"""The refusal of a ``[1, N, ...]`` unit site (a model that runs its samples as one set, ``x[None]``) advises
``x[:, None]``, each sample a set of its own (8ed7b55c). That keeps the outputs only where no sample attends to another
(an in-context learner's queries reading the context alone); for samples that attend to each other it changes the
model, so the refusal says so (review of newuser103)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import unit_effects
from tests.helpers.in_context import InContext, episodes


class SetOf(nn.Module):
    """Samples attending to each other in one set (a set transformer's layer)."""

    def __init__(self, per_sample: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.inp, self.head = nn.Linear(4, 8), nn.Linear(8, 3)
        self.enc = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
        self.per_sample = per_sample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.enc(self.inp(x)[:, None] if self.per_sample else self.inp(x)[None])
        return self.head(h[:, 0] if self.per_sample else h[0])


def test_the_refusal_says_each_set_of_its_own_keeps_the_outputs_only_without_attention_across_samples():
    x = torch.randn(6, 4)
    with pytest.raises(ValueError, match=r"`x\[:, None\]`.*only where no sample attends to another.*the whole set is then one sample"):
        unit_effects(SetOf().eval(), x, "enc", unit_dim=-1)
    with torch.no_grad():  # what the sentence says: attending samples change, queries reading the context alone do not
        one_set, each = SetOf().eval(), SetOf(per_sample=True).eval()
        assert (one_set(x) - each(x)).abs().max() > 1e-3
        b, model = episodes(1, queries=5, context=6), InContext().eval()
        x_q, x_ctx, y_ctx = b["x_q"][0], b["x_ctx"][0], b["y_ctx"][0]
        torch.testing.assert_close(model(x_q[None], x_ctx[None], y_ctx[None])[0], model(x_q, x_ctx, y_ctx))
