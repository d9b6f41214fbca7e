"""What a TensorBoard user sees for inputs that are not 8x8 digits (trial "tb": 32x32 RGB, 28x28
grey, 1-D signals [N, 1, 200], 30 named columns, 64 tokens)."""

from __future__ import annotations

import torch

from lightning_causal.reporting.figure_kinds import MapData, map_figures


def test_a_signals_unsigned_map_is_drawn_from_zero_and_a_signed_one_symmetric():
    """One channel [N, 1, T]: each map's bars were drawn on a symmetric axis, so Saliency (|gradient|)
    and a total Sobol' index spent half their panel on negative values that cannot occur, with
    negative ticks; the heatmaps of several channels already start such maps at 0."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 1, 200, generator=g)
    causal = torch.randn(2, 1, 200, generator=g)
    saliency = causal.abs() * 0.5
    [(_, fig), (_, saliency_fig)] = map_figures(MapData(x, {"causal": causal, "Saliency": saliency}, "cb", {"targets": [0, 0]}, None, 1))
    signed, unsigned = fig.axes[1], saliency_fig.axes[1]  # one figure per map: the input axis, then the map's twin
    assert signed.get_ylabel() == "causal" and unsigned.get_ylabel() == "Saliency"
    peak = float(causal[:1].abs().max())
    assert signed.get_ylim() == (-peak, peak)
    assert unsigned.get_ylim() == (0.0, float(saliency[:1].max()))
    assert min(p.get_height() for p in unsigned.patches) >= 0.0


def test_a_univariate_signals_counterfactual_is_drawn_as_lines_not_a_one_pixel_strip():
    """CounterfactualAudit on signals [N, 1, 200] gave panels [K, 1, 1, 200], drawn as images one
    pixel high stretched to each cell: grey barcodes in which the input's shape and the change could
    not be read. Each cell is now the signal as a line along T (the counterfactual over the input),
    the difference as bars of its signed value."""
    from lightning_causal.audits.counterfactual import _triptych, split_triptych
    from lightning_causal.reporting.figures import counterfactual_figure

    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 1, 200, generator=g)
    cf = x.clone()
    cf[:, 0, 50] += 2.0
    cf[:, 0, 120] -= 1.0
    panels = split_triptych(_triptych(x, cf))
    assert panels["input"].shape == (2, 1, 1, 200)
    fig = counterfactual_figure(panels, ["label 1 → pred 0\n→ cf 1 ✓"] * 2)
    cells = [ax for ax in fig.axes if ax.get_label() != "<colorbar>"]
    assert len(cells) == 6 and not any(ax.images for ax in cells)
    by_row = {ax.get_subplotspec().rowspan.start: [] for ax in cells}
    for ax in cells:
        by_row[ax.get_subplotspec().rowspan.start].append(ax)
    (inputs, counterfactuals, differences) = (by_row[0], by_row[1], by_row[2])
    for k in range(2):
        assert inputs[k].lines[-1].get_ydata().tolist() == panels["input"][k, 0, 0].tolist()
        assert counterfactuals[k].lines[-1].get_ydata().tolist() == panels["counterfactual"][k, 0, 0].tolist()
        heights = [p.get_height() for p in differences[k].patches]
        assert heights == panels["difference"][k, 0, 0].tolist()
        assert heights[50] == 1.0 and heights[120] == -0.5 and sum(h != 0 for h in heights) == 2


def _sobol_maps(x: torch.Tensor, **options):
    from lightning_causal.audits import Probe, SobolAudit

    weights = torch.zeros(x.shape[1:])
    weights.view(-1)[: weights.numel() // 4] = 4.0 / weights.numel()  # the first quarter of the elements decides

    class Model(torch.nn.Module):
        def forward(self, z):
            s = ((z - 0.5) * weights).flatten(1).sum(1)
            return torch.stack([s, -s + 2.0 * z.flatten(1)[:, -1] * z.flatten(1)[:, 0]], 1)  # an interaction

    r = SobolAudit(n=64, n_bootstrap=0, **options).run(Model(), Probe(x))
    return r, map_figures(MapData(x, dict(r.maps), r.audit, r.meta, None, 1))


def test_sobol_first_and_total_maps_share_one_colour_scale():
    """Sobol' maps beside each other (32x32 RGB patches; a signal [N, 1, 200] in windows): each was
    drawn on its own colour scale, so a first-order index of 0.22 was as dark as a total index of
    0.38 and the panels could not be compared, though both are shares of the output variance."""
    g = torch.Generator().manual_seed(0)
    image, = _sobol_maps(torch.rand(32, 3, 32, 32, generator=g), patch_size=8)[1]
    panels = [ax for ax in image[1].axes if ax.images][1:]  # input, total, first (colour bars have no images)
    [total], [first] = (p.images for p in panels)
    assert total.get_clim()[1] == first.get_clim()[1]
    # the largest value of either map (an estimated first-order index can exceed its total index: it did on torch 2.3)
    assert total.get_clim()[1] == max(float(torch.tensor(m.get_array()).abs().max()) for m in (total, first))
    assert total.get_clim()[0] == 0.0  # unsigned total: from 0
    windows = (torch.arange(200) // 20).reshape(1, 1, 200)
    r, signals = _sobol_maps(torch.randn(32, 1, 200, generator=g), feature_mask=windows)
    twins = [signal.axes[1] for _, signal in signals]  # one figure per map: the input axis, then the map's twin
    top = max(float(r.vectors["total"].abs().max()), float(r.vectors["first"].abs().max()))
    assert [t.get_ylabel() for t in twins] == ["total", "first"]
    assert [t.get_ylim()[1] for t in twins] == [top, top]


def test_a_graph_layer_without_kept_units_says_so():
    """A 1-D signal CNN's causal graph kept 3 units of model.3 and none of model.0: the figure drew
    the column title 'model.0' over an empty column, with nothing to say the layer was audited and
    none of its units entered the graph."""
    from lightning_causal.reporting.graph_figures import graph_figure

    graph = {"layers": ["model.0", "model.3"], "meta": {"faithfulness": 0.11},
             "nodes": [{"id": "model.3:4", "layer": "model.3", "unit": 4, "effect": 0.04},
                       {"id": "output:0", "layer": "output", "unit": 0, "samples": 8}],
             "edges": [{"source": "model.3:4", "target": "output:0", "weight": 1.0, "effect": 0.04}]}
    ax = graph_figure(graph).axes[0]
    notes = [t for t in ax.texts if "no unit" in t.get_text()]
    assert len(notes) == 1 and notes[0].get_position()[0] == 0  # under model.0's column only


def test_token_strips_share_one_colour_scale_across_the_drawn_sentences():
    """T=64 token strips were coloured on each sentence's own scale: a sentence whose effects were
    all near 0 (largest 0.01) drew its strongest token as dark as a decisive marker (2.0) in
    another sentence. Images and signals share one scale per map across the drawn samples; token
    strips now do too, and say so in the strip's title."""
    from matplotlib import colormaps

    ids = torch.randint(5, 60, (2, 64), generator=torch.Generator().manual_seed(0))
    effect = torch.zeros(2, 64)
    effect[0, 10], effect[1, 20] = 2.0, 0.01
    figs = dict(map_figures(MapData(ids, {"causal": effect}, "ie", {"targets": [1, 1]}), "tokens"))
    weak = figs["maps/sample_1"].axes[0]
    boxes = [t.get_bbox_patch().get_facecolor() for t in weak.texts]
    strongest = boxes[20]
    assert strongest == colormaps["RdBu_r"](0.5 + 0.5 * 0.01 / 2.0)  # pale: 0.5 % of the scale
    assert "max |score| 0.01" in weak.get_title(loc="left") and "±2" in weak.get_title(loc="left")
    strong = figs["maps/sample_0"].axes[0]
    assert strong.texts[10].get_bbox_patch().get_facecolor() == colormaps["RdBu_r"](1.0)
    assert "±" not in strong.get_title(loc="left")  # its own max is the scale


def test_the_counterfactual_difference_colour_bar_says_whose_max_it_is():
    """The difference row is scaled to each sample's own largest change, but its colour bar read
    only '−max / 0 / +max': a column with a change of 0.01 looked as strong as one of 1. The bar
    now says that max is the column's own."""
    from lightning_causal.audits.counterfactual import _triptych, split_triptych
    from lightning_causal.reporting.figures import counterfactual_figure

    x = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    cf = x.clone()
    cf[0, 0, 4, 4] += 1.0
    cf[1, 2, 9, 9] += 0.01
    fig = counterfactual_figure(split_triptych(_triptych(x, cf)), ["a", "b"])
    [bar] = [ax for ax in fig.axes if ax.get_label() == "<colorbar>"]
    assert "column's" in bar.get_ylabel() and "largest change" in bar.get_ylabel()


def test_a_graph_of_one_layer_keeps_its_legend_and_title_inside_the_figure():
    """CausalGraphAudit(["0"]) on a 1-D signal CNN: a graph of one layer has two columns and was
    drawn 3.3 inches wide, so the legend ('positive path effect', ..., 'weak (width ∝ |effect|)')
    and the title ran past both edges of the figure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from lightning_causal.reporting.graph_figures import graph_figure

    nodes = [{"id": f"0:{u}", "layer": "0", "unit": u, "effect": 1.0 - 0.1 * u} for u in range(8)]
    graph = {"layers": ["0"], "meta": {"faithfulness": 0.93},
             "nodes": nodes + [{"id": "output:1", "layer": "output", "unit": 1, "samples": 24}],
             "edges": [{"source": n["id"], "target": "output:1", "weight": 1.0, "effect": n["effect"]} for n in nodes]}
    fig = graph_figure(graph)
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.canvas.draw()
    ax = fig.axes[0]
    for artist in (ax.get_legend(), ax.title):
        box = artist.get_window_extent(renderer)
        assert box.x0 >= 0 and box.x1 <= fig.bbox.width, (artist, box)


def test_maps_of_a_class_score_say_what_red_and_blue_mean():
    """Image heatmaps (32x32 RGB, 28x28 grey) and signal bars of effects and attributions drew red
    and blue with nothing saying which sign raises the explained class (the tabular bars and token
    strips say it); Saliency's red is a size, not a direction. A line below each figure now says."""
    g = torch.Generator().manual_seed(0)
    meta = {"targets": [0, 0]}
    for x in (torch.rand(2, 3, 32, 32, generator=g), torch.rand(2, 1, 28, 28, generator=g), torch.randn(2, 1, 200, generator=g)):
        causal = torch.randn(x.shape, generator=g)
        maps = {"causal": causal, "Saliency": causal.abs()}
        [(_, fig), *_] = map_figures(MapData(x, maps, "cb", meta, None, 1))
        notes = [t.get_text() for t in fig.texts if t is not fig._suptitle]
        both = "red: raises the explained class's score, blue: lowers it"  # a signal: the causal map's own figure
        assert notes == [both + ("; Saliency: size only" if x.dim() == 4 else "")], x.shape
        unsigned = map_figures(MapData(x, {"Saliency": causal.abs()}, "cb", meta, None, 1))[0][1]
        assert [t for t in unsigned.texts if t is not unsigned._suptitle] == []  # nothing signed: no line


def test_the_colour_line_of_a_one_output_model_names_the_output_not_a_class():
    x = torch.randn(2, 1, 200, generator=torch.Generator().manual_seed(0))
    [(_, fig)] = map_figures(MapData(x, {"causal": x.clone()}, "ie", {"targets": [0, 0], "outputs": 1}, None, 1))
    [note] = [t.get_text() for t in fig.texts if t is not fig._suptitle]
    assert note == "red: raises the output, blue: lowers it"
