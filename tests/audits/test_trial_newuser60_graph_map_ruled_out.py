"""CausalGraphAudit and LayerMapAudit told to explain a class the model rules out with ``-inf`` (``target=3`` of a
class-incremental model whose class 3 is not yet seen: ``logits.masked_fill(~seen, float("-inf"))``, newuser60 trial):
the layer map's ``output_response`` was NaN with no note, and the graph's note of its NaN faithfulness named NaN
weights only. Both notes now name the class ruled out by ``target=`` too; the numbers are unchanged."""

from __future__ import annotations

import math
import warnings

import torch
from torch import nn

from lightning_causal import CausalGraphAudit, LayerMapAudit
from lightning_causal.audits import Probe


class _Incremental(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body, self.head = nn.Sequential(nn.Linear(3, 6), nn.ReLU(), nn.Linear(6, 6), nn.ReLU()), nn.Linear(6, 4)
        self.register_buffer("seen", torch.tensor([True, True, True, False]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x)).masked_fill(~self.seen, float("-inf"))


def test_the_graph_and_the_layer_map_of_a_ruled_out_target_say_why() -> None:
    x = torch.randn(12, 3, generator=torch.Generator().manual_seed(0))
    probe = Probe(x, torch.zeros(12, dtype=torch.long))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = CausalGraphAudit(["body.1"], target=3).run(_Incremental(), probe)
        layer_map = LayerMapAudit(target=3).run(_Incremental(), probe)
    assert math.isnan(graph.scalars["faithfulness"]) and math.isnan(layer_map.scalars["output_response"])
    graph_notes = [n for n in graph.meta["notes"] if n.startswith("faithfulness undefined")]
    assert len(graph_notes) == 1 and "a class the model rules out with -inf" in graph_notes[0] and "`target=`" in graph_notes[0]
    map_notes = [n for n in layer_map.meta.get("notes", []) if n.startswith("output_response is not finite")]
    assert len(map_notes) == 1 and "a class the model rules out with -inf" in map_notes[0] and "`target=`" in map_notes[0]
