"""A quantile regressor ``[N, 3]`` (quantiles 0.1, 0.5, 0.9) audited on a probe without labels: nothing said it
regresses, and SobolAudit's default ``probability=True`` explained the softmax of its quantiles in silence. Of a head
trained on ``y = 2 x0 - x1 + 0.8 s + exp(0.75 x2) eps``, whose median does not read ``x2``, ``target=1`` gave a total
index of 0.997 to ``x2`` (the softmax moves with the gaps between the quantiles) and 0.008 to ``x0``; with
``probability=False`` 0.766 for ``x0``, 0.204 for ``x1``, 0.004 for ``x2`` (the data's own: 0.79, 0.19, 0).
Outputs of 3 columns or more rising from the first to the last in every row read (8 or more) are warned of now,
wherever a softmax is taken of them (SobolAudit, CaptumBaseline's curves, FairnessAudit's default comparison: cf_gap
0.011 for a median that the flip moves by 0.8), naming ``probability=False`` (``compare='output'``) with ``target=k``;
not a model that says it classifies, nor 2 outputs, nor outputs in other orders. ``target=None``, the highest
quantile of every sample read as its predicted class, is warned of too (InputEffectAudit, CaptumBaseline)."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits import (
    CaptumBaseline,
    FairnessAudit,
    InputEffectAudit,
    Probe,
    SobolAudit,
)
from lightning_causal.causal import AttributeFlip, column_mask

SAID = "as a quantile regressor's quantiles do"


class Quantiles(nn.Module):
    """The true quantiles 0.1, 0.5, 0.9 of y = 2 x0 - x1 + exp(0.75 x2) eps: rising in every row."""

    def __init__(self, z=(-1.2816, 0.0, 1.2816)):
        super().__init__()
        self.scale = nn.Linear(4, 1)
        with torch.no_grad():
            self.scale.weight.copy_(torch.tensor([[0.0, 0.0, 0.75, 0.0]]))
            self.scale.bias.zero_()
        self.register_buffer("z", torch.tensor(z))

    def forward(self, x):
        return (2 * x[:, :1] - x[:, 1:2]) + self.scale(x).exp() * self.z


def _said(audit, model, x):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        result = audit.run(model.eval(), Probe(x))
    return result, [str(w.message) for w in seen if SAID in str(w.message)]


def _x():
    return torch.randn(64, 4, generator=torch.Generator().manual_seed(0))


def test_sobol_of_the_quantiles_softmax_is_warned_of():
    result, said = _said(SobolAudit(256, column_mask(4), target=1, n_bootstrap=0), Quantiles(), _x())
    assert len(said) == 1 and "`probability=False` with `target=k`" in said[0]
    assert result.vectors["total"][2] > 0.5  # the softmax read the spread, which x2 sets
    result, said = _said(SobolAudit(256, column_mask(4), target=1, n_bootstrap=0, probability=False), Quantiles(), _x())
    assert not said and result.vectors["total"][2] < 1e-6  # the median itself does not read x2


def test_captum_curves_of_the_quantiles_softmax_are_warned_of():
    _, said = _said(CaptumBaseline(["Saliency"], column_mask(4), target=1), Quantiles(), _x())
    assert len(said) == 1 and "CompareSettings(score='raw')" in said[0]


def test_fairness_of_the_quantiles_softmax_is_warned_of():
    x = _x()
    x[:, 3] = (torch.arange(64) % 2).float()  # the attribute flipped: read by no quantile
    result, said = _said(FairnessAudit(AttributeFlip(3), target=1), Quantiles(), x)
    assert len(said) == 1 and "compare='output' with target=k" in said[0] and result.meta["compare"] == "probability"
    _, said = _said(FairnessAudit(AttributeFlip(3), target=1, compare="output"), Quantiles(), x)
    assert not said


def test_the_largest_quantile_as_the_predicted_class_is_warned_of():
    """``target=None`` explained the highest quantile of every sample as its predicted class, in silence."""
    _, said = _said(InputEffectAudit(column_mask(4)), Quantiles(), _x())
    assert len(said) == 1 and "`target=k` to explain quantile k" in said[0]
    _, said = _said(InputEffectAudit(column_mask(4), target=1), Quantiles(), _x())
    assert not said


@pytest.mark.parametrize("case", ["classifier", "two_outputs", "unordered"])
def test_other_outputs_are_not_taken_for_quantiles(case):
    model = Quantiles((-1.0, 1.0)) if case == "two_outputs" else Quantiles()
    if case == "classifier":
        model.loss_fn = nn.CrossEntropyLoss()  # says its outputs are logits
    elif case == "unordered":
        model = nn.Linear(4, 3)
    _, said = _said(SobolAudit(256, column_mask(4), target=1, n_bootstrap=0), model, _x())
    assert not said
