"""A graph's NaN and infinities come back as floats from load_report (newuser56 trial: reports read by programs).

``load_report`` reads the report's ``"nan"``/``"inf"``/``"-inf"`` back as floats in each audit's groups, ``graphs``
included ("a node's z with no variance", its docstring), at the places ``non_finite`` lists. But ``CausalGraph.to_dict``
and ``LayerCausalMap.to_dict``, which the audits put in ``result.graphs``, already write them as strings, so the report
listed no place in ``graphs``: a node's z came back as the string ``'inf'`` beside the float ``inf`` of the same node in
``tables["nodes"]``, a NaN CKA as ``'nan'``, and ``z > 3`` on it raised a TypeError. Names spelt so stay strings.
"""

import math
from collections import OrderedDict

import pytest
import torch
from torch import nn

from lightning_causal import CausalGraph, CausalGraphAudit, LayerMapAudit, load_report
from lightning_causal.audits import Probe
from lightning_causal.causal.structure.layer_map import LayerCausalMap
from lightning_causal.reporting.json_report import write_report


def _named(first: str, second: str) -> nn.Module:
    """y = W2 (W1 x): hidden unit i is 2 x_i, output j = hidden j (weights by hand), the layers named ``first``, ``second``."""
    model = nn.Sequential(OrderedDict([(first, nn.Linear(2, 2)), (second, nn.Linear(2, 2))]))
    with torch.no_grad():
        model[0].weight.copy_(2 * torch.eye(2)), model[0].bias.zero_()
        model[1].weight.copy_(torch.eye(2)), model[1].bias.zero_()
    return model


def test_a_graphs_infinite_z_comes_back_as_the_tables_float_and_names_spelt_so_stay_words(tmp_path):
    # 8 copies of one sample: every effect equal across samples, no spread: z = inf (the audit's note says so)
    x = torch.tensor([[1.0, 0.5]]).repeat(8, 1)  # class 0 explained (output 2 > 1); do(nan_i := 0) moves it by 2 x_0 = 2
    result = CausalGraphAudit(["nan", "inf"], top_k=None, stability_resamples=0).run(_named("nan", "inf"), Probe(x))
    path = write_report(tmp_path, 0, "epoch_end", [result])
    entry = load_report(path)["audits"]["causal_graph"]
    graph, rows = entry["graphs"]["causal_graph"], {row["node"]: row for row in entry["tables"]["nodes"]}
    nodes = {n["id"]: n for n in graph["nodes"]}
    assert rows["nan:0"]["effect"] == nodes["nan:0"]["effect"] == 2.0
    assert rows["nan:0"]["z"] == nodes["nan:0"]["z"] == math.inf  # a float, not 'inf'
    assert all(n["z"] == rows[i]["z"] for i, n in nodes.items() if i in rows)
    assert graph["layers"] == ["nan", "inf"] and nodes["inf:0"]["layer"] == "inf"  # names stay words
    assert {(e["source"], e["target"]) for e in graph["edges"]} >= {("nan:0", "inf:0")}
    assert ["graphs", "causal_graph", "nodes", 0, "z"] in entry["non_finite"]
    back = CausalGraph.from_dict(graph)
    assert back.layers == ["nan", "inf"] and back.node_stats["nan:0"]["z"] == math.inf


def test_a_layer_maps_nan_cka_comes_back_as_a_float(tmp_path):
    class ConstantBranch(nn.Module):  # c(1) moves with no input intervention: its CKA with a is undefined
        def __init__(self):
            super().__init__()
            self.a, self.c, self.b = nn.Linear(4, 8), nn.Linear(1, 8), nn.Linear(8, 3)

        def forward(self, x):
            const = self.c(torch.ones(x.shape[0], 1))
            return self.b(torch.relu(self.a(x)) + const)

    torch.manual_seed(0)
    result = LayerMapAudit().run(ConstantBranch().eval(), Probe(torch.randn(8, 4, generator=torch.Generator().manual_seed(0))))
    assert result.graphs["layer_map"]["cka"][0][1] == "nan"  # to_dict's string
    entry = load_report(write_report(tmp_path, 0, "epoch_end", [result]))["audits"]["layer_map"]
    cka = entry["graphs"]["layer_map"]["cka"]
    assert entry["graphs"]["layer_map"]["layers"] == ["c", "a", "b"]
    assert isinstance(cka[0][1], float) and math.isnan(cka[0][1]) and cka[1][1] == pytest.approx(1.0, abs=1e-12)
    assert ["graphs", "layer_map", "cka", 0, 1] in entry["non_finite"]
    assert math.isnan(float(LayerCausalMap.from_dict(entry["graphs"]["layer_map"]).cka[0, 1]))
