"""CounterfactualAudit's report holds the counterfactual points as numbers: each row of ``counterfactuals`` has
``changed_elements`` (indices into one flattened sample, ``meta["input_shape"]``), ``original_values`` and
``counterfactual_values`` (and ``changed_features`` of named tabular columns), so that a program rebuilds the point from
the JSON report alone with the probe. Before: only the rounded text ``changes`` ("petal width: -0.575") of tabular
inputs and the pictures' shape of images."""

import torch
from torch import nn

from lightning_causal.audits import CounterfactualAudit
from lightning_causal.audits.base import AuditResult, Probe
from lightning_causal.causal.structure.counterfactuals import (
    CounterfactualSettings,
    counterfactual_explanation,
)
from lightning_causal.reporting.json_report import load_report, write_report

SETTINGS = CounterfactualSettings(steps=60)


def _reported(audit, model, probe, tmp_path):
    entry = load_report(write_report(tmp_path, 0, "epoch_end", [audit.run(model, probe)]))["audits"][audit.name]
    return AuditResult.from_dict(entry)


def _rebuilt(x, row, shape):
    point = x[row["index"]].clone().flatten()
    point[row["changed_elements"]] = torch.tensor(row["counterfactual_values"], dtype=x.dtype)
    return point.reshape(shape)


def test_image_counterfactuals_are_rebuilt_from_the_report(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(36, 3))
    x = torch.rand(16, 1, 6, 6, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y = (model(x).argmax(1) + 1) % 3  # every sample misclassified
    r = _reported(CounterfactualAudit(max_samples=3, settings=SETTINGS), model, Probe(x, y), tmp_path)
    assert r.meta["input_shape"] == [1, 6, 6]
    rows = r.tables["counterfactuals"]
    ref = counterfactual_explanation(model, x[:3], y[:3], SETTINGS)
    for j, row in enumerate(rows):
        point = _rebuilt(x, row, r.meta["input_shape"])
        assert torch.equal(point, ref.counterfactuals[j])  # the very point, not a rounding of it
        assert row["original_values"] == x[row["index"]].flatten()[row["changed_elements"]].tolist()
        assert int(model(point[None]).argmax()) == row["counterfactual_predicted"] == int(y[row["index"]])
    assert all(row["success"] and 0 < len(row["changed_elements"]) < 36 for row in rows)


def test_tabular_counterfactuals_name_their_columns(tmp_path):
    model = nn.Linear(3, 2, bias=False)
    with torch.no_grad():  # class 1 where x_1 > x_0; the column "noise" is read by neither class
        model.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]]))
    x = torch.tensor([[1.0, 0.0, 0.5], [0.0, 1.0, 0.5]])
    audit = CounterfactualAudit(settings=CounterfactualSettings(steps=100, lr=0.05), feature_names=["a", "b", "noise"])
    r = _reported(audit, model, Probe(x, torch.tensor([1, 1])), tmp_path)
    (row,) = r.tables["counterfactuals"]  # sample 0 only is misclassified
    assert row["changed_elements"] == [0, 1] and row["changed_features"] == ["a", "b"]  # the noise column untouched
    assert row["original_values"] == [1.0, 0.0]
    point = _rebuilt(x, row, r.meta["input_shape"])
    assert int(model(point[None]).argmax()) == row["counterfactual_predicted"] == 1
    assert row["changes"].startswith("a: ")  # the words stay beside the numbers


def test_a_sample_without_counterfactual_changes_nothing(tmp_path):
    model = nn.Linear(2, 2)
    with torch.no_grad():  # class 1 needs x_0 > 10, out of the bounds [0, 1]: no counterfactual
        model.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0]]))
        model.bias.copy_(torch.tensor([10.0, 0.0]))
    r = _reported(CounterfactualAudit(settings=CounterfactualSettings(steps=5), bounds=(0.0, 1.0)), model,
                  Probe(torch.full((1, 2), 0.5), torch.tensor([1])), tmp_path)
    (row,) = r.tables["counterfactuals"]
    assert not row["success"] and row["changed_elements"] == row["original_values"] == row["counterfactual_values"] == []
