"""A model whose training diverged (NaN weights, e.g. float16 training under Adam) gets NaN top-k shares:
not a share of 0 beside NaN effects, which a monitor would take for a value."""

import math

import torch
from torch import nn

from lightning_causal.audits import InputEffectAudit, UnitImportanceAudit
from lightning_causal.audits.base import Probe


def _diverged() -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 2)).eval()
    with torch.no_grad():
        model[2].weight[0, 0] = float("nan")
    return model


def test_top_k_shares_of_nan_effects_are_nan():
    probe = Probe(torch.rand(8, 6, generator=torch.Generator().manual_seed(1)), torch.zeros(8, dtype=torch.long))
    inputs = InputEffectAudit(ace_values=None).run(_diverged(), probe)
    assert math.isnan(inputs.scalars["mean_abs_effect"])
    shares = [v for k, v in inputs.scalars.items() if k.endswith("_share")]
    assert shares and all(math.isnan(v) for v in shares)
    units = UnitImportanceAudit(["1"], top_k=3).run(_diverged(), probe)
    shares = [v for k, v in units.scalars.items() if k.endswith("_share")]
    assert shares and all(math.isnan(v) for v in shares)
    assert "top3_share" in " ".join(units.non_finite())  # the callback's warning names it


def test_a_model_without_effects_keeps_a_share_of_0():
    model = nn.Sequential(nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 2)).eval()
    with torch.no_grad():
        model[0].weight.zero_()  # no input reaches the output: every effect is exactly 0
    probe = Probe(torch.rand(8, 6, generator=torch.Generator().manual_seed(1)), torch.zeros(8, dtype=torch.long))
    shares = [v for k, v in InputEffectAudit(ace_values=None).run(model, probe).scalars.items() if k.endswith("_share")]
    assert shares == [0.0]
