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
