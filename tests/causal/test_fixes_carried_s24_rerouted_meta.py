"""A default layer left out of the layer map because it runs on some rows only once inputs are intervened on
(an expert of a mixture that every probe sample took) was kept in meta["left_out"] under its category only
(REROUTED, which the card groups by); what it did, on how many rows, was in a console warning alone, so the
report and its notes could not say it. meta["rerouted"] keeps it now (layer -> what it returned, JSON-able)
and the audit's notes tell it."""

from __future__ import annotations

import json
import warnings

import torch

from lightning_causal.audits import LayerMapAudit, Probe
from lightning_causal.audits.layer_map import layer_map_notes
from lightning_causal.causal import layer_causal_map
from lightning_causal.causal.structure.layer_map import LayerCausalMap
from lightning_causal.causal.structure.layer_trace import REROUTED
from tests.causal.test_trial_newuser7_moe_layer_map import TopOneMixture, _probe

# 12 samples x 3 groups (one feature each) = 36 rows in one pass; do(x0 := 0) sends the 12 rows of group 0 to
# expert 1, so expert 0 runs on the 24 rows of groups 1 and 2 only
WHAT = "returned [24, 2] for a pass of 36 intervened rows"


def _map() -> LayerCausalMap:
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return layer_causal_map(TopOneMixture(), _probe())


def test_the_map_keeps_what_a_rerouted_expert_returned_beside_its_category() -> None:
    lm = _map()
    assert lm.meta["left_out"] == {"experts.0.fc": REROUTED}  # the category, as the card groups by
    assert lm.meta["rerouted"] == {"experts.0.fc": WHAT}
    meta = json.loads(json.dumps(lm.to_dict()["meta"]))  # JSON-able, and kept by a round trip
    assert LayerCausalMap.from_dict(lm.to_dict()).meta["rerouted"] == meta["rerouted"] == {"experts.0.fc": WHAT}


def test_named_layers_and_maps_without_experts_have_none() -> None:
    torch.manual_seed(0)
    assert layer_causal_map(TopOneMixture(), _probe(), layers=["router", "head"]).meta["rerouted"] == {}


def test_the_audit_notes_say_what_the_expert_returned() -> None:
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        result = LayerMapAudit().run(TopOneMixture(), Probe(_probe(), torch.zeros(12, dtype=torch.long)))
    assert result.graphs["layer_map"]["meta"]["rerouted"] == {"experts.0.fc": WHAT}
    assert result.meta["notes"] == [f"left out of the default layers: experts.0.fc ({REROUTED}; experts.0.fc {WHAT})"]
    assert layer_map_notes({"left_out": {"a": "dead"}}) == ["left out of the default layers: a (dead)"]  # no detail: as before
