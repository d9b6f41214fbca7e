"""Words of 1-D fields and sequences on the cards (newuser63/64's trials): the text card and Sobol' tags name a group
of a channels-first signal ``[N, C, L]`` by its ``steps`` while the figures' axis said ``position``; the card's top
list named groups of no effect ("step0 (mean_abs_effect 0)"); the legend of a sequence's input panel of up to four
channels lay inside the panel's upper left corner, over the lines."""

from __future__ import annotations

import warnings

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg
from torch import nn

from lightning_causal.audits import CounterfactualAudit
from lightning_causal.audits.base import AuditResult, Probe
from lightning_causal.audits.group_regions import group_region, region_text
from lightning_causal.causal.structure.counterfactuals import CounterfactualSettings
from lightning_causal.reporting.figure_kinds import MapData, map_figures
from lightning_causal.reporting.summary import markdown_summary
from lightning_causal.reporting.tensorboard import TensorBoardRenderer
from tests.helpers.writers import RecordingWriter


def test_a_channels_first_signal_is_said_in_steps_on_the_card_and_the_figures():
    x = torch.randn(8, 2, 40, generator=torch.Generator().manual_seed(0))
    mask = torch.arange(40).div(10, rounding_mode="floor").view(1, 1, 40).expand(1, 2, 40)
    assert region_text(group_region(mask, 1, x)) == "steps 10–19"  # the card's and the Sobol' tags' word
    (_, fig), *_ = map_figures(MapData(x[:2], {"causal": torch.randn(2, 2, 40)}, "ie", {"targets": [1, 1]}))
    assert fig.axes[-1].get_xlabel() == "step"
    model = nn.Sequential(nn.Flatten(), nn.Linear(80, 2))
    labels = 1 - model(x).argmax(1)
    cf = CounterfactualAudit(max_samples=2, settings=CounterfactualSettings(steps=10)).run(model, Probe(x, labels))
    figures = {}
    renderer = TensorBoardRenderer(figure_kind="sequence")
    renderer._figure = lambda writer, tag, fig, step: figures.__setitem__(tag, fig)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        renderer.render(RecordingWriter(), 0, [cf], x, probe_labels=labels)
    grid = [ax for ax in figures["causal/counterfactual/images/counterfactuals"].axes if ax.get_images()]
    assert {ax.get_xlabel() for ax in grid if ax.get_xlabel()} == {"step"}


def _groups(*effects: float) -> list[dict]:
    return [{"feature": f"step{g}", "group": g, "mean_abs_effect": e, "steps": [g, g + 1]} for g, e in enumerate(effects)]


def test_the_top_list_leaves_out_groups_of_no_effect():
    card = markdown_summary(0, [AuditResult("ie", scalars={"mean_abs_effect": 0.6}, tables={"top_groups": _groups(1.81, 0.0, 0.0)}),
                                AuditResult("flat", scalars={"mean_abs_effect": 0.0}, tables={"top_groups": _groups(0.0, 0.0, 0.0)}),
                                AuditResult("fair", tables={"groups": [{"group": "a", "positive_rate": 0.0}]})])
    lines = card.splitlines()
    assert lines[2] == "- **ie**: mean_abs_effect 0.6 · top: top_groups: step0 (mean_abs_effect 1.81)"
    assert lines[3] == "- **flat**: mean_abs_effect 0 · top: top_groups: none had an effect (mean_abs_effect 0)"
    assert lines[4] == "- **fair**: groups: a (positive_rate 0)"  # a rate of 0 is a value, not no effect


def _overlaps(fig) -> tuple[int, int, bool, bool]:
    """Points of the input panel's lines under its legend, all its points, whether the legend overlaps the title or
    another panel, and whether it lies inside the figure (the renderer's bounding boxes)."""
    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    box = ax.get_legend().get_window_extent(renderer)
    under = total = 0
    for line in ax.get_lines():
        pts = ax.transData.transform(line.get_xydata())
        under += int(((pts[:, 0] >= box.x0) & (pts[:, 0] <= box.x1) & (pts[:, 1] >= box.y0) & (pts[:, 1] <= box.y1)).sum())
        total += len(pts)
    other = any(box.overlaps(a.get_window_extent(renderer)) for a in fig.axes[1:]) or box.overlaps(fig._suptitle.get_window_extent(renderer))
    inside = fig.bbox.x0 <= box.x0 and box.x1 <= fig.bbox.x1 and fig.bbox.y0 <= box.y0 and box.y1 <= fig.bbox.y1
    return under, total, other, inside


def test_the_legend_of_a_four_channel_input_panel_covers_none_of_its_lines():
    t = torch.linspace(0, 6.28, 256)
    x = torch.stack([torch.sin(t * (k + 1)) for k in range(4)]).unsqueeze(0).repeat(2, 1, 1)  # [2, 4, 256]
    for title in ("ie", "a long audit name " * 6):  # one line of title, and a title wrapped on two
        (_, fig), *_ = map_figures(MapData(x, {"causal": torch.randn(2, 4, 256)}, title, {"targets": [1, 1]}))
        under, total, other, inside = _overlaps(fig)
        assert total == 1024 and under == 0 and not other and inside
    last = x.transpose(1, 2)  # [2, 256, 4]: four features of a recurrent layer's input
    (_, fig), *_ = map_figures(MapData(last, {"causal": torch.randn(2, 256, 4)}, "ie", {"targets": [1, 1]}), kind="sequence_features_last")
    under, total, other, inside = _overlaps(fig)
    assert [t.get_text() for t in fig.axes[0].get_legend().get_texts()] == [f"feature {k}" for k in range(4)]
    assert total == 1024 and under == 0 and not other and inside
