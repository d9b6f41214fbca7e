"""Review of newuser107 (79bc7e02): a quantile regressor audited with ``target=None`` on a probe without labels has
the highest quantile of every sample explained as its predicted class. 79bc7e02 warned of it where the audit passes the
probe's outputs (InputEffectAudit, CaptumBaseline), but SobolAudit, CausalGraphAudit and LayerMapAudit passed the
outputs of one row, and ``ascending_outputs`` reads 8 rows or more: they explained the highest quantile in silence.
Their one pass now reads ``GUESS_ROWS`` rows of the probe. And the check warned a classifier that says it is one (a
held ``nn.CrossEntropyLoss``) whose logits rise on every row (it predicts its last class everywhere) as a quantile
regressor, beside its integer class labels too, where ``warn_softmax_of_regression`` keeps silent: it is not now; one
that says nothing is told how to say it, as ``warn_softmax_of_regression`` tells it."""

import warnings

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from lightning_causal.audits import (
    CausalGraphAudit,
    InputEffectAudit,
    LayerMapAudit,
    Probe,
    SobolAudit,
)
from lightning_causal.causal import column_mask

SAID = "`target=k` to explain quantile k"


class MonotoneQuantiles(nn.Module):
    """Quantiles 0.1 < 0.5 < 0.9 by a cumulative softplus: rising in every row, whatever the weights."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.body = nn.Sequential(nn.Linear(3, 6), nn.Tanh())
        self.head = nn.Linear(6, 3)

    def forward(self, x):
        r = self.head(self.body(x))
        return torch.cat([r[:, :1], r[:, :1] + torch.cumsum(F.softplus(r[:, 1:]), 1)], 1)


class CollapsedClassifier(nn.Module):
    """A 3-class classifier trained by cross-entropy whose logits rise on every row (class 2 predicted everywhere)."""

    def __init__(self, loss=True):
        super().__init__()
        self.fc = nn.Linear(3, 3)
        with torch.no_grad():
            self.fc.weight.fill_(0.01)
            self.fc.bias.copy_(torch.tensor([-1.0, 0.0, 1.0]))
        if loss:
            self.loss_fn = nn.CrossEntropyLoss()

    def forward(self, x):
        return self.fc(x)


def _said(audit, model, probe):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        audit.run(model.eval(), probe)
    return [str(w.message) for w in seen if SAID in str(w.message)]


def _x():
    return torch.randn(32, 3, generator=torch.Generator().manual_seed(0))


AUDITS = {
    "sobol": lambda target: SobolAudit(64, column_mask(3), target=target, probability=False, n_bootstrap=0),
    "causal_graph": lambda target: CausalGraphAudit(["body"], target=target, stability_resamples=0),
    "layer_map": lambda target: LayerMapAudit(column_mask(3), layers=["body"], target=target),
}


@pytest.mark.parametrize("name", sorted(AUDITS))
def test_the_highest_quantile_as_the_predicted_class_is_warned_of(name):
    model = MonotoneQuantiles()
    said = _said(AUDITS[name](None), model, Probe(_x()))
    assert len(said) == 1 and "the largest is the highest quantile on every sample" in said[0]
    assert not _said(AUDITS[name](1), model, Probe(_x()))  # a quantile named: nothing to say
    assert not model.body[0]._forward_hooks and not model._forward_hooks  # the pass of the rows leaves nothing


@pytest.mark.parametrize("labels", [False, True])
def test_a_classifier_that_says_so_is_no_quantile_regressor(labels):
    probe = Probe(_x(), torch.arange(32) % 3) if labels else Probe(_x())
    assert not _said(InputEffectAudit(column_mask(3)), CollapsedClassifier(), probe)
    assert not _said(AUDITS["sobol"](None), CollapsedClassifier(), probe)
    said = _said(InputEffectAudit(column_mask(3)), CollapsedClassifier(loss=False), Probe(_x()))  # says nothing: warned,
    assert len(said) == 1 and "self.loss_fn = nn.CrossEntropyLoss()" in said[0]  # naming how a classifier says so
