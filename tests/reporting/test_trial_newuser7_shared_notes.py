"""The text card's notes: a note that several audits hold (an MC-dropout model's 'the model draws random numbers in
eval mode; effects are at fixed noise ...', newuser7 trial: five audits, five identical lines) is one line after the
audits' names; notes of one audit, and failures, as before."""

from __future__ import annotations

from lightning_causal.audits import AuditResult
from lightning_causal.reporting.summary import markdown_summary

NOISE = "the model draws random numbers in eval mode; effects are at fixed noise"


def test_a_note_of_several_audits_is_one_line() -> None:
    results = [AuditResult("input_effect", meta={"notes": [NOISE]}),
               AuditResult("causal_graph", meta={"notes": ["causal_graph compares passes of separate noise draws"]}),
               AuditResult("sobol", meta={"notes": [NOISE, "x3 is constant on the probe"]}),
               AuditResult("layer_map", meta={"error": "ValueError('boom')"})]
    card = markdown_summary(1, results)
    notes = card.split("Notes:\n")[1].splitlines()
    assert notes == [f"- input_effect, sobol: {NOISE}", "- causal_graph: causal_graph compares passes of separate noise draws",
                     "- sobol: x3 is constant on the probe", "- layer_map failed: ValueError('boom')"]
