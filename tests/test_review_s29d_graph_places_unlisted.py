"""load_report reads a graph's NaN and infinities as floats in a report written before 130d98ce (review_s29d).

130d98ce made ``write_report`` list the places of a causal graph's and a layer map's ``"nan"``/``"inf"`` (written so by
``CausalGraph.to_dict``/``LayerCausalMap.to_dict``) in ``non_finite``; a report written before it (same schema
version) holds the same graph with a ``non_finite`` that lists none of them, and its graph's z came back as the string
``'inf'`` beside the table's float ``inf`` of the same node. Such a report is the one written now with the graph's places
taken out of ``non_finite`` (checked against the writer of 130d98ce^: the files differ only there).
"""

import json
import math
from collections import OrderedDict

import torch
from torch import nn

from lightning_causal import CausalGraphAudit, load_report
from lightning_causal.audits import Probe
from lightning_causal.reporting.json_report import write_report


def _written_before(path):
    """The report at ``path`` as the writer before 130d98ce wrote it: no place of ``graphs`` in ``non_finite``."""
    doc = json.loads(path.read_text())
    for entry in doc["audits"].values():
        entry["non_finite"] = [place for place in entry["non_finite"] if place[0] != "graphs"]
    old = path.with_name("epoch_0001.json")
    old.write_text(json.dumps(doc))
    return old


def test_a_graph_of_a_report_that_lists_no_graph_place_reads_as_numbers_with_its_names_kept(tmp_path):
    # y = W2 (W1 x), W1 = 2 I, W2 = I, layers named 'nan' and 'inf'; 8 copies of one sample: the effect of
    # do(nan:0 := 0) on the explained class 0 is 2 x_0 = 2 on every sample, no spread, so z = inf
    model = nn.Sequential(OrderedDict([("nan", nn.Linear(2, 2)), ("inf", nn.Linear(2, 2))]))
    with torch.no_grad():
        model[0].weight.copy_(2 * torch.eye(2)), model[0].bias.zero_()
        model[1].weight.copy_(torch.eye(2)), model[1].bias.zero_()
    x = torch.tensor([[1.0, 0.5]]).repeat(8, 1)
    result = CausalGraphAudit(["nan", "inf"], top_k=None, stability_resamples=0).run(model, Probe(x))
    now = load_report(write_report(tmp_path, 0, "epoch_end", [result]))["audits"]["causal_graph"]
    old = load_report(_written_before(tmp_path / "epoch_0000.json"))["audits"]["causal_graph"]
    assert not any(place[0] == "graphs" for place in old["non_finite"])
    graph, rows = old["graphs"]["causal_graph"], {row["node"]: row for row in old["tables"]["nodes"]}
    nodes = {n["id"]: n for n in graph["nodes"]}
    assert nodes["nan:0"]["effect"] == rows["nan:0"]["effect"] == 2.0
    assert nodes["nan:0"]["z"] == rows["nan:0"]["z"] == math.inf  # a float, was the string 'inf'
    assert math.isnan(graph["meta"]["faithfulness"])  # was the string 'nan'
    assert graph["layers"] == ["nan", "inf"] and nodes["inf:0"]["layer"] == "inf"  # names stay words
    assert {(e["source"], e["target"]) for e in graph["edges"]} >= {("nan:0", "inf:0")}
    assert repr(graph) == repr(now["graphs"]["causal_graph"])  # as the report written now reads
