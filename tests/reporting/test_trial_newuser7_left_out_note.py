"""The layer-map figure's note under the CKA matrix wrote the reason after every layer left out: a mixture of four
experts of two layers each (newuser7 trial) read '(its output does not hold one row per sample: ...)' eight times,
15 lines of text under a one-layer map. Layers of one reason are listed together, as LayerMapAudit's notes do."""

from __future__ import annotations

from lightning_causal.causal.structure.layer_activations import NOT_SAMPLES_FIRST
from lightning_causal.reporting.layer_map_figures import _left_out_note


def test_layers_left_out_for_one_reason_share_it() -> None:
    experts = [f"moe.experts.{e}.fc{k}" for e in range(4) for k in (1, 2)]
    meta = {"left_out": {**dict.fromkeys(experts, NOT_SAMPLES_FIRST), "aux": "another output's head"}}
    text = " ".join(_left_out_note(meta, 1000))
    assert text == f"left out: {', '.join(experts)} ({NOT_SAMPLES_FIRST}); aux (another output's head)"
    assert text.count(NOT_SAMPLES_FIRST) == 1
