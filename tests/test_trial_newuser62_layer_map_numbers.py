"""A ResNet-like CNN of 32 blocks in 4 stages (``backbone.stages.3.blocks.7.conv2``, a 1x1 ``down`` conv between
stages) gives ``LayerMapAudit()`` 134 leaf layers by default: its card draws 32 of them in the CKA matrix, numbered
as among all, and the numbers from 100 on (``99 120 123``) ran into each other under the matrix, as the columns'
pitch (0.16 inch) holds two digits of 8-point text. They are now written upright where any has three digits."""

from __future__ import annotations

import pytest

pytest.importorskip("matplotlib")

from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: E402

from tests.reporting.test_trial_layermap_card_rows import _card, _map, _texts  # noqa: E402


def _drawn(n: int):
    layers = [f"backbone.stages.{i // 33}.blocks.{i % 33}.conv{i % 2 + 1}" for i in range(n)]
    groups = [list(range(i, min(i + 4, n))) for i in range(0, n, 4)]  # causal nodes of 4 layers each
    fig = _card(_map(layers, groups, [0.5 * 0.99 ** i for i in range(n)]))
    renderer = FigureCanvasAgg(fig).get_renderer()
    fig.draw(renderer)
    return fig, renderer


@pytest.mark.parametrize("n", [99, 134, 240])
def test_the_column_numbers_of_a_map_of_a_hundred_layers_or_more_do_not_overlap(n):
    fig, renderer = _drawn(n)
    labels = [t for t in fig.axes[0].get_xticklabels() if t.get_text()]
    numbers = [t.get_text() for t in labels]
    assert len(numbers) == 32 and numbers[0] == "0"
    assert (max(len(t) for t in numbers) == 3) == (n > 99)
    boxes = [t.get_window_extent(renderer) for t in labels]
    for (a, b), (ta, tb) in zip(zip(boxes, boxes[1:]), zip(numbers, numbers[1:])):
        assert a.x1 <= b.x0, (ta, tb)  # was: 99 and 120, 120 and 123 overlapping
    width, height = fig.get_size_inches() * fig.dpi
    texts = _texts(fig)
    extents = [t.get_window_extent(renderer) for t in texts]
    for t, e in zip(texts, extents):  # every text inside the figure, none over another
        assert e.x0 >= -1 and e.y0 >= -1 and e.x1 <= width + 1 and e.y1 <= height + 1, t.get_text()
    for i, a in enumerate(extents):
        for j in range(i + 1, len(extents)):
            assert not a.overlaps(extents[j]), (texts[i].get_text(), texts[j].get_text())
