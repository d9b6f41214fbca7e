"""Attribution maps of videos ``[N, C, T, H, W]`` (as ``nn.Conv3d`` takes them) frame by frame: the figure
kind ``"frames"`` (chosen, never inferred; the ``"image"`` kind draws such an input at its one frame of
largest effect). Per sample a grid: the input's frames in the first row, each map's in a row below, so
that an effect that moves with the content (the class of a motion) shows where it goes."""

from __future__ import annotations

import textwrap
from collections.abc import Iterator
from functools import partial

from matplotlib.figure import Figure
from torch import Tensor

from lightning_causal.reporting.figure_style import not_finite_colours, title_lines
from lightning_causal.reporting.image_figures import (
    ImageOrigin,
    reshow_input,
    say_all_zero,
    say_no_finite,
    show_input,
    strongest_channel,
)
from lightning_causal.reporting.image_maps import map_scales, sample_figures
from lightning_causal.reporting.kept_figures import keep_figure, kept_figure
from lightning_causal.reporting.map_data import (
    MapData,
    drawn_samples,
    global_title,
    sample_title,
)
from lightning_causal.reporting.not_finite_marks import RINGED, ring_not_finite

__all__ = ["MAX_FRAMES", "ambiguous_frames", "drawn_frames", "frame_maps"]

MAX_FRAMES = 8  # columns of a figure: more would shrink each frame below legibility in a TensorBoard card


def ambiguous_frames(kind: str | None, inputs: Tensor) -> str | None:
    """A note for ``figure_kind="frames"`` on clips that look laid out ``[N, T, C, H, W]`` (frames first, as
    VideoMAE, TimeSformer and a frame-wise CNN take them): dimension 2 holds 1 or 3 entries (grey or RGB) and
    dimension 1 does not. The kind draws dimension 2 as the frames, so such clips would show their colour channels as
    frames, each the strongest of the real frames (a moving dot drawn as a streak, its motion gone); the note names
    the way: explain a wrapper that takes ``[N, C, T, H, W]``. ``None`` otherwise.

    Args:
        kind: the figure kind.
        inputs: the probe inputs.

    Examples:
        >>> import torch
        >>> ambiguous_frames("frames", torch.zeros(2, 8, 3, 4, 4)).split(":")[0]
        "figure kind 'frames' draws inputs of shape [2, 8, 3, 4, 4] as [N, C, T, H, W]"
        >>> ambiguous_frames("frames", torch.zeros(2, 3, 8, 4, 4)), ambiguous_frames("image", torch.zeros(2, 8, 3, 4, 4))
        (None, None)
    """
    if kind != "frames" or inputs.dim() != 5 or int(inputs.shape[2]) not in (1, 3) or int(inputs.shape[1]) in (1, 3):
        return None
    a, b = int(inputs.shape[1]), int(inputs.shape[2])
    return (f"figure kind 'frames' draws inputs of shape {list(inputs.shape)} as [N, C, T, H, W]: {a} channels over {b} "
            f"frame{'s' if b > 1 else ''}. Clips laid out [N, T, C, H, W] ({a} frames of {b} channel{'s' if b > 1 else ''}) "
            "are drawn wrong so, each frame drawn the strongest of the real frames (a motion shows as a streak): explain "
            "a wrapper that takes [N, C, T, H, W], a module whose forward returns model(x.transpose(1, 2)), on the clips "
            "transposed, unpack_batch=lambda b: (b[0].transpose(1, 2), b[1], None) (feature masks and baselines laid "
            "out alike)")


def drawn_frames(frames: int) -> list[int]:
    """The frames drawn of a video of ``frames`` frames: all of them up to :data:`MAX_FRAMES`, else that
    many evenly spaced, the first and the last included.

    Args:
        frames: the number of frames ``T``.

    Examples:
        >>> drawn_frames(4), drawn_frames(15)
        ([0, 1, 2, 3], [0, 2, 4, 6, 8, 10, 12, 14])
    """
    if frames <= MAX_FRAMES:
        return list(range(frames))
    return sorted({round(k * (frames - 1) / (MAX_FRAMES - 1)) for k in range(MAX_FRAMES)})


def _frames_figure(sample: Tensor, maps: dict[str, Tensor], vmax: dict[str, float], signed: dict[str, bool],
                   title: str, note: str | None, origin: ImageOrigin = "upper", kept: dict | None = None) -> Figure:
    """One sample ``[C, T, H, W]``: the input's frames, then each map's ``[T, H, W]`` (strongest channel), one
    row each, one colour scale per map (a bar at the row's end); every frame drawn with row 0 at ``origin``. With
    ``kept`` (``{}`` at first; the writer's path, which draws each figure before asking for the next) a sample of
    the same frames, maps, scales, note and title height as an earlier one redraws that one's figure, its images'
    data and title replaced (:mod:`~lightning_causal.reporting.kept_figures`)."""
    frames = drawn_frames(int(sample.shape[1]))
    h, w = int(sample.shape[-2]), int(sample.shape[-1])
    cell = 0.9
    fw, fh = cell * min(w / h, 1.0), cell * min(h / w, 1.0)
    width = (fw + 0.08) * len(frames) + 1.3
    lines = title_lines(title, max(16, int(width * 12)))
    notes = textwrap.wrap(note, max(16, int(width * 16))) if note else []
    below = 0.05 + 0.15 * len(notes) if notes else 0.0
    rows = 1 + len(maps)
    figsize = (width, (fh + 0.3) * rows + 0.3 * len(lines) + 0.2 + below)
    key = (tuple(sample.shape), tuple((name, tuple(m.shape), vmax[name], signed[name], not bool(m.ne(0).any()))
                                      for name, m in maps.items()), tuple(notes), figsize, len(lines), origin)
    again = kept_figure(kept, key, lines)
    if again is not None:
        grid = again.panels
        for t, ax in zip(frames, grid[0]):
            reshow_input(ax.get_images()[0], sample[:, t])
        for r, m in enumerate(maps.values(), start=1):
            for t, ax in zip(frames, grid[r]):
                ax.get_images()[0].set_data(m[t].numpy())
                ring_not_finite(ax, m[t], whole=m)
        return again.figure
    fig = Figure(figsize=figsize)
    grid = fig.subplots(rows, len(frames) + 1, squeeze=False, gridspec_kw={"width_ratios": [1] * len(frames) + [0.12]})
    for t, ax in zip(frames, grid[0]):
        show_input(ax, sample[:, t], origin)
        ax.set_title(f"t={t}", fontsize=8)
    grid[0, -1].axis("off")
    grid[0, 0].set_ylabel("input", fontsize=9)
    for r, (name, m) in enumerate(maps.items(), start=1):
        hi = vmax[name]
        cmap, lo = ("RdBu_r", -hi) if signed[name] else ("Reds", 0.0)
        for t, ax in zip(frames, grid[r]):
            im = ax.imshow(m[t].numpy(), cmap=not_finite_colours(cmap), vmin=lo, vmax=hi, interpolation="nearest", origin=origin)
            ring_not_finite(ax, m[t], whole=m)  # NaN/inf grey and ringed (not_finite_marks), not in a map all grey
        grid[r, 0].set_ylabel(name if len(name) <= 12 else name[:11] + "…", fontsize=9)
        bar = fig.colorbar(im, cax=grid[r, -1])
        bar.ax.tick_params(labelsize=7)
        say_all_zero(grid[r, 0], m, bar) or say_no_finite(grid[r, 0], m, bar)  # a row of blank or grey frames: says why
    for row in grid:
        for ax in row[:-1]:
            ax.set_xticks([])
            ax.set_yticks([])
    title = fig.suptitle("\n".join(lines), fontsize=11)
    if notes:
        fig.text(0.5, 0.02, "\n".join(notes), ha="center", va="bottom", fontsize=8, color="0.3")
    fig.tight_layout(rect=(0.0, below / fig.get_figheight(), 1.0, 1.0))
    if kept is not None:  # kept laid out: a later sample's figure has this layout (its colour limits are the key's)
        keep_figure(kept, key, fig, title, grid)
    return fig


def frame_maps(data: MapData, *, reuse: bool = False) -> list[tuple[str, Figure]] | Iterator[tuple[str, Figure]]:
    """One figure per sample, ``maps/sample_<i>``: its frames (at most :data:`MAX_FRAMES`, evenly spaced,
    :func:`drawn_frames`) across, the input in the first row and each map below, each pixel drawn at its
    channel of largest |value| (as the image kind draws an RGB map); more than two maps (the causal
    effect beside two Captum methods): one figure per sample and map, ``maps/sample_<i>/<map>``, as the
    image kind does. One colour scale per map shared by the samples and the frames: symmetric and
    diverging for a signed map, from 0 for one without negative values. Maps over the whole probe
    (Sobol' indices, ``[1, C, T, H, W]``) are drawn over sample 0. ``data.image_origin="lower"`` draws every frame of
    the input and of each map with row 0 at the bottom, as the image kind draws an image (frames of spectrograms).

    Args:
        data: the maps ``[N, C, T, H, W]`` and the probe inputs they explain.
        reuse: give the figures one at a time, a sample redrawing an earlier sample's figure of the same layout, as
            :func:`~lightning_causal.reporting.image_maps.image_maps` does: for a caller that draws or saves each
            figure before taking the next (the TensorBoard writer's path), never one that keeps them.

    Examples:
        >>> import torch
        >>> d = MapData(torch.rand(2, 1, 4, 8, 8), {"causal": torch.randn(2, 1, 4, 8, 8)}, "input_effect")
        >>> [tag for tag, _ in frame_maps(d)]
        ['maps/sample_0', 'maps/sample_1']
    """
    figures = _frame_maps(data, reuse)
    return figures if reuse else list(figures)


def _frame_maps(data: MapData, reuse: bool) -> Iterator[tuple[str, Figure]]:
    n, glob = drawn_samples(data)
    planes = {k: strongest_channel(v[:n].detach().float().cpu(), 1) for k, v in data.maps.items()}  # [n, T, H, W]
    vmax, signed, note = map_scales(data, planes)
    kept: dict | None = {} if reuse else None
    for i in range(n):
        title = global_title(data) if glob else sample_title(data, i)
        sample, maps = data.inputs[i].detach().float().cpu(), {k: v[i] for k, v in planes.items()}
        yield from sample_figures(data, i, maps, signed, note, partial(_frames_figure, sample, vmax=vmax, signed=signed, title=title,
                                                                            origin=data.image_origin, kept=kept), drawn=RINGED,
                                  title=title)
