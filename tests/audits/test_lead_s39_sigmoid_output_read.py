"""Final read D of 6fce206d: (1) a probability model whose nn.Sigmoid is followed by a shape-only layer
(nn.Flatten(0), nn.Unflatten) was read as logits in silence by FairnessAudit and the counterfactual fairness gap (the
watch took the Flatten for the last layer); (2) a sigmoid model whose user already passed the advised
`output=lambda out: out.float().logit(eps=1e-6)` was told again to pass it (any last-called nn.Sigmoid counted, not
only one whose output is what is read). Both are read by what the last layer gave now."""

from __future__ import annotations

import torch
from torch import nn

from lightning_causal import FairnessAudit
from lightning_causal.audits import Probe
from lightning_causal.causal import AttributeFlip, counterfactual_fairness_gap
from tests.audits.test_review_lo39b_sigmoid_call_order import _data, _said


def _probability(tail: nn.Module, bias: float = 3.0) -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Linear(8, 1), nn.Sigmoid(), tail)
    with torch.no_grad():
        model[2].weight.mul_(0.02)
        model[2].bias.fill_(bias)
    return model


def test_a_sigmoid_before_a_shape_only_layer_is_told():
    x, y = _data()
    for tail in (nn.Flatten(0), nn.Unflatten(1, (1, 1))):
        model = _probability(tail)
        out = model(x).detach()
        assert bool((out > 0.5).all()) and bool((out < 1).all())
        (said,) = _said(lambda m=model: FairnessAudit(AttributeFlip(3), sensitive=3, output=lambda o: o.reshape(len(o), -1)[:, 0]).run(m, Probe(x, y)))
        assert "above 0.5" in said
        assert _said(lambda m=model: counterfactual_fairness_gap(m, x, AttributeFlip(3), sensitive=3,
                                                                 output=lambda o: o.reshape(len(o), -1)[:, 0]))


def test_the_advised_logit_taken_is_not_advised_again():
    x, y = _data()
    model = _probability(nn.Identity(), bias=0.75)  # probabilities in (0.5, 0.73): their logits in (0.5, 1)
    logit = lambda out: out.float().logit(eps=1e-6)  # noqa: E731
    assert not _said(lambda: FairnessAudit(AttributeFlip(3), sensitive=3, output=logit).run(model, Probe(x, y)))
    assert not _said(lambda: counterfactual_fairness_gap(model, x, AttributeFlip(3), sensitive=3, output=logit))
    assert _said(lambda: counterfactual_fairness_gap(model, x, AttributeFlip(3), sensitive=3))  # without it: told
