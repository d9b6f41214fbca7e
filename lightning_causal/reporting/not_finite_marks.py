"""Rings over the scores of a map image that are not finite, so that they can be found.

A NaN or infinite score of a heatmap is the grey :data:`~lightning_causal.reporting.figure_style.NOT_FINITE` pixel
(figure_style's rule), and one grey pixel among pale blue ones is hard to see; in a map of more pixels than its
panel has (a 224 x 224 map in a panel of about 145 pixels) it is not drawn at all. A ring of a fixed size in points,
whatever the map's size, marks it: one per cell of a grid of at most :data:`MARK_CELLS` cells a side (a cell of
one pixel in a map of up to that many), over every cell that holds a score that is not finite, but those inside a
grey area (the cell and its 8 neighbours hold no finite score; the map's outside counts as grey), whose edge where it
meets finite scores is ringed. Nothing is drawn where every score is finite, nor where none is (the whole panel is grey,
and the note says "all n scores are not finite"): a frame of rings at the map's edge marked nothing, there or along a
grey area that reaches the edge. A panel all grey beside finite ones (a video's frame, a grid's sample) is framed.
Where more than a quarter of the cells are ringed (scattered NaN), the rings are drawn smaller and thinner
(:data:`DENSE_SHARE`): rings of full size covered the map they marked.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from torch import Tensor

__all__ = ["DENSE_SHARE", "MARK_CELLS", "RINGED", "ring_not_finite"]

#: how a heatmap's note says its scores that are not finite are drawn (figure_style's rule: "k of n scores are not
#: finite (NaN/inf): grey, ringed")
RINGED = "grey, ringed"

#: the most cells a side that the rings mark (a map of more pixels: a ring per cell of several): at most 1,024 rings a
#: panel, one collection (``scatter``), drawn in a few milliseconds
MARK_CELLS = 32
_LABEL = "not finite"  # the ring collection's label: a kept figure drawn again finds it by this
#: the share of a map's cells above which its rings are drawn smaller and thinner (each ring about the cell it marks in
#: a 32-cell grid of a card's panel, about 4.5 pixels): full-size rings over more cells hid the map's colours
DENSE_SHARE = 0.25
_RING = (24.0, 1.0)  # a ring's area (points^2) and line width (points)
_DENSE_RING = (6.0, 0.5)  # rings over more than DENSE_SHARE of the cells


def _cell_size(h: int, w: int, square: bool) -> tuple[int, int]:
    """(rows, columns) of a cell: square cells at most :data:`MARK_CELLS` a side of the longer side (a map of equal
    aspect), or at most MARK_CELLS along each side (``square=False``: a stretched panel, a sequence's 3 x 200 heatmap,
    whose 3 rows would be one cell: a NaN of row 0 ringed on row 1)."""
    if square:
        return (max(1, math.ceil(max(h, w) / MARK_CELLS)),) * 2
    return max(1, math.ceil(h / MARK_CELLS)), max(1, math.ceil(w / MARK_CELLS))


def _cells(shape: tuple[int, ...], square: bool) -> int:
    """The number of cells of a map of ``shape`` ``[H, W]``."""
    b = _cell_size(shape[-2], shape[-1], square)
    return math.ceil(shape[-2] / b[0]) * math.ceil(shape[-1] / b[1])


def _centres(image: Tensor, square: bool = True) -> np.ndarray:
    """``[k, 2]``: the ``(x, y)`` data coordinates (column, row) of the centres of the cells of ``image`` ``[H, W]``
    that hold a score that is not finite and are no grey area's inside (no finite score in the cell and its 8
    neighbours, the map's outside counted grey where ``image`` holds a finite score; cells of ``b x b`` pixels, ``b``
    the least that makes at most :data:`MARK_CELLS` a side; the last row and column of cells may be smaller)."""
    bad = ~image.isfinite()
    if not bool(bad.any()):
        return np.zeros((0, 2))
    h, w = bad.shape
    b = _cell_size(h, w, square)
    cells = torch.nn.functional.max_pool2d(bad[None, None].float(), b, b, ceil_mode=True)
    # a cell all of whose scores are not finite, as are its 8 neighbours', is inside a grey area, seen without a ring:
    # only its edge is ringed. A cell that holds finite scores too is ringed wherever it is: cells that all hold a few
    # scattered ones are no grey area (30 % of a 224 x 224 map: every cell, not the 124 at the map's border)
    grey = -torch.nn.functional.max_pool2d(-bad[None, None].float(), b, b, ceil_mode=True)
    # the map's outside grey: a grey area reaching the map's edge is ringed where it meets finite scores, not along
    # that edge (finite outside: a panel all grey beside finite ones, a video's grey frame, is framed)
    outside = 1.0 if bool(image.isfinite().any()) else 0.0
    around = torch.nn.functional.conv2d(torch.nn.functional.pad(grey, (1, 1, 1, 1), value=outside), torch.ones(1, 1, 3, 3))[0, 0]
    rows, cols = ((cells[0, 0] > 0) & (around < 9)).nonzero(as_tuple=True)
    y = (rows * b[0] + (torch.clamp((rows + 1) * b[0], max=h) - 1)) / 2  # the middle of the cell's first and last pixel
    x = (cols * b[1] + (torch.clamp((cols + 1) * b[1], max=w) - 1)) / 2
    return torch.stack([x, y], 1).double().numpy()


def ring_not_finite(ax: Any, image: Tensor, *, square: bool = True, whole: Tensor | None = None) -> Any:
    """Ring the scores of ``image`` (a map drawn by ``ax.imshow`` with its default extent, either ``origin``) that are
    not finite, as the module says: the ring collection, or ``None`` where every score is finite or none is. Drawn on an axes
    that holds one already (a figure kept and drawn again with another map,
    :mod:`~lightning_causal.reporting.kept_figures`), that collection's rings are moved to ``image``'s (none where it
    has none). The axes' limits are kept.

    Args:
        ax: the matplotlib axes the map is drawn on.
        image: the map as drawn, ``[H, W]``.
        square: cells of as many rows as columns (a map drawn at equal aspect: images, frames); ``False``: at most
            :data:`MARK_CELLS` along each side (a panel stretched to its axes, ``aspect="auto"``: a sequence's
            channels x time heatmap, each of whose few rows is ringed apart).
        whole: the scores of the map ``image`` is part of, as its note counts them (a video's frames, a grid's column
            of samples); none of them finite: no ring (the panels are grey). ``None``: ``image``.

    Examples:
        >>> import torch
        >>> from matplotlib.figure import Figure
        >>> ax = Figure().subplots()
        >>> m = torch.zeros(4, 4)
        >>> m[1, 2] = float("nan")
        >>> _ = ax.imshow(m.numpy())
        >>> ring_not_finite(ax, m).get_offsets().tolist()  # (column, row) of the pixel
        [[2.0, 1.0]]
        >>> ring_not_finite(ax, torch.zeros(4, 4)).get_offsets().tolist()  # drawn again: no ring left
        []
        >>> ring_not_finite(Figure().subplots(), torch.ones(4, 4)) is None
        True
        >>> ring_not_finite(Figure().subplots(), torch.full((4, 4), float("nan"))) is None  # all grey: no ring
        True
        >>> long = torch.zeros(3, 200)
        >>> long[0, 50] = float("nan")  # cells of 7 steps: square ones hold all 3 rows, ringed on the middle one
        >>> ring_not_finite(Figure().subplots(), long).get_offsets().tolist(), ring_not_finite(Figure().subplots(), long, square=False).get_offsets().tolist()
        ([[52.0, 1.0]], [[52.0, 0.0]])
    """
    whole = image if whole is None else whole
    # a map all grey (its note: "all n scores are not finite"): nothing to find, and its edge's rings marked nothing
    centres = np.zeros((0, 2)) if not bool(whole.isfinite().any()) else _centres(image.detach().cpu(), square)
    size, width = _RING if len(centres) <= DENSE_SHARE * _cells(image.shape, square) else _DENSE_RING
    kept = next((c for c in ax.collections if c.get_label() == _LABEL), None)
    if kept is not None:
        kept.set_offsets(centres)
        kept.set_sizes([size])
        kept.set_linewidths([width])
        return kept
    if len(centres) == 0:
        return None
    limits = ax.get_xlim(), ax.get_ylim()
    # black rings: seen on the grey pixel and on the pale colours around it (the one reading asked for)
    ring = ax.scatter(centres[:, 0], centres[:, 1], s=size, marker="o", facecolors="none", edgecolors="black",
                      linewidths=width, label=_LABEL, zorder=3)
    ax.set_xlim(*limits[0])
    ax.set_ylim(*limits[1])
    return ring
