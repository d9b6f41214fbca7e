"""Constructor checks shared by the audits (fail at construction, naming the argument).

What the model and its labels say of the task (:mod:`lightning_causal.audits.label_task`) and the
warnings built on it (:mod:`lightning_causal.audits.task_warnings`) live in their own modules; their
names stay importable from here.
"""

from __future__ import annotations

import itertools
import re
import unicodedata
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from lightning_causal.audits.label_task import (
    class_distributions,
    class_indices,
    embedding_output,
    label_task,
    multi_hot_labels,
    regression_labels,
    smoothed_multi_hot,
    task_model,
)
from lightning_causal.audits.task_warnings import (
    first_row_outputs,
    unlabelled_regression,
    warn_predicted_class_of_regression,
    warn_softmax_of_regression,
)
from lightning_causal.batches import time_event
from lightning_causal.causal.engine.checks import check_int
from lightning_causal.causal.engine.state import level_target

__all__ = ["check_target", "check_baseline", "label_task", "check_mask_options", "check_names", "check_name_count", "check_unit_names", "check_unit_name_count", "check_distinct_tags", "tag_safe", "class_label", "names_meta", "warn_softmax_of_regression", "regression_labels", "multi_hot_labels", "warn_predicted_class_of_regression", "embedding_output", "first_row_outputs", "single_input_error", "ONE_INPUT_WAYS_OUT", "check_one_label_per_sample", "task_model", "class_indices"]


def check_target(target: Any) -> int | None:
    """``None`` (the predicted class) or a class index >= 0. A tuple (Captum's target of a dense
    output, ``(class, i, j)`` for a pixel) is refused naming ``output=`` with ``target=class``; a fraction (a quantile
    level, 0.5 for the median) saying that ``target=`` is a column (``level_target``).

    Examples:
        >>> check_target((1, 5, 2))
        Traceback (most recent call last):
        ...
        ValueError: Expected argument `target` to be None or a non-negative int but got (1, 5, 2); ...
    """
    if isinstance(target, (tuple, list)):
        raise ValueError(f"Expected argument `target` to be None or a non-negative int but got {target!r}; {DENSE_TARGET}")
    if isinstance(target, float):  # a quantile level (0.5) for the column that holds it
        raise ValueError(f"Expected argument `target` to be None or a non-negative int but got {target!r}{level_target(target)}")
    return check_int("target", target, minimum=0, none_ok=True)


#: How Captum's tuple target of a dense output is said here (``check_target``, ``resolve_target``).
DENSE_TARGET = ("a tuple such as Captum's `(class, i, j)` for a pixel of a dense output is said with `output=` "
                "choosing the position and `target=` the class: `output=lambda out: out[:, :, i, j], target=class` "
                "(a token t of [N, T, C] scores: `out[:, t]`)")


def check_baseline(baseline: Any) -> Any:
    """A number, a tensor, or a tuple of those (one per input); ``False``/``True`` too, the baseline of a bool
    mask, and complex numbers, of complex inputs (other inputs refuse them when the audit first runs, naming `baseline`).

    Examples:
        >>> check_baseline("zero")
        Traceback (most recent call last):
        ...
        TypeError: Expected argument `baseline` to be a number, a tensor or a tuple of them but got 'zero'
    """
    values = baseline if isinstance(baseline, tuple) else (baseline,)
    if not values or any(not isinstance(b, (int, float, complex, Tensor)) for b in values):
        raise TypeError(f"Expected argument `baseline` to be a number, a tensor or a tuple of them but got {baseline!r}")
    if any(not bool(torch.as_tensor(b).isfinite().all()) for b in values if not isinstance(b, Tensor) or b.is_floating_point()
           or b.is_complex()):
        raise ValueError(f"Expected argument `baseline` to be finite but got {baseline!r:.80}")  # said now, not at the first audit
    return baseline


def check_mask_options(feature_mask: Any, patch_size: Any, *, function_ok: bool = False) -> None:
    """At most one of ``feature_mask`` (an integer tensor, or with ``function_ok`` a function of the
    probe's inputs that returns one) and ``patch_size`` (a positive int)."""
    if feature_mask is not None and patch_size is not None:
        raise ValueError("Expected at most one of `feature_mask` and `patch_size` but got both")
    if feature_mask is not None and not (function_ok and callable(feature_mask) and not isinstance(feature_mask, Tensor)):
        if not isinstance(feature_mask, Tensor):
            names = isinstance(feature_mask, (list, tuple)) and feature_mask and all(isinstance(n, str) for n in feature_mask)
            fix = ("; a list of names is no mask (`feature_mask` is the first positional parameter): pass layer names as "
                   "`layers=[...]` and the groups' names as `feature_names=[...]`, where the audit takes them") if names else ""
            raise TypeError(f"Expected argument `feature_mask` to be an integer tensor but got {type(feature_mask).__name__}{fix}")
        if feature_mask.is_floating_point() or feature_mask.is_complex() or feature_mask.dtype == torch.bool:
            raise TypeError(f"Expected argument `feature_mask` to hold integer group ids but got dtype {feature_mask.dtype}")
        if feature_mask.numel() and int(feature_mask.min()) < 0:
            raise ValueError(f"Expected argument `feature_mask` to hold group ids >= 0 but got {int(feature_mask.min())}")
    check_int("patch_size", patch_size, minimum=1, none_ok=True)


def check_names(name: str, names: Any) -> list[str] | None:
    """``None`` or a sequence of strings (feature or class names), kept as plain ``str``: NumPy strings
    (``list(load_breast_cancer().target_names)``) would be quoted as ``np.str_('benign')`` by ``repr``
    in the figures' titles.

    Examples:
        >>> import numpy as np
        >>> check_names("class_names", np.array(["malignant", "benign"]))
        ['malignant', 'benign']
    """
    if names is None:
        return None
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise TypeError(f"Expected argument `{name}` to be None or a sequence of strings but got {names!r:.80}")
    return [str(n) for n in names]


def check_name_count(name: str, names: list[str] | None, count: int, what: str) -> None:
    """``names`` is ``None`` or holds exactly ``count`` names (one per ``what``).

    Examples:
        >>> check_name_count("feature_names", ["age", "income"], 3, "feature group")
        Traceback (most recent call last):
        ...
        ValueError: Expected argument `feature_names` to hold one name per feature group (3) but got 2
    """
    if names is not None and len(names) != count:
        raise ValueError(f"Expected argument `{name}` to hold one name per {what} ({count}) but got {len(names)}")


def check_unit_names(unit_names: object, layers: Sequence[str]) -> dict[str, list[str]]:
    """``unit_names`` checked (``UnitImportanceAudit``'s and ``CausalGraphAudit``'s): ``None`` (``{}``) or a mapping
    of some of ``layers`` to sequences of names (strings), one per unit.

    Examples:
        >>> check_unit_names({"fc": ("age", "income")}, ["fc"])
        {'fc': ['age', 'income']}
        >>> check_unit_names({"fc2": ["a"]}, ["fc"])
        Traceback (most recent call last):
        ...
        ValueError: Expected the keys of argument `unit_names` to be layers of the audit, ['fc'], but got 'fc2'
    """
    if unit_names is None:
        return {}
    if not isinstance(unit_names, Mapping):
        raise TypeError(f"Expected argument `unit_names` to be a mapping {{layer: [name of each unit]}} but got "
                        f"{type(unit_names).__name__}")
    out = {}
    for layer, names in unit_names.items():
        if layer not in layers:
            raise ValueError(f"Expected the keys of argument `unit_names` to be layers of the audit, {list(layers)}, "
                             f"but got {layer!r}")
        if isinstance(names, str) or not isinstance(names, Sequence) or not all(isinstance(n, str) for n in names):
            raise TypeError(f"Expected argument `unit_names[{layer!r}]` to be a sequence of strings, one per unit, "
                            f"but got {names!r:.80}")
        out[layer] = [str(n) for n in names]
    return out


def check_unit_name_count(names: Sequence[str], layer: str, units: int, layout: str) -> None:
    """``names`` (of :func:`check_unit_names`) holds one name per unit of ``layer``, ``units`` of them as ``layout``
    (``"unit_dim=-1, num_heads=None"``) lays them out: else a ``ValueError`` naming the counts and the first names."""
    if len(names) != units:
        raise ValueError(f"Expected argument `unit_names` to hold one name per unit of layer {layer!r}, "
                         f"{units} ({layout}), but got {len(names)}: {list(names)[:6]}{' ...' if len(names) > 6 else ''}")


def check_class_name_count(class_names: list[str] | None, count: int) -> None:
    """``class_names`` is ``None`` or names each of the ``count`` classes of the explained output; more names are
    accepted (the classes of a head that grows during the fit: one list, given from the start, names both heads),
    fewer are refused as :func:`check_name_count` refuses them.

    Examples:
        >>> check_class_name_count(["a", "b", "c"], 2)  # a head of 2 classes that will have 3
        >>> check_class_name_count(["a"], 2)
        Traceback (most recent call last):
        ...
        ValueError: Expected argument `class_names` to hold one name per class (2) but got 1
    """
    if class_names is not None and len(class_names) < count:
        check_name_count("class_names", class_names, count, "class")


_SIGNS = {"<=": "le", ">=": "ge", "!=": "ne", "==": "eq", "<": "lt", ">": "gt", "=": "eq", "+": "plus", "&": "and",
          "%": "pct", "×": "x"}  # spelled out in a tag: "<50K" and ">50K" both gave "50K", "+" gave "_"
_SIGN = re.compile("|".join(re.escape(sign) for sign in _SIGNS))  # the two-character signs first
_SPELLED = {"-": "minus", "_": "underscore", ".": "dot"}  # a name of no letter or digit: each character's word


def _kept(c: str) -> bool:
    """Whether a tag holds character ``c`` as it is: a letter or digit, one of ``_ . -``, or a combining mark (category
    ``M``: a Devanagari vowel sign or virama, a decomposed accent), part of the letter before it."""
    return c.isalnum() or c in "_.-" or unicodedata.category(c).startswith("M")


def _spelled(run: str) -> str:
    """A run of characters a tag cannot hold: its signs as words (``" + "``: ``_plus_``), else ``_``."""
    words = [_SIGNS[sign] for sign in _SIGN.findall(run)]
    return f"_{'_'.join(words)}_" if words else "_"


def tag_safe(name: object) -> str:
    """``name`` as one segment of a logger tag: the signs ``<=``, ``>=``, ``!=``, ``==``, ``<``, ``>``, ``=``, ``+``,
    ``&``, ``%`` and ``×`` spelled out (``le``, ``ge``, ``ne``, ``eq``, ``lt``, ``gt``, ``eq``, ``plus``, ``and``, ``pct``,
    ``x``: an intersection ``female × C`` is ``female_x_C``), other characters than letters (with their combining
    marks: ``क्षत्रिय`` stays whole), digits, ``_``, ``.`` and ``-`` (slashes, spaces) made ``_``. A name left with no
    letter or digit (a sentiment class ``"-"``, ``"?"``, an emoji) is spelled character by character: ``-`` as
    ``minus``, ``_`` as ``underscore``, ``.`` as ``dot``, others by their Unicode names (``question_mark``), so that
    names of symbols give distinct, readable tags, not one ``_`` each; an empty name gives ``_``.

    Examples:
        >>> tag_safe("hours/week"), tag_safe("capital gain"), tag_safe(3)
        ('hours_week', 'capital_gain', '3')
        >>> [tag_safe(n) for n in ["<50K", ">=50K", "-", "0", "+", "?", "female × C"]]
        ['lt_50K', 'ge_50K', 'minus', '0', 'plus', 'question_mark', 'female_x_C']
        >>> tag_safe("क्षत्रिय") == "क्षत्रिय", tag_safe("cafe\u0301") == "cafe\u0301"  # a virama, a decomposed accent
        (True, True)
    """
    text = str(name)
    runs = ("".join(cs) if kept else _spelled("".join(cs)) for kept, cs in itertools.groupby(text, _kept))
    tag = "".join(runs).strip("_")
    if any(c.isalnum() for c in tag):
        return tag
    words = [_SPELLED.get(c) or unicodedata.name(c, f"u{ord(c):04x}") for c in text if not c.isspace()]
    return re.sub(r"[^\w.\-]+", "_", "_".join(words).lower()).strip("_") or "_"


def check_distinct_tags(parameter: str, names: Sequence[str] | None, tags: str, what: str = "item", *, advice: str = "") -> None:
    """Refuse two ``names`` that :func:`tag_safe` makes one tag: their scalar series (``tags``, with
    ``<name>`` for the tag) would overwrite each other in the logger, silently; ``advice`` ends the message.

    Examples:
        >>> check_distinct_tags("class_names", ["cat", "dog"], "anomaly_index/<name>", "class")
        >>> check_distinct_tags("class_names", ["hot dog", "hot_dog"], "anomaly_index/<name>", "class")
        Traceback (most recent call last):
        ...
        ValueError: Expected argument `class_names` to name every class apart but 'hot dog' and 'hot_dog' both give the scalar tag anomaly_index/hot_dog (names are tags with characters other than letters, digits, '_', '.' and '-' made '_', signs such as '<' and '+' spelled out: tag_safe), so one series would overwrite the other
    """
    seen: dict[str, str] = {}
    for name in names or ():
        tag = tag_safe(name)
        if tag in seen:
            shown = tags.replace("<name>", tag)
            raise ValueError(
                f"Expected argument `{parameter}` to name every {what} apart but {seen[tag]!r} and {name!r} both give the "
                f"scalar tag{'s' if ' and ' in tags else ''} {shown} (names are tags with characters other than letters, "
                "digits, '_', '.' and '-' made '_', signs such as '<' and '+' spelled out: tag_safe), so one series would "
                f"overwrite the other{'; ' + advice if advice else ''}")
        seen[tag] = name


def class_label(class_names: list[str] | None, index: int) -> str:
    """The name of class ``index`` (its index when no names are given).

    Raises:
        ValueError: ``index`` has no name in ``class_names``.

    Examples:
        >>> class_label(["cat", "dog"], 1), class_label(None, 7)
        ('dog', '7')
    """
    if class_names is None:
        return str(index)
    if not 0 <= index < len(class_names):
        raise ValueError(f"Expected argument `class_names` to name class {index} but it holds {len(class_names)} names")
    return class_names[index]


def names_meta(
    feature_names: list[str] | None,
    class_names: list[str] | None,
    targets: Tensor | None = None,
    mask: Tensor | None = None,
    *,
    inputs: Tensor | None = None,
    vocabulary: list[str] | None = None,
    outputs: Tensor | None = None,
    labels: Tensor | None = None,
    model: Any = None,
) -> dict[str, Any]:
    """The ``AuditResult.meta`` entries that the reporting layer reads to name what it draws:
    ``feature_names``, ``class_names`` (when given), ``targets`` (the class explained for each probe
    sample) and, for tabular inputs ``[N, D]`` with one mask for all samples, ``feature_groups``
    (the group of each column), and with a ``vocabulary`` (a list, ``vocabulary[id]`` the word of
    token ``id``) the words of the token ids in ``inputs`` (``{"<id>": word}``: a report holds the
    probe's words, not a tokenizer's whole vocabulary). ``outputs``: the explained output of the
    probe; one of a single column (a regression, a one-logit classifier) is recorded as
    ``outputs: 1``, so that figures say "the output" rather than "class 0"; several columns and real-valued
    ``labels`` (:func:`regression_labels` with the output width and ``model``: a multi-output regression, a
    forecast of several horizons), or no labels beside a ``model`` that says it regresses (:func:`unlabelled_regression`:
    an autoencoder's flat reconstruction), as ``regression: True``, so that figures say "output k" rather than "class k"; multi-hot labels
    (:func:`multi_hot_labels` with ``model``) as ``multi_label: True``.

    Raises:
        ValueError: a target class has no name in ``class_names``.

    Examples:
        >>> import torch
        >>> names_meta(["a", "b"], ["no", "yes"], torch.tensor([1, 0]), torch.tensor([[0, 1, 1]]), inputs=torch.zeros(2, 3))
        {'feature_names': ['a', 'b'], 'class_names': ['no', 'yes'], 'targets': [1, 0], 'feature_groups': [0, 1, 1]}
    """
    meta: dict[str, Any] = {}
    if feature_names is not None:
        meta["feature_names"] = list(feature_names)
    if class_names is not None:
        meta["class_names"] = list(class_names)
    if targets is not None:
        meta["targets"] = [int(t) for t in targets.reshape(-1).tolist()]
        if class_names is not None and meta["targets"] and max(meta["targets"]) >= len(class_names):
            width = f"; the explained output has {outputs.shape[1]} columns" if outputs is not None and outputs.dim() == 2 else ""
            raise ValueError(f"Expected argument `class_names` to name class {max(meta['targets'])} but it holds "
                             f"{len(class_names)} names{width} (a head that grows during the fit: name every class it will "
                             "have, from the start)")
    if mask is not None and inputs is not None and inputs.dim() == 2 and mask.dim() == 2 and mask.shape[0] == 1:
        meta["feature_groups"] = [int(g) for g in mask[0].tolist()]
    if feature_names is not None and mask is not None and inputs is not None:
        meta.update(_axis_names(list(feature_names), mask, inputs))
    if vocabulary is not None and inputs is not None and not inputs.is_floating_point():
        meta["vocabulary"] = {str(t): vocabulary[t] for t in torch.unique(inputs).tolist() if 0 <= t < len(vocabulary)}
    if outputs is not None and (outputs.dim() == 1 or outputs.dim() == 2 and outputs.shape[1] == 1):
        meta["outputs"] = 1
    elif outputs is not None and outputs.dim() == 2 and (regression_labels(labels, int(outputs.shape[1]), model)
                                                         or unlabelled_regression(labels, model)):
        meta["regression"] = True
    elif outputs is not None and outputs.dim() == 2 and multi_hot_labels(labels, model):
        meta["multi_label"] = True  # figures say "label k", not "class k"
    return meta


def _axis_names(feature_names: list[str], mask: Tensor, inputs: Tensor) -> dict[str, list[str]]:
    """The names of a sequence's channels (``channel_names``: dimension 1 of ``[N, C, T]``) or features
    (``last_names``: the last dimension of ``[N, T, F]``) where one mask for all samples makes each of them a group of
    its own along the other axis (EEG electrodes grouped by channel): the sequence maps label their heatmap rows so,
    not by index.

    Examples:
        >>> _axis_names(["Cz", "Pz"], torch.tensor([[[1, 1, 1], [0, 0, 0]]]), torch.zeros(4, 2, 3))
        {'channel_names': ['Pz', 'Cz']}
        >>> _axis_names(["Cz", "Pz"], torch.arange(2).reshape(1, 2, 1), torch.zeros(4, 2, 3))
        {'channel_names': ['Cz', 'Pz']}
    """
    sample = (1, *inputs.shape[1:])
    if inputs.dim() != 3 or mask.dim() != 3 or mask.shape[0] != 1 or any(
            width not in (1, size) for width, size in zip(mask.shape[1:], sample[1:])):
        return {}
    m, named = mask.expand(sample)[0], {}  # a mask that broadcasts, ``arange(C).reshape(1, C, 1)``: one group per channel
    for key, ends in (("channel_names", m[:, 0]), ("last_names", m[0])):
        along = m == (ends[:, None] if key == "channel_names" else ends[None, :])  # constant along the other axis
        groups = [int(g) for g in ends.tolist()]
        if bool(along.all()) and len(set(groups)) == len(groups) and len(groups) > 1:
            named[key] = [str(feature_names[g]) for g in groups]
    return named


#: the way out of :func:`check_one_label_per_sample` for stacked (time, event) labels of a survival model
_NO_LABELS = ("give the audits no labels, `unpack_batch=lambda batch: (batch[0], None, None)` (docs/your_model.md, "
              "'Ordinal heads and survival models', a Cox model)")


def check_one_label_per_sample(audit: str, labels: Any, n: int, why: str, *, multi_label_output: str | None = None,
                               model: Any = None, without_labels: str = "") -> None:
    """``ValueError`` unless ``labels`` is one class per probe sample, ``[n]`` (per-position
    ``[N, T]`` or multi-hot ``[N, C]`` labels have no single class; ``why`` says what needs it).
    ``multi_label_output``: the ``output=`` that makes label ``k`` of a multi-label classifier the
    audit's binary classifier, named for multi-hot labels (labels ``y[:, k]`` alone would leave
    the audit explaining all the model's outputs as classes of one decision). ``model``: the model
    audited, whose task (:func:`label_task`) decides whether labels ``[N, C]`` are multi-hot (a
    multi-label model's probe whose rows hold one label each gets the hint too). ``without_labels``: the audit's
    own way that needs no labels, named for a class per pixel ``[N, H, W]`` (a segmentation mask).

    Examples:
        >>> check_one_label_per_sample("FairnessAudit", torch.zeros(4, 3), 4, "to compare decisions with")
        Traceback (most recent call last):
        ...
        ValueError: FairnessAudit needs one class label per probe sample, [4], but got [4, 3] (per-position or multi-label ...
    """
    if not isinstance(labels, Tensor) or labels.dim() != 1 or labels.shape[0] != n:
        fix, task = "", label_task(model)  # walks every module: once
        smoothed = smoothed_multi_hot(labels) if task in (None, "multilabel") else None
        if smoothed is not None:
            fix = (f"; these rows are multi-hot labels smoothed (every entry {smoothed[0]:g} or {smoothed[1]:g}, rows not "
                   "summing to 1: a multi-label classifier's targets after label smoothing), with no single class"
                   + ("" if task else " (the model says nothing of its task: `self.loss = "
                      "nn.BCEWithLogitsLoss()` or `hparams.task = 'multilabel'` says it is multi-label)"))
        if multi_label_output is not None and (smoothed is not None or multi_hot_labels(labels, task=task)):
            k = "(y[:, k] > 0.5).long()" if smoothed is not None else "y[:, k].long()"
            fix += (f"; for a multi-label classifier audit label k as a binary classifier, `output={multi_label_output}` with "
                    f"labels `{k}`: the labels alone would leave the model's outputs explained as the classes of "
                    "one decision")
        elif smoothed is not None:
            fix += "; `(y[:, k] > 0.5).long()` gives label k's classes 0 and 1"
        elif class_distributions(labels, task="multiclass") and task in ("multilabel", "regression"):
            fix = (f"; these rows are soft labels but the model says it is {task} (a loss it holds, such as "
                   "BCEWithLogitsLoss on mixup targets, or `hparams.task`), so they are not read as classes: for a "
                   "single-label classifier pass `unpack_batch=lambda b: (b[0], b[1].argmax(1), None)`")
        elif isinstance(labels, Tensor) and labels.dim() >= 3 and labels.shape[0] == n:
            fix = ("; these are a class per pixel (a segmentation mask [N, H, W]): give the audit one class per sample of "
                   "what its `output=` explains, e.g. a region's most frequent class beside `output=lambda out: "
                   "out[:, :, 8:16, 8:16].mean((2, 3))`: `unpack_batch=lambda b: (b[0], b[1][:, 8:16, "
                   "8:16].flatten(1).mode(1).values, None)`" + (f"; or {without_labels}" if without_labels else ""))
        elif (reading := time_event(labels[:, 0], labels[:, 1]) if isinstance(labels, Tensor) and labels.dim() == 2
              and labels.shape[1] == 2 else None) == "float":
            fix = "; these rows read as a survival model's (time, event), no class: " + _NO_LABELS
        elif reading == "whole":
            fix = ("; if these rows are a survival model's (time, event), times in whole units (days), not two labels per "
                   "sample: " + _NO_LABELS)
        raise ValueError(
            f"{audit} needs one class label per probe sample, [{n}], but got "
            f"{list(getattr(labels, 'shape', [])) or type(labels).__name__} (per-position or multi-label targets have no "
            f"single class {why}; soft labels [N, C], rows non-negative summing to 1 (mixup, label smoothing, a teacher's "
            f"probabilities), are read by their largest entry); pass `unpack_batch=` (or a `probe=`) whose labels are one "
            f"class per sample{fix}"
        )


def single_input_error(audit: str, inputs: Any, *, forward_args: bool = True) -> ValueError:
    """The error of an audit that explains one input tensor, given a probe of several inputs
    (``((x1, x2, ...), y)`` batches), with the two ways out. ``forward_args=False``: the audit draws
    new inputs (``SobolAudit``), so per-sample forward arguments cannot follow them either, and the
    ways out are a model of one input or the estimator with a function of one's own.

    Examples:
        >>> print(single_input_error("LayerMapAudit", (torch.zeros(2, 3, dtype=torch.long), torch.zeros(2, 5))))
        Expected one input tensor for LayerMapAudit but the probe holds 2 inputs ([2, 3] of torch.int64, [2, 5] of torch.float32) ...
    """
    shapes = ", ".join(f"{list(t.shape)} of {t.dtype}" for t in inputs)
    head = f"Expected one input tensor for {audit} but the probe holds {len(inputs)} inputs ({shapes}) for a model called model(x1, x2, ...)"
    if not forward_args:
        return ValueError(f"{head}; {audit} draws new inputs, so {ONE_INPUT_WAYS_OUT}")
    return ValueError(
        f"{head}; in CausalAuditCallback, choose the input with `explain=1` (its position in the inputs, or the name of "
        "forward's parameter: the others follow their rows as forward arguments); by hand, explain the first and pass the "
        "others as forward arguments, `unpack_batch=lambda batch: (x1, y, (x2,))` (the model is called model(x1, x2)), or "
        "call lightning_causal.causal.input_effects(model, (x1, x2), ...), which takes several inputs"
    )


ONE_INPUT_WAYS_OUT = (
    "neither other inputs nor forward arguments with one row per sample can follow them (CausalAuditCallback's "
    "`explain=` cannot help it: it passes the other inputs as such forward arguments): explain a model of one input "
    "(a module whose forward takes the inputs concatenated, torch.cat([x1.flatten(1), x2], 1), and splits them), or call "
    "lightning_causal.causal.sobol_indices(func, sampler) with a func [M, D] -> [M] of your own"
)
