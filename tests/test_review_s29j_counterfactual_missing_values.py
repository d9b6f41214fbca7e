"""CounterfactualAudit's counterfactuals table on a probe with missing values (NaN) that the model reads (imputes):
a NaN the counterfactual keeps is no change. Before (9589c9a8's ``b != a``, where ``NaN != NaN``): a sample whose
search found nothing listed its NaN column in ``changed_elements`` with NaN as original and counterfactual value,
where the docs say a row without counterfactual holds none."""

import math

import torch
from torch import nn

from lightning_causal.audits import CounterfactualAudit
from lightning_causal.audits.base import AuditResult, Probe
from lightning_causal.causal.structure.counterfactuals import CounterfactualSettings
from lightning_causal.reporting.json_report import load_report, write_report


class _Imputing(nn.Module):
    """Reads a missing value (NaN) as 0."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin(torch.nan_to_num(x))


def test_a_kept_missing_value_is_no_change(tmp_path):
    model = _Imputing().eval()
    x = torch.randn(16, 3, generator=torch.Generator().manual_seed(0))
    x[::2, 2] = float("nan")  # column c missing in the even samples
    with torch.no_grad():
        y = 1 - model(x).argmax(1)  # every sample misclassified
    audit = CounterfactualAudit(max_samples=4, settings=CounterfactualSettings(steps=60), feature_names=["a", "b", "c"])
    entry = load_report(write_report(tmp_path, 0, "epoch_end", [audit.run(model, Probe(x, y))]))["audits"][audit.name]
    rows = AuditResult.from_dict(entry).tables["counterfactuals"]
    assert [row["index"] for row in rows] == [0, 1, 2, 3]
    for row in rows:
        point = x[row["index"]].clone()
        point[row["changed_elements"]] = torch.tensor(row["counterfactual_values"])
        if row["index"] % 2 == 0:  # the missing value kept: listed as no change
            assert math.isnan(float(x[row["index"], 2]))
            assert not row["success"] or 2 not in row["changed_elements"]
            assert not any(math.isnan(v) for v in row["original_values"] + row["counterfactual_values"])
        if not row["success"]:
            assert row["changed_elements"] == row["changed_features"] == row["original_values"] == row["counterfactual_values"] == []
        else:  # the point rebuilt from the report is the counterfactual: the model gives its class
            with torch.no_grad():
                assert int(model(point[None]).argmax(1)) == row["counterfactual_predicted"] == row["target"]
    assert sum(row["success"] for row in rows) >= 1 and not all(row["success"] for row in rows)  # both kinds met
