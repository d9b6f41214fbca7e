"""review_s31c (of f2faccbc): the layer map's note on a module called again in a pass whose last call returns more rows
than the samples, its first call every sample (``self.block(torch.cat([h, -h]))`` after ``self.block(x)``), said
"at each of its 2 calls per pass (a module called per sample or per step in a loop)", which its first call is not
(before f2faccbc it said the halting words, fewer rows). It now names the last call's rows against the first's and the
cause the unit estimators give such a module, one text (``intervention_hooks.OTHER_ROWS_CAUSE``)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import layer_causal_map, unit_effects
from lightning_causal.causal.engine.intervention_hooks import OTHER_ROWS_CAUSE


class Stacked(nn.Module):
    """``block`` on the batch, then on the batch stacked with its negation: 4 rows, then 8."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.block, self.head = nn.Linear(3, 3), nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.block(x)
        h2 = self.block(torch.cat([h, -h]))
        return self.head(h2[: x.shape[0]] + h2[x.shape[0]:])


X = torch.randn(4, 3, generator=torch.Generator().manual_seed(0))


def test_the_layer_map_names_the_first_calls_rows_and_the_estimators_cause() -> None:
    with pytest.raises(ValueError) as err:
        layer_causal_map(Stacked(), X, torch.arange(3), ["block", "head"])
    said = str(err.value)
    assert f"'block' returned [8, 3] for 4 samples at the last of its 2 calls per pass, 8 rows where its first call returned 4: {OTHER_ROWS_CAUSE}" in said
    assert "per sample or per step" not in said  # before: 'at each of its 2 calls per pass (a module called per sample ...'
    with pytest.raises(ValueError, match=r"returned \[24, 3\] \(3 units on dimension 1\): a module shared across inputs"):
        unit_effects(Stacked(), X, "block", unit_dim=-1, target=0)  # the same words
