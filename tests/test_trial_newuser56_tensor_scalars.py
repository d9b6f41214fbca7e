"""A one-element tensor scalar of an audit of your own is written to the report as its number (newuser56 trial).

``AuditResult.scalars`` takes "a float (or a one-element tensor)", and the callback's checks accept a tensor of one
element of any shape; but a scalar computed as ``out.mean(0)`` of a model of one output, ``tensor([0.5])``, was written to
the JSON report as the list ``[0.5]``: the report's ``scalars`` were no longer name -> float (docs/recipes.md), the CI gate
recipe's ``value > 0.05`` raised a TypeError and ``AuditResult.from_dict`` of the entry stopped with ``float() argument
must be ... not 'list'``.
"""

import math

import torch
from torch import nn

from lightning_causal import audit_model, load_report
from lightning_causal.audits import Audit, AuditResult


class _MeanOutput(Audit):
    """The mean output over the probe, as a [1] tensor, a [1, 1] tensor and a 0-d one."""

    def run(self, model, probe, *, max_batch_size=None):
        with torch.no_grad():
            out = model(probe.inputs)  # [N, 1]
        return AuditResult(self.name, scalars={"mean": out.mean(0), "mean_2d": out.mean(0, keepdim=True),
                                               "mean_0d": out.mean(), "nan": out.mean(0) * math.nan})


def test_one_element_tensor_scalars_are_numbers_in_the_report_and_read_back(tmp_path):
    model = nn.Linear(2, 1)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, 2.0]]))
        model.bias.fill_(0.5)
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0], [1.0, 1.0]])  # outputs 1.5, 2.5, 6.5, 3.5: mean 3.5
    result, = audit_model(model, _MeanOutput(), x, report_dir=tmp_path)
    written = result.to_dict()["scalars"]
    assert written == {"mean": 3.5, "mean_2d": 3.5, "mean_0d": 3.5, "nan": "nan"}
    assert all(type(v) is float for k, v in written.items() if k != "nan")
    assert '"mean":3.5,' in (tmp_path / "epoch_0000.json").read_text()
    entry = load_report(tmp_path / "epoch_0000.json")["audits"]["mean_output"]
    assert entry["non_finite"] == [["scalars", "nan"]]
    assert entry["scalars"]["mean"] == entry["scalars"]["mean_2d"] == 3.5 and math.isnan(entry["scalars"]["nan"])
    assert [name for name, value in entry["scalars"].items() if value > 0.05] == ["mean", "mean_2d", "mean_0d"]
    back = AuditResult.from_dict(entry)
    assert back.scalars["mean"] == 3.5 and math.isnan(back.scalars["nan"])
