"""Where an input feature group lies, by the axes of its input: the box a report row names ("steps 800–899"
of a waveform, "depth 0–7, rows 8–15, cols 8–15" of a volume), and the rule that says which axis of a
3-D input ``[N, A, B]`` is time."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar

import torch
from torch import Tensor

__all__ = ["AXES", "cloud_layout", "figure_axes", "group_key", "group_region", "point_clouds", "reading_clips", "reading_clouds",
           "region_tag", "region_text", "signal_layout", "video_clips"]

#: the axes a region names, in the order a report reads them (``frames``: a video clip's, under :func:`video_clips`;
#: ``points``/``coordinates``: a point cloud's, under :func:`point_clouds`)
AXES = ("points", "steps", "frames", "depth", "rows", "cols", "channels", "features", "coordinates")

_CLIPS: ContextVar[bool] = ContextVar("video_clips", default=False)
_CLOUDS: ContextVar[bool] = ContextVar("point_clouds", default=False)
#: how a 3-D input's samples hold time under a sequence figure kind (:func:`figure_axes`): ``"first"`` (``[C, T]``,
#: ``"sequence"``, or its reading of the shape), ``"last"`` (``[T, F]``, ``"sequence_features_last"``), ``None`` outside
_SEQUENCES: ContextVar[str | None] = ContextVar("sequences", default=None)


@contextmanager
def _flag(var: ContextVar[bool], value: bool, name: str) -> Iterator[None]:
    if not isinstance(value, bool):
        raise TypeError(f"Expected argument `{name}` to be a bool but got {value!r:.80}")
    token = var.set(value)
    try:
        yield
    finally:
        var.reset(token)


@contextmanager
def point_clouds(clouds: bool = True) -> Iterator[None]:
    """Within it, a 3-D input ``[N, P, D]`` or ``[N, D, P]`` (a ``Conv1d`` PointNet's) is read as point clouds: its
    groups' boxes (:func:`group_region`), hence ``top_groups`` rows, Sobol' ``indices`` rows and ``S/``/``ST/`` tags,
    the text card and the report, name ``points`` (and ``coordinates`` where a group holds some of them only) where a
    signal's name ``steps`` and ``channels``/``features`` or an image's ``rows``/``cols``. The coordinates are the
    shorter axis, as :func:`~lightning_causal.reporting.point_maps.points_last` draws them. ``CausalAuditCallback``
    and ``audit_model`` run their audits within it under ``figure_kind="points"``; around ``audit.run`` it does the
    same for audits run by hand.

    Args:
        clouds: read 3-D inputs as point clouds (``False``: as signals or images, the default outside it).

    Examples:
        >>> from lightning_causal.audits import InputEffectAudit
        >>> from lightning_causal.audits.base import Probe
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(3 * 64, 2))
        >>> per_point = torch.arange(64).reshape(1, 1, 64).expand(1, 3, 64)  # [N, 3, P]: a group per point
        >>> audit = InputEffectAudit(feature_mask=per_point, top_k=1, ace_values=None)
        >>> probe = Probe(torch.rand(3, 3, 64))
        >>> def row():  # the axes the top group's row names
        ...     return {k: v for k, v in audit.run(model, probe).tables["top_groups"][0].items() if k in AXES}
        >>> with point_clouds():
        ...     cloud = row()
        >>> list(cloud), list(row())  # a cloud's row, a signal's
        (['points'], ['steps'])
    """
    with _flag(_CLOUDS, clouds, "clouds"):
        yield


@contextmanager
def video_clips(clips: bool = True) -> Iterator[None]:
    """Within it, a 5-D input ``[N, C, T, H, W]`` is read as video clips: its groups' boxes
    (:func:`group_region`), hence ``top_groups`` rows, Sobol' ``indices`` rows and ``S/``/``ST/`` tags, the text card
    and the report, name ``frames`` where a volume's ``[N, C, D, H, W]`` name ``depth``. Nothing in a 5-D tensor
    tells the two apart: ``CausalAuditCallback`` and ``audit_model`` run their audits within it under
    ``figure_kind="frames"``; around ``audit.run`` it does the same for audits run by hand.

    Args:
        clips: read 5-D inputs as clips (``False``: as volumes, the default outside it).

    Examples:
        >>> from lightning_causal.audits import InputEffectAudit
        >>> from lightning_causal.audits.base import Probe
        >>> model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(2 * 4 * 8 * 8, 2))
        >>> audit, probe = InputEffectAudit(patch_size=4, top_k=1, ace_values=None), Probe(torch.rand(3, 2, 4, 8, 8))
        >>> def axes():  # the axes the top group's row names
        ...     return [k for k in audit.run(model, probe).tables["top_groups"][0] if k in AXES]
        >>> with video_clips():
        ...     clip = axes()
        >>> clip, axes()  # a clip's row, a volume's
        (['frames', 'rows', 'cols'], ['depth', 'rows', 'cols'])
    """
    with _flag(_CLIPS, clips, "clips"):
        yield


@contextmanager
def figure_axes(figure_kind: str | None) -> Iterator[None]:
    """The axes a figure kind names, the one context ``CausalAuditCallback`` (its dry run and every audit) and
    ``audit_model`` enter: :func:`video_clips` under ``"frames"``, :func:`point_clouds` under ``"points"``; under
    ``"sequence"`` and ``"sequence_features_last"`` a 3-D input is a sequence whatever its shape, its groups' boxes
    naming ``steps`` and ``channels``/``features`` as its figure draws them (``[N, T, C]`` of 12 steps of 4 channels
    named ``rows`` and ``cols``, an image's axes: :func:`signal_layout` reads no time axis in it); neither under another
    kind.

    Args:
        figure_kind: the callback's ``figure_kind`` (``None``, ``"auto"``, ``"frames"``, ``"points"``, ...).

    Examples:
        >>> with figure_axes("points"):
        ...     inside = reading_clouds(), reading_clips()
        >>> inside, reading_clouds()
        ((True, False), False)
        >>> steps = torch.arange(12).view(1, 12, 1).expand(1, 12, 4)  # a group per step of [N, 12, 4]
        >>> with figure_axes("sequence_features_last"):
        ...     sequence = group_region(steps, 5, torch.zeros(2, 12, 4))
        >>> sequence, group_region(steps, 5, torch.zeros(2, 12, 4))
        ({'steps': [5, 6]}, {'rows': [5, 6], 'cols': [0, 4]})
    """
    sequences = {"sequence": "first", "sequence_features_last": "last"}.get(figure_kind) if isinstance(figure_kind, str) else None
    token = _SEQUENCES.set(sequences)
    try:
        with video_clips(figure_kind == "frames"), point_clouds(figure_kind == "points"):
            yield
    finally:
        _SEQUENCES.reset(token)


def reading_clouds() -> bool:
    """Whether a 3-D input is read as point clouds here (within :func:`point_clouds`): ``CounterfactualAudit``'s
    changes then name points and coordinates, not steps and channels (:func:`cloud_layout`)."""
    return _CLOUDS.get()


def cloud_layout(shape: tuple[int, ...] | torch.Size, steps: int | None = None) -> str:
    """How one point cloud ``[A, B]`` holds its points: ``"last"`` (``[P, D]``, coordinates last) or ``"first"``
    (``[D, P]``, a ``Conv1d`` PointNet's): the points are the axis ``steps`` of ``x`` its padding runs along (1 or 2),
    else the longer (``[P, D]`` where both are as long).

    Args:
        shape: one sample's shape ``[A, B]``.
        steps: the axis of ``x`` (1 or 2) that padded points lie along, or ``None``.

    Examples:
        >>> cloud_layout((64, 3)), cloud_layout((3, 64)), cloud_layout((3, 64), steps=1)
        ('last', 'first', 'last')
    """
    first = steps == 1 if steps is not None else shape[0] >= shape[1]
    return "last" if first else "first"


def reading_clips() -> bool:
    """Whether a 5-D input is read as video clips here (within :func:`video_clips`): the third axis of ``[N, C, T, H,
    W]`` is then a clip's ``frames`` (``CounterfactualAudit``'s row names its ``frame``), else a volume's ``depth``.

    Examples:
        >>> with video_clips():
        ...     inside = reading_clips()
        >>> inside, reading_clips()
        (True, False)
    """
    return _CLIPS.get()


def group_key(group: int, feature_names: Sequence[str] | None = None) -> dict[str, int | str]:
    """The columns that name an input group in every audit's table (``InputEffectAudit``'s ``top_groups``,
    ``SobolAudit``'s ``indices``): ``feature``, its name in ``feature_names`` where the audit has them, and
    ``group``, its index (an int), so that two audits' tables merge on either column.

    Args:
        group: the group's index (``0 .. G-1``, its id in the feature mask).
        feature_names: one name per group, or ``None``.

    Examples:
        >>> group_key(2, ["age", "income", "hours"]), group_key(2)
        ({'feature': 'hours', 'group': 2}, {'group': 2})
    """
    return {**({"feature": feature_names[group]} if feature_names is not None else {}), "group": int(group)}


def region_text(row: dict) -> str:
    """Where a report row's group lies, in words: ``"rows 2–3, cols 4–7"`` from its half-open ``[start, stop)``
    boxes on the :data:`AXES` it has (``""`` where it has none).

    Args:
        row: a table row (``top_groups``, Sobol' ``indices``).

    Examples:
        >>> region_text({"group": "5", "rows": [2, 4], "cols": [4, 8]}), region_text({"group": "a"})
        ('rows 2–3, cols 4–7', '')
    """
    return ", ".join(f"{axis} {row[axis][0]}–{row[axis][1] - 1}" for axis in AXES if axis in row)


def region_tag(group: object, row: dict) -> str:
    """A group's tag segment in a scalar tag (``S/<group>``): its id followed by where it lies,
    ``17_rows_8-15_cols_0-7`` of an image patch, ``9_steps_36-39`` of a window of a signal, from the
    half-open ``[start, stop)`` boxes on the :data:`AXES` ``row`` has; the bare id where it has none
    (tabular columns, token ids, a mask per sample). A box's ends are inclusive, as :func:`region_text`'s.

    Args:
        group: the group's id.
        row: its box (:func:`group_region`), or a table row holding it.

    Examples:
        >>> region_tag(17, {"rows": [8, 16], "cols": [0, 8]}), region_tag(3, {})
        ('17_rows_8-15_cols_0-7', '3')
    """
    return "_".join([str(group), *(f"{axis}_{row[axis][0]}-{row[axis][1] - 1}" for axis in AXES if axis in row)])


def signal_layout(shape: tuple[int, ...] | torch.Size) -> str | None:
    """How one sample ``[A, B]`` holds a 1-D signal: ``"first"`` (``[C, T]``, channels first, as
    ``Conv1d`` takes it: ``C <= 16``, ``T >= 4C``), ``"last"`` (``[T, F]``, features last, as a
    ``batch_first`` recurrent layer takes it: ``F <= 16``, ``T >= 4F``), else ``None``.

    Args:
        shape: one sample's shape ``[A, B]``.

    Examples:
        >>> signal_layout((1, 2000)), signal_layout((40, 3)), signal_layout((28, 28))
        ('first', 'last', None)
    """
    a, b = int(shape[0]), int(shape[1])
    if a <= 16 and b >= 4 * a:
        return "first"
    if b <= 16 and a >= 4 * b:
        return "last"
    return None


def _axis_names(sample_shape: tuple[int, ...], steps: int | None = None) -> tuple[str, ...] | None:
    """The name of each axis of one sample: a signal's ``channels``/``steps``/``features``, an image's
    ``channels``/``rows``/``cols``, a volume's ``depth`` before them (a video clip's ``[C, T, H, W]`` ``frames``, within
    :func:`video_clips`); ``steps``: the axis of ``x`` that lengths count (1 or 2), which makes a 2-D sample a sequence
    whatever its shape; within :func:`point_clouds` a 2-D sample's ``points`` are that axis (padded points), else the
    longer, and the other holds ``coordinates``."""
    if len(sample_shape) == 2 and _CLOUDS.get():
        last = cloud_layout(sample_shape, steps) == "last"
        return ("points", "coordinates") if last else ("coordinates", "points")
    if len(sample_shape) == 2:
        sequence = _SEQUENCES.get()  # a sequence figure kind: "last" as chosen; "sequence" reads the shape, else [C, T]
        sequence = sequence if sequence != "first" else signal_layout(sample_shape) or "first"
        layout = {1: "last", 2: "first"}.get(steps) or sequence or signal_layout(sample_shape)
        return {"first": ("channels", "steps"), "last": ("steps", "features"), None: ("rows", "cols")}[layout]
    deep = "frames" if _CLIPS.get() else "depth"
    return {3: ("channels", "rows", "cols"), 4: ("channels", deep, "rows", "cols")}.get(len(sample_shape))


def group_region(mask: Tensor, group: int, x: Tensor, padding: Tensor | None = None) -> dict[str, list[int]]:
    """Where group ``group`` of ``mask`` lies in the floating point input ``x`` ``[N, ...]``: per axis the
    half-open range ``[start, stop)`` of the group's bounding box, ``steps`` of a 1-D signal ``[N, C, T]`` or
    ``[N, T, F]``, ``rows``/``cols`` of an image ``[N, C, H, W]`` or ``[N, H, W]``, ``depth``/``rows``/``cols``
    of a volume ``[N, C, D, H, W]`` (``frames``/``rows``/``cols`` of a video clip ``[N, C, T, H, W]`` within
    :func:`video_clips`), and ``channels`` or ``features``
    where the group holds some of them only. Nothing for token ids, tabular rows ``[N, D]``, other shapes or
    a mask per sample (its groups lie somewhere else in each). A sequence ``[N, T, F]`` whose steps its ``lengths``
    count (``padding``, :func:`~lightning_causal.causal.engine.ablation.padding_positions`, along one axis) is read as
    one whatever its shape: 40 frames of 24 filterbank features are no image of rows and columns.

    Args:
        mask: the group ids ``[1 or N, ...]``, broadcastable to ``x``.
        group: a group id.
        x: the input ``[N, ...]``.
        padding: the input's padding positions (``[N, T, 1]`` or ``[N, 1, T]``; an observation mask's, of ``x``'s shape
            ``[N, T, C]``, reads dimension 1 as time unless :func:`signal_layout` reads ``[N, C, T]``; under a sequence figure
            kind, :func:`figure_axes`, the kind's reading as its figure draws it), or ``None``.

    Examples:
        >>> group_region(torch.arange(4).repeat_interleave(5).view(1, 1, 20), 2, torch.zeros(3, 1, 20))
        {'steps': [10, 15]}
        >>> frames = torch.arange(40).view(1, 40, 1).expand(1, 40, 24)  # a group per frame of 24 features
        >>> group_region(frames, 14, torch.zeros(2, 40, 24)), group_region(frames, 14, torch.zeros(2, 40, 24), torch.zeros(2, 40, 1, dtype=torch.bool))
        ({'rows': [14, 15], 'cols': [0, 24]}, {'steps': [14, 15]})
    """
    steps = None
    if padding is not None and x.dim() == 3 and padding.dim() == 3:
        steps = next((a for a in (1, 2) if padding.shape[a] == x.shape[a] > 1 and padding.shape[3 - a] == 1), None)
        if padding.shape == x.shape:  # an observation mask read entry by entry: [N, T, C] (or a signal's [N, C, T]); a
            # sequence figure kind says where time is as its figure draws it (the mask's shape says nothing of it)
            steps = None if _SEQUENCES.get() is not None else 2 if signal_layout(x.shape[1:]) == "first" else 1
    names = _axis_names(tuple(x.shape[1:]), steps)
    if names is None or not x.is_floating_point() or mask.dim() != x.dim() or mask.shape[0] != 1:
        return {}
    where = (mask[0].expand(x.shape[1:]) == group).nonzero()
    if where.numel() == 0:
        return {}
    lo, hi = where.min(0).values.tolist(), (where.max(0).values + 1).tolist()
    box = {name: [lo[k], hi[k]] for k, name in enumerate(names)
           if name not in ("channels", "features", "coordinates") or (lo[k], hi[k]) != (0, x.shape[k + 1])}
    return {name: box[name] for name in AXES if name in box}
