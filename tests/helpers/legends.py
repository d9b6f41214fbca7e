"""What a drawn figure's legend covers: its box and the error bars' ends (interval bars) or the bars' boxes, in display pixels."""

from __future__ import annotations

from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.collections import LineCollection
from matplotlib.figure import Figure


def legend_and_bar_ends(fig: Figure) -> tuple[Any, Any, list]:
    """``(renderer, legend box, ends)`` of ``fig`` drawn: the ends of every error bar of its first axes."""
    FigureCanvasAgg(fig)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    box = ax.get_legend().get_window_extent(renderer)
    ends = [p for c in ax.collections if isinstance(c, LineCollection) for seg in c.get_segments()
            for p in ax.transData.transform(seg)]
    return renderer, box, ends


def legend_and_bar_boxes(fig: Figure) -> tuple[Any, list]:
    """``(legend box, bar boxes)`` of ``fig`` drawn: the display boxes of its first axes' legend and of every bar."""
    FigureCanvasAgg(fig)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    return ax.get_legend().get_window_extent(renderer), [p.get_window_extent(renderer) for p in ax.patches]
