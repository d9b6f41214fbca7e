"""CaptumBaseline's seconds per explanation survive the callback and audit_model (newuser56 trial: results as data).

CaptumBaseline's docstring gives ``meta["seconds"]`` per explanation (``{"causal": ..., "<method>": ...}``), but every
audit's ``meta["seconds"]`` is also where the callback and ``audit_model`` put the audit's own time (docs/index.md,
``meta.seconds``), which replaced the dict: ``audit.run`` gave a dict, ``audit_model``'s result, ``last_results`` and the
report a float, and ``result.meta["seconds"]["Saliency"]`` raised ``TypeError: 'float' object is not subscriptable``. The
per-explanation seconds are ``meta["method_seconds"]``, the same numbers as the ``seconds`` column of the comparison table.
"""

import torch
from torch import nn

from lightning_causal import CaptumBaseline, audit_model, load_report
from lightning_causal.audits import Probe


def _setup():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).eval()
    return model, torch.randn(8, 3, generator=torch.Generator().manual_seed(1))


def test_seconds_per_explanation_are_kept_beside_the_audits_own_seconds(tmp_path):
    model, x = _setup()
    alone = CaptumBaseline(("Saliency", "FeatureAblation")).run(model, Probe(x))
    assert sorted(alone.meta["method_seconds"]) == ["FeatureAblation", "Saliency", "causal"]
    assert "seconds" not in alone.meta  # the audit's own time is the callback's and audit_model's to set

    result, = audit_model(model, CaptumBaseline(("Saliency", "FeatureAblation")), x, report_dir=tmp_path)
    per_method = result.meta["method_seconds"]
    assert isinstance(result.meta["seconds"], float) and result.meta["seconds"] >= sum(per_method.values())
    assert {row["method"]: row["seconds"] for row in result.tables["comparison"]} == per_method
    entry = load_report(tmp_path / "epoch_0000.json")["audits"]["captum_baseline"]
    assert entry["meta"]["method_seconds"] == per_method and entry["meta"]["seconds"] == result.meta["seconds"]
