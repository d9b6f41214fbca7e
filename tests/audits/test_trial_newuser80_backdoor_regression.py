"""BackdoorAudit on a quantile regressor (outputs [N, 3] of quantiles 0.1, 0.5, 0.9, probe labels the real-valued
targets) reversed one trigger per "class", each quantile, and reported anomaly indices (0.67, -0.67, NaN) with only a
note that every sample was 'already predicted as class 2' (the 0.9 quantile, the largest on every row); with a trigger
it told the user to convert the regression targets with `.long()`. Both now stop, naming a regression: its largest
output is no class and a trigger that makes another output largest (a quantile crossing) is no attack."""

from __future__ import annotations

import pytest
import torch

from lightning_causal.audits import BackdoorAudit, Probe
from lightning_causal.causal import Trigger
from tests.audits.test_trial_newuser80_runner_up_regression import Quantiles


def _probe() -> Probe:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(16, 4, generator=g)
    return Probe(x, 2.0 * x[:, 0] + torch.randn(16, generator=g))


@pytest.mark.parametrize("with_trigger", [False, True])
def test_a_regression_probe_is_refused_as_a_regression(with_trigger: bool) -> None:
    torch.manual_seed(0)
    mask = torch.zeros(4)
    mask[3] = 1.0
    trigger = Trigger(mask, torch.full((4,), 3.0), target=0) if with_trigger else None
    with pytest.raises(ValueError, match=r"real-valued \[8\] \(a regression\?\): the largest of a regression's") as info:
        BackdoorAudit(trigger=trigger, steps=2, max_samples=8).run(Quantiles(), _probe())
    assert ".long()" not in str(info.value)


def test_class_scores_chosen_by_a_callable_or_class_labels_run() -> None:
    torch.manual_seed(0)
    probe = _probe()
    BackdoorAudit(steps=2, max_samples=8, output=lambda out: out).run(Quantiles(), probe)  # taken as given
    BackdoorAudit(steps=2, max_samples=8).run(Quantiles(), Probe(probe.inputs, torch.arange(16) % 3))
