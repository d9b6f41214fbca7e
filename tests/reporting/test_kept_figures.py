"""kept_figures: the one store of figures kept to be drawn again (heatmap rows, video frames, a signal's bars, the
counterfactual grid). What it gives back: a figure drawn since it was kept, of the key and matplotlib style asked
for, titled anew where its title keeps its height, its layout put back to where it was kept."""

from __future__ import annotations

import matplotlib
import numpy as np
import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from lightning_causal.reporting.image_figures import heatmap_row
from lightning_causal.reporting.kept_figures import keep_figure, kept_figure, style_key
from lightning_causal.reporting.tensorboard import figure_image


def _drawn(layout: str | None = None) -> Figure:
    fig = Figure(figsize=(3, 2), layout=layout)
    fig.subplots(1, 2)
    return fig


def test_a_figure_is_taken_under_its_key_and_style_once_drawn():
    store: dict = {}
    fig = _drawn()
    kept = keep_figure(store, "row", fig, fig.suptitle("one line"), fig.axes)
    assert kept_figure(store, "row", ["other"]) is None  # not drawn since it was kept
    FigureCanvasAgg(fig).draw()
    assert kept_figure(store, "another row", ["other"]) is None
    assert kept_figure(None, "row", ["other"]) is None
    with matplotlib.rc_context({"font.size": 30}):
        assert kept_figure(store, "row", ["other"]) is None  # another style: built afresh
    assert kept_figure(store, "row", ["other"]) is kept and kept.title.get_text() == "other"
    assert kept_figure(store, "row", ["again"]) is None  # retitled: stale until drawn again
    FigureCanvasAgg(fig).draw()
    assert kept_figure(store, "row", ["two", "lines"]) is None  # another title height: another layout
    assert kept.title.get_text() == "other"


def test_the_style_key_ignores_what_no_figure_reads():
    before = style_key()
    with matplotlib.rc_context({"savefig.dpi": 17, "keymap.quit": ["x"]}):
        assert style_key() == before
    with matplotlib.rc_context({"axes.edgecolor": "green"}):
        assert style_key() != before


def test_alone_forgets_the_other_figures():
    store: dict = {}
    keep_figure(store, "a", _drawn(), None, None)
    keep_figure(store, "b", _drawn(), None, None, alone=True)
    assert [key for _, key, _ in store] == ["b"]


def test_figures_of_an_earlier_style_are_let_go():
    # a style changed every audit epoch must not keep every epoch's figures; other entries of the store (a heatmap
    # row's subplot parameters) stay
    store: dict = {("shapes",): {"left": 0.1}}
    keep_figure(store, "a", _drawn(), None, None)
    keep_figure(store, "b", _drawn(), None, None)
    with matplotlib.rc_context({"axes.edgecolor": "green"}):
        keep_figure(store, "a", _drawn(), None, None)
        assert sorted(key[1] for key in store if key[0] == "figure") == ["a"] and ("shapes",) in store


def test_a_constrained_figure_is_put_back_where_it_was_kept_and_stays_in_its_layout():
    store: dict = {}
    fig = _drawn("constrained")
    built = [ax.get_position(original=True).bounds for ax in fig.axes]
    keep_figure(store, "grid", fig, None, fig.axes)
    FigureCanvasAgg(fig).draw()  # the constrained layout moves the axes
    moved = [ax.get_position(original=True).bounds for ax in fig.axes]
    kept = kept_figure(store, "grid", [])
    assert moved != built and [ax.get_position(original=True).bounds for ax in kept.figure.axes] == built
    assert all(ax.get_in_layout() for ax in fig.axes)  # Axes.set_position takes an axes out of the layout: put back


def test_a_figure_laid_out_by_subplot_parameters_gets_those_it_was_kept_with():
    store: dict = {}
    fig = _drawn()
    keep_figure(store, "row", fig, None, fig.axes)
    fig.subplots_adjust(left=0.3, wspace=0.5)
    FigureCanvasAgg(fig).draw()
    kept_figure(store, "row", [])
    assert (fig.subplotpars.left, fig.subplotpars.wspace) == (matplotlib.rcParams["figure.subplot.left"],
                                                              matplotlib.rcParams["figure.subplot.wspace"])


def test_a_heatmap_rows_layout_kept_under_one_style_is_not_given_to_another():
    # heatmap_row's shared layout keeps each row's subplot parameters for the next row of the same panels: under a
    # style whose tick labels stand further from the colour bars, those of the earlier style cut them
    g = torch.Generator().manual_seed(0)
    rows = [(torch.rand(1, 8, 8, generator=g), {"causal": torch.randn(1, 8, 8, generator=g)}) for _ in range(2)]
    rows[1][1]["causal"] *= float(rows[0][1]["causal"].abs().max() / rows[1][1]["causal"].abs().max())  # same limits
    layout: dict = {}
    figure_image(heatmap_row(*rows[0], title="row", layout=layout))
    with matplotlib.rc_context({"ytick.major.pad": 14.0}):
        shared = figure_image(heatmap_row(*rows[1], title="row", layout=layout))
        own = figure_image(heatmap_row(*rows[1], title="row"))
    assert np.array_equal(shared, own)
