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


def test_two_runs_reports_differ_only_in_the_timings_docs_recipes_names(tmp_path):
    """docs/recipes.md: "two runs with the same seed give the same file but for the timings (audit_seconds, each
    meta["seconds"], and CaptumBaseline's seconds per explanation: meta["method_seconds"] and the seconds column of
    tables["comparison"])"; the comparison's column was not named there."""
    import json

    from lightning_causal import InputEffectAudit

    model, x = _setup()
    for run in ("a", "b"):
        audit_model(model, [InputEffectAudit(ace_values=2), CaptumBaseline(("Saliency", "FeatureAblation"))], x,
                    report_dir=tmp_path / run)
    a, b = (json.loads((tmp_path / run / "epoch_0000.json").read_text()) for run in ("a", "b"))

    def timings(doc):
        places = [("audit_seconds",)]
        for name, entry in doc["audits"].items():
            places += [("audits", name, "meta", key) for key in ("seconds", "method_seconds") if key in entry["meta"]]
            places += [("audits", name, "tables", "comparison", i, "seconds")
                       for i, _ in enumerate(entry["tables"].get("comparison", []))]
        for place in places:
            holder = doc
            for key in place[:-1]:
                holder = holder[key]
            holder[place[-1]] = None
        return places

    assert timings(a) == timings(b) and len(timings(a)) == 1 + 2 + 1 + 3
    assert a == b
