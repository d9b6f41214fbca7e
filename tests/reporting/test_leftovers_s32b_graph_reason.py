"""A causal graph of nodes and no edges said why on the text card and in the report (``CausalGraphAudit``'s note), but
its figure showed the nodes with no word of why (leftovers_s32b). The figure now writes the note's words in a strip
under its legend, inside the figure's width, the drawing above as large as without it."""

from __future__ import annotations

import warnings

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from torch import nn

from lightning_causal import CausalGraphAudit
from lightning_causal.audits import Probe
from lightning_causal.reporting.graph_figures import graph_figure


def _graph(samples: int, **options) -> tuple[dict, list[str]]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 10)).eval()
    x = torch.randn(samples, 16, generator=torch.Generator().manual_seed(1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = CausalGraphAudit(["1"], stability_resamples=0, **options).run(model, Probe(x))
    return result.graphs["causal_graph"], [n for n in result.meta.get("notes", []) if "no edges" in n]


def _texts(fig) -> list:
    return [t for t in fig.texts if t.get_text().startswith("Why no edges: ")]


def test_the_figure_of_a_graph_without_edges_says_why_in_the_notes_words() -> None:
    graph, notes = _graph(6, target=0)
    assert not graph["edges"] and len(notes) == 1
    fig = graph_figure(graph)
    (text,) = _texts(fig)
    assert text.get_text().replace("\n", " ") == f"Why no edges: {notes[0]}"
    FigureCanvasAgg(fig).draw()
    box, width = text.get_window_extent(), fig.bbox.width
    assert box.x0 >= 0 and box.x1 <= width and box.y0 >= 0  # whole inside the figure
    plain = graph_figure({**graph, "meta": {k: v for k, v in graph["meta"].items() if k != "no_edges"}})
    assert not _texts(plain)
    drawn = [f.axes[0].get_position().height * f.get_size_inches()[1] for f in (fig, plain)]
    assert abs(drawn[0] - drawn[1]) < 1e-6  # the drawing as large as without the reason


def test_a_graph_with_edges_has_no_reason_on_its_figure() -> None:
    graph, notes = _graph(128)
    assert graph["edges"] and not notes and "no_edges" not in graph["meta"]
    assert not _texts(graph_figure(graph))
