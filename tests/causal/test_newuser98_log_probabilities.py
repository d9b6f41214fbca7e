"""A classifier that returns log-probabilities (a LogSoftmax at its end, as braindecode's ShallowConvNet and EEGNet
had, trained with F.nll_loss) explained on its own output: the effects on a confident class's log-probability saturate
at 0 and the units the decision depends on ranked as if idle (a trained ShallowConvNet's temporal filters: 8e-5 against
1.26 on its centred logits), in silence. The estimators warn, naming the centring that gives the logits back exactly."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal import InputEffectAudit, Probe, UnitImportanceAudit
from lightning_causal.causal import input_effects, unit_effects


def _net(log_probs: bool) -> nn.Sequential:
    """Two hidden units, each decisive alone: the class is confident (margin 12) with both and flips with neither."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 2), *([nn.LogSoftmax(1)] if log_probs else []))
    with torch.no_grad():
        net[0].weight.copy_(torch.eye(2))
        net[0].bias.zero_()
        net[2].weight.copy_(torch.tensor([[6.0, 6.0], [-6.0, -6.0]]))
        net[2].bias.zero_()
    return net.eval()


X = torch.tensor([[1.0, 1.0], [1.0, 1.2], [0.9, 1.0], [1.1, 0.8]])


def _quiet(fn):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        return fn()


def test_log_probabilities_warned_where_effects_saturate():
    logp = _net(True)
    with pytest.warns(UserWarning, match=r"returns log-probabilities .* out - out.mean\(1, keepdim=True\)"):
        sat = unit_effects(logp, X, "1")
    with pytest.warns(UserWarning, match="log-probabilities"):
        input_effects(logp, X)
    # the silent answer: each decisive unit moves the class's log-probability by under 0.7, its logit by ~6
    assert sat.abs().max() < 0.7
    centred = _quiet(lambda: unit_effects(logp, X, "1", output=lambda out: out - out.mean(1, keepdim=True)))
    logits = _quiet(lambda: unit_effects(_net(False), X, "1"))
    torch.testing.assert_close(centred, logits, rtol=1e-5, atol=1e-5)  # opposite weights: z0 - mean(z) moves as z0
    assert logits.abs().min() > 4.5


def test_logits_own_output_and_unconfident_rows_not_warned():
    _quiet(lambda: unit_effects(_net(False), X, "1"))  # logits
    _quiet(lambda: unit_effects(_net(True), X, "1", output=lambda out: out))  # the user's own choice
    weak = _net(True)
    with torch.no_grad():
        weak[2].weight.mul_(0.05)  # margin 0.6: p about 0.65, nothing saturates
    _quiet(lambda: input_effects(weak, X))


def test_audits_warn_once_per_run():
    probe = Probe(X, torch.zeros(4, dtype=torch.long))
    for audit in (InputEffectAudit(ace_values=None), UnitImportanceAudit(["0", "1"])):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            audit.run(_net(True), probe)
        assert sum("returns log-probabilities" in str(w.message) for w in caught) == 1, audit.name
