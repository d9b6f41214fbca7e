"""perf_graph_s36: CausalGraphAudit had no ``unit_names=`` while UnitImportanceAudit names its units (a tabular
transformer's ``[CLS]`` and feature tokens): it takes the same now, validated as there, and shows them in the figure
(left of each node), the text summary (``tokens:3 (age)``), the tables (``name``, ``source_name``, ``target_name``) and
the meta (``graphs["causal_graph"]["meta"]["unit_names"]``, ``meta["unit_names/<layer>"]``)."""

from __future__ import annotations

import math
import warnings

import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from torch import nn

from lightning_causal.audits import CausalGraphAudit, Probe
from lightning_causal.reporting.graph_figures import graph_figure
from lightning_causal.reporting.summary import _tops

NAMES = ["[CLS]", "age", "income", "a_very_long_feature_name_that_goes_on", "sex", "education-num", "capital-gain"]
HIDDEN = [f"neuron {i} of the hidden block" for i in range(6)]  # cut to "neuron 0 of the h…"


class _Tokens(nn.Module):
    """Six numeric columns as tokens after a [CLS] token ([N, 7, 8]: units on dimension 1), an MLP on them."""

    def __init__(self) -> None:
        super().__init__()
        self.emb, self.cls = nn.Linear(1, 8), nn.Parameter(torch.randn(1, 1, 8))
        self.mix, self.tokens = nn.Linear(8, 8), nn.ReLU()
        self.hidden = nn.Sequential(nn.Linear(7 * 8, 6), nn.ReLU())
        self.head = nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = torch.cat([self.cls.expand(x.shape[0], 1, 8), self.emb(x.unsqueeze(-1))], 1)
        return self.head(self.hidden(self.tokens(self.mix(t)).flatten(1)))


def _run(**kwargs):
    torch.manual_seed(0)
    model, x = _Tokens().eval(), torch.randn(96, 6, generator=torch.Generator().manual_seed(1))
    audit = CausalGraphAudit(["tokens", "hidden"], unit_dim={"tokens": 1}, stability_resamples=0, top_k=None, alpha=0.5,
                             **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return audit.run(model, Probe(x))


def test_unit_names_reach_the_tables_the_meta_and_the_text_summary():
    r = _run(unit_names={"tokens": NAMES, "hidden": HIDDEN})
    assert r.graphs["causal_graph"]["meta"]["unit_names"] == {"tokens": NAMES, "hidden": HIDDEN}
    assert r.meta["unit_names/tokens"] == NAMES and r.meta["unit_names/hidden"] == HIDDEN
    assert r.tables["nodes"] and all(row["name"] == {"tokens": NAMES, "hidden": HIDDEN}[row["node"].split(":")[0]][
        int(row["node"].split(":")[1])] for row in r.tables["nodes"])
    for row in r.tables["edges"]:
        assert row["source_name"] == NAMES[int(row["source"][7:])] if row["source"].startswith("tokens:") else True
        assert ("target_name" in row) == (not row["target"].startswith("output:"))
    top = r.tables["nodes"][0]
    assert f"{top['node']} ({top['name']})" in _tops(r)  # the id, then the name: tokens:6 (capital-gain)


def test_names_are_drawn_left_of_their_nodes_clear_of_the_column_before():
    r = _run(unit_names={"tokens": NAMES, "hidden": HIDDEN})
    graph = r.graphs["causal_graph"]
    fig = graph_figure(graph)
    FigureCanvasAgg(fig)
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    circles = []  # (x, y, radius) in pixels
    for c in ax.collections:
        (x, y), = ax.transData.transform(c.get_offsets())
        circles.append((x, y, math.sqrt(c.get_sizes()[0]) / 2 * fig.dpi / 72))
    drawn = {t.get_text(): t.get_window_extent(renderer) for t in ax.texts}
    shown = [n for n in (NAMES + HIDDEN) if (n if len(n) <= 18 else n[:17] + "…") in drawn]
    assert len(shown) == len([n for n in graph["nodes"] if n["layer"] != "output"])  # every unit node's name
    for name in shown:
        box = drawn[name if len(name) <= 18 else name[:17] + "…"]
        row = [c for c in circles if abs(c[1] - (box.y0 + box.y1) / 2) < 2]  # the nodes at its height
        own = min((c for c in row if c[0] > box.x1), key=lambda c: c[0] - box.x1)  # the next node to its right
        assert box.x1 <= own[0] - own[2]  # left of its node's circle
        assert all(c[0] + c[2] <= box.x0 for c in circles if c[0] < own[0] - 1)  # right of every node of the column before


def test_unit_names_are_checked_as_unit_importances_are():
    with pytest.raises(TypeError, match="unit_names"):
        CausalGraphAudit(["tokens"], unit_names=["age"])
    with pytest.raises(ValueError, match="layers of the audit"):
        CausalGraphAudit(["tokens"], unit_names={"hidden": ["a"]})
    with pytest.raises(TypeError, match=r"unit_names\['tokens'\]"):
        CausalGraphAudit(["tokens"], unit_names={"tokens": "age"})
    with pytest.raises(ValueError, match=r"one name per unit of layer 'tokens', 7 \(unit_dim=1, num_heads=None\), but got 2"):
        _run(unit_names={"tokens": ["[CLS]", "age"]})
