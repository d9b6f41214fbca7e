"""A bool scalar of a custom audit is the number 1.0/0.0 in the JSON report, as the loggers log it (float(value)).

Before: ``AuditResult.to_dict`` wrote ``torch.tensor(True)`` (and ``True``, ``np.True_``) as JSON ``true``, which a
program reading the report met as a boolean beside the numbers of every other scalar, and which ``from_dict`` read
back as 1.0."""

import json

import numpy as np
import torch

from lightning_causal.audits.base import AuditResult
from lightning_causal.reporting.json_report import load_report, write_report


def test_bool_scalars_are_written_as_numbers(tmp_path):
    scalars = {"converged": torch.tensor(True), "stalled": False, "flag": np.bool_(True), "count": 3, "z": 0.25}
    path = write_report(tmp_path, 0, "epoch_end", [AuditResult("mine", scalars=scalars)])
    raw = json.loads(path.read_text())["audits"]["mine"]["scalars"]
    assert raw == {"converged": 1.0, "stalled": 0.0, "flag": 1.0, "count": 3, "z": 0.25}
    assert [type(raw[k]) for k in ("converged", "stalled", "flag")] == [float, float, float]  # not JSON true/false
    back = AuditResult.from_dict(load_report(path)["audits"]["mine"])
    assert back.scalars == {"converged": 1.0, "stalled": 0.0, "flag": 1.0, "count": 3.0, "z": 0.25}
    again = back.to_dict()["scalars"]  # the round trip writes numbers again
    assert again == raw and not any(isinstance(v, bool) for v in again.values())
