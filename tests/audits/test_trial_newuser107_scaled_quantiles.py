"""FairnessAudit on a quantile regressor ``[N, 3]`` (quantiles 0.1, 0.5, 0.9) whose targets were min-max scaled into
[0, 1], as regression targets often are: its wider rule for labels in [0, 1] (a classifier's soft labels, thresholded
at 0.5) read a target ``[N]`` of 0.3 as class 0 and compared the softmax of the three quantiles (cf_gap 0.001 and a
cf_flip_rate where the attribute moves the median by 0.8 on every row; the warning called the quantiles independent
probabilities), and refused a target ``[N, 1]`` as no class label per sample. Such labels, one a sample, not all 0 or
1, beside 3 outputs or more, are a regression's now: the outputs are compared, column ``target=`` (the exact change of
a linear model's column), and ``target=None`` is refused naming it. Soft labels beside 2 outputs and 0/1 labels beside
3 stay classes."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits import FairnessAudit, Probe
from lightning_causal.causal import AttributeFlip

W_S = (0.5, 0.8, 1.1)  # the attribute (column 4) moves quantile k by W_S[k]


def _quantiles(width=3):
    model = nn.Linear(5, width)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[2.0, -1.0, 0.0, 0.0, w] for w in W_S[:width]]))
        model.bias.copy_(torch.tensor([-1.0, 0.0, 1.0][:width]))  # ascending: q0.1 < q0.5 < q0.9 on every row
    return model.eval()


def _probe(labels_shape):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 5, generator=g)
    x[:, 4] = (torch.arange(64) % 2).float()
    y = torch.rand(64, generator=g)  # min-max-scaled targets: fractions in [0, 1]
    return x, y.view(labels_shape)


def _run(audit, model, probe):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        result = audit.run(model, probe)
    return result, [str(w.message) for w in seen if "FairnessAudit" in str(w.message)]


@pytest.mark.parametrize("shape", [(-1,), (-1, 1)])
def test_a_quantile_column_is_compared_in_its_units(shape):
    x, y = _probe(shape)
    result, said = _run(FairnessAudit(AttributeFlip(4), target=1), _quantiles(), Probe(x, y))
    assert result.meta["compare"] == "output"
    assert result.scalars["cf_gap"] == pytest.approx(W_S[1], rel=1e-5)  # the median's change on every row
    assert result.scalars["cf_gap_max"] == pytest.approx(W_S[1], rel=1e-5)
    assert "cf_flip_rate" not in result.scalars and not said


def test_no_target_is_refused_naming_it():
    x, y = _probe((-1,))
    with pytest.raises(ValueError, match="target"):
        FairnessAudit(AttributeFlip(4)).run(_quantiles(), Probe(x, y))


def test_soft_labels_of_two_outputs_and_0_1_labels_of_three_stay_classes():
    x, y = _probe((-1,))
    soft = torch.where(y > 0.5, 0.95, 0.05)  # label smoothing of a binary classifier
    result, _ = _run(FairnessAudit(AttributeFlip(4)), _quantiles(2), Probe(x, soft))
    assert result.meta["compare"] == "probability" and "cf_flip_rate" in result.scalars
    result, _ = _run(FairnessAudit(AttributeFlip(4)), _quantiles(), Probe(x, (y > 0.5).float()))
    assert result.meta["compare"] == "probability" and "cf_flip_rate" in result.scalars


def test_the_groups_figure_says_what_a_positive_decision_is():
    """The group rates of a regression's column are its shares above 0: the figure's axis said "share of positive
    decisions" alone, as for a classifier's."""
    from lightning_causal.reporting.tensorboard import _interval_figure

    x, y = _probe((-1,))
    result, _ = _run(FairnessAudit(AttributeFlip(4), target=1), _quantiles(), Probe(x, y))
    assert result.meta["positive_decision"] == "output 1 above 0"
    figure = _interval_figure(result, "groups", result.tables["groups"])
    assert figure.axes[0].get_xlabel() == "share of positive decisions (output 1 above 0)"
    one, _ = _run(FairnessAudit(AttributeFlip(4)), nn.Linear(5, 1).eval(), Probe(x, y * 10 - 5))  # a one-output regression
    assert one.meta["positive_decision"] == "the output above 0"
