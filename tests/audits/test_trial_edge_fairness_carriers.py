"""Trial "edge": FairnessAudit's carrier units of a model whose training diverged (a NaN weight). The
carried effects were NaN but ``top1_carrier_share`` was 0.0, a value a monitor would take (as the
top-k shares of InputEffectAudit and UnitImportanceAudit were before, test_trial_precision_shares);
it is NaN now. A layer that carries nothing keeps a share of 0."""

import math

import torch
from torch import nn

from lightning_causal import AttributeFlip, FairnessAudit
from lightning_causal.audits import Probe


def _model(diverged: bool) -> nn.Sequential:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).eval()
    with torch.no_grad():
        if diverged:
            model[2].weight[0, 0] = float("nan")
        else:
            model[0].weight[:, 0] = 0.0  # the sensitive column reaches no unit: nothing is carried
    return model


def _probe() -> Probe:
    x = torch.rand(8, 3, generator=torch.Generator().manual_seed(1))
    x[:, 0] = (torch.arange(8) % 2).float()
    return Probe(x)


def test_nan_carriers_give_a_nan_share():
    result = FairnessAudit(AttributeFlip(0), sensitive=0, layers=["1"]).run(_model(True), _probe())
    assert torch.isnan(result.vectors["carriers/1"]).all()
    assert math.isnan(result.scalars["1/top1_carrier_share"])  # before: 0.0


def test_a_layer_that_carries_nothing_keeps_a_share_of_0():
    result = FairnessAudit(AttributeFlip(0), sensitive=0, layers=["1"]).run(_model(False), _probe())
    assert float(result.vectors["carriers/1"].abs().sum()) == 0.0 and result.scalars["1/top1_carrier_share"] == 0.0
