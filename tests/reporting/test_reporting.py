"""Scalar tags, the compact text card and the figures of reporting/figures.py."""

import pytest
import torch

from lightning_causal.audits.base import AuditResult
from lightning_causal.reporting.summary import markdown_summary
from lightning_causal.reporting.tensorboard import scalar_tags


def test_scalar_tags_namespaces():
    r = AuditResult("ie", scalars={"x": 1.0, "compare/IG/spearman": 0.5, "compare/IG/sensitivity_max": 0.1})
    assert scalar_tags(r) == {"causal/ie/x": 1.0, "compare/IG/spearman": 0.5, "compare/IG/sensitivity_max": 0.1}


def test_markdown_summary_is_compact_and_names_features():
    """Eight audits with hundreds of scalars and long tables still make a card of at most 40
    lines; each audit's row holds its headline scalars and the named top rows of its table."""
    results = []
    for a in range(8):
        scalars = {"mean_abs_effect": 0.5 + a, **{f"S/f{i}": 0.1 for i in range(100)}, **{f"drift/v/{i}": 0.0 for i in range(30)}}
        rows = [{"feature": f"feat{i}", "group": i, "mean_abs_effect": 1.0 / (i + 1)} for i in range(200)]
        results.append(AuditResult(f"audit{a}", scalars=scalars, tables={"top_groups": rows}, meta={"seconds": 0.25}))
    md = markdown_summary(4, results, step=120, report="epoch_0004.json")
    lines = md.splitlines()
    assert len(lines) <= 40, len(lines)
    assert lines[0] == "### Causal audit, epoch 4 (step 120)"
    row = next(line for line in lines if line.startswith("- **audit3** (0.2 s): "))
    assert "mean_abs_effect 3.5" in row and "feat0 (mean_abs_effect 1)" in row and "feat2" in row and "feat3" not in row
    assert "S/f0" not in md and "drift" not in md  # per-item and drift series stay in the JSON report
    assert md.endswith("Full detail: `epoch_0004.json`")


def test_markdown_summary_labels_graph_nodes_edges_and_tokens_by_name():
    r = AuditResult("g", tables={
        "nodes": [{"node": "net.1:18", "effect": 0.25, "class": 1.0}],  # the node, not its class
        "edges": [{"source": "net.1:18", "target": "output:1", "weight": 1.0, "effect": 0.5}],
        "top_tokens": [{"token": 7, "word": "great", "mean_abs_effect": 0.75, "count": 3}],
    })
    row = next(line for line in markdown_summary(0, [r]).splitlines() if line.startswith("- **g**: "))
    assert "nodes: net.1:18 (effect 0.25)" in row and "edges: net.1:18 → output:1 (effect 0.5)" in row
    assert "top_tokens: great (mean_abs_effect 0.75)" in row


def test_markdown_summary_comparison_notes_and_pipes():
    r = AuditResult("cb", scalars={"deletion_auc": 0.2},
                    tables={"comparison": [{"method": "IG", "spearman": 0.5, "seconds": 1.0}, {"method": "causal", "spearman": "-", "seconds": 0.5}]},
                    meta={"seconds": 1.5, "notes": ["a|b"]})
    md = markdown_summary(0, [r])
    assert "| method | spearman |" in md and "| IG | 0.5 |" in md and "seconds |" not in md.split("causal vs Captum")[1]
    assert "- cb: a\\|b" in md
    fast = markdown_summary(0, [AuditResult("f", scalars={"a": 1.0}, meta={"seconds": 0.0321})])
    assert "- **f** (0.032 s): a 1" in fast


def test_heatmap_row_figure():
    from lightning_causal.reporting.figures import heatmap_row

    fig = heatmap_row(torch.rand(1, 8, 8), {"causal": torch.randn(1, 8, 8), "ig": torch.randn(1, 8, 8)}, title="explains class 3")
    assert len(fig.axes) == 5  # input + 2 maps + 2 colour bars
    assert fig._suptitle.get_text() == "explains class 3"


@pytest.mark.parametrize("maps", [1, 3])
def test_a_long_heatmap_title_is_wrapped_inside_the_figure(maps):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from lightning_causal.reporting.figures import heatmap_row

    title = "input_effect, sample 0 (label 'positive review'): explains class 'negative review'"  # was cut at both edges
    fig = heatmap_row(torch.rand(1, 12, 20), {f"m{i}": torch.randn(1, 12, 20) for i in range(maps)}, title=title)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    box = fig._suptitle.get_window_extent(canvas.get_renderer())
    assert 0 <= box.x0 and box.x1 <= fig.get_figwidth() * fig.dpi
    assert " ".join(fig._suptitle.get_text().split()) == title


def test_rgb_inputs_are_drawn_in_colour_and_others_in_grey():
    """A 3-channel input keeps its colours (stretched to [0, 1]) in the heatmap row, the Captum
    comparison grid and the image grid; one channel stays grey; the maps stay one signed plane."""
    from lightning_causal.reporting.comparison import attribution_grid
    from lightning_causal.reporting.figures import heatmap_row, image_grid_figure

    rgb = torch.zeros(3, 4, 4)
    rgb[1, :2] = 2.0  # green top half, on a range [0, 2]
    fig = heatmap_row(rgb, {"causal": torch.randn(3, 4, 4)})
    shown = fig.axes[0].get_images()[0].get_array()
    assert shown.shape == (4, 4, 3) and shown[0, 0].tolist() == [0.0, 1.0, 0.0] and shown[3, 3].tolist() == [0.0, 0.0, 0.0]
    assert fig.axes[1].get_images()[0].get_array().shape == (4, 4)
    grid = attribution_grid(rgb.unsqueeze(0), {"IG": torch.randn(1, 3, 4, 4)})
    assert grid.axes[0].get_images()[0].get_array().shape == (4, 4, 3)
    tiles = image_grid_figure({"pattern": rgb.unsqueeze(0)})
    assert tiles.axes[0].get_images()[0].get_array()[0, 0].tolist() == [0.0, 1.0, 0.0]
    grey = heatmap_row(torch.rand(1, 4, 4), {"causal": torch.randn(1, 4, 4)}).axes[0].get_images()[0]
    assert grey.get_array().shape == (4, 4) and grey.get_cmap().name == "gray"


def test_interval_bar_figure_draws_estimates_and_their_intervals():
    """Bar lengths are the estimates and the error bars span exactly [low, high], per metric;
    the first row is drawn on top, labelled by its name."""
    from lightning_causal.reporting.figures import interval_bar_figure, interval_metrics

    rows = [{"group": "age", "S": 0.4, "S_ci": [0.3, 0.55], "ST": 0.6, "ST_ci": [0.5, 0.7]},
            {"group": "hours", "S": 0.1, "S_ci": [0.0, 0.2], "ST": 0.2, "ST_ci": [0.15, 0.3]}]
    assert interval_metrics(rows) == ["S", "ST"]
    assert interval_metrics([{"group": "0", "S": 0.1}]) == [] and interval_metrics([]) == []
    fig = interval_bar_figure(rows, "sobol")
    ax = fig.axes[0]
    bars = [c for c in ax.containers if c.__class__.__name__ == "BarContainer"]
    assert [[round(p.get_width(), 6) for p in b] for b in bars] == [[0.4, 0.1], [0.6, 0.2]]
    errors = [c for c in ax.containers if c.__class__.__name__ == "ErrorbarContainer"]
    spans = [sorted(tuple(round(float(v), 6) for v in seg[:, 0]) for seg in e.lines[2][0].get_segments()) for e in errors]
    assert spans == [[(0.0, 0.2), (0.3, 0.55)], [(0.15, 0.3), (0.5, 0.7)]]
    labels = {t.get_text(): y for t, y in zip(ax.get_yticklabels(), ax.get_yticks())}
    assert labels["age"] > labels["hours"]  # first row on top
    assert ax.get_xlabel() and ax.get_ylabel() == "group"


def test_figures_fit_a_tensorboard_card():
    """TensorBoard fits an image card into a landscape box: bar charts of many items stay landscape,
    at most ~800 pixels wide, with a handful of bars and labels of at least 9 points."""
    from lightning_causal.reporting.figures import bar_figure, interval_bar_figure

    rows = [{"group": f"feature_{i}", "S": 0.1, "S_ci": [0.0, 0.2], "ST": 0.2, "ST_ci": [0.1, 0.3]} for i in range(40)]
    units = bar_figure(torch.randn(64), "units")
    sobol = interval_bar_figure(rows, "sobol")
    for fig, labels in ((units, units.axes[0].get_xticklabels()), (sobol, sobol.axes[0].get_yticklabels())):
        width, height = fig.get_size_inches() * fig.dpi
        assert width <= 800 and width >= 1.3 * height, (width, height)
        assert min(t.get_fontsize() for t in labels) >= 9
    assert len(units.axes[0].get_xticklabels()) == 16 and len(sobol.axes[0].get_yticklabels()) == 8


def test_curves_figure_has_axis_labels_and_class_ticks():
    from lightning_causal.reporting.figures import curves_figure

    fig = curves_figure({"x": [0, 1, 2], "anomaly_index": [0.1, 3.0, 0.5], "threshold": [2, 2, 2]}, "ai", "class", "anomaly index",
                        xticklabels=["cat", "dog", "eel"])
    ax = fig.axes[0]
    assert (ax.get_xlabel(), ax.get_ylabel()) == ("class", "anomaly index")
    assert [t.get_text() for t in ax.get_xticklabels()] == ["cat", "dog", "eel"]
    unnamed = curves_figure({"x": [0, 1, 2, 3], "flag_score": [2.3, 3.7, 1.4, 1.5]}, "s", "class", "score").axes[0]
    assert unnamed.get_xticks().tolist() == [0, 1, 2, 3]  # classes, not 0.5 steps between them


def test_curves_draw_a_reference_level_dashed_and_a_flat_measured_series_as_a_series():
    from lightning_causal.reporting.figures import curves_figure

    fig = curves_figure({"x": [0, 1, 2], "flag_score": [0.2, 1.5, 1.1], "flat ACE": [0.4] * 3, "flagged at or below": 0.75}, "t")
    score, flat, bound = fig.axes[0].get_lines()
    assert score.get_linestyle() == "-" and score.get_marker() == "o"
    assert flat.get_linestyle() == "-" and flat.get_marker() == "o"  # measured, merely constant
    assert bound.get_linestyle() == "--" and bound.get_marker() in ("None", None, "")
    assert list(bound.get_ydata()) == [0.75, 0.75]  # across the whole axis
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == ["flag_score", "flat ACE", "flagged at or below"]


def test_a_report_reads_back_nan_and_infinities_in_tables_curves_and_graphs_and_numpy_arrays_in_meta(tmp_path):
    """A fairness group without positives has tpr NaN: it came back as the string 'nan' in the
    table (max() over rows raised TypeError); a numpy array in meta raised in the writer."""
    import math

    import numpy as np

    from lightning_causal.audits.base import AuditResult
    from lightning_causal.reporting.json_report import load_report, write_report

    result = AuditResult("a", scalars={"s": float("nan")}, tables={"groups": [{"group": "0", "tpr": float("nan")}]},
                         curves={"deletion": {"x": [0.0, 1.0], "causal": [float("inf"), 1.0]}},
                         graphs={"g": {"edges": [["a", "b", float("-inf")]]}}, meta={"names": np.array([1, 2]), "word": "nan"})
    doc = load_report(write_report(tmp_path, 0, "epoch_end", [result]))["audits"]["a"]
    assert math.isnan(doc["scalars"]["s"]) and math.isnan(doc["tables"]["groups"][0]["tpr"])
    assert doc["curves"]["deletion"]["causal"] == [math.inf, 1.0] and doc["graphs"]["g"]["edges"][0][2] == -math.inf
    assert doc["meta"] == {"names": [1, 2], "word": "nan"}


def test_the_text_card_shows_the_value_each_table_is_ranked_by_and_per_layer_headlines():
    """The card listed Sobol' rows ranked by ST with their S beside them (the order looked wrong),
    fairness groups with their coded value, and nothing for an audit whose scalars are per layer."""
    sobol = AuditResult("sobol", scalars={"sum_S": 0.2}, tables={"indices": [
        {"group": "a", "S": 0.006, "S_ci": [0.0, 0.1], "ST": 0.76, "ST_ci": [0.7, 0.8]},
        {"group": "c", "S": 0.216, "S_ci": [0.1, 0.3], "ST": 0.35, "ST_ci": [0.3, 0.4]}]})
    fair = AuditResult("fairness", scalars={"cf_gap": 0.01}, tables={"groups": [{"group": 0, "count": 3, "value": 0.0, "positive_rate": 0.25}]})
    units = AuditResult("unit_importance", scalars={"conv1/top1_importance": 0.17, "conv1/drift/spearman": 0.9})
    card = markdown_summary(3, [sobol, fair, units])
    assert "a (ST 0.76), c (ST 0.35)" in card and "0 (positive_rate 0.25)" in card
    assert "conv1/top1_importance 0.17" in card and "spearman" not in card


def test_bar_figure_colours_signs_only_where_values_have_one():
    """Unit importances are magnitudes (mean |effect| of do(unit := 0)): every bar was red, the colour
    that marks a positive, raising value in the other figures. Values without a negative one are drawn in
    one neutral colour; signed values keep red for positive and blue for negative."""
    from matplotlib.colors import to_rgba

    from lightning_causal.reporting.figure_style import MAGNITUDE, NEG, POS
    from lightning_causal.reporting.figures import bar_figure

    magnitudes = bar_figure(torch.tensor([0.3, 0.1, 0.2]), "units")
    assert {to_rgba(p.get_facecolor()) for p in magnitudes.axes[0].patches} == {to_rgba(MAGNITUDE)}
    signed = bar_figure(torch.tensor([0.3, -0.5, 0.2]), "units")
    assert [to_rgba(p.get_facecolor()) for p in signed.axes[0].patches] == [to_rgba(NEG), to_rgba(POS), to_rgba(POS)]


def test_the_text_summary_names_the_classes_of_a_graphs_output_nodes():
    """CausalGraphAudit(class_names=...) drew the names beside the output nodes of its figure, but the text
    card still read ``net.3:10 → output:1``; it now reads ``output:1 (chirp)``, and nodes without a class
    stay as they are."""
    r = AuditResult("causal_graph", scalars={"faithfulness": 0.5},
                    tables={"nodes": [{"node": "output:1", "effect": 0.4}, {"node": "net.3:10", "effect": 0.3}],
                            "edges": [{"source": "net.3:10", "target": "output:1", "weight": 1.0, "effect": 0.2}]},
                    graphs={"causal_graph": {"nodes": [], "edges": [], "meta": {"class_names": ["sine", "chirp", "step"]}}})
    text = markdown_summary(0, [r], step=0)
    assert "nodes: output:1 (chirp) (effect 0.4), net.3:10 (effect 0.3)" in text
    assert "edges: net.3:10 → output:1 (chirp) (effect 0.2)" in text
    plain = markdown_summary(0, [AuditResult("causal_graph", tables=r.tables)], step=0)
    assert "net.3:10 → output:1 (effect 0.2)" in plain
