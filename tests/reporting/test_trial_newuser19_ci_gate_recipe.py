"""Reading the results in Python and in a CI gate (newuser19 trial): a data scientist who does not read
TensorBoard found the JSON report's layout documented nowhere (where the names are, how NaN is written, what a
failed audit leaves) and no example of a gate. recipes.md now has "Reading the results in Python and in a CI
gate"; this runs its block as printed and checks what the page says against the reports themselves."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import lightning.pytorch  # noqa: F401 - imported by the suite anyway; the recipe's own imports then cost nothing
import pytest

from tests.helpers.recipes import recipe_code, run_code

pd = pytest.importorskip("pandas")
RECIPES = (Path(__file__).resolve().parents[2] / "docs" / "recipes.md").read_text()


def test_the_ci_gate_recipe_runs_and_reads_what_the_reports_hold(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    ns = run_code(recipe_code("ci-gate"), "ci-gate recipe", quiet=False)
    reports = sorted((tmp_path / "runs/ci/causal_audit").glob("epoch_*.json"))
    assert [p.name for p in reports] == ["epoch_0000.json", "epoch_0001.json", "epoch_0002.json"]
    raw = json.loads(reports[-1].read_text())
    assert raw["schema_version"] == 1 and raw["stage"] == "epoch_end" and set(raw["audits"]) == {"input_effect", "fairness"}
    # the long table holds every scalar of every report, and the gap series is the reports' own
    assert len(ns["scalars"]) == sum(len(r["scalars"]) for d in ns["docs"] for r in d["audits"].values())
    assert ns["gap_by_epoch"].tolist() == [d["audits"]["fairness"]["scalars"]["cf_gap"] for d in ns["docs"]]
    # the last report equals the callback's last results, and its rows carry the feature names
    last = ns["audit"].last_results
    assert raw["audits"]["fairness"]["scalars"]["cf_gap"] == last["fairness"].scalars["cf_gap"]
    assert ns["effects"]["feature"].tolist() == [row["feature"] for row in raw["audits"]["input_effect"]["tables"]["top_groups"]]
    assert sorted(ns["effects"]["feature"]) == ["a", "m1", "m2", "x3"]
    assert ns["effects"]["mean_abs_effect"].is_monotonic_decreasing
    # the gate's verdict is what the numbers say, and what the page prints
    gap = ns["gap"]
    assert math.isfinite(gap) and (gap > 0.05) == any("fairness gap" in p for p in ns["problems"])
    assert (ns["top5"] != ns["was"]) == any("top-5" in p for p in ns["problems"])
    out = capsys.readouterr().out
    assert f"counterfactual fairness gap {gap:.3f} > 0.05" in out
    # the page's way from a report's entry to its TensorBoard tags gives the tags the callback logged (a report's
    # entry is a dict: scalar_tags takes the AuditResult that AuditResult.from_dict rebuilds)
    expr = re.search(r"`lightning_causal\.reporting\.(scalar_tags\(.*?\))` gives the tags of a report's entry", RECIPES).group(1)
    from lightning_causal.audits import AuditResult
    from lightning_causal.reporting import scalar_tags

    for entry in raw["audits"].values():
        tags = eval(expr, {"scalar_tags": scalar_tags, "AuditResult": AuditResult, "entry": entry})  # noqa: S307 - the docs' own
        assert len(tags) == len(entry["scalars"]) > 0 and set(tags) <= set(ns["audit"].last_scalars)
    printed = re.search(r"It prints `(.*?)` and `(.*?)`", RECIPES.split("<!-- recipe: ci-gate -->")[1], re.S)
    assert printed.group(1) in out and " ".join(printed.group(2).split()) in out


def test_the_gate_fails_on_a_failed_audit_and_on_a_nan_gap_without_crashing():
    code = recipe_code("ci-gate")
    gate = code[code.index("# 3."):]

    def report(fairness, features):
        return {"audits": {"fairness": fairness, "input_effect": {"scalars": {}, "tables": {
            "top_groups": [{"feature": f} for f in features]}, "meta": {}}}}

    failed = {"scalars": {"failed": 1.0}, "tables": {}, "meta": {"error": "RuntimeError('boom')"}}
    ns = {"math": math, "docs": [report({"scalars": {"cf_gap": 0.01}}, ["a", "b"]), report(failed, ["b", "a"])]}
    run_code(gate, "ci-gate recipe: the gate", quiet=False, namespace=ns)
    assert ns["problems"] == ["audit 'fairness' failed: RuntimeError('boom')", "counterfactual fairness gap nan > 0.05",
                              "top-5 features changed: ['a', 'b'] -> ['b', 'a']"]
    ns = {"math": math, "docs": [report({"scalars": {"cf_gap": 0.01}}, ["a"]), report({"scalars": {"cf_gap": math.nan}}, ["a"])]}
    run_code(gate, "ci-gate recipe: the gate", quiet=False, namespace=ns)
    assert ns["problems"] == ["counterfactual fairness gap nan > 0.05"]
    ns["docs"][-1]["audits"]["fairness"]["scalars"]["cf_gap"] = 0.03
    run_code(gate, "ci-gate recipe: the gate", quiet=False, namespace=ns)
    assert ns["problems"] == []
