"""The figure kind is chosen from the input's shape (overridable), and each kind draws what it says:
heatmaps titled with the explained class, the input's line with the effect overlaid, bars of the
top features in the causal order beside each Captum method, tokens coloured by effect, labelled
trigger grids."""

from __future__ import annotations

import pytest
import torch

from lightning_causal.audits.base import AuditResult
from lightning_causal.reporting.figure_kinds import MapData, infer_kind, map_figures
from lightning_causal.reporting.tensorboard import TensorBoardRenderer


@pytest.mark.parametrize(
    ("shape", "dtype", "kind"),
    [
        ((6, 1, 8, 8), torch.float32, "image"),
        ((6, 3, 32, 32), torch.float32, "image"),
        ((6, 28, 28), torch.float32, "image"),
        ((6, 1, 100), torch.float32, "sequence"),
        ((6, 12, 200), torch.float32, "sequence"),
        ((6, 40, 2), torch.float32, "sequence"),  # [N, T, F]: a batch_first recurrent layer's input (was an image 40x2)
        ((6, 200, 12), torch.float32, "sequence"),
        ((6, 8, 8), torch.float32, "image"),
        ((6, 14), torch.float32, "tabular"),
        ((6, 14), torch.long, "tokens"),
        ((6, 14), torch.bool, "tabular"),  # a bool mask [N, F]: its columns, not a token strip (was "tokens")
        ((6, 14), torch.complex64, "tabular"),  # complex values (a spectrum): no token ids either
        ((6, 1, 8, 8), torch.bool, "image"),
        ((6, 1, 4, 8, 8), torch.float32, "image"),  # [N, C, D, H, W]: a volume (Conv3d), drawn by depth slice
        ((6,), torch.float32, "tabular"),  # one value per sample: a column (newuser45: [N] read as [N, 1])
        ((6,), torch.int64, "tokens"),  # a user id per sample
        ((6, 1, 2, 3, 4, 5), torch.float32, None),
    ],
)
def test_kind_from_the_input_shape(shape, dtype, kind):
    assert infer_kind(torch.zeros(shape, dtype=dtype)) == kind


class Writer:
    """Records image tags and the figures' texts instead of writing event files."""

    def __init__(self):
        self.images: dict[str, object] = {}
        self.steps: set[int] = set()

    def add_image(self, tag, img, step, dataformats="CHW"):  # noqa: ANN001
        self.images[tag] = img
        self.steps.add(step)

    def __getattr__(self, name):  # histograms, text, layout, flush: recorded by step only
        return lambda tag=None, value=None, step=None, *a, **k: self.steps.add(step) if isinstance(step, int) else None


def _tags(result: AuditResult, inputs: torch.Tensor, kind: str | None = None) -> list[str]:
    writer = Writer()
    TensorBoardRenderer(figure_kind=kind).render(writer, 0, [result], inputs, step=7)
    assert writer.steps == {7}
    return sorted(t for t in writer.images if "/maps/" in t)


@pytest.mark.parametrize(
    ("inputs", "kind", "expected"),
    [
        (torch.rand(6, 1, 8, 8), None, [f"causal/a/maps/sample_{i}" for i in range(4)]),
        (torch.rand(6, 1, 64), None, [f"causal/a/maps/sample_{i}/{m}" for i in range(4) for m in ("Saliency", "causal")]),
        (torch.rand(6, 9), None, ["causal/a/maps/top_features"]),
        (torch.randint(0, 50, (6, 9)), None, [f"causal/a/maps/sample_{i}" for i in range(4)]),
        (torch.rand(6, 9) > 0.5, None, ["causal/a/maps/top_features"]),  # a bool mask: bars of its columns, no token strips
        (torch.rand(6, 9), "sequence", [f"causal/a/maps/sample_{i}/{m}" for i in range(4) for m in ("Saliency", "causal")]),
        (torch.rand(6, 1, 8, 8), "tabular", ["causal/a/maps/top_features"]),
    ],
)
def test_renderer_draws_the_kind_of_the_input_or_the_override(inputs, kind, expected):
    maps = {"causal": torch.randn(inputs.shape), "Saliency": torch.randn(inputs.shape)}
    assert _tags(AuditResult("a", maps=maps), inputs, kind) == expected


def test_image_title_names_the_explained_class_and_label():
    data = MapData(torch.rand(3, 1, 8, 8), {"causal": torch.randn(3, 1, 8, 8)}, "ie",
                   {"targets": [2, 0, 1], "class_names": ["zero", "one", "two"]}, torch.tensor([2, 1, 1]))
    (tag, fig), *_ = map_figures(data)
    assert tag == "maps/sample_0" and fig._suptitle.get_text() == "ie, sample 0 (label 'two'): explains class 'two'"


def test_sequence_figure_draws_the_input_line_and_overlays_the_effect():
    x = torch.linspace(0, 1, 40).reshape(1, 1, 40).repeat(2, 1, 1)
    effect = torch.zeros(2, 1, 40)
    effect[:, :, 10] = 3.0
    (_, fig), _ = map_figures(MapData(x, {"causal": effect}, "ie", {"targets": [1, 1]}))
    ax, twin = fig.axes[0], fig.axes[1]
    assert ax.lines[0].get_ydata().tolist() == pytest.approx(x[0, 0].tolist())
    heights = [p.get_height() for p in twin.patches]
    assert heights[10] == 3.0 and sum(abs(h) for h in heights) == 3.0
    assert ax.get_ylabel() == "input" and twin.get_ylabel() == "causal" and ax.get_xlabel() == "step"


def test_a_features_last_sequence_draws_each_feature_as_a_row_of_the_map():
    """[N, T, F]: the input's features as lines along T, then each map as an [F, T] heatmap on one
    symmetric scale (the map was drawn as bars of its mean over the features: an effect of 4 on
    feature 1 read 2 on no feature, and effects of opposite sign cancelled); a map without negative
    values is drawn from 0."""
    x = torch.stack([torch.linspace(0, 1, 40), torch.linspace(1, 0, 40)], 1).repeat(2, 1, 1)  # [N=2, T=40, F=2]
    effect = torch.zeros(2, 40, 2)
    effect[:, 10, 1] = 4.0
    effect[:, 10, 0] = -4.0  # opposite signs at one step: their mean is 0
    (_, fig), (_, saliency_fig), *_ = map_figures(MapData(x, {"causal": effect, "Saliency": effect.abs()}, "ie", {"targets": [1, 1]}))
    ax, heat = fig.axes[:2]
    unsigned = saliency_fig.axes[1]  # one figure per map (sequence_maps)
    assert ax.lines[0].get_ydata().tolist() == pytest.approx(x[0, :, 0].tolist())
    assert ax.lines[1].get_ydata().tolist() == pytest.approx(x[0, :, 1].tolist())
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["feature 0", "feature 1"]
    [img] = heat.images
    assert img.get_array().shape == (2, 40) and img.get_array()[1, 10] == 4.0 and img.get_array()[0, 10] == -4.0
    assert float(abs(img.get_array()).sum()) == 8.0 and img.get_clim() == (-4.0, 4.0)
    assert unsigned.images[0].get_clim() == (0.0, 4.0)
    assert unsigned.get_xlabel() == "time step" and heat.get_ylabel() == "feature" and heat.get_title(loc="left") == "causal"


def test_a_single_channel_keeps_its_line_with_the_map_as_bars():
    x = torch.linspace(0, 1, 40).reshape(1, 40, 1).repeat(2, 1, 1)  # [N, T, F=1]
    effect = torch.zeros(2, 40, 1)
    effect[:, 10, 0] = -3.0
    [(_, fig)] = map_figures(MapData(x, {"causal": effect}, "ie", {}, None, max_samples=1))
    ax, twin = fig.axes
    assert [p.get_height() for p in twin.patches][10] == -3.0 and ax.get_xlabel() == "time step"


def test_tabular_bars_rank_features_by_causal_effect_beside_each_method():
    """Bars are the mean |score| per feature (relative to each explanation's largest), top causal
    feature on top, causal beside each method, labelled with the feature names; grouped columns
    are drawn once per group; one map alone is drawn in its own units, coloured by sign."""
    x = torch.rand(4, 5)
    causal = torch.tensor([[0.0, 3.0, 3.0, -1.0, 0.5]]).repeat(4, 1)  # columns 1 and 2 form one group
    other = torch.tensor([[2.0, 0.0, 0.0, 1.0, 0.0]]).repeat(4, 1)
    meta = {"feature_names": ["age", "income", "hours", "tenure"], "feature_groups": [0, 1, 1, 2, 3], "targets": [1] * 4,
            "class_names": ["no", "yes"]}
    [(tag, fig)] = map_figures(MapData(x, {"causal": causal, "IG": other}, "cb", meta))
    assert tag == "maps/top_features"
    [ax] = fig.axes
    assert [t.get_text() for t in ax.get_xticklabels()] == ["income", "hours", "tenure", "age"]  # causal order
    heights = [p.get_height() for p in ax.patches]
    assert heights[:4] == pytest.approx([1.0, 1 / 3, 0.5 / 3, 0.0])  # causal, relative to its largest
    assert heights[4:] == pytest.approx([0.0, 0.5, 0.0, 1.0])  # IG in the causal order
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["causal", "IG"]
    assert "class 'yes'" in fig._suptitle.get_text()
    # each sample's predicted class: coloured by the sign of the mean effect (one class for all samples is
    # coloured by each column's direction: test_trial_newuser5_tabular_direction.py)
    [(_, alone)] = map_figures(MapData(x, {"effect": causal}, "ie", {**meta, "targets": [1, 0, 1, 1]}))
    bars = alone.axes[0].patches
    assert [t.get_text() for t in alone.axes[0].get_yticklabels()] == ["age", "tenure", "hours", "income"]  # bottom-up
    assert [b.get_width() for b in bars] == pytest.approx([0.0, 0.5, 1.0, 3.0])
    assert [b.get_facecolor()[0] > b.get_facecolor()[2] for b in bars] == [True, True, False, True]  # hours: negative


def test_token_strips_show_each_token_coloured_by_effect():
    ids = torch.tensor([[3, 1, 4, 1, 5]])
    effect = torch.tensor([[0.0, 0.0, 2.0, 0.0, -2.0]])
    [(_, fig)] = map_figures(MapData(ids, {"causal": effect}, "ie", {"vocabulary": ["a", "b", "c", "d", "e", "f"]}))
    texts = [t for t in fig.axes[0].texts]
    assert [t.get_text() for t in texts] == ["d", "b", "e", "b", "f"]
    red, blue = texts[2].get_bbox_patch().get_facecolor(), texts[4].get_bbox_patch().get_facecolor()
    assert red[0] > red[2] and blue[2] > blue[0]  # positive red, negative blue


def test_token_strips_leave_out_trailing_padding_and_wrap_without_overlap():
    vocab = ["[PAD]", "a", "bb", "ccccccccc"]
    padded = torch.tensor([[1, 2, 3, 0, 0]])
    [(_, fig)] = map_figures(MapData(padded, {"causal": torch.tensor([[1.0, -1.0, 0.5, 0.0, 0.0]])}, "ie", {"vocabulary": vocab}))
    assert [t.get_text() for t in fig.axes[0].texts] == ["a", "bb", "ccccccccc"]  # zero-score trailing [PAD]s dropped
    scored = torch.tensor([[1.0, -1.0, 0.5, 0.0, 0.25]])  # a scored last position is not padding
    [(_, fig)] = map_figures(MapData(padded, {"causal": scored}, "ie", {"vocabulary": vocab}))
    assert len(fig.axes[0].texts) == 5
    long = torch.full((1, 20), 3)  # 20 words of 9 characters: 200 characters, wrapped at 56
    [(_, fig)] = map_figures(MapData(long, {"causal": torch.ones(1, 20)}, "ie", {"vocabulary": vocab}))
    pos = [t.get_position() for t in fig.axes[0].texts]
    rows = sorted({round(y, 6) for _, y in pos}, reverse=True)
    assert len(rows) == 4  # 6 + 6 + 6 + 2 words of 10 columns each (word and space) per 56-column line
    for y in rows:
        xs = sorted(x for x, yy in pos if round(yy, 6) == y)
        assert all(b - a >= 10 / 56 - 1e-9 for a, b in zip(xs, xs[1:])) and xs[-1] + 9 / 56 <= 1.0 + 1e-9


def test_backdoor_images_are_upscaled_labelled_grids():
    masks = torch.rand(3, 1, 8, 8)
    r = AuditResult("backdoor", images={"reversed_masks": masks, "reversed_patterns": masks, "reversed_triggers": masks},
                    vectors={"anomaly_index": torch.tensor([0.5, 3.2, 0.1])},
                    meta={"image_labels": {k: ["cat", "dog", "eel"] for k in ("reversed_masks", "reversed_patterns", "reversed_triggers")},
                          "flagged": [1]})
    writer = Writer()
    TensorBoardRenderer().render(writer, 0, [r], None)
    img = writer.images["causal/backdoor/images/reversed"]
    assert img.shape[0] >= 250 and img.shape[1] >= 250  # upscaled from 8x8 pixels
    from lightning_causal.reporting.figures import image_grid_figure
    from lightning_causal.reporting.tensorboard import _with_anomaly

    assert _with_anomaly(["cat", "dog", "eel"], r) == ["cat\nAI 0.5", "dog\nAI 3.2", "eel\nAI 0.1"]  # the index rule
    r.vectors["flag_score"], r.meta["max_ratio"] = torch.tensor([0.9, 0.31, 1.2]), 0.75
    assert _with_anomaly(["cat", "dog", "eel"], r) == ["cat\ns 0.90", "dog\ns 0.31", "eel\ns 1.20"]  # the ratio rule's score
    fig = image_grid_figure({"mask": masks}, ["cat", "dog\nAI 3.2", "eel"], highlight=[1])
    assert [ax.get_title() for ax in fig.axes] == ["cat", "dog\nAI 3.2", "eel"]
    assert fig.axes[1].title.get_color() == "tab:red"


def test_unit_bars_call_heads_and_neurons_by_name(monkeypatch):
    import lightning_causal.reporting.tensorboard as tb
    from lightning_causal.audits import Probe, UnitImportanceAudit

    calls = {}
    real = tb.bar_figure
    monkeypatch.setattr(tb, "bar_figure", lambda v, title, *a, **k: calls.update({title: k}) or real(v, title, *a, **k))
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    probe = Probe(torch.rand(5, 3))
    results = [UnitImportanceAudit(["1"], num_heads=2, name="heads").run(model, probe),
               UnitImportanceAudit(["1"], unit_dim=-1, name="neurons").run(model, probe),
               UnitImportanceAudit(["1"], name="units").run(model, probe)]
    TensorBoardRenderer().render(Writer(), 0, results, None)
    assert [(calls[f"{n}: 1"]["item_label"], calls[f"{n}: 1"]["value_label"]) for n in ("heads", "neurons", "units")] == [
        ("head", "mean |effect| of\ndo(head := 0)"), ("neuron", "mean |effect| of\ndo(neuron := 0)"),
        ("unit", "mean |effect| of\ndo(unit := 0)")]


def test_long_feature_names_leave_the_titles_labels_and_bars_inside_the_figure():
    # 50-character names: the 520-pixel figures kept them whole, so titles ran off the right edge
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from lightning_causal.reporting.figures import interval_bar_figure

    names = [f"very_long_feature_name_number_{i:02d}_monthly_average_balance" for i in range(6)]
    x, effect = torch.rand(4, 6), torch.rand(4, 6)
    meta = {"feature_names": names, "targets": [1] * 4, "class_names": ["rejected_application", "accepted_application"]}
    [(_, bars)] = map_figures(MapData(x, {"causal": effect}, "input_effect", meta))
    rows = [{"group": n, "S": 0.1, "S_ci": [0.0, 0.2], "ST": 0.2, "ST_ci": [0.1, 0.3]} for n in names]
    sobol = interval_bar_figure(rows, "sobol: indices of P(class 'accepted_application_class')")
    for fig in (bars, sobol):
        canvas = FigureCanvasAgg(fig)
        canvas.draw()
        width = fig.get_figwidth() * fig.dpi
        ax = fig.axes[0]
        low, high = ax.get_xlim()
        shown = [t for t in ax.get_xticklabels() if low <= t.get_position()[0] <= high]  # ticks off the axis are not drawn
        texts = [fig._suptitle, *ax.get_yticklabels(), *shown, ax.xaxis.label]
        for t in texts:
            box = t.get_window_extent(canvas.get_renderer())
            assert 0 <= box.x0 and box.x1 <= width, t.get_text()
        assert fig.axes[0].get_window_extent().width > 0.35 * width  # room left for the bars
    labels = [t.get_text() for t in sobol.axes[0].get_yticklabels()]
    assert all(label.startswith(f"…{i}_monthly") for i, label in enumerate(labels))  # cut where the names differ


@pytest.mark.parametrize(("exact", "ylabel"), [([3, 5], "mean |effect| of do(unit)"),
                                               ([], "mean |effect| of do(unit)\n(first-order estimate)")])
def test_unit_bars_mark_first_order_estimates(monkeypatch, exact, ylabel):
    # a screen's unscreened units (and every unit with method="attribution") were drawn like exact effects
    import lightning_causal.reporting.tensorboard as tb

    figures = {}
    monkeypatch.setattr(tb.TensorBoardRenderer, "_figure", staticmethod(lambda writer, tag, fig, step: figures.update({tag: fig})))
    importance = torch.tensor([0.5, 0.1, 0.0, 0.9, 0.3, 0.7])
    r = AuditResult("ui", vectors={"importance/conv": importance}, meta={"exact_units/conv": exact})
    TensorBoardRenderer().render(Writer(), 0, [r], None)
    ax = figures["causal/ui/bars/importance/conv"].axes[0]
    drawn = [int(t.get_text()) for t in ax.get_xticklabels()]
    assert drawn == [3, 5, 0, 4, 1, 2]
    assert [p.get_hatch() == "///" for p in ax.patches] == [u not in exact for u in drawn]
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == (["exact (2 of 6 units)", "first-order estimate"] if exact else ["first-order estimate"])
    assert ax.get_ylabel() == ylabel
    exact_only = AuditResult("ui", vectors={"importance/conv": importance})  # no screen: no legend, no hatch
    TensorBoardRenderer().render(Writer(), 0, [exact_only], None)
    ax = figures["causal/ui/bars/importance/conv"].axes[0]
    assert ax.get_legend() is None and {p.get_hatch() for p in ax.patches} == {None}


@pytest.mark.parametrize("kind", [None, "image"])
def test_volumes_are_drawn_at_the_depth_slice_of_largest_effect(kind):
    # [N, C, D, H, W] (Conv3d) maps were left out silently, and figure_kind="image" crashed the fit in imshow
    x = torch.rand(3, 1, 4, 8, 8)
    causal = torch.zeros(3, 1, 4, 8, 8)
    causal[:, :, 2, 3, 3] = 1.0
    causal[1, :, 2] = 0.0
    causal[1, :, 1, 5, 5] = -2.0  # sample 1: its largest effect in slice 1
    maps = {"causal": causal, "Saliency": torch.rand(3, 1, 4, 8, 8)}
    assert _tags(AuditResult("a", maps=maps), x, kind) == [f"causal/a/maps/sample_{i}" for i in range(3)]
    figures = map_figures(MapData(x, maps, "ie", {"targets": [2, 0, 1]}), kind)
    for i, d in ((0, 2), (1, 1)):
        fig = figures[i][1]
        assert fig._suptitle.get_text().endswith(f"depth slice {d} of 0–3 (largest mean |causal|)")
        assert torch.allclose(torch.as_tensor(fig.axes[0].get_images()[0].get_array()), x[i, 0, d])
        assert fig.axes[1].get_images()[0].get_array().tolist() == causal[i, 0, d].tolist()


def test_inputs_a_kind_cannot_draw_are_skipped_with_one_warning():
    x = torch.rand(4, 1, 2, 3, 4, 4)  # 6-D: no kind draws it
    r = AuditResult("a", maps={"causal": torch.randn(x.shape)})
    renderer, writer = TensorBoardRenderer(figure_kind="image"), Writer()
    with pytest.warns(UserWarning, match=r"not drawn.*'image' draws inputs .* shape \[4, 1, 2, 3, 4, 4\]"):
        renderer.render(writer, 0, [r], x)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        renderer.render(writer, 1, [r], x)  # once per renderer
    assert not [t for t in writer.images if "/maps/" in t]
    with pytest.warns(UserWarning, match=r"no figure kind recognised for inputs of shape \[4, 1, 2, 3, 4, 4\]"):
        TensorBoardRenderer().render(Writer(), 0, [r], x)


def test_token_strips_leave_out_left_padding_and_cut_one_long_word():
    """GPT-2 / Llama batches are padded on the left: 15 [PAD] boxes were drawn before a 6-word
    sentence; a 90-character token ran off the figure and squeezed the other lines together."""
    vocab = ["[PAD]", "[CLS]", "good", "film", "https://example.com/" + "x" * 70, "bad"]
    ids = torch.tensor([[0, 0, 0, 1, 2, 3], [1, 4, 5, 0, 0, 0]])
    effect = torch.tensor([[0.0, 0.0, 0.0, 0.1, 0.5, -0.2], [0.1, 0.3, -0.4, 0.0, 0.0, 0.0]])
    figures = map_figures(MapData(ids, {"effect": effect}, "tokens", {"vocabulary": vocab}), "tokens")
    texts = [[t.get_text() for t in fig.axes[0].texts] for _, fig in figures]
    assert texts[0] == ["[CLS]", "good", "film"]
    assert texts[1][0] == "[CLS]" and texts[1][2] == "bad" and texts[1][1].endswith("…") and len(texts[1][1]) == 28
    fig = figures[1][1]
    fig.canvas.draw()
    right = fig.get_window_extent().x1
    assert all(t.get_window_extent().x1 <= right for t in fig.axes[0].texts)


def test_sobol_figures_of_a_regression_model_name_the_output_not_a_class_probability():
    """SobolAudit(probability=False) explains a regression model's output itself; its map and
    interval figures said "of P(class 0)"."""
    from lightning_causal.audits import SobolAudit
    from lightning_causal.audits.base import Probe
    from lightning_causal.reporting.tensorboard import _interval_figure

    class Reg(torch.nn.Module):
        def forward(self, x):  # [N, T, F] -> [N]
            return 2.0 * x[:, 3, 0] - x[:, 1, 1]

    x = torch.randn(16, 8, 2, generator=torch.Generator().manual_seed(0))
    r = SobolAudit(64, torch.arange(8).view(1, 8, 1).expand(1, 8, 2).contiguous(), probability=False, n_bootstrap=4).run(Reg(), Probe(x))
    assert r.meta["explained"] == "raw output"
    (_, fig), *_ = map_figures(MapData(x, r.maps, "sobol", r.meta))
    title = _interval_figure(r, "indices", r.tables["indices"])._suptitle.get_text()
    assert "P(class" not in fig._suptitle.get_text() + title
    assert "of the output" in fig._suptitle.get_text() and "of the output" in title
    r.meta.update(explained="softmax probability", target_name="high")
    assert "of P(class 'high')" in _interval_figure(r, "indices", r.tables["indices"])._suptitle.get_text()


def test_sobol_map_and_interval_titles_name_the_class_the_same_way():
    """SobolAudit(class_names=...): the map figure's title quoted the class ("P(class 'high')", as every
    map title quotes class names) and the interval figure's did not ("P(class high)")."""
    from lightning_causal.audits import SobolAudit
    from lightning_causal.audits.base import Probe
    from lightning_causal.reporting.tensorboard import _interval_figure

    model = torch.nn.Linear(4, 2)
    x = torch.randn(16, 4, generator=torch.Generator().manual_seed(0))
    r = SobolAudit(32, target=1, class_names=["low", "high"], n_bootstrap=2).run(model, Probe(x))
    (_, fig), *_ = map_figures(MapData(x, r.maps, "sobol", r.meta))
    title = _interval_figure(r, "indices", r.tables["indices"])._suptitle.get_text()
    assert "P(class 'high')" in fig._suptitle.get_text() and "1 probe samples" not in fig._suptitle.get_text()
    assert "P(class 'high')" in title
    assert _interval_figure(r, "indices", r.tables["indices"]).axes[0].get_ylabel() == "group"  # no feature names: ids
    named = SobolAudit(32, target=1, feature_names=["a", "b", "c", "d"], n_bootstrap=2).run(model, Probe(x))
    assert _interval_figure(named, "indices", named.tables["indices"]).axes[0].get_ylabel() == "feature"
    # S and S_T share a unit (meta["shared_map_scale"]): drawn on one scale, not each relative to its own largest
    heights = sorted((round(b.get_height(), 6) for b in fig.axes[0].patches), reverse=True)
    expected = sorted((round(float(v), 6) for m in r.maps.values() for v in m.abs().flatten()), reverse=True)
    assert heights == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("features", [1, 2])
def test_sequence_time_axis_is_labelled_with_whole_steps(features):
    x = torch.randn(1, 20, features)  # 20 steps: matplotlib's default ticks were 0.0, 2.5, 5.0, ...
    [(_, fig)] = map_figures(MapData(x, {"causal": torch.randn(1, 20, features)}, "ie", {}))
    fig.canvas.draw()
    ticks = [t for t in fig.axes[-1].get_xticks() if 0 <= t <= 19]
    assert ticks and all(float(t).is_integer() for t in ticks)


def test_complex_inputs_are_drawn_as_their_magnitude(monkeypatch):
    """Complex STFT frames (their exact effects are defined) were drawn by their real part, with torch's warning
    that the imaginary part is discarded; every kind now gets |z|, as a spectrogram is drawn."""
    import warnings

    import lightning_causal.reporting.figure_kinds as fk

    z = torch.randn(3, 1, 4, 4, dtype=torch.complex64, generator=torch.Generator().manual_seed(0))
    data = MapData(z, {"causal": torch.randn(3, 1, 4, 4)}, "ie")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no 'Casting complex values to real discards the imaginary part'
        assert [tag for tag, _ in map_figures(data)][:1] == ["maps/sample_0"]
    seen = []
    monkeypatch.setitem(fk.MAP_FIGURES, "image", lambda d: seen.append(d.inputs) or [])
    map_figures(data)
    torch.testing.assert_close(seen[0], z.abs())
