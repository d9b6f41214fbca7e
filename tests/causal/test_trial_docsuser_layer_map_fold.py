"""Docs trial: docs/text.md ("Layers that fold positions into the batch") says the estimators that
need one row per sample (the causal graph, the layer map, the fairness carriers) refuse a layer like
OPT's ``fc1`` (``[N·T, ffn]``) naming the fold. The causal graph did; the layer map said only
"returned [35, 32] for 5 samples" and pointed at ``batch_first=False``.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import causal_graph, layer_causal_map, unit_effects


class _Folding(nn.Module):
    """OPT's MLP: positions folded into the batch before ``fc1`` ([N, T, D] -> [N·T, D] -> [N·T, F])."""

    def __init__(self) -> None:
        super().__init__()
        self.fc1 = nn.Linear(4, 6)
        self.fc2 = nn.Linear(6, 4)
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, d = x.shape
        h = self.fc2(torch.relu(self.fc1(x.reshape(-1, d)))).reshape(n, t, d)
        return self.head((x + h).mean(1))


def test_the_layer_map_names_the_fold_of_a_folding_layer():
    torch.manual_seed(0)
    model, x = _Folding().eval(), torch.randn(5, 7, 4)
    with pytest.raises(ValueError, match=r"'fc1' returned \[35, 6\] for 5 samples") as err:
        layer_causal_map(model, x, layers=["fc1", "fc2"], target=1)
    said = str(err.value)
    assert "With 7 rows per sample, the model may fold something into the batch there" in said
    assert "unit_effects and UnitImportanceAudit take such a layer" in said
    with pytest.raises(ValueError, match="With 7 rows per sample"):  # as the causal graph says
        causal_graph(model, x, ["fc1", "fc2"], target=1)
    effects = unit_effects(model, x, "fc1", unit_dim=-1, target=1)  # the way the message names runs
    assert effects.shape == (5, 6)
