"""Figures of attribution maps by kind of data, chosen from the input's shape (or overridden).

=========== ======================================= ==================================================
kind        inputs                                  figure (tag ``causal/<audit>/maps/...``)
=========== ======================================= ==================================================
``image``   ``[N, C, H, W]``, ``[N, H, W]``,        per sample: input | each map as a heatmap
            ``[N, C, D, H, W]`` (volumes, as        (``sample_<i>``), titled with the class explained;
            ``Conv3d`` takes them)                  of a volume the depth slice where the first map's
                                                    mean |score| is largest, named in the title
``sequence````[N, C, T]`` with ``C <= 16`` and        per sample: the input's channels as lines with each
            ``T >= 4 C`` (1-D signals), or          map overlaid as bars (one channel) or below
                                                    as a channels x time heatmap (``sample_<i>``)
            ``[N, T, F]`` with ``F <= 16`` and
            ``T >= 4 F`` (features last: the
            ``batch_first`` input of a recurrent
            layer); ``[N, T]`` (one channel) when
            chosen
``tabular`` float ``[N, D]``                        one figure: horizontal bars of the top features by
                                                    mean |score|, one panel per map (causal beside each
                                                    Captum method) (``top_features``)
``tokens``  integer ``[N, T]`` (token ids)          per sample: the tokens as a text strip coloured by
                                                    each map (``sample_<i>``)
=========== ======================================= ==================================================

``sequence_features_last`` (chosen, never inferred) draws ``[N, T, F]`` features last whatever its
shape, e.g. an LSTM's input of fewer than ``4 F`` steps: ``sequence`` draws such a shape channels
first (``T`` channels along ``F`` steps; the renderer warns once, naming this kind).

:data:`MAP_FIGURES` maps a kind to its drawing function ``MapData -> [(tag suffix, Figure)]``; a new
kind is one more entry (and, if it can be recognised from the shape, a rule in :func:`infer_kind`).
Inputs a kind cannot draw (:func:`skip_reason`) are left out, and the renderer warns once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator
from torch import Tensor

from lightning_causal.reporting.figure_style import WIDTH, short_labels, title_lines
from lightning_causal.reporting.image_figures import heatmap_row, map_scale, strongest_channel

__all__ = [
    "KINDS", "MAP_FIGURES", "MapData", "ambiguous_sequence", "explained_quantity", "infer_kind", "map_figures", "sample_title",
    "sequence_layout", "skip_reason",
]

KINDS = ("image", "sequence", "sequence_features_last", "tabular", "tokens")
_COLOURS = ("black", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")


def infer_kind(x: Tensor, meta: Mapping[str, Any] | None = None) -> str | None:
    """The kind of data of a probe's input tensor ``[N, ...]``, ``None`` when no rule applies.

    Integer columns ``[N, D]`` are token ids, unless the audit's ``meta`` names its features
    (``feature_names``) and holds no ``vocabulary``: then they are categorical codes, drawn as
    tabular bars named after their columns (a token strip left out a trailing code whose effect
    was 0 as padding and showed no column names).

    Examples:
        >>> infer_kind(torch.zeros(4, 1, 8, 8)), infer_kind(torch.zeros(4, 28, 28)), infer_kind(torch.zeros(4, 2, 100))
        ('image', 'image', 'sequence')
        >>> infer_kind(torch.zeros(4, 40, 2))  # [N, T, F]: a recurrent layer's batch_first input
        'sequence'
        >>> infer_kind(torch.zeros(4, 12)), infer_kind(torch.zeros(4, 12, dtype=torch.long)), infer_kind(torch.zeros(4))
        ('tabular', 'tokens', None)
        >>> infer_kind(torch.zeros(4, 1, 6, 8, 8))  # [N, C, D, H, W]: a volume, drawn one depth slice at a time
        'image'
        >>> infer_kind(torch.zeros(4, 3, dtype=torch.long), {"feature_names": ["colour", "size", "sex"]})  # codes
        'tabular'
    """
    if x.dim() == 2:
        named = meta is not None and bool(meta.get("feature_names")) and not meta.get("vocabulary")
        return "tabular" if x.is_floating_point() or named else "tokens"
    if x.dim() == 3:
        return "sequence" if _signal_layout(x.shape[1:]) is not None else "image"
    if x.dim() in (4, 5):
        return "image"
    return None


_DIMS = {"image": (3, 4, 5), "sequence": (2, 3), "sequence_features_last": (2, 3)}  # input dimensions (with N) a kind can draw; others: any


def skip_reason(kind: str | None, inputs: Tensor) -> str | None:
    """Why attribution maps of ``inputs`` ``[N, ...]`` cannot be drawn as ``kind``, ``None`` when they can.

    Examples:
        >>> skip_reason("image", torch.zeros(2, 1, 4, 8, 8)) is None
        True
        >>> skip_reason("image", torch.zeros(2, 1, 2, 4, 8, 8))
        "figure kind 'image' draws inputs [N, H, W], [N, C, H, W] or [N, C, D, H, W] but the probe's inputs have shape [2, 1, 2, 4, 8, 8]"
    """
    shape = list(inputs.shape)
    if kind is None:
        return f"no figure kind recognised for inputs of shape {shape} (pass figure_kind= to choose one of {KINDS})"
    if kind not in MAP_FIGURES:
        return f"no drawing function for figure kind {kind!r}"
    dims = _DIMS.get(kind)
    if dims is not None and inputs.dim() not in dims:
        shapes = {"image": "[N, H, W], [N, C, H, W] or [N, C, D, H, W]", "sequence": "[N, T], [N, C, T] or [N, T, F]",
                  "sequence_features_last": "[N, T] or [N, T, F]"}[kind]
        return f"figure kind {kind!r} draws inputs {shapes} but the probe's inputs have shape {shape}"
    return None


@dataclass
class MapData:
    """What a map figure draws.

    Args:
        inputs: the probe's input ``[N, ...]``.
        maps: name -> maps shaped like ``inputs`` (``[N, ...]``, or ``[1, ...]`` for maps over the
            whole probe such as Sobol' indices); ``"causal"`` first by convention.
        audit: the audit's name (figure titles).
        meta: the result's ``meta`` (``feature_names``, ``class_names``, ``targets``,
            ``feature_groups``, ``target``/``target_name``, ``vocabulary``; ``outputs``: 1 for a model of
            one output, whose maps explain "the output", not a class; ``regression``: several outputs
            of a regression (a forecast of several horizons), ``targets`` index outputs, not classes; ``shared_map_scale``:
            the maps are of one unit and share one colour scale).
        labels: the probe's labels ``[N]``, if any.
        max_samples: samples drawn by the per-sample kinds.
    """

    inputs: Tensor
    maps: dict[str, Tensor]
    audit: str
    meta: dict[str, Any] = field(default_factory=dict)
    labels: Tensor | None = None
    max_samples: int = 4

    def class_name(self, index: int) -> str:
        names = self.meta.get("class_names")
        return repr(names[index]) if names is not None and 0 <= index < len(names) else str(index)


def sample_title(data: MapData, i: int) -> str:
    """``"<audit>, sample i (label L): explains class C"``; the class is the one each explanation's
    target output is read from (the predicted class unless the audit fixes ``target``).

    Examples:
        >>> d = MapData(torch.zeros(2, 3), {}, "ie", {"targets": [1, 0], "class_names": ["no", "yes"]}, torch.tensor([1, 1]))
        >>> sample_title(d, 1)
        "ie, sample 1 (label 'yes'): explains class 'no'"
    """
    label = _label_text(data, i)
    targets = data.meta.get("targets")
    noun = _noun(data)
    explained = f": explains {noun} {data.class_name(int(targets[i]))}" if targets is not None and i < len(targets) else ""
    if explained and data.meta.get("outputs") == 1:  # a regression or one-logit model: its output, not a class
        explained = ": explains the output"
    return f"{data.audit}, sample {i}{label}{explained}"


def _label_text(data: MapData, i: int) -> str:
    """``" (label L)"`` for one class or one number per sample; nothing for labels with more than
    one entry per sample (token tags ``[N, T]``, masks ``[N, H, W]``, multi-label rows)."""
    labels = data.labels
    if labels is not None and labels.dim() == 2 and labels.shape[1] == 1:
        labels = labels[:, 0]  # regression targets [N, 1]
    if labels is None or labels.dim() != 1 or i >= labels.shape[0]:
        return ""
    if labels.is_floating_point():
        return f" (label {float(labels[i]):.3g})"
    return f" (label {data.class_name(int(labels[i]))})"


def explained_quantity(meta: Mapping[str, Any], class_name: Callable[[int], str] | None = None) -> str:
    """What a global analysis (Sobol') explained, from its ``meta``: ``"P(class C)"`` for a class
    probability (named by ``class_name``, else ``meta["target_name"]``), ``"the output"`` of a model of
    one output (``"output j"`` where ``j > 0`` or ``meta["outputs"] > 1``) where ``meta["explained"]``
    is ``"raw output"`` (a regression model), ``""`` without a target.

    Examples:
        >>> explained_quantity({"target": 1, "explained": "softmax probability"})
        'P(class 1)'
        >>> explained_quantity({"target": 0, "explained": "raw output"})
        'the output'
        >>> explained_quantity({"target": 0, "explained": "raw output", "outputs": 3})  # horizon 0 of 3
        'output 0'
    """
    target = meta.get("target")
    if not isinstance(target, int):
        return ""
    if meta.get("explained") == "raw output":
        return "the output" if target == 0 and meta.get("outputs", 1) == 1 else f"output {target}"
    if class_name is not None:
        return f"P(class {class_name(target)})"
    return f"P(class {meta.get('target_name', target)})"


def _global_title(data: MapData) -> str:
    what = explained_quantity(data.meta, data.class_name)
    return f"{data.audit}: maps over the whole probe{' of ' + what if what else ''} (input: sample 0)"


def _samples(data: MapData) -> tuple[int, bool]:
    """How many samples to draw and whether the maps are global (one map for the whole probe)."""
    sizes = [int(m.shape[0]) for m in data.maps.values()]
    glob = all(s == 1 for s in sizes) and data.inputs.shape[0] > 1
    return min(data.max_samples, int(data.inputs.shape[0]), *sizes), glob


def _limits(data: MapData, values: dict[str, Tensor]) -> dict[str, float]:
    """Each map's colour-scale limit: its own largest |value| (maps of different units, such as the
    causal effect beside Captum's attributions), or, when ``meta["shared_map_scale"]`` is set (maps
    of one unit, such as Sobol' first-order and total indices, both shares of the output variance),
    the largest over the maps, so that equal values look equal in every panel."""
    own = {k: float(v.detach().float().abs().max()) if v.numel() else 0.0 for k, v in values.items()}
    if data.meta.get("shared_map_scale"):
        peak = max(own.values(), default=0.0)
        own = dict.fromkeys(own, peak)
    return {k: v or 1.0 for k, v in own.items()}


def _drawn_planes(maps: Tensor) -> Tensor:
    """The values a heatmap draws of maps ``[N, C, H, W]`` / ``[N, C, D, H, W]``: each pixel's
    channel of largest magnitude (:func:`~lightning_causal.reporting.image_figures.strongest_channel`; the
    channels' mean drew a group of one colour channel at a third of its effect, and opposite groups
    cancelled); ``[N, H, W]`` as they are. Colour scales are set on these values."""
    maps = maps.detach().float()
    return strongest_channel(maps, 1) if maps.dim() in (4, 5) else maps


def _sign_note(signed: dict[str, bool], data: MapData) -> str | None:
    """What red and blue mean in maps of a class's score (of the output, for a model of one output),
    ``None`` without a signed map; maps without negative values (Saliency's |gradient|) are named as
    showing size only."""
    if not any(signed.values()):
        return None
    what = ("the output" if data.meta.get("outputs") == 1 else "the explained output" if data.meta.get("regression")
            else "the explained label's logit" if data.meta.get("multi_label") else "the explained class's score")
    unsigned = [name for name, s in signed.items() if not s]
    return f"red: raises {what}, blue: lowers it" + (f"; {', '.join(unsigned)}: size only" if unsigned else "")


def image_maps(data: MapData) -> list[tuple[str, Figure]]:
    """One heatmap figure per sample: input | each map (wrapped into rows of at most
    :data:`~lightning_causal.reporting.image_figures.MAX_COLUMNS` panels), one colour scale per map shared by
    the samples: symmetric and diverging for a signed map, from 0 for a map without negative values
    (Saliency). A volume ``[C, D, H, W]`` is drawn at one depth slice: the one where the first map
    (causal) has the largest mean |score|, named in the title. Signed maps of a class's score
    (``meta["targets"]``: effects, attributions) say below what red and blue mean."""
    n, glob = _samples(data)
    planes = {k: _drawn_planes(v[:n]) for k, v in data.maps.items()}  # what is drawn: each pixel's strongest channel
    vmax = _limits(data, planes)
    signed = {k: bool((v < 0).any()) for k, v in planes.items()}  # one kind of scale per map for every sample
    note = _sign_note(signed, data) if data.meta.get("targets") else None  # per-sample scores of a class
    out = []
    for i in range(n):
        title = _global_title(data) if glob else sample_title(data, i)
        sample, maps = data.inputs[i], {k: v[i] for k, v in data.maps.items()}
        if sample.dim() == 4:  # [C, D, H, W]
            first = next(iter(maps.values()))
            d = int(first.detach().float().abs().mean(dim=(0, 2, 3)).argmax())
            sample, maps = sample[:, d], {k: v[:, d] for k, v in maps.items()}
            title = f"{title}, depth slice {d} of 0–{data.inputs.shape[2] - 1} (largest mean |{next(iter(data.maps))}|)"
        out.append((f"maps/sample_{i}", heatmap_row(sample, maps, vmax, title, signed=signed, note=note)))
    return out


def _signal_layout(shape: tuple[int, ...] | torch.Size) -> str | None:
    """How one sample ``[A, B]`` holds a 1-D signal: ``"first"`` (``[C, T]``, channels first, as
    ``Conv1d`` takes it: ``C <= 16``, ``T >= 4C``), ``"last"`` (``[T, F]``, features last, as a
    ``batch_first`` recurrent layer takes it: ``F <= 16``, ``T >= 4F``), else ``None``."""
    a, b = int(shape[0]), int(shape[1])
    if a <= 16 and b >= 4 * a:
        return "first"
    if b <= 16 and a >= 4 * b:
        return "last"
    return None


def sequence_layout(kind: str | None, inputs: Tensor) -> str:
    """How the drawn samples of ``inputs`` ``[N, T]`` / ``[N, A, B]`` hold time: ``"last"`` (features
    last ``[N, T, F]``: ``kind="sequence_features_last"``, or ``"sequence"`` where :func:`infer_kind`'s
    rule reads the shape as ``[N, T, F]``), else ``"first"`` (``[N, C, T]``; ``[N, T]`` is one channel).

    Examples:
        >>> sequence_layout("sequence", torch.zeros(2, 10, 8)), sequence_layout("sequence_features_last", torch.zeros(2, 10, 8))
        ('first', 'last')
        >>> sequence_layout("sequence", torch.zeros(2, 40, 2))
        'last'
    """
    if inputs.dim() != 3:
        return "first"
    if kind == "sequence_features_last":
        return "last"
    return "last" if _signal_layout(inputs.shape[1:]) == "last" else "first"


def ambiguous_sequence(kind: str | None, inputs: Tensor) -> str | None:
    """A note for ``figure_kind="sequence"`` on ``[N, A, B]`` inputs whose shape does not say which
    axis is time (neither ``[N, C, T]`` with ``T >= 4C`` nor ``[N, T, F]`` with ``T >= 4F``): they are
    drawn channels first, and the note says how to draw them features last; ``None`` otherwise.

    Examples:
        >>> ambiguous_sequence("sequence", torch.zeros(2, 10, 8)).split(" (")[0]
        "figure kind 'sequence' draws inputs of shape [2, 10, 8] channels first"
        >>> ambiguous_sequence("sequence", torch.zeros(2, 3, 40)) is None, ambiguous_sequence("sequence_features_last", torch.zeros(2, 10, 8)) is None
        (True, True)
    """
    if kind != "sequence" or inputs.dim() != 3 or _signal_layout(inputs.shape[1:]) is not None:
        return None
    a, b = int(inputs.shape[1]), int(inputs.shape[2])
    return (f"figure kind 'sequence' draws inputs of shape {list(inputs.shape)} channels first ([N, C, T]: {a} channels "
            f"along {b} time steps); for features last ([N, T, F], as a batch_first recurrent layer takes them: {a} "
            f"time steps of {b} features) pass figure_kind='sequence_features_last'")


def sequence_maps(data: MapData, layout: str | None = None) -> list[tuple[str, Figure]]:
    """Per sample, the input over time and each map beside it. One channel: the input as a line
    (left axis) with each map as bars (right axis, red positive, blue negative, one scale per map:
    symmetric for a signed map, from 0 for a map without negative values). Several channels or
    features: the input's first four as lines (a heatmap of all of them beyond four), then each
    map as a heatmap with one row per channel or feature (so that the figure shows which feature
    carries an effect, and no effects of opposite sign cancel), on one scale per map shared by the
    samples: symmetric and diverging for a signed map, from 0 for a map without negative values
    (Saliency). A features-last sample ``[T, F]`` is drawn along ``T``: ``layout="last"``, or by
    default where :func:`sequence_layout` reads the shape so. Signed maps of a class's score
    (``meta["targets"]``) say below what red and blue mean."""
    n, glob = _samples(data)
    last = data.inputs.dim() == 3 and (layout or sequence_layout("sequence", data.inputs)) == "last"
    word = "feature" if last else "channel"
    out = []
    for i in range(n):
        x = data.inputs[i].detach().float().cpu()
        x = x.unsqueeze(0) if x.dim() == 1 else x.T if last else x  # [C, T]
        maps = {name: (m[i].detach().float().cpu().reshape(data.inputs.shape[1:]).T if last else
                       m[i].detach().float().cpu().reshape(x.shape)) for name, m in data.maps.items()}
        limits = _limits(data, {name: m[: max(1, n)] for name, m in data.maps.items()})
        scales = {name: map_scale(m[: max(1, n)], limits[name]) for name, m in data.maps.items()}  # one per map, shared by the samples
        xlabel = "time step" if last else "position"
        fig = _signal_bars(x, maps, scales, xlabel) if x.shape[0] == 1 else _signal_heatmaps(x, maps, scales, word, xlabel)
        lines = title_lines(_global_title(data) if glob else sample_title(data, i), int(fig.get_figwidth() * 11))
        fig.set_figheight(fig.get_figheight() + 0.25 * (len(lines) - 1))  # a long title wrapped, not cut at both edges
        fig.suptitle("\n".join(lines), fontsize=11)
        note = _sign_note({name: scale[0] == "RdBu_r" for name, scale in scales.items()}, data) if data.meta.get("targets") else None
        if note:  # one small line below: what red and blue mean
            fig.set_figheight(fig.get_figheight() + 0.2)
            fig.text(0.5, 0.02, note, ha="center", va="bottom", fontsize=8, color="0.3")
        fig.tight_layout(rect=(0.0, 0.2 / fig.get_figheight() if note else 0.0, 1.0, 1.0))
        out.append((f"maps/sample_{i}", fig))
    return out


def _signal_bars(x: Tensor, maps: dict[str, Tensor], scales: dict[str, tuple[str, float, float]], xlabel: str) -> Figure:
    """One channel ``[1, T]``: a panel per map, the input as a line and the map as bars."""
    t = list(range(x.shape[-1]))
    fig = Figure(figsize=(WIDTH * 1.15, 0.8 + 1.2 * len(maps)))
    axes = fig.subplots(len(maps), 1, squeeze=False, sharex=True)[:, 0]
    for ax, (name, m) in zip(axes, maps.items()):
        ax.plot(t, x[0].tolist(), color="black", linewidth=1.1)
        ax.set_ylabel("input", fontsize=9)
        twin = ax.twinx()
        effect = m[0].tolist()
        twin.bar(t, effect, width=1.0, alpha=0.45, color=["tab:red" if v >= 0 else "tab:blue" for v in effect])
        _, low, high = scales[name]
        twin.set_ylim(low, high)  # an unsigned map (Saliency, a total Sobol' index) from 0: no negative half
        twin.set_ylabel(name, fontsize=9)
        twin.tick_params(labelsize=8)
        ax.tick_params(labelsize=8)
    axes[-1].set_xlabel(xlabel, fontsize=10)
    axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))  # steps, not 2.5
    return fig


def _signal_heatmaps(x: Tensor, maps: dict[str, Tensor], scales: dict[str, tuple[str, float, float]], word: str,
                     xlabel: str) -> Figure:
    """Several channels ``[C, T]``: the input on top, then each map as a ``[C, T]`` heatmap."""
    c, t = x.shape
    extent = (-0.5, t - 0.5, c - 0.5, -0.5)
    rows = 1 + len(maps)
    fig = Figure(figsize=(WIDTH * 1.15, 0.9 + rows * (1.0 + 0.04 * c)))
    axes = fig.subplots(rows, 1, squeeze=False, sharex=True)[:, 0]
    if c <= 4:
        for k in range(c):
            axes[0].plot(range(t), x[k].tolist(), color=_COLOURS[k], linewidth=1.1, label=f"{word} {k}")
        axes[0].legend(fontsize=7, loc="upper left", ncol=c, frameon=False)
    else:
        im = axes[0].imshow(x.numpy(), aspect="auto", cmap="viridis", interpolation="nearest", extent=extent)
        _side_colorbar(fig, axes[0], im)
    axes[0].set_ylabel("input" if c <= 4 else f"input\n{word}", fontsize=9)  # a heatmap's rows: channels or features
    for ax, (name, m) in zip(axes[1:], maps.items()):
        cmap, vmin, vmax = scales[name]
        im = ax.imshow(m.numpy(), aspect="auto", cmap=cmap, vmin=vmin, vmax=vmax, interpolation="nearest", extent=extent)
        _side_colorbar(fig, ax, im)
        ax.set_ylabel(f"{name}\n{word}", fontsize=9)
    for ax in axes[int(c <= 4):]:
        step = max(1, (c + 7) // 8)  # at most 8 labelled rows
        ax.set_yticks(list(range(0, c, step)))
    for ax in axes:
        ax.tick_params(labelsize=8)
    axes[-1].set_xlabel(xlabel, fontsize=10)
    axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))  # steps, not 2.5
    return fig


def _side_colorbar(fig: Figure, ax: Any, im: Any) -> None:
    """A colour bar beside ``ax`` that leaves its width, so the panels' time axes stay aligned."""
    cax = ax.inset_axes((1.01, 0.0, 0.02, 1.0))
    fig.colorbar(im, cax=cax).ax.tick_params(labelsize=7)


def _column_groups(data: MapData, d: int) -> tuple[list[int], list[str]]:
    """One representative column per feature group and the groups' names."""
    groups = data.meta.get("feature_groups")
    if groups is None or len(groups) != d:
        groups = list(range(d))
    first: dict[int, int] = {}
    for column, g in enumerate(groups):
        first.setdefault(int(g), column)
    ids = sorted(first)
    names = data.meta.get("feature_names")
    if names is None or len(names) != len(ids):
        names = [f"x{g}" if groups == list(range(d)) else f"group {g}" for g in ids]
    return [first[g] for g in ids], [str(s) for s in names]


def _explained(data: MapData) -> str:
    if data.meta.get("outputs") == 1:
        return "the output"
    targets = data.meta.get("targets")
    noun = _noun(data)
    if targets and len(set(targets)) == 1:
        return f"{noun} {data.class_name(int(targets[0]))}"
    if data.meta.get("regression"):
        return "each sample's largest output" if targets else "the target output"
    if data.meta.get("multi_label"):
        return "each sample's label of largest logit" if targets else "the target label"
    return "each sample's predicted class" if targets else "the target class"


def _noun(data: MapData) -> str:
    """What an explained output is called: ``"output"`` (a regression), ``"label"`` (a multi-label
    classifier: multi-hot probe labels) or ``"class"``."""
    return "output" if data.meta.get("regression") else "label" if data.meta.get("multi_label") else "class"


def tabular_maps(data: MapData, top: int = 8) -> list[tuple[str, Figure]]:
    """Bars of the ``top`` features by mean |score| of the first map (causal), largest first. One
    map: horizontal bars coloured by the sign of the mean score (red raises the explained class).
    Several maps (causal beside each Captum method): grouped bars, one per map and feature, each
    map's mean |score| relative to its own largest (the methods' units differ)."""
    columns, names = _column_groups(data, int(data.inputs.shape[-1]))
    names = short_labels(names)  # full names: the JSON report and the text card
    scores = {k: v.detach().float().cpu().reshape(v.shape[0], -1)[:, columns] for k, v in data.maps.items()}
    first = next(iter(scores.values()))
    k, m = min(top, len(columns)), len(scores)
    order = first.abs().mean(0).topk(k).indices.tolist()
    title = "\n".join(title_lines(f"{data.audit}: top features over {int(first.shape[0])} probe samples", int(WIDTH * 12))
                      + title_lines(f"explaining {_explained(data)}", int(WIDTH * 12)))  # 10 pt: about 12 characters per inch
    if m == 1:
        fig = Figure(figsize=(WIDTH, 1.3 + 0.27 * k))
        ax = fig.subplots()
        size, mean = first.abs().mean(0), first.mean(0)
        ax.barh(range(k), [float(size[j]) for j in order[::-1]],  # barh draws bottom-up: largest on top
                color=["tab:red" if float(mean[j]) >= 0 else "tab:blue" for j in order[::-1]])
        ax.set_yticks(range(k))
        ax.set_yticklabels([names[j] for j in order[::-1]], fontsize=9)
        raised = ("the output" if data.meta.get("outputs") == 1 or data.meta.get("regression")
                  else "the label's logit" if data.meta.get("multi_label") else "the class score")
        ax.set_xlabel(f"mean |effect| (red: raises {raised})", fontsize=9)
    else:
        slanted = max(len(names[j]) for j in order) * k > 48
        fig = Figure(figsize=(WIDTH * 1.1, 2.9 + (0.5 if slanted else 0.0)))
        ax = fig.subplots()
        width = 0.8 / m
        for i, (name, s) in enumerate(scores.items()):
            size = s.abs().mean(0)
            peak = float(size.max()) or 1.0
            ax.bar([j + (i - (m - 1) / 2) * width for j in range(k)], [float(size[f]) / peak for f in order], width,
                   label=name, color=_COLOURS[i % len(_COLOURS)])
        ax.set_xticks(range(k))
        ax.set_xticklabels([names[j] for j in order], fontsize=9, rotation=35 if slanted else 0, ha="right" if slanted else "center")
        ax.set_ylabel("mean |score| / largest", fontsize=9)
        ax.legend(fontsize=8, ncol=min(m, 4), loc="upper right")
        ax.set_ylim(0, 1.3)
    fig.suptitle(title, fontsize=10)  # centred on the figure: long feature names narrow the axes
    ax.tick_params(labelsize=9)
    fig.tight_layout()
    return [("maps/top_features", fig)]


def _unpadded(ids: list[int], scores: list[Tensor]) -> tuple[int, int]:
    """The tokens to draw, ``ids[start:end]``: a trailing run of the last token id (right padding)
    and a leading run of the first (left padding, as GPT-2 and Llama batches are padded) whose
    scores are all 0 are left out (padded positions are not run: their effect is exactly 0); a
    leading run of one token is kept (a first token whose effect happens to be 0)."""
    def blank(k: int) -> bool:
        return all(float(v[k]) == 0.0 for v in scores)

    end = len(ids)
    while end > 1 and ids[end - 1] == ids[-1] and blank(end - 1):
        end -= 1
    start = 0
    while start < end - 1 and ids[start] == ids[0] and blank(start):
        start += 1
    return (start if start >= 2 else 0), end  # one unscored first token ([CLS] of effect 0) is drawn


def _cut(word: str, width: int) -> str:
    """``word``, cut to ``width`` characters with an ellipsis (one long token, a URL, must not push
    the strip's other words off the figure)."""
    return word if len(word) <= width else word[: max(1, width - 1)] + "…"


def _word(vocabulary: list[str] | dict[str, str] | None, token: int) -> str:
    """``token``'s word: ``vocabulary[token]`` (a list) or ``vocabulary[str(token)]`` (a mapping,
    as audits store the words of a probe), else the id itself."""
    if isinstance(vocabulary, dict):
        return str(vocabulary.get(str(token), token))
    return str(vocabulary[token]) if vocabulary is not None and 0 <= token < len(vocabulary) else str(token)


def _token_lines(words: list[str], chars_per_line: int) -> list[list[tuple[int, int, str]]]:
    """Words laid out left to right and wrapped: per line, ``(index, column, word)``."""
    lines: list[list[tuple[int, int, str]]] = [[]]
    col = 0
    for j, w in enumerate(words):
        if col and col + len(w) > chars_per_line:
            lines.append([])
            col = 0
        lines[-1].append((j, col, w))
        col += len(w) + 1
    return lines


def token_maps(data: MapData, chars_per_line: int = 56) -> list[tuple[str, Figure]]:
    """Per sample, one text strip per map: each token (its id, or its word in ``meta["vocabulary"]``)
    boxed in the colour of its score (red positive, blue negative, one symmetric scale per map
    shared by the drawn sentences, as for images: a sentence whose effects are all near 0 stays
    pale; each strip's title gives its own largest |score| and the scale where they differ),
    in a monospace font laid out by word length and wrapped at ``chars_per_line`` (a word longer
    than half a line is cut); padding at either end (a run of the first or last id with all scores
    0) is left out."""
    from matplotlib import colormaps

    n, _ = _samples(data)
    vocab = data.meta.get("vocabulary")
    cmap = colormaps["RdBu_r"]
    limits = _limits(data, {name: m[:n] for name, m in data.maps.items()})  # one scale per map for every drawn sentence
    out = []
    for i in range(n):
        ids = data.inputs[i].reshape(-1).tolist()
        scores = {name: m[i].detach().float().cpu().reshape(-1) for name, m in data.maps.items()}
        start, end = _unpadded(ids, list(scores.values()))
        words = [_cut(_word(vocab, t), chars_per_line // 2) for t in ids[start:end]]
        scores = {name: v[start:end] for name, v in scores.items()}
        lines = _token_lines(words, chars_per_line)
        fig = Figure(figsize=(WIDTH * 1.15, 0.6 + (0.3 * len(lines) + 0.4) * len(scores)))
        axes = fig.subplots(len(scores), 1, squeeze=False)[:, 0]
        for ax, (name, v) in zip(axes, scores.items()):
            lim, own = limits[name], float(v.abs().max())
            for row, line in enumerate(lines):
                for j, col, text in line:
                    level = float(v[j]) / lim
                    ax.text(col / chars_per_line, 1.0 - (row + 0.5) / len(lines), text, fontsize=10, family="monospace",
                            ha="left", va="center", color="white" if abs(level) > 0.6 else "black",
                            bbox={"facecolor": cmap(0.5 + 0.5 * level), "edgecolor": "none", "pad": 1.5})
            ax.set_xlim(0, 1)
            scale = "" if own == lim else f", colour scale ±{lim:.3g}"
            ax.set_title(f"{name} (max |score| {own:.3g}{scale}; red +, blue −)", fontsize=9, loc="left")  # no colour bar
            ax.axis("off")
        fig.suptitle(sample_title(data, i), fontsize=10)
        fig.tight_layout()
        out.append((f"maps/sample_{i}", fig))
    return out


MAP_FIGURES: dict[str, Callable[[MapData], list[tuple[str, Figure]]]] = {
    "image": image_maps,
    "sequence": sequence_maps,
    "sequence_features_last": lambda data: sequence_maps(data, "last"),
    "tabular": tabular_maps,
    "tokens": token_maps,
}


def map_figures(data: MapData, kind: str | None = None) -> list[tuple[str, Figure]]:
    """The figures of ``data.maps`` for ``kind`` (default: :func:`infer_kind` of the inputs);
    none for inputs the kind cannot draw (:func:`skip_reason`) or maps not shaped like the inputs.

    Examples:
        >>> d = MapData(torch.rand(5, 3), {"causal": torch.randn(5, 3), "Saliency": torch.rand(5, 3)}, "cb")
        >>> [tag for tag, _ in map_figures(d)], [tag for tag, _ in map_figures(d, "sequence")]
        (['maps/top_features'], ['maps/sample_0', 'maps/sample_1', 'maps/sample_2', 'maps/sample_3'])
    """
    kind = kind or infer_kind(data.inputs, data.meta)
    maps = {k: v for k, v in data.maps.items() if v.shape[1:] == data.inputs.shape[1:]}
    if kind is None or skip_reason(kind, data.inputs) is not None or not maps:
        return []
    return MAP_FIGURES[kind](MapData(data.inputs, maps, data.audit, data.meta, data.labels, data.max_samples))
