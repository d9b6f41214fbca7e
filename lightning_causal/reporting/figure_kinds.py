"""Figures of attribution maps by kind of data, chosen from the input's shape (or overridden).

=========== ======================================= ==================================================
kind        inputs                                  figure (tag ``causal/<audit>/maps/...``)
=========== ======================================= ==================================================
``image``   ``[N, C, H, W]``, ``[N, H, W]``,        per sample: input | each map as a heatmap
            ``[N, C, D, H, W]`` (volumes, as        (``sample_<i>``; more than two maps: one figure
            ``Conv3d`` takes them)                  per map, ``sample_<i>/<map>``), titled with the
                                                    class explained;
                                                    of a volume the depth slice where the first map's
                                                    mean |score| is largest, named in the title
``sequence````[N, C, T]`` with ``C <= 16`` and        per sample: the input's channels as lines with each
            ``T >= 4 C`` (1-D signals), or          map overlaid as bars (one channel) or below
                                                    as a channels x time heatmap (``sample_<i>``;
            ``[N, T, F]`` with ``F <= 16`` and      several maps: one figure per map, so that each
            ``T >= 4 F`` (features last: the        fits a TensorBoard card, ``sample_<i>/<map>``)
            ``batch_first`` input of a recurrent
            layer); ``[N, T]`` (one channel) when
            chosen
``tabular`` float ``[N, D]``; bytes or counts       one figure: horizontal bars of the top features by
            (``uint8``, ``int16``, ...)             mean |score|, one panel per map (causal beside each
                                                    Captum method) (``top_features``)
``tokens``  ``int64``/``int32`` ``[N, T]`` (ids)    per sample: the tokens as a text strip coloured by
                                                    each map (``sample_<i>``; strips too tall for a
                                                    card: one figure per map, ``sample_<i>/<map>``)
=========== ======================================= ==================================================

``frames`` (chosen, never inferred) draws a video ``[N, C, T, H, W]`` (as ``Conv3d`` takes it) frame by
frame: per sample the input's frames across (at most 8, evenly spaced) and each map's below them
(``sample_<i>``), where ``image`` draws its one frame of largest effect. Clips that look laid out ``[N, T, C, H, W]``
(dimension 2 of 1 or 3 entries) are drawn so too, and the renderer warns once, naming a wrapper (:func:`ambiguous_frames`).

``points`` (chosen, never inferred) draws point clouds ``[N, P, D]`` (``D >= 2`` coordinates per point, as a
PointNet takes them) or ``[N, D, P]`` (as ``Conv1d`` takes them; the shorter axis holds the coordinates),
which :func:`infer_kind` takes for a sequence of ``P`` steps: per sample the points
scattered in space (the first three coordinates), each coloured by its score (``sample_<i>``).

``sequence_features_last`` (chosen, never inferred) draws ``[N, T, F]`` features last whatever its
shape, e.g. an LSTM's input of fewer than ``4 F`` steps: ``sequence`` draws such a shape channels
first (``T`` channels along ``F`` steps; the renderer warns once, naming this kind).

:data:`MAP_FIGURES` maps a kind to its drawing function ``MapData -> [(tag suffix, Figure)]``; a new
kind is one more entry (and, if it can be recognised from the shape, a rule in :func:`infer_kind`).
Inputs a kind cannot draw (:func:`skip_reason`) are left out, and the renderer warns once.

Each kind draws in its own module (``image_maps``, ``frame_maps``, ``point_maps``, ``sequence_maps``, ``tabular_maps``, ``token_maps``) from
a ``MapData`` (``map_data``); their public names are re-exported here (this import path stays).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any, Literal, get_args

import torch
from matplotlib.figure import Figure
from torch import Tensor

from lightning_causal.causal.engine.token_ids import INDEX_DTYPES
from lightning_causal.reporting.frame_maps import ambiguous_frames, frame_maps
from lightning_causal.reporting.image_maps import image_maps
from lightning_causal.reporting.map_data import MapData, explained_quantity, sample_title
from lightning_causal.reporting.point_maps import point_maps
from lightning_causal.reporting.sequence_maps import (
    ambiguous_sequence,
    sequence_layout,
    sequence_maps,
    signal_layout,
)
from lightning_causal.reporting.tabular_maps import tabular_maps
from lightning_causal.reporting.token_maps import token_maps

__all__ = [
    "INDEX_DTYPES", "KINDS", "FigureKind", "MAP_FIGURES", "MapData", "ambiguous_frames", "ambiguous_sequence", "explained_quantity", "frame_maps", "image_maps", "infer_kind", "map_figures", "point_maps",
    "sample_title", "sequence_layout", "sequence_maps", "skip_reason", "tabular_maps", "token_maps",
]

FigureKind = Literal["frames", "image", "points", "sequence", "sequence_features_last", "tabular", "tokens"]
KINDS: tuple[FigureKind, ...] = get_args(FigureKind)  # the values `figure_kind` takes


def infer_kind(x: Tensor, meta: Mapping[str, Any] | None = None) -> str | None:
    """The kind of data of a probe's input tensor ``[N, ...]``, ``None`` when no rule applies.

    ``int64`` or ``int32`` columns ``[N, D]`` are token ids, unless the audit's ``meta`` names its features
    (``feature_names``) or the embeddings that read its columns one each (``code_columns``,
    :func:`~lightning_causal.audits.category_codes.code_columns`) and holds no ``vocabulary``: then they are categorical codes, drawn as
    tabular bars named after their columns (a token strip left out a trailing code whose effect
    was 0 as padding and showed no column names). Other integers (``uint8``, ``int8``, ``int16``: bytes,
    counts, raw samples) are tabular, as the engine takes them (it knows token ids as the inputs an
    ``nn.Embedding`` reads, which indexes with
    :data:`~lightning_causal.causal.engine.token_ids.INDEX_DTYPES` only: a model that embeds ``uint8``
    casts them first), unless ``meta`` holds a ``vocabulary`` (the words of the ids) or ``figure_kind="tokens"``
    is chosen. Bool masks and complex values are no token ids: they are drawn as their shape says
    (``[N, D]``: tabular). An input of one value per sample ``[N]`` (a user id, one feature) is read as ``[N, 1]``.

    Args:
        x: the probe's input ``[N, ...]``.
        meta: the audit result's ``meta`` (``feature_names``, ``vocabulary``), or ``None``.

    Examples:
        >>> import torch
        >>> infer_kind(torch.zeros(4, 1, 8, 8)), infer_kind(torch.zeros(4, 28, 28)), infer_kind(torch.zeros(4, 2, 100))
        ('image', 'image', 'sequence')
        >>> infer_kind(torch.zeros(4, 40, 2))  # [N, T, F]: a recurrent layer's batch_first input
        'sequence'
        >>> infer_kind(torch.zeros(4, 12)), infer_kind(torch.zeros(4, 12, dtype=torch.long)), infer_kind(torch.zeros(4, 2, 3, 4, 5, 6))
        ('tabular', 'tokens', None)
        >>> infer_kind(torch.zeros(4)), infer_kind(torch.zeros(4, dtype=torch.long))  # [N]: one column (a value, an id)
        ('tabular', 'tokens')
        >>> infer_kind(torch.zeros(4, 10, dtype=torch.bool)), infer_kind(torch.zeros(4, 10, dtype=torch.complex64))  # no token ids
        ('tabular', 'tabular')
        >>> infer_kind(torch.zeros(4, 1, 6, 8, 8))  # [N, C, D, H, W]: a volume, drawn one depth slice at a time
        'image'
        >>> infer_kind(torch.zeros(4, 3, dtype=torch.long), {"feature_names": ["colour", "size", "sex"]})  # codes
        'tabular'
        >>> infer_kind(torch.zeros(4, 2, dtype=torch.long), {"code_columns": {"cat.0": 0, "cat.1": 1}})  # an embedding a column
        'tabular'
        >>> infer_kind(torch.zeros(4, 12, dtype=torch.uint8)), infer_kind(torch.zeros(4, 12, dtype=torch.int32))  # bytes; ids
        ('tabular', 'tokens')
        >>> infer_kind(torch.zeros(4, 12, dtype=torch.uint8), {"vocabulary": ["a", "b"]})  # words: byte-level tokens
        'tokens'
    """
    if x.dim() == 1:  # one value per sample (a user id, a single feature): a table of one column
        return infer_kind(x.unsqueeze(1), meta)
    if x.dim() == 2:
        words = meta is not None and bool(meta.get("vocabulary"))
        named = meta is not None and bool(meta.get("feature_names") or meta.get("code_columns")) and not words
        ids = x.dtype in INDEX_DTYPES or (words and not (x.is_floating_point() or x.is_complex() or x.dtype == torch.bool))
        return "tokens" if ids and not named else "tabular"
    if x.dim() == 3:
        return "sequence" if signal_layout(x.shape[1:]) is not None else "image"
    if x.dim() in (4, 5):
        return "image"
    return None


#: the way out :func:`skip_reason` adds for 4-D inputs under the "frames" kind: grey clips ``[N, T, H, W]`` (a model that
#: folds their frames into the batch, ``x.flatten(0, 1).unsqueeze(1)``, takes them so) have no channel dimension
GREY_CLIPS = (
    ": grey clips [N, T, H, W] (T frames of one channel, as a frame-wise 2-D CNN or a temporal shift network that "
    "folds the frames into the batch takes them) have no channel dimension. Explain a wrapper that takes [N, 1, T, H, "
    "W], a module whose forward returns model(x.squeeze(1)), on the clips unsqueezed, unpack_batch=lambda b: "
    "(b[0].unsqueeze(1), b[1], None) (feature masks and baselines laid out alike: frames "
    "torch.arange(T).reshape(1, 1, T, 1, 1)); the callback explains it where the LightningModule's property "
    "audited_module returns it (layer names are then the wrapper's: 'model.conv' for a self.model's 'conv'), "
    "training unchanged")

_DIMS = {"frames": (5,), "image": (3, 4, 5), "points": (3,), "sequence": (2, 3), "sequence_features_last": (2, 3)}  # input dimensions (with N) a kind can draw; others: any



def skip_reason(kind: str | None, inputs: Tensor) -> str | None:
    """Why attribution maps of ``inputs`` ``[N, ...]`` cannot be drawn as ``kind``, ``None`` when they can.

    Args:
        kind: a figure kind (one of :data:`KINDS`) or ``None``.
        inputs: the probe's input ``[N, ...]``.

    Examples:
        >>> import torch
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
        shapes = {"frames": "[N, C, T, H, W]", "image": "[N, H, W], [N, C, H, W] or [N, C, D, H, W]", "points": "[N, P, D] or [N, D, P] (P points of D >= 2 coordinates)",
                  "sequence": "[N, T], [N, C, T] or [N, T, F]",
                  "sequence_features_last": "[N, T] or [N, T, F]"}[kind]
        return f"figure kind {kind!r} draws inputs {shapes} but the probe's inputs have shape {shape}" + (
            GREY_CLIPS if kind == "frames" and inputs.dim() == 4 else "")
    if kind == "points" and min(inputs.shape[1:]) < 2:
        return f"figure kind 'points' draws points of 2 or more coordinates, [N, P, D] or [N, D, P], but the probe's inputs have shape {shape}"
    return None

MAP_FIGURES: dict[str, Callable[..., Iterable[tuple[str, Figure]]]] = {
    "frames": frame_maps,
    "image": image_maps,
    "points": point_maps,
    "sequence": sequence_maps,
    "sequence_features_last": lambda data, *, reuse=False: sequence_maps(data, "last", reuse=reuse),
    "tabular": tabular_maps,
    "tokens": token_maps,
}
_FEATURES_LAST = MAP_FIGURES["sequence_features_last"]  # the kind's own drawing (a user may put another in the table)



def map_figures(data: MapData, kind: str | None = None, *, reuse: bool = False, kept: dict | None = None) -> Iterable[tuple[str, Figure]]:
    """The figures of ``data.maps`` for ``kind`` (default: :func:`infer_kind` of the inputs);
    none for inputs the kind cannot draw (:func:`skip_reason`) or maps not shaped like the inputs. Complex inputs
    (STFT frames) are drawn as their magnitude ``|z|``, as a spectrogram is (their real part was drawn, with torch's
    warning that the imaginary part is discarded).

    Args:
        data: the maps and the probe inputs they explain.
        kind: the figure kind; ``None``: inferred, as above.
        reuse: for a caller that draws or saves each figure before taking the next (the TensorBoard writer's path):
            the ``image``, ``frames`` and sequence kinds' figures come one at a time, a sample's figure redrawing an earlier sample's
            of the same layout (:func:`~lightning_causal.reporting.image_maps.image_maps`,
            :func:`~lightning_causal.reporting.frame_maps.frame_maps`,
            :func:`~lightning_causal.reporting.sequence_maps.sequence_maps`; a drawing of one's own in :data:`MAP_FIGURES` is
            called as it is); ``False``: a list of figures of their own.
        kept: with ``reuse``, the ``image`` kind's figures kept from one call to the next (``{}`` at first; the writer's,
            one per audit): a later call's rows redraw them (:func:`~lightning_causal.reporting.image_maps.image_maps`).

    Examples:
        >>> import torch
        >>> d = MapData(torch.rand(5, 3), {"causal": torch.randn(5, 3), "Saliency": torch.rand(5, 3)}, "cb")
        >>> [tag for tag, _ in map_figures(d)], [tag for tag, _ in map_figures(d, "sequence")][:3]
        (['maps/top_features'], ['maps/sample_0/causal', 'maps/sample_0/Saliency', 'maps/sample_1/causal'])
    """
    kind = kind or infer_kind(data.inputs, data.meta)
    maps = {k: v for k, v in data.maps.items() if v.shape[1:] == data.inputs.shape[1:]}
    if kind is None or skip_reason(kind, data.inputs) is not None or not maps:
        return []
    inputs = data.inputs.abs() if data.inputs.is_complex() else data.inputs  # STFT frames: their magnitude, a spectrogram
    data = dataclasses.replace(data, inputs=inputs, maps=maps)
    if reuse and MAP_FIGURES[kind] is image_maps:  # the kinds whose rows redraw one figure; the image rows' from call to call
        return image_maps(data, reuse=True, kept=kept)
    if reuse and MAP_FIGURES[kind] in (frame_maps, sequence_maps, _FEATURES_LAST):
        return MAP_FIGURES[kind](data, reuse=True)
    return MAP_FIGURES[kind](data)
