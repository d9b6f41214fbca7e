"""What a map figure draws and what every kind of map figure shares: ``MapData`` (inputs, maps, the
audit's name and meta, labels), the titles (``sample_title``, ``explained_quantity``, the title of maps
over the whole probe), how many samples are drawn, each map's colour-scale limit, the note saying what
red and blue mean, and the colours of a figure's series."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import torch
from torch import Tensor
from torch.nn import Module

from lightning_causal.causal.engine.ablation import _named_arguments, padding_positions
from lightning_causal.reporting.figure_style import short_label, short_labels
from lightning_causal.reporting.image_figures import ImageOrigin, finite_peak

#: the most characters of a class name in a map's title (a name of 180 characters took five lines of it)
TITLE_NAME = 40

__all__ = [
    "SERIES_COLOURS", "MapData", "baseline_of", "drawn_samples", "explained_quantity", "global_title", "map_limits", "output_noun",
    "probe_marks", "sample_title", "sign_note",
]

SERIES_COLOURS = ("black", "tab:orange", "tab:green", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")


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
        image_origin: where row 0 of an image-kind map and its input (each frame of a frames-kind one) is drawn
            (``"upper"``: at the top; ``"lower"``: at the bottom, a spectrogram's lowest frequency as audio tools draw it;
            :data:`~lightning_causal.reporting.image_figures.ORIGINS`); titles and row indices are the data's.
        unobserved: booleans broadcastable to ``inputs``, ``True`` at the entries the model is told to ignore (an
            observation mask's 0, the steps after ``lengths``, padded points): the sequence figures hatch them and the
            point figures leave those points out (:func:`probe_marks`); ``None``: every entry is drawn as measured.
        times: each step's time stamp ``[N, T]`` (an irregularly sampled series' ``times``), the sequence figures'
            time axis; ``None``: the steps' indices.
    """

    inputs: Tensor
    maps: dict[str, Tensor]
    audit: str
    meta: dict[str, Any] = field(default_factory=dict)
    labels: Tensor | None = None
    max_samples: int = 4
    image_origin: ImageOrigin = "upper"
    unobserved: Tensor | None = None
    times: Tensor | None = None

    def class_name(self, index: int) -> str:
        """The name of class ``index`` in titles: ``repr`` of ``meta["class_names"][index]`` cut to
        :data:`TITLE_NAME` characters, the names kept apart (:func:`short_labels`: a label and an explained class
        whose names share their first 40 characters read as two names; the report holds them whole), else the index.

        Args:
            index: the class index.
        """
        names = self._title_names
        return repr(names[index]) if names is not None and 0 <= index < len(names) else str(index)

    @cached_property
    def _title_names(self) -> list[str] | None:  # once per figure's data, not per title (1000 classes)
        names = self.meta.get("class_names")
        return short_labels(names, TITLE_NAME) if names is not None else None



def sample_title(data: MapData, i: int) -> str:
    """``"<audit>, sample i (label L): explains class C"``; the class is the one each explanation's
    target output is read from (the predicted class unless the audit fixes ``target``).

    Args:
        data: the maps, the probe inputs they explain and the audit's ``meta``.
        i: the sample's index.

    Examples:
        >>> import torch
        >>> d = MapData(torch.zeros(2, 3), {}, "ie", {"targets": [1, 0], "class_names": ["no", "yes"]}, torch.tensor([1, 1]))
        >>> sample_title(d, 1)
        "ie, sample 1 (label 'yes'): explains class 'no'"
        >>> sample_title(MapData(torch.zeros(1, 3), {}, "ie", {"targets": [2], "output": "cls"}, None), 0)
        "ie, sample 0: explains class 2 of 'cls'"
    """
    label = _label_text(data, i)
    targets = data.meta.get("targets")
    noun = output_noun(data)
    explained = f": explains {noun} {data.class_name(int(targets[i]))}" if targets is not None and i < len(targets) else ""
    if explained and data.meta.get("outputs") == 1:  # a regression or one-logit model: its output, not a class
        explained = ": explains the output"
    head = data.meta.get("output")  # the key or index of a model of several outputs (`output="reg"`)
    if explained and isinstance(head, (str, int)) and not isinstance(head, bool):
        name = repr(head) if isinstance(head, str) else f"out[{head}]"
        explained += f" {name}" if data.meta.get("outputs") == 1 else f" of {name}"
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
    probability (named by ``class_name``, else quoted from ``meta["target_name"]``, as the map titles
    quote class names), ``"the output"`` of a model of
    one output (``"output j"`` where ``j > 0`` or ``meta["outputs"] > 1``, ``"output 'right'"`` where the
    output has a name: a Q-network's action) where ``meta["explained"]`` is ``"raw output"`` (a regression
    model, ``SobolAudit(probability=False)``), ``""`` without a target.

    Args:
        meta: the analysis' ``meta``, as above.
        class_name: ``index -> name`` of a class; ``None``: ``repr`` of ``meta["target_name"]`` (cut to
            :data:`TITLE_NAME` characters) or the index.

    Examples:
        >>> explained_quantity({"target": 1, "explained": "softmax probability"})
        'P(class 1)'
        >>> explained_quantity({"target": 1, "explained": "softmax probability", "target_name": "dog"})
        "P(class 'dog')"
        >>> explained_quantity({"target": 0, "explained": "raw output"})
        'the output'
        >>> explained_quantity({"target": 0, "explained": "raw output", "outputs": 3})  # horizon 0 of 3
        'output 0'
        >>> explained_quantity({"target": 1, "explained": "raw output", "target_name": "right"})  # Q(s, right)
        "output 'right'"
    """
    target = meta.get("target")
    if not isinstance(target, int):
        return ""
    quoted = repr(short_label(str(meta["target_name"]), TITLE_NAME)) if "target_name" in meta else None  # as in map titles
    if meta.get("explained") == "raw output":
        named = class_name(target) if class_name is not None else quoted
        if named is not None and named != str(target):  # a name given (class_names=): a Q-network's action
            return f"output {named}"
        return "the output" if target == 0 and meta.get("outputs", 1) == 1 else f"output {target}"
    if class_name is not None:
        return f"P(class {class_name(target)})"
    return f"P(class {quoted})" if quoted is not None else f"P(class {target})"



def global_title(data: MapData) -> str:
    """The title of maps over the whole probe (one map for all samples): what they explain, drawn over sample 0.

    Args:
        data: the maps, the probe inputs they explain and the audit's ``meta``.
    """
    what = explained_quantity(data.meta, data.class_name)
    return f"{data.audit}: maps over the whole probe{' of ' + what if what else ''} (input: sample 0)"



def drawn_samples(data: MapData) -> tuple[int, bool]:
    """How many samples to draw and whether the maps are global (one map for the whole probe).

    Args:
        data: the maps, the probe inputs they explain and the audit's ``meta``.
    """
    sizes = [int(m.shape[0]) for m in data.maps.values()]
    glob = all(s == 1 for s in sizes) and data.inputs.shape[0] > 1
    return min(data.max_samples, int(data.inputs.shape[0]), *sizes), glob


#: the forward arguments read as a sequence's time stamps, ``[N, T]`` (mTAN's and GRU-D's ``times``)
TIME_NAMES = ("times", "timestamps", "time_stamps")


def probe_marks(model: Module | None, inputs: Tensor, additional_forward_args: object = None) -> tuple[Tensor | None, Tensor | None]:
    """What the map figures of ``inputs`` draw apart, from the probe's forward arguments: the entries the model is told
    to ignore (:func:`~lightning_causal.causal.engine.ablation.padding_positions`: ``attention_mask`` of the inputs'
    first two dimensions or of their shape, an irregularly sampled series' observation mask, or ``lengths``), and each
    step's time stamp (a floating ``times``, ``timestamps`` or ``time_stamps`` of shape ``[N, T]`` for one of the
    inputs' axes); :class:`MapData`'s ``unobserved`` and ``times``. Positional arguments are named by
    ``model.forward``'s parameters, keywords by their keys.

    Args:
        model: the model the probe is fed to (its ``forward`` names positional arguments), or ``None``.
        inputs: the input the maps explain ``[N, ...]``.
        additional_forward_args: the probe's other forward arguments (Captum's name).

    Examples:
        >>> import torch
        >>> x, mask = torch.zeros(1, 3, 2), torch.tensor([[[1, 0], [1, 1], [0, 0]]])
        >>> unobserved, times = probe_marks(None, x, {"attention_mask": mask, "times": torch.tensor([[0.0, 0.5, 1.5]])})
        >>> unobserved.int().tolist(), times.tolist()
        ([[[0, 1], [0, 0], [1, 1]]], [[0.0, 0.5, 1.5]])
    """
    if additional_forward_args is None or not isinstance(inputs, Tensor) or inputs.dim() < 2:
        return None, None
    try:
        unobserved = padding_positions(inputs, additional_forward_args, model=model)
    except ValueError:  # a mask of the opposite sense: the audits refused it in their own words
        unobserved = None
    named = _named_arguments(model, additional_forward_args)
    stamps = next((v for k in TIME_NAMES if isinstance(named, Mapping) and isinstance(v := named.get(k), Tensor)), None)
    times = stamps.detach() if stamps is not None and stamps.is_floating_point() and _stamps_fit(stamps, inputs) else None
    return (unobserved.detach() if unobserved is not None else None), times


def check_marks(inputs: Tensor | None, unobserved: Tensor | None, times: Tensor | None) -> tuple[Tensor | None, Tensor | None]:
    """The renderer's ``probe_unobserved`` and ``probe_times`` checked against the probe's ``inputs``, so that a mask
    given as it is (``attention_mask``, 1 = observed: every observed entry would be hatched) or of another shape
    (dropped: nothing hatched) fails in words rather than drawing another picture: ``unobserved`` booleans of the
    inputs' shape, broadcastable to it, or of their first dimensions (``attention_mask == 0`` ``[N, T]`` of ``[N, T, C]``
    inputs: given trailing dimensions of 1, as :func:`probe_marks` gives them); ``times`` floating ``[N, T]``.

    Args:
        inputs: the probe's (first) input the maps are drawn over, or ``None`` (no maps: only the kinds are checked).
        unobserved: ``True`` at the entries the model is told to ignore, or ``None``.
        times: each step's time stamp, or ``None``.

    Raises:
        TypeError: ``unobserved`` not a bool tensor, ``times`` not a floating one.
        ValueError: their shapes do not fit the inputs'.

    Examples:
        >>> import torch
        >>> check_marks(torch.zeros(2, 3, 4), torch.tensor([[False, True, False]] * 2), None)[0].shape
        torch.Size([2, 3, 1])
    """
    if unobserved is not None:
        if not isinstance(unobserved, Tensor) or unobserved.dtype != torch.bool:
            raise TypeError("Expected argument `probe_unobserved` to be a bool tensor, True at the entries the model is told "
                            "to ignore (`attention_mask == 0`, not the mask itself, whose 1 marks an observed entry), but "
                            f"got {_described(unobserved)}")
        if inputs is not None:
            u = unobserved
            if u.dim() < inputs.dim() and u.shape == inputs.shape[: u.dim()]:
                u = u.reshape(*u.shape, *[1] * (inputs.dim() - u.dim()))
            try:
                fits = u.dim() == inputs.dim() and torch.broadcast_shapes(u.shape, inputs.shape) == inputs.shape
            except RuntimeError:
                fits = False
            if not fits or u.shape[0] != inputs.shape[0]:
                raise ValueError(f"Expected argument `probe_unobserved` of the probe inputs' shape {tuple(inputs.shape)}, "
                                 "broadcastable to it with one row per sample, or of its first dimensions, but got "
                                 f"{tuple(unobserved.shape)}")
            unobserved = u
    if times is not None:
        if not isinstance(times, Tensor) or not times.is_floating_point():
            raise TypeError(f"Expected argument `probe_times` to be a floating tensor of time stamps [N, T] but got "
                            f"{_described(times)}")
        if times.dim() != 2 or (inputs is not None and not _stamps_fit(times, inputs)):
            shape = None if inputs is None else tuple(inputs.shape)
            raise ValueError(f"Expected argument `probe_times` of shape [N, T], one time stamp per sample and step of the "
                             f"probe inputs {shape}, but got {tuple(times.shape)}")
    return unobserved, times


def _stamps_fit(times: Tensor, inputs: Tensor) -> bool:
    """Whether ``times`` is one time stamp per sample and step of ``inputs``: ``[N, T]``, ``T`` one of the inputs'
    first two axes after the samples (:func:`probe_marks` reads such a ``times``, :func:`check_marks` asks for it)."""
    return (times.dim() == 2 and inputs.dim() >= 2 and times.shape[0] == inputs.shape[0]
            and int(times.shape[1]) in [int(n) for n in inputs.shape[1:3]])


def _described(value: object) -> str:
    return f"a {value.dtype} tensor {tuple(value.shape)}" if isinstance(value, Tensor) else repr(value)[:60]


def map_limits(data: MapData, values: dict[str, Tensor]) -> dict[str, float]:
    """Each map's colour-scale limit: its own largest finite |value| (maps of different units, such as the
    causal effect beside Captum's attributions), or, when ``meta["shared_map_scale"]`` is set (maps
    of one unit, such as Sobol' first-order and total indices, both shares of the output variance),
    the largest over the maps, so that equal values look equal in every panel.

    Args:
        data: the maps, the probe inputs they explain and the audit's ``meta``.
        values: name -> the drawn values of each map.
    """
    own = {k: finite_peak(v) for k, v in values.items()}
    if data.meta.get("shared_map_scale"):
        peak = max(own.values(), default=0.0)
        own = dict.fromkeys(own, peak)
    return {k: v or 1.0 for k, v in own.items()}


def baseline_of(data: MapData, names: list[str]) -> tuple[str | None, list[str]]:
    """What each group is set to (``meta["baseline"]``: ``"0"``, ``"id 103"``) and which of the maps ``names`` are
    effects against it: all of them (``InputEffectAudit``'s one map), or those named in ``meta["baseline_maps"]``
    (``CaptumBaseline``'s ``"causal"``: its attribution methods are not set-to-``b`` effects); ``(None, [])`` where the
    audit does not say.

    Args:
        data: the maps and the audit's ``meta``.
        names: the maps a figure draws.

    Examples:
        >>> import torch
        >>> d = MapData(torch.zeros(1, 2), {}, "captum_baseline", {"baseline": "0", "baseline_maps": ["causal"]})
        >>> baseline_of(d, ["causal", "Saliency"]), baseline_of(MapData(torch.zeros(1, 2), {}, "own", {}), ["a"])
        (('0', ['causal']), (None, []))
    """
    b, own = data.meta.get("baseline"), data.meta.get("baseline_maps")
    if not isinstance(b, str):
        return None, []
    return b, [name for name in names if own is None or name in own]


def sign_note(signed: dict[str, bool], data: MapData) -> str | None:
    """What red and blue mean in maps of a class's score (of the output, for a model of one output),
    against the value each group is set to where ``meta["baseline"]`` says it (:func:`baseline_of`;
    ``InputEffectAudit``: "red: raises the explained class's score against the group set to 0"; of some of the maps
    only, ``CaptumBaseline``'s: "...; causal: against the group set to 0"), ``None`` without a signed map;
    maps without negative values (Saliency's |gradient|) are named as showing size only.

    Args:
        signed: name -> whether each map is signed (has a negative value).
        data: the maps, the probe inputs they explain and the audit's ``meta``.
    """
    if not any(signed.values()):
        return None
    what = ("the output" if data.meta.get("outputs") == 1 else "the explained output" if data.meta.get("regression")
            else "the explained label's logit" if data.meta.get("multi_label") else "the explained class's score")
    b, of = baseline_of(data, list(signed))  # δ_g = f(x) − f(x | do(x_g := b)): against b
    if b is not None and len(of) == len(signed):
        what = f"{what} against the group set to {b}"
    some = f"; {', '.join(of)}: against the group set to {b}" if of and len(of) < len(signed) else ""
    unsigned = [name for name, s in signed.items() if not s]
    return f"red: raises {what}, blue: lowers it" + some + (f"; {', '.join(unsigned)}: size only" if unsigned else "")


def output_noun(data: MapData) -> str:
    """What an explained output is called: ``"output"`` (a regression), ``"label"`` (a multi-label
    classifier: multi-hot probe labels) or ``"class"``.

    Args:
        data: the maps, the probe inputs they explain and the audit's ``meta``.
    """
    return "output" if data.meta.get("regression") else "label" if data.meta.get("multi_label") else "class"
