"""``CausalGraphAudit`` took no ``class_names=``: on a Conv1d classifier of three named signal classes
(sine, chirp, step) every other figure named the classes while the causal graph's output nodes read
0, 1, 2, and ``CausalGraphAudit(..., class_names=[...])``, as the docs' "pass class_names= to the
audits" invites, was a TypeError. The graph's output nodes are now labelled with the names (beside
each node; the node ids ``output:<c>`` of the tables and reports are unchanged), and a list of the
wrong length is refused naming the parameter."""

from __future__ import annotations

import pytest
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from torch import nn

from lightning_causal.audits import CausalGraphAudit, Probe
from lightning_causal.reporting.graph_figures import graph_figure


def _model_and_probe():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3)).eval()
    return model, Probe(torch.randn(60, 4))


def test_output_nodes_are_labelled_with_the_class_names():
    model, probe = _model_and_probe()
    names = ["sine burst", "chirp", "step"]
    r = CausalGraphAudit(["1"], stability_resamples=0, class_names=names).run(model, probe)
    graph = r.graphs["causal_graph"]
    outputs = [n for n in graph["nodes"] if n["layer"] == "output"]
    assert len(outputs) >= 2 and {n["id"] for n in outputs} <= {"output:0", "output:1", "output:2"}  # ids unchanged
    assert graph["meta"]["class_names"] == names
    fig = graph_figure(graph)
    texts = [t.get_text() for t in fig.axes[0].texts]
    plain = CausalGraphAudit(["1"], stability_resamples=0).run(model, probe).graphs["causal_graph"]
    assert "class_names" not in plain["meta"]
    before = [t.get_text() for t in graph_figure(plain).axes[0].texts]
    assert sorted(set(texts) - set(before)) == sorted(names[n["unit"]] for n in outputs)  # the names, nothing else
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    width = fig.get_figwidth() * fig.dpi
    for t in fig.axes[0].texts:  # the names fit in the figure
        box = t.get_window_extent(canvas.get_renderer())
        assert 0 <= box.x0 and box.x1 <= width, t.get_text()


def test_class_names_are_checked():
    model, probe = _model_and_probe()
    with pytest.raises(TypeError, match="class_names"):
        CausalGraphAudit(["1"], class_names="sine")
    with pytest.raises(ValueError, match=r"`class_names` to hold one name per class \(3\) but got 2"):
        CausalGraphAudit(["1"], stability_resamples=0, class_names=["a", "b"]).run(model, probe)
