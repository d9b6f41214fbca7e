"""A one-output regression whose float labels are whole numbers (counts 0, 1, 2, ...) had them read
as class labels: FairnessAudit reported TPR/FPR/accuracy of 'class 1' on them and
CounterfactualFairnessTerm said nothing of a saturated sigmoid; CaptumBaseline's deletion and
insertion AUCs of the raw output (output units) were not told from probabilities. Labels are now
classes only where the model's outputs can hold them (or the model's loss says so), and the
curves' meta and figure name what they record."""

import warnings

import torch
from torch import nn

from lightning_causal.audits import CaptumBaseline, FairnessAudit
from lightning_causal.audits.base import Probe
from lightning_causal.audits.options import regression_labels
from lightning_causal.causal.scm.attribute_flip import AttributeFlip
from lightning_causal.repair.fairness import CounterfactualFairnessTerm
from lightning_causal.reporting.comparison import curves_figure


def _counts(n: int = 40) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randint(0, 2, (n, 1), generator=g).float(), 3 * torch.rand(n, 2, generator=g)], 1)
    return x, (4 * x[:, 1:].sum(1) + 3 * x[:, 0]).round()  # visits 0..27: a count, whole numbers


def _counter() -> nn.Module:
    model = nn.Linear(3, 1)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[3.0, 4.0, 4.0]]))
        model.bias.zero_()
    return model


def _said(fn, words):
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        out = fn()
    return out, [str(m.message) for m in w if words in str(m.message)]


def test_counts_of_one_output_are_a_regression_classes_of_three_outputs_are_not():
    y = torch.tensor([0.0, 2.0, 1.0, 2.0])
    assert regression_labels(y, width=1) and not regression_labels(y, width=3)
    assert not regression_labels(torch.tensor([0.0, 1.0, 1.0]), width=1)  # a binary classifier's 0/1
    mse = nn.Sequential(nn.Linear(3, 3))
    mse.loss = nn.MSELoss()
    assert regression_labels(y, width=3, model=mse)  # the model's loss says regression


def test_fairness_audit_leaves_out_the_label_metrics_of_counts():
    x, y = _counts()
    r, said = _said(lambda: FairnessAudit(AttributeFlip(0), compare="probability").run(_counter(), Probe(x, y)), "regression target")
    assert len(said) == 1
    assert "accuracy/group_0" not in r.scalars and "equalized_odds_difference" not in r.scalars
    three = nn.Linear(3, 3)  # whole-number labels 0..2 of a 3-class classifier stay classes
    r, said = _said(lambda: FairnessAudit(AttributeFlip(0), compare="probability").run(three, Probe(x, (y % 3))), "regression target")
    assert said == [] and "accuracy/group_0" in r.scalars


def test_the_repair_term_warns_of_counts():
    x, y = _counts()
    _, said = _said(lambda: CounterfactualFairnessTerm(AttributeFlip(0)).loss(_counter(), x, y), "regression target")
    assert len(said) == 1


def test_raw_output_curves_say_so():
    x, y = _counts(16)
    r = CaptumBaseline(methods=["Saliency"]).run(_counter(), Probe(x, y))
    assert r.meta["curve_score"].startswith("raw output") and "units" in r.meta["curve_score"]
    fig = curves_figure({"deletion": r.curves["deletion"]}, r.meta["curve_score"])
    assert fig.axes[0].get_ylabel() == r.meta["curve_score"]
    r = CaptumBaseline(methods=["Saliency"]).run(nn.Linear(3, 3), Probe(x, (y % 3).long()))
    assert r.meta["curve_score"].startswith("probability")
