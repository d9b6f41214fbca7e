"""The causal graph's class indices and sample counts as integers (newuser56 trial: results read by programs).

A program reading a ``CausalGraphAudit`` result or its JSON report found each node's deciding ``class`` and the sample
counts (``samples`` of the output nodes and edges) as floats, ``2.0``, where every other audit writes a class as an
``int`` (``BackdoorAudit``'s ``flagged_classes``, ``CounterfactualAudit``'s ``label``/``target``): ``class_names[row["class"]]``
raised ``TypeError: list indices must be integers or slices, not float``. On :class:`tests.helpers.planted.Planted`,
units ``b:0`` and ``b:1`` raise class 0's logit and ``b:2`` class 1's, so their deciding classes are known by hand.
"""

import json
import re

from lightning_causal import CausalGraph, CausalGraphAudit, load_report
from lightning_causal.audits import Probe
from lightning_causal.causal.structure.graph import causal_graph
from lightning_causal.reporting.json_report import write_report
from tests.helpers.planted import Planted, planted_inputs


def _by_hand():
    model, x = Planted(), planted_inputs()
    predicted = model(x).argmax(1)
    return model, x, {0: int((predicted == 0).sum()), 1: int((predicted == 1).sum())}


def test_the_graphs_classes_and_counts_are_ints_in_the_graph_and_its_dict():
    model, x, count = _by_hand()
    g = causal_graph(model, x, ["a", "b"], top_k=None)
    assert {n: g.node_stats[n]["class"] for n in ("b:0", "b:1", "b:2")} == {"b:0": 0, "b:1": 0, "b:2": 1}
    assert all(type(g.node_stats[n]["class"]) is int for n in g.nodes if not n.startswith("output"))
    assert {n: g.node_stats[n]["samples"] for n in ("output:0", "output:1")} == {"output:0": count[0], "output:1": count[1]}
    edges = {(s, t): st for (s, t, _), st in zip(g.edges, g.edge_stats)}
    assert edges[("b:2", "output:1")]["samples"] == count[1] and type(edges[("b:2", "output:1")]["samples"]) is int
    assert edges[("a:0", "b:0")]["samples"] == len(x)  # an edge into a unit: tested on every sample
    text = json.dumps(g.to_dict())
    assert '"class": 1,' in text and f'"samples": {count[1]},' in text and f'"samples": {len(x)},' in text
    assert not re.search(r'"(class|samples)": \d+\.0', text)
    back = CausalGraph.from_dict(json.loads(text))
    assert back.node_stats == g.node_stats and back.edge_stats == g.edge_stats
    assert type(back.node_stats["b:2"]["class"]) is int and type(back.node_stats["output:0"]["samples"]) is int
    assert type(back.node_stats["b:2"]["z"]) is float


def test_the_audits_node_table_and_report_name_classes_by_index(tmp_path):
    model, x, _ = _by_hand()
    names = ["cat", "dog"]
    result = CausalGraphAudit(["a", "b"], top_k=None, stability_resamples=0, class_names=names).run(model, Probe(x))
    rows = {row["node"]: row for row in result.tables["nodes"]}
    assert {n: names[rows[n]["class"]] for n in ("b:0", "b:1", "b:2")} == {"b:0": "cat", "b:1": "cat", "b:2": "dog"}
    path = write_report(tmp_path, 0, "epoch_end", [result])
    assert '"class":1,' in path.read_text() and '"class":1.0' not in path.read_text()
    entry = load_report(path)["audits"]["causal_graph"]
    assert [names[row["class"]] for row in entry["tables"]["nodes"] if row["node"] == "b:2"] == ["dog"]
    nodes = {n["id"]: n for n in entry["graphs"]["causal_graph"]["nodes"]}
    assert names[nodes["b:2"]["class"]] == "dog" and isinstance(nodes["output:1"]["samples"], int)
