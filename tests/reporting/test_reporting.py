import torch

from lightning_causal.audits.base import AuditResult
from lightning_causal.reporting.tensorboard import _custom_layout, markdown_summary, scalar_tags


def test_scalar_tags_namespaces():
    r = AuditResult("ie", scalars={"x": 1.0, "compare/IG/spearman": 0.5, "captum/IG/sensitivity": 0.1})
    assert scalar_tags(r) == {"causal/ie/x": 1.0, "compare/IG/spearman": 0.5, "captum/IG/sensitivity": 0.1}


def test_markdown_summary_has_scalars_and_tables():
    r = AuditResult("ie", scalars={"x": 1.23456}, tables={"top": [{"group": 3, "v": 0.5}]}, meta={"seconds": 0.1})
    md = markdown_summary(4, [r])
    assert "epoch 4" in md and "| causal/ie/x | 1.235 |" in md and "| 3 | 0.5 |" in md


def test_custom_layout_pairs_causal_and_captum_metrics():
    layout = _custom_layout(["compare/IG/deletion_auc", "causal/cb/deletion_auc", "causal/ie/x"])
    chart = layout["causal vs captum"]["deletion_auc"]
    assert chart[0] == "Multiline" and any("compare" in t for t in chart[1]) and any("causal" in t for t in chart[1])
    assert "ie" in layout["causal audits"]


def test_heatmap_row_figure():
    from lightning_causal.reporting.figures import heatmap_row

    fig = heatmap_row(torch.rand(1, 8, 8), {"causal": torch.randn(1, 8, 8), "ig": torch.randn(1, 8, 8)})
    assert len(fig.axes) == 5  # input + 2 maps + 2 colour bars
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_interval_bar_figure_draws_estimates_and_their_intervals():
    """Bar heights are the estimates and the error bars span exactly [low, high], per metric."""
    import matplotlib.pyplot as plt

    from lightning_causal.reporting.figures import interval_bar_figure, interval_metrics

    rows = [{"group": "5", "S": 0.4, "S_ci": [0.3, 0.55], "ST": 0.6, "ST_ci": [0.5, 0.7]},
            {"group": "2", "S": 0.1, "S_ci": [0.0, 0.2], "ST": 0.2, "ST_ci": [0.15, 0.3]}]
    assert interval_metrics(rows) == ["S", "ST"]
    assert interval_metrics([{"group": "0", "S": 0.1}]) == [] and interval_metrics([]) == []
    fig = interval_bar_figure(rows, "sobol")
    ax = fig.axes[0]
    bars = [c for c in ax.containers if c.__class__.__name__ == "BarContainer"]
    assert [[round(p.get_height(), 6) for p in b] for b in bars] == [[0.4, 0.1], [0.6, 0.2]]
    errors = [c for c in ax.containers if c.__class__.__name__ == "ErrorbarContainer"]
    spans = [sorted(tuple(round(float(v), 6) for v in seg[:, 1]) for seg in e.lines[2][0].get_segments()) for e in errors]
    assert spans == [[(0.0, 0.2), (0.3, 0.55)], [(0.15, 0.3), (0.5, 0.7)]]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["5", "2"]
    plt.close(fig)


def test_renderer_writes_interval_figures_only_for_tables_with_intervals():
    from lightning_causal.reporting.tensorboard import TensorBoardRenderer

    class Writer:
        def __init__(self):
            self.figures = []

        def add_figure(self, tag, fig, step, close=True):
            self.figures.append(tag)
            import matplotlib.pyplot as plt

            plt.close(fig)

        def __getattr__(self, name):  # histograms, text, custom scalars, flush: not under test
            return lambda *args, **kwargs: None

    rows = [{"group": "0", "S": 0.3, "S_ci": [0.2, 0.4], "ST": 0.5, "ST_ci": [0.4, 0.6]}]
    r = AuditResult("sobol", tables={"indices": rows, "plain": [{"group": 0, "v": 1.0}]})
    writer = Writer()
    TensorBoardRenderer().render(writer, 0, [r], None)
    assert writer.figures == ["causal/sobol/intervals/indices"]
