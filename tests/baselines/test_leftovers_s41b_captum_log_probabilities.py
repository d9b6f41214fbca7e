"""A model that returns log-probabilities, explained on them: the causal estimators warned (their differences shrink at
confident samples), Captum's methods did not (their gradients shrink alike), and a CaptumBaseline run warned once per
causal estimator call. Captum's methods now warn as the estimators do, and a CaptumBaseline run warns once, for both
sides."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits import CaptumBaseline, Probe
from lightning_causal.baselines.captum_methods import attribute
from lightning_causal.baselines.layer_methods import layer_attribute


def _net(log_probabilities: bool = True) -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 3), nn.LogSoftmax(1) if log_probabilities else nn.Identity())
    with torch.no_grad():
        net[0].weight.mul_(20)  # confident: half the samples at p >= 0.99
    return net


def _x() -> torch.Tensor:
    return torch.randn(32, 4, generator=torch.Generator().manual_seed(0))


def _told(call) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return [str(w.message) for w in caught if "returns log-probabilities" in str(w.message)]


def test_a_captum_baseline_run_warns_once_for_both_sides():
    told = _told(lambda: CaptumBaseline(methods=("IntegratedGradients",)).run(_net(), Probe(_x())))
    assert len(told) == 1 and "CaptumBaseline 'captum_baseline' (its causal effects and Captum's methods)" in told[0]


@pytest.mark.parametrize("call", ["attribute", "layer_attribute"])
def test_captum_methods_warn_of_log_probabilities_as_the_estimators_do(call):
    def run(net, **kw):
        if call == "attribute":
            return attribute(net, _x(), "Saliency", **kw)
        return layer_attribute(net, _x(), "0", "LayerGradientXActivation", **kw)

    told = _told(lambda: run(_net()))
    assert len(told) == 1 and "Captum's " in told[0] and "out - out.mean(1, keepdim=True)" in told[0]
    assert not _told(lambda: run(_net(), output=lambda out: out))  # the user's output=: theirs
    assert not _told(lambda: run(_net(log_probabilities=False)))  # logits: nothing to say
