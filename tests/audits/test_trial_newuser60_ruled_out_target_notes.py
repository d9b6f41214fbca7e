"""An audit told to explain a class the model rules out with ``-inf`` (``target=3`` of a class-incremental model whose
class 3 is not yet seen: ``logits.masked_fill(~seen, float("-inf"))``, newuser60 trial) gets NaN effects,
``-inf − (-inf)``. The notes of ``InputEffectAudit``, ``UnitImportanceAudit`` and ``CaptumBaseline`` blamed only "a
diverged model, or a float16 model whose logits pass 65504" and offered a float32 copy; ``LayerMapAudit``'s
``output_response`` was NaN with no note, and ``CausalGraphAudit``'s note of its NaN faithfulness named NaN weights only.
Every note now names the class ruled out by ``target=`` and the way out, in one wording (review_s31a: ``CaptumBaseline``'s
note gave no way out but the float32 copy); the numbers are unchanged."""

from __future__ import annotations

import math
import warnings

import torch
from torch import nn

from lightning_causal import (
    CaptumBaseline,
    CausalGraphAudit,
    InputEffectAudit,
    LayerMapAudit,
    UnitImportanceAudit,
)
from lightning_causal.audits import Probe

CAUSE = "a class the model rules out with -inf (`masked_fill(~seen, float('-inf'))`) explained by `target=`"
WAY_OUT = "explain a class the model can predict"


class _Incremental(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body, self.head = nn.Sequential(nn.Linear(3, 6), nn.ReLU(), nn.Linear(6, 6), nn.ReLU()), nn.Linear(6, 4)
        self.register_buffer("seen", torch.tensor([True, True, True, False]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x)).masked_fill(~self.seen, float("-inf"))


def _probe() -> Probe:
    return Probe(torch.randn(12, 3, generator=torch.Generator().manual_seed(0)), torch.zeros(12, dtype=torch.long))


def test_the_notes_of_a_ruled_out_target_name_it() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        results = [InputEffectAudit(target=3, ace_values=None).run(_Incremental(), _probe()),
                   UnitImportanceAudit(["body.1"], target=3).run(_Incremental(), _probe()),
                   CaptumBaseline(("Saliency",), target=3).run(_Incremental(), _probe())]
    assert math.isnan(results[0].scalars["mean_abs_effect"])  # -inf − (-inf) in every sample: undefined, and said why
    for result in results:
        notes = [n for n in result.meta["notes"] if "not finite" in n or "hold NaN" in n]
        assert notes, result.meta["notes"]
        assert all(CAUSE in n and WAY_OUT in n for n in notes), notes


def test_the_graph_and_the_layer_map_of_a_ruled_out_target_say_why() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = CausalGraphAudit(["body.1"], target=3).run(_Incremental(), _probe())
        layer_map = LayerMapAudit(target=3).run(_Incremental(), _probe())
    assert math.isnan(graph.scalars["faithfulness"]) and math.isnan(layer_map.scalars["output_response"])
    graph_notes = [n for n in graph.meta["notes"] if n.startswith("faithfulness undefined")]
    assert len(graph_notes) == 1 and CAUSE in graph_notes[0] and WAY_OUT in graph_notes[0]
    map_notes = [n for n in layer_map.meta.get("notes", []) if n.startswith("output_response is not finite")]
    assert len(map_notes) == 1 and CAUSE in map_notes[0] and WAY_OUT in map_notes[0]
