"""newuser78's U-Net graph kept one edge: CausalGraphAudit's default test, alternative='greater', keeps the units whose
ablation lowers the explained output, a predicted class's support; a regression output or one score has no predicted
class deciding its sign, so the units that lower it were left out without a word. The graph counts those units (a
two-sided pass of the same test, negative means: ``meta["lowering_units"]``) and the audit notes them for a regression
or a single score, only where there are some (the review of newuser78 found an unconditional note on every one-output
graph too noisy: it broke four tests that expect none). A classifier's graph and a two-sided one have no note."""

from __future__ import annotations

import torch
from torch import nn

from lightning_causal import CausalGraphAudit
from lightning_causal.audits.base import Probe


def _model(outputs: int, lowering: float = -2.0) -> nn.Module:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, outputs))
    with torch.no_grad():  # unit 0 raises output 0, unit 1 lowers it (or raises it too)
        model[0].weight.copy_(torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0], [0, 0, 0.5]]))
        model[0].bias.fill_(1.0)
        model[2].weight.zero_()
        model[2].weight[0, :2] = torch.tensor([2.0, lowering])
        if outputs > 1:
            model[2].weight[1:, 2] = 1.0
        model[2].bias.zero_()
    return model


def _notes(model: nn.Module, **kwargs) -> tuple[list[str], list[str], dict]:
    x = torch.rand(24, 3, generator=torch.Generator().manual_seed(1))
    result = CausalGraphAudit(["1"], stability_resamples=0, **kwargs).run(model, Probe(x))
    graph = result.graphs["causal_graph"]
    nodes = [n["id"] for n in graph["nodes"]]
    return [n for n in result.meta.get("notes", []) if "alternative='two-sided'" in n], nodes, graph["meta"]


def test_a_one_score_graph_says_its_one_sided_test_leaves_out_the_units_that_lower_it():
    notes, nodes, meta = _notes(_model(1))
    assert meta["lowering_units"] == {"1": 1}
    assert len(notes) == 1 and "single score" in notes[0] and "1: 1" in notes[0]
    assert "1:0" in nodes and "1:1" not in nodes  # the unit that lowers the score is left out, as the note says
    notes, nodes, meta = _notes(_model(1), alternative="two-sided")
    assert notes == [] and {"1:0", "1:1"} <= set(nodes) and not meta["lowering_units"]


def test_no_note_where_no_unit_lowers_it_nor_for_a_classifier():
    notes, _, meta = _notes(_model(1, lowering=2.0))  # both units raise the score
    assert notes == [] and not meta["lowering_units"]
    notes, _, _ = _notes(_model(3))
    assert notes == []


def test_the_count_leaves_out_units_the_graph_keeps_for_another_class():
    """Second final read: the count took, over the explained classes, every unit passing two-sided with a negative mean
    for one of them, graph nodes for another class too ({'3': 4, '1': 6} on this 3-class MLP, 2 and 3 of them nodes);
    it counts the units the one-sided graph leaves out, here exactly those a two-sided graph adds, in forward order."""
    from lightning_causal.causal.structure.graph import causal_graph

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 12), nn.ReLU(), nn.Linear(12, 8), nn.ReLU(), nn.Linear(8, 3)).eval()
    x = torch.randn(64, 6)
    one_sided = causal_graph(model, x, ["1", "3"], top_k=None)
    two_sided = causal_graph(model, x, ["1", "3"], top_k=None, alternative="two-sided")
    added = sorted(set(two_sided.nodes) - set(one_sided.nodes))
    expected = {layer: sum(n.startswith(f"{layer}:") for n in added) for layer in ("1", "3")}
    assert one_sided.meta["lowering_units"] == {k: v for k, v in expected.items() if v}
    assert list(one_sided.meta["lowering_units"]) == [k for k in ("1", "3") if expected[k]]  # forward order
