"""BackdoorAudit (Neural Cleanse) and reverse_trigger on a model whose outputs are not finite name that cause before the
trigger search starts. Before: the search ran on NaN losses and stopped at its end with Trigger's "Expected argument
`mask` to be a non-empty tensor with values in [0, 1]", an argument the user never gave."""

import pytest
import torch
from torch import nn

from lightning_causal.audits import BackdoorAudit
from lightning_causal.audits.base import Probe
from lightning_causal.causal.backdoor.reverse import reverse_trigger


def _net(bad: float) -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.ReLU(), nn.Linear(8, 3))
    with torch.no_grad():
        net[3].weight[1, 0] = bad  # a diverged weight: every sample's outputs non-finite
        net[1].bias[0] = 1.0  # unit 0 on for every sample, so the bad weight reaches the output
    return net


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_neural_cleanse_names_non_finite_outputs(bad):
    x = torch.rand(12, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    net = _net(bad)
    with pytest.raises(ValueError, match=r"outputs on the samples `x` searched over to be finite, but they hold NaN or "
                                         r"infinity at samples \[0, 1, 2, 3, 4, 5, 6, 7\] \.\.\. of 12: neural_cleanse"):
        BackdoorAudit(num_classes=3, steps=3).run(net, Probe(x, torch.zeros(12, dtype=torch.long)))
    assert net.training and all(p.grad is None for p in net.parameters())  # refused before anything changed


def test_reverse_trigger_names_non_finite_outputs():
    x = torch.rand(5, 1, 4, 4, generator=torch.Generator().manual_seed(1))
    with pytest.raises(ValueError, match=r"at samples \[0, 1, 2, 3, 4\] of 5: reverse_trigger's trigger search"):
        reverse_trigger(_net(float("nan")), x, 2, steps=3)


def test_finite_model_still_searched():
    x = torch.rand(12, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    r = BackdoorAudit(num_classes=3, steps=3).run(_net(0.5), Probe(x, torch.zeros(12, dtype=torch.long)))
    assert r.vectors["anomaly_index"].isfinite().all()
