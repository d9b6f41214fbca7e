"""Counterfactual explanations drawn as panels: a column per sample, rows input / counterfactual /
difference (a univariate signal as lines and bars); a plain ``Figure`` (no pyplot state)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from matplotlib.cm import ScalarMappable
from matplotlib.colors import Normalize
from matplotlib.figure import Figure
from torch import Tensor

from lightning_causal.audits.counterfactual import drawn_as_lines
from lightning_causal.reporting.figure_style import POS, step_bars, title_lines
from lightning_causal.reporting.image_figures import (
    ImageOrigin,
    largest_change,
    strongest_channel,
    to_image,
)
from lightning_causal.reporting.kept_figures import keep_figure, kept_figure

__all__ = ["counterfactual_figure"]


def counterfactual_figure(
    panels: dict[str, Tensor], labels: Sequence[str], failed: Sequence[int] = (), title: str | None = None,
    *, sequence_axes: tuple[str, str] | None = None, origin: ImageOrigin = "upper", kept: dict | None = None,
) -> Figure:
    """Counterfactual explanations, one column per sample titled ``labels[k]`` (e.g. ``"label 3 → pred
    5"`` / ``"→ cf 3 ✓"``), rows ``input`` and ``counterfactual`` in grey (or colour) on ``[0, 1]``
    and ``difference`` (counterfactual − input, ``[-1, 1]``; of colour images, each pixel's largest
    channel change, :func:`largest_change`; of more rows or columns than its cell has pixels, bins of them, each its
    change of largest magnitude, so that a one-element change is drawn) on a diverging scale centred at 0,
    all ``[K, C, H, W]`` as :func:`~lightning_causal.audits.counterfactual.split_triptych` gives
    them. Columns in ``failed`` (no counterfactual found) are framed and titled in red. Cells keep
    the images' aspect ratio. A univariate signal (one channel of one row, ``[K, 1, 1, T]``, from
    inputs ``[N, 1, T]``) is drawn as lines along ``T``: the input, the counterfactual over the
    input in grey, and the difference as bars on the same ``[-1, 1]`` scale (as a one-pixel-high
    image stretched to the cell it was an unreadable barcode). ``sequence_axes=(xlabel, row word)`` labels a
    sequence's panels (e.g. ``("time step", "feature")``): the bottom row's step axis, and of
    several channels the first column's rows (without it, no ticks: an image has no units).

    Args:
        panels: ``{"input", "counterfactual", "difference"}`` -> ``[K, C, H, W]``, as above.
        labels: one column title per sample.
        failed: the columns whose search failed.
        title: the figure's title; ``None``: none.
        sequence_axes: ``(xlabel, row word)`` for a sequence, as above; ``None``: no axis labels.
        origin: where row 0 of each image panel is drawn (:data:`~lightning_causal.reporting.image_figures.ORIGINS`):
            ``"upper"`` at the top, ``"lower"`` at the bottom (a spectrogram, as its maps are drawn).
        kept: the figure kept for the next call (``{}`` at first; the TensorBoard writer's, one per tag, kept from one
            audit to the next): a grid of images of the same columns, image shape, failed columns, figure size and title
            height as the kept one, drawn since it was built, is that figure again, its images' data, column titles
            and title replaced and its axes put back where they were built, from where the constrained layout runs at
            each draw (the same pixels as a figure of its own, without building its axes: about half of its cost).
            Only for a caller that draws or saves each figure before asking for the next, as
            :func:`~lightning_causal.reporting.image_figures.heatmap_row`'s ``reuse``; ``None``: a figure of its own.

    Examples:
        >>> import torch
        >>> x = torch.rand(2, 1, 8, 16)
        >>> fig = counterfactual_figure({"input": x, "counterfactual": x, "difference": x - x}, ["a", "b ✗"], failed=[1])
        >>> [ax.get_ylabel() for ax in fig.axes[:6:2]], fig.axes[1].title.get_color()
        (['input', 'counterfactual', 'difference\\n(cf − input)'], 'tab:red')
    """
    from matplotlib import colormaps

    k = len(labels)
    h, w = int(panels["input"].shape[-2]), int(panels["input"].shape[-1])
    cell = max(1.3, 0.075 * max(len(line) for label in labels for line in str(label).split("\n")))  # 9 pt titles
    lines = title_lines(title, int((1.2 + cell * k) * 11)) if title else []
    stretched = not 0.25 <= h / w <= 4.0  # a signal [F, T] or [T, F]: kept to scale it would be a sliver
    signal = panels["input"].dim() == 4 and drawn_as_lines(panels["input"].shape)  # [K, 1, 1, T]: lines
    diverging = colormaps["RdBu_r"]
    height = min(max(cell * h / w, 0.9), 2.0) if stretched else min(cell * h / w, 2.0)
    aspect = "auto" if stretched else None
    figsize = (1.5 + cell * k, 0.75 + 0.3 * len(lines) + 3 * (height + 0.08))
    key = (tuple(panels["input"].shape[1:]), k, tuple(failed), figsize, len(lines), sequence_axes, origin)
    again = None if signal else kept_figure(kept, key, lines)  # its axes put back where they were built
    if again is not None:
        return _redrawn(again.figure, again.panels, panels, labels, failed)
    fig = Figure(figsize=figsize, layout="constrained")
    # the difference's bins, rows and columns, 2.5 px or more each (the layout narrows a cell by up to a fifth: 114 of
    # 130 px beside the colour bar): a cell of `cell` x `height` inches, or kept to the image's scale within both
    across = cell if stretched else min(cell, height * w / h)
    bins = (min(h, max(1, int((height if stretched else across * h / w) * fig.dpi / 2.5))),
            min(w, max(1, int(across * fig.dpi / 2.5))))
    axes = fig.subplots(3, k, squeeze=False)
    for r, name in enumerate(("input", "counterfactual", "difference")):
        for c in range(k):
            ax, img = axes[r][c], panels[name][c].detach().float().cpu()
            # every row binned alike to the cell's pixels (:func:`_grid_image`): a one-step (one-pixel) change stays drawn
            # in the difference, and the input and counterfactual show that very element in its bin
            extent = (-0.5, w - 0.5, h - 0.5, -0.5) if origin == "upper" else (-0.5, w - 0.5, -0.5, h - 0.5)
            change = panels["difference"][c].detach().float().cpu()
            if signal:
                _signal_cell(ax, name, img[0, 0], panels["input"][c, 0, 0].detach().float().cpu(), diverging)
            elif name == "difference":
                ax.imshow(_grid_image(name, img, bins), cmap=diverging, vmin=-1.0, vmax=1.0, interpolation="nearest",
                          aspect=aspect, origin=origin, extent=extent)
            elif img.dim() == 3 and img.shape[0] == 3:
                ax.imshow(_grid_image(name, img, bins, change), interpolation="nearest", aspect=aspect, origin=origin,
                          extent=extent)
            else:
                ax.imshow(_grid_image(name, img, bins, change), cmap="gray", vmin=0.0, vmax=1.0, interpolation="nearest",
                          aspect=aspect, origin=origin, extent=extent)
            ax.set_xticks([])
            ax.set_yticks([])
            if sequence_axes is not None:
                _sequence_ticks(ax, r == 2, c == 0 and not signal, sequence_axes[0])
            if c in failed:
                for spine in ax.spines.values():
                    spine.set_edgecolor(POS)
                    spine.set_linewidth(2.0)
        row = "difference\n(cf − input)" if name == "difference" else name
        axes[r][0].set_ylabel(f"{row}\n{sequence_axes[1]}" if sequence_axes is not None and not signal else row, fontsize=10)
    for c, label in enumerate(labels):
        axes[0][c].set_title(str(label), fontsize=9, color=POS if c in failed else "black")
    scale = ScalarMappable(Normalize(-1.0, 1.0), diverging)
    bar = fig.colorbar(scale, ax=list(axes.ravel()), shrink=0.3, pad=0.02, anchor=(0.0, 0.0))  # every row keeps its width: the columns align
    bar.set_ticks([-1.0, 0.0, 1.0])
    bar.set_ticklabels(["−max", "0", "+max"], fontsize=8)
    bar.set_label("max: the column's\nlargest change", fontsize=8)  # each sample's difference on its own scale
    suptitle = fig.suptitle("\n".join(lines), fontsize=11) if lines else None
    if kept is not None and not signal:  # one figure per tag: a key of another size replaces it
        keep_figure(kept, key, fig, suptitle, axes, alone=True)
    return fig


def _grid_image(name: str, img: Tensor, bins: tuple[int, int] | None = None, change: Tensor | None = None) -> Any:
    """What a counterfactual grid's image panel of row ``name`` draws of ``img`` ``[C, H, W]`` (one sample's). The
    difference of more rows or columns than its cell has pixels (a long sequence's steps, its many features, a large
    image, where ``imshow`` draws a row or column a pixel and drops the rest: a counterfactual's one changed step of
    256 was not drawn) is drawn in ``bins`` ``(rows, columns)`` (``None``: ``(H, W)``, as it is), each the change of
    largest magnitude, with its sign, of the elements it covers (:func:`_binned`); the input and the counterfactual in
    the same bins, each the element of that largest change (``change``: the sample's difference), the bin's mean where
    nothing in it changed (:func:`_binned_at_change`), so that the three rows agree bin by bin."""
    if name == "difference":
        d = largest_change(img)
        if bins is not None:
            d = _binned(_binned(d, bins[1]).T, bins[0]).T  # the largest of a rectangle: of its rows' largest
        return d.numpy()
    img = img.detach().float().cpu()
    if bins is not None and change is not None and (bins[0] < img.shape[-2] or bins[1] < img.shape[-1]):
        img = _binned_at_change(img if img.dim() == 3 else img[None], largest_change(change), bins)
    if img.dim() == 3 and img.shape[0] == 3:
        return img.permute(1, 2, 0).clamp(0, 1).numpy()
    return to_image(img).numpy()


def _binned(d: Tensor, bins: int) -> Tensor:
    """``d`` ``[H, W]`` in ``bins`` equal bins spanning its ``W`` columns (as many as it has where ``bins >= W``), each
    the value of largest magnitude, with its sign, of the columns whose centre it covers: column ``i`` in bin
    ``floor((i + 0.5) * bins / W)``, so that each is drawn where it lies on the axis of the ``W`` columns (bins of a
    whole number of steps from step 0 left the last steps in a partial bin cut off by the axis: a change at step 255
    of 256 was drawn 0.4 px wide)."""
    w = d.shape[-1]
    if bins >= w:
        return d
    of_step = _bin_of(w, bins)  # each column's bin
    starts = torch.searchsorted(of_step, torch.arange(bins))
    ends = torch.searchsorted(of_step, torch.arange(bins), right=True)
    steps = starts[:, None] + torch.arange(int((ends - starts).max()))  # [bins, the most columns of a bin]
    binned = d[..., steps.clamp(max=w - 1)] * (steps < ends[:, None])  # another bin's column counts as no change
    return strongest_channel(binned, -1)


def _bin_of(n: int, bins: int) -> Tensor:
    """The bin of each of ``n`` rows or columns in ``bins`` equal bins (as :func:`_binned`: by its centre)."""
    return torch.div((2 * torch.arange(n) + 1) * min(bins, n), 2 * n, rounding_mode="floor")


def _binned_at_change(img: Tensor, d: Tensor, bins: tuple[int, int]) -> Tensor:
    """``img`` ``[C, H, W]`` in ``bins`` ``(rows, columns)`` (as :func:`_binned` bins the difference ``d`` ``[H, W]``):
    each bin the values of its element of largest ``|d|`` (the first of equal ones), or its mean where ``d`` is 0 in all
    of it. ``[C, rows, columns]``, no more of either than ``img`` has."""
    c, h, w = img.shape
    rb, cb = _bin_of(h, bins[0]), _bin_of(w, bins[1])
    nb_r, nb_c = int(rb[-1]) + 1, int(cb[-1]) + 1
    bin_id = (rb[:, None] * nb_c + cb[None, :]).reshape(-1)  # [H·W]
    size = torch.zeros(nb_r * nb_c).scatter_add_(0, bin_id, torch.ones(h * w))
    mean = torch.zeros(c, nb_r * nb_c).scatter_add_(1, bin_id.expand(c, -1), img.reshape(c, -1)) / size
    mag = d.abs().reshape(-1)
    top = torch.zeros(nb_r * nb_c).scatter_reduce_(0, bin_id, mag, "amax", include_self=False)
    at = torch.where(mag == top[bin_id], torch.arange(h * w), h * w)  # the elements of their bin's largest change
    first = torch.full((nb_r * nb_c,), h * w).scatter_reduce_(0, bin_id, at, "amin", include_self=False)
    picked = img.reshape(c, -1)[:, first.clamp(max=h * w - 1)]
    return torch.where(top > 0, picked, mean).reshape(c, nb_r, nb_c)


def _redrawn(fig: Figure, axes: Any, panels: dict[str, Tensor], labels: Sequence[str], failed: Sequence[int]) -> Figure:
    """The kept figure ``fig`` of :func:`counterfactual_figure` (its grid of ``axes``, put back where they were built:
    :mod:`~lightning_causal.reporting.kept_figures`) showing ``panels`` under ``labels``."""
    for r, name in enumerate(("input", "counterfactual", "difference")):
        for c in range(axes.shape[1]):
            image = axes[r][c].get_images()[0]  # every row binned as it was built
            image.set_data(_grid_image(name, panels[name][c].detach().float().cpu(), image.get_array().shape[:2],
                                       panels["difference"][c].detach().float().cpu()))
    for c, label in enumerate(labels):
        axes[0][c].set_title(str(label), fontsize=9, color=POS if c in failed else "black")
    return fig


def _sequence_ticks(ax: Any, steps: bool, rows: bool, xlabel: str) -> None:
    """Integer ticks of a sequence's counterfactual panel: along the steps (``steps``: the bottom row,
    labelled ``xlabel``) and along its channels or features (``rows``: the first column)."""
    from matplotlib.ticker import MaxNLocator

    if steps:
        ax.xaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
        ax.set_xlabel(xlabel, fontsize=9)
    if rows:
        ax.yaxis.set_major_locator(MaxNLocator(nbins=4, integer=True))
    ax.tick_params(labelsize=7)


def _signal_cell(ax: Any, name: str, values: Tensor, inputs: Tensor, cmap: Any) -> None:
    """One cell of a univariate signal's counterfactual: ``values`` ``[T]`` (on the sample's ``[0, 1]``
    scale; the difference on ``[-1, 1]``) as a line, the counterfactual over ``inputs`` in grey, the
    difference as bars in the colour bar's ends by sign (a small change stays visible)."""
    t = list(range(values.shape[-1]))
    if name == "difference":
        step_bars(ax, values.tolist(), (cmap(1.0), cmap(0.0)))
        ax.axhline(0.0, color="0.6", linewidth=0.6)
        ax.set_ylim(-1.05, 1.05)
    else:
        if name == "counterfactual":
            ax.plot(t, inputs.tolist(), color="0.7", linewidth=1.0)
        ax.plot(t, values.tolist(), color="black", linewidth=1.0)
        ax.set_ylim(-0.05, 1.05)
    ax.set_xlim(-0.5, len(t) - 0.5)
