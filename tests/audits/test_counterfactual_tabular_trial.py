"""CounterfactualAudit and InputEffectAudit on tabular inputs, checked against hand computations:
the counterfactuals flip the model, their reported distances are the user's own, immutable
columns stay put, grouped (one-hot) effects equal a replacement loop, and the text card names
the columns and classes of each counterfactual."""

import pytest
import torch
from torch import nn

from lightning_causal.audits import CounterfactualAudit, InputEffectAudit
from lightning_causal.audits.base import Probe
from lightning_causal.causal.structure.counterfactuals import (
    CounterfactualSettings,
    counterfactual_explanation,
)
from lightning_causal.reporting.summary import markdown_summary

COLUMNS = ["age", "color=red", "color=blue", "income"]
CLASSES = ["deny", "approve"]


def _model() -> nn.Module:
    """Class 1 (approve) when ``age + income - 0.5 color=red > 0``; the colour columns one-hot."""
    torch.manual_seed(0)
    model = nn.Linear(4, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[-1.0, 0.5, 0.0, -1.0], [1.0, -0.5, 0.0, 1.0]]))
        model.bias.zero_()
    return model.eval()


def _probe() -> Probe:
    x = torch.tensor([[0.3, 1.0, 0.0, 0.1], [0.4, 0.0, 1.0, 0.1], [1.0, 0.0, 1.0, 1.0], [-1.0, 1.0, 0.0, -1.0]])
    return Probe(x, torch.tensor([1, 0, 1, 0]))  # rows 0 and 1 are misclassified


def test_tabular_counterfactuals_flip_the_model_with_the_reported_distances_and_frozen_columns():
    model, probe = _model(), _probe()
    mask = torch.tensor([[1, 0, 0, 1]])  # the colour is immutable
    settings = CounterfactualSettings(steps=200, lr=0.05)
    r = CounterfactualAudit(max_samples=4, settings=settings, mask=mask, feature_names=COLUMNS, class_names=CLASSES).run(model, probe)
    rows = r.tables["counterfactuals"]
    assert [row["index"] for row in rows] == [0, 1] and r.scalars["misclassified_rate"] == 0.5
    idx = torch.tensor([0, 1])
    cf = counterfactual_explanation(model, probe.first[idx], probe.labels[idx], settings, mask=mask)  # deterministic: same search
    for row, x, x_cf in zip(rows, probe.first[idx], cf.counterfactuals):
        d = x_cf - x
        assert int(model(x_cf[None]).argmax(1)) == row["label"] == row["counterfactual_predicted"] and row["success"]
        assert torch.equal(x_cf[1:3], x[1:3])  # the immutable one-hot columns are exactly as they were
        assert abs(row["l1"] - float(d.abs().sum())) < 1e-6 and abs(row["l2"] - float(d.norm())) < 1e-6
        assert row["sparsity"] == float((d != 0).float().mean())
    assert abs(r.scalars["mean_l1"] - float(cf.l1.mean())) < 1e-6


def test_the_text_card_names_each_tabular_counterfactuals_classes_and_changed_columns():
    """The card showed only the scalars of a tabular CounterfactualAudit: its table has no label
    column, so neither the changed columns (``changes``) nor the class names appeared anywhere."""
    r = CounterfactualAudit(max_samples=2, settings=CounterfactualSettings(steps=200, lr=0.05), mask=torch.tensor([[1, 0, 0, 1]]),
                            feature_names=COLUMNS, class_names=CLASSES).run(_model(), _probe())
    r.meta["seconds"] = 0.5
    line = markdown_summary(0, [r]).splitlines()[2]
    first = r.tables["counterfactuals"][0]
    assert f"#0 deny → approve: {first['changes']}" in line and first["changes"].startswith(("age: +", "income: +"))
    assert "#1 approve → deny" in line and "color" not in line


def test_grouped_one_hot_effects_equal_a_replacement_loop_with_the_same_baseline():
    model, x = _model(), _probe().first
    groups = torch.tensor([[0, 1, 1, 2]])  # age, colour (one-hot), income
    baseline = torch.tensor([[0.0, 0.0, 1.0, 0.5]])  # a valid one-hot colour: blue
    r = InputEffectAudit(feature_mask=groups, baseline=baseline, feature_names=["age", "color", "income"], class_names=CLASSES,
                         ace_values=None).run(model, Probe(x))
    with torch.no_grad():
        out = model(x)
        t = out.argmax(1, keepdim=True)
        ref = torch.zeros(4, 3)
        for g in range(3):
            sel = groups[0] == g
            xg = x.clone()
            xg[:, sel] = baseline[0, sel]
            ref[:, g] = (out.gather(1, t) - model(xg).gather(1, t))[:, 0]
    assert torch.allclose(r.vectors["mean_abs_effect"], ref.abs().mean(0), atol=1e-6)
    assert torch.allclose(r.vectors["mean_effect"], ref.mean(0), atol=1e-6)
    assert r.tables["top_groups"][0]["feature"] == ["age", "color", "income"][int(ref.abs().mean(0).argmax())]


def test_bounds_of_the_wrong_shape_are_named_with_their_shapes():
    """The message said what was expected ("broadcastable to one input [4]") but not what it got."""
    with pytest.raises(ValueError, match=r"broadcastable to one input \[4\] but got low of shape \[3\] and high of shape \[3\]"):
        CounterfactualAudit(bounds=(torch.zeros(3), torch.ones(3))).run(_model(), _probe())


def test_float_probe_labels_are_named_as_the_probes_labels():
    """Binary tabular data trained with BCE keeps 0./1. float labels; the audit failed with
    'Expected argument `target` to hold integer class indices', a parameter the user never passed."""
    probe = _probe()
    with pytest.raises(ValueError, match=r"integer class labels in `probe.labels`.*float32 \(values \[0.0, 1.0\]\).*labels.long\(\)"):
        CounterfactualAudit().run(_model(), Probe(probe.first, probe.labels.float()))
