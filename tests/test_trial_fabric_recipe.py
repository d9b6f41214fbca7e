"""docs/recipes.md 'Without Trainer: Fabric and plain loops': the Fabric recipe runs as printed (shortened
by substitutions), writes the callback's tags, figures, text card and JSON reports, and its repair epochs
lower the counterfactual fairness gap it prints; the audited module's scalars equal the audits run by hand
on the same weights."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers.recipes import recipe_code, run_code

pytest.importorskip("lightning.fabric")

FAST = (("n=2000", "n=400"), ("data.x[:1600], data.y[:1600]", "data.x[:320], data.y[:320]"),
        ("data.x[1600:1856], data.y[1600:1856]", "data.x[320:400], data.y[320:400]"),
        ("range(8)", "range(3)"), ("epoch >= 4", "epoch >= 2"))


def test_fabric_recipe_runs_logs_and_repairs(monkeypatch, tmp_path, capsys):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    from lightning_causal import load_report

    monkeypatch.chdir(tmp_path)
    ns = run_code(recipe_code("fabric", FAST), "docs snippet")  # quiet: Fabric's notes on CPU bf16
    gaps = [float(line.split()[1]) for line in capsys.readouterr().out.splitlines() if re.fullmatch(r"\d \S+", line)]
    assert len(gaps) == 3 and gaps[2] < 0.5 * min(gaps[:2]), gaps  # the repair epoch lowers the gap
    log_dir = Path(ns["fabric"].logger.log_dir)
    reports = sorted((log_dir / "causal_audit").glob("epoch_*.json"))
    assert [r.name for r in reports] == ["epoch_0000.json", "epoch_0001.json", "epoch_0002.json"]
    assert set(load_report(reports[-1])["audits"]) == {"input_effect", "unit_importance", "fairness"}
    events = EventAccumulator(str(log_dir), size_guidance={"images": 0, "scalars": 0}).Reload()
    gap_steps = [e.step for e in events.Scalars("causal/fairness/cf_gap")]
    assert gap_steps == [4, 9, 14]  # 5 batches of 64 per epoch: each epoch's last step
    tags = events.Tags()
    assert "causal/unit_importance/bars/importance/net.1" in tags["images"]
    assert "causal/summary/text_summary" in tags["tensors"]
    card = events.Tensors("causal/summary/text_summary")[-1].tensor_proto.string_val[0].decode()
    assert "epoch_0002.json" in card, card
    # the last audit's scalars are the audits of the trained module by hand
    by_hand = ns["audits"][2].run(ns["model"].module, ns["probe"])
    assert by_hand.scalars["cf_gap"] == pytest.approx(ns["results"][2].scalars["cf_gap"], abs=1e-7)
    assert [e.value for e in events.Scalars("causal/fairness/cf_gap")][-1] == pytest.approx(gaps[-1], abs=5e-4)
