"""``top{k}_share`` is the share of the k strongest groups or units in the total: with k as large as
their number it was the whole total, a constant 1.0 whatever the model (a layer of 8 units audited
with ``top_k=10`` logged ``top8_share`` = 1 at every audit). k is at most all but one, as for the drift
``topk_jaccard`` and Captum's top-k overlap. The tag keeps ``top_k`` (``top10_share`` of a layer of 3 units sums its 2
strongest; ``meta["top_shares"]`` says so): tests/audits/test_top_share_tags.py."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.audits import InputEffectAudit, Probe, UnitImportanceAudit


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2)).double().eval()


def test_unit_share_leaves_out_at_least_one_unit():
    model, x = _mlp(), torch.randn(16, 4, dtype=torch.float64)
    r = UnitImportanceAudit(["1"], top_k=10).run(model, Probe(x))
    imp = r.vectors["importance/1"]
    assert r.scalars["1/top10_share"] == pytest.approx(float(imp.topk(2).values.sum() / imp.sum()))
    assert r.meta["top_shares"] == {"1/top10_share": [2, 3]}
    assert len(r.tables["top_units/1"]) == 3  # the table still lists every unit


def test_input_share_leaves_out_at_least_one_group():
    model, x = _mlp(), torch.randn(16, 4, dtype=torch.float64)
    r = InputEffectAudit(top_k=5, ace_values=None).run(model, Probe(x))
    mean_abs = r.vectors["mean_abs_effect"]
    assert r.scalars["top5_share"] == pytest.approx(float(mean_abs.topk(3).values.sum() / mean_abs.sum()))
    assert r.meta["top_shares"] == {"top5_share": [3, 4]}
    assert len(r.tables["top_groups"]) == 4
