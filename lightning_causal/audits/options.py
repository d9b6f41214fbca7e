"""Constructor checks shared by the audits (fail at construction, naming the argument)."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from lightning_causal.causal.engine.checks import check_int
from lightning_causal.causal.engine.user_frame import outside_package

__all__ = ["check_target", "check_baseline", "label_task", "check_mask_options", "check_names", "check_name_count", "check_distinct_tags", "tag_safe", "class_label", "names_meta", "warn_softmax_of_regression", "regression_labels", "multi_hot_labels", "warn_predicted_class_of_regression", "embedding_output", "first_row_outputs", "single_input_error", "ONE_INPUT_WAYS_OUT", "check_one_label_per_sample", "task_model"]


def check_target(target: Any) -> int | None:
    """``None`` (the predicted class) or a class index >= 0. A tuple (Captum's target of a dense
    output, ``(class, i, j)`` for a pixel) is refused naming ``output=`` with ``target=class``.

    Examples:
        >>> check_target((1, 5, 2))
        Traceback (most recent call last):
        ...
        ValueError: Expected argument `target` to be None or a non-negative int but got (1, 5, 2); ...
    """
    if isinstance(target, (tuple, list)):
        raise ValueError(f"Expected argument `target` to be None or a non-negative int but got {target!r}; {DENSE_TARGET}")
    return check_int("target", target, minimum=0, none_ok=True)


#: How Captum's tuple target of a dense output is said here (``check_target``, ``resolve_target``).
DENSE_TARGET = ("a tuple such as Captum's `(class, i, j)` for a pixel of a dense output is said with `output=` "
                "choosing the position and `target=` the class: `output=lambda out: out[:, :, i, j], target=class` "
                "(a token t of [N, T, C] scores: `out[:, t]`)")


def check_baseline(baseline: Any) -> Any:
    """A number, a tensor, or a tuple of those (one per input).

    Examples:
        >>> check_baseline("zero")
        Traceback (most recent call last):
        ...
        TypeError: Expected argument `baseline` to be a number, a tensor or a tuple of them but got 'zero'
    """
    values = baseline if isinstance(baseline, tuple) else (baseline,)
    if not values or any(isinstance(b, bool) or not isinstance(b, (int, float, Tensor)) for b in values):
        raise TypeError(f"Expected argument `baseline` to be a number, a tensor or a tuple of them but got {baseline!r}")
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
    """``None`` or a sequence of strings (feature or class names)."""
    if names is None:
        return None
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise TypeError(f"Expected argument `{name}` to be None or a sequence of strings but got {names!r:.80}")
    return list(names)


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


def tag_safe(name: object) -> str:
    """``name`` as one segment of a logger tag: characters other than letters, digits, ``_``, ``.``
    and ``-`` (slashes, spaces) become ``_``.

    Examples:
        >>> tag_safe("hours/week"), tag_safe("capital gain"), tag_safe(3)
        ('hours_week', 'capital_gain', '3')
    """
    return re.sub(r"[^\w.\-]+", "_", str(name)).strip("_") or "_"


def check_distinct_tags(parameter: str, names: list[str] | None, tags: str, what: str = "item") -> None:
    """Refuse two ``names`` that :func:`tag_safe` makes one tag: their scalar series (``tags``, with
    ``<name>`` for the tag) would overwrite each other in the logger, silently.

    Examples:
        >>> check_distinct_tags("class_names", ["cat", "dog"], "anomaly_index/<name>", "class")
        >>> check_distinct_tags("class_names", ["hot dog", "hot_dog"], "anomaly_index/<name>", "class")
        Traceback (most recent call last):
        ...
        ValueError: Expected argument `class_names` to name every class apart but 'hot dog' and 'hot_dog' both give the scalar tag anomaly_index/hot_dog (names are tags with characters other than letters, digits, '_', '.' and '-' made '_'), so one series would overwrite the other
    """
    seen: dict[str, str] = {}
    for name in names or ():
        tag = tag_safe(name)
        if tag in seen:
            shown = tags.replace("<name>", tag)
            raise ValueError(
                f"Expected argument `{parameter}` to name every {what} apart but {seen[tag]!r} and {name!r} both give the "
                f"scalar tag{'s' if ' and ' in tags else ''} {shown} (names are tags with characters other than letters, "
                "digits, '_', '.' and '-' made '_'), so one series would overwrite the other")
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
    forecast of several horizons) as ``regression: True``, so that figures say "output k" rather than "class k"; multi-hot labels
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
        if class_names is not None and meta["targets"]:
            class_label(class_names, max(meta["targets"]))
    if mask is not None and inputs is not None and inputs.dim() == 2 and mask.dim() == 2 and mask.shape[0] == 1:
        meta["feature_groups"] = [int(g) for g in mask[0].tolist()]
    if vocabulary is not None and inputs is not None and not inputs.is_floating_point():
        meta["vocabulary"] = {str(t): vocabulary[t] for t in torch.unique(inputs).tolist() if 0 <= t < len(vocabulary)}
    if outputs is not None and (outputs.dim() == 1 or outputs.dim() == 2 and outputs.shape[1] == 1):
        meta["outputs"] = 1
    elif outputs is not None and outputs.dim() == 2 and regression_labels(labels, int(outputs.shape[1]), model):
        meta["regression"] = True
    elif outputs is not None and outputs.dim() == 2 and multi_hot_labels(labels, model):
        meta["multi_label"] = True  # figures say "label k", not "class k"
    return meta


def warn_softmax_of_regression(audit: str, labels: Any, fix: str, model: Any = None, *,
                               outputs: Tensor | Callable[[], Tensor] | None = None, output: Any = None) -> None:
    """Warn that ``audit`` applies a softmax to the model's outputs although the probe's labels are
    a regression target (:func:`regression_labels`: a multi-output regression, whose outputs are not
    logits: the softmax of ``(10 x0, x1)`` is explained by ``x0`` alone). Integer labels, class-like
    floats (one-hot or soft labels, class indices stored as floats) and probes without labels say nothing.

    Multi-hot labels (:func:`multi_hot_labels`) are taken for a multi-label classifier (trained
    with ``BCEWithLogitsLoss``): each output's own sigmoid is its probability, and the softmax over
    the ``C`` outputs is neither; the warning then says how to explain one label's sigmoid. One-hot
    float labels (one class per sample, a softmax classifier's) say nothing, unless ``model`` says
    it is multi-label (:func:`label_task`); a ``model`` that says it is a regression (``nn.MSELoss``)
    is warned about whatever its float labels hold (proportions summing to 1 too). ``outputs`` (the
    explained output on some probe rows, or a callable computing it) and ``output`` (the audit's
    ``output=``): an embedding (:func:`embedding_output`) is warned about whatever the labels, the
    softmax of its coordinates being no probability.
    """
    model = task_model(model, output)
    if outputs is not None and not multi_hot_labels(labels, model) and not regression_labels(labels, model=model):
        out = outputs() if callable(outputs) else outputs
        embedding = embedding_output(out, model, output)
        if embedding is not None:
            warnings.warn(
                f"{audit} explains the softmax over the model's outputs, but they are an embedding ({embedding}): the "
                f"softmax of its coordinates is no probability; pass {fix} to explain the outputs themselves, or `output=` "
                "class scores such as temperature-scaled similarities to class centroids (`output=lambda out: out @ "
                "centroids.T / 0.1`)", UserWarning, stacklevel=outside_package())
        return
    if isinstance(labels, Tensor) and labels.is_floating_point():
        if multi_hot_labels(labels, model):
            message = (
                f"{audit} explains the softmax over the model's outputs, but the probe's labels are multi-hot "
                f"{list(labels.shape)} (a multi-label classifier?): each output's sigmoid is its own probability and "
                f"their softmax is not one; pass `output=lambda out: out[:, [k]]` to explain label k's sigmoid, "
                f"or {fix} to explain the outputs themselves"
            )
        elif regression_labels(labels, model=model):
            message = (
                f"{audit} explains the softmax over the model's outputs, but the probe's labels are floats (a regression?): "
                f"the softmax of outputs that are not logits mixes them; pass {fix} to explain the output itself"
            )
        else:
            return
        warnings.warn(message, UserWarning, stacklevel=outside_package())


def task_model(model: Any, output: Any) -> Any:
    """``model``, whose task (:func:`label_task`: the losses, metrics, ``task`` hyperparameter and last
    activation it holds; :func:`embedding_output`: a metric-learning loss) is that of the explained
    output, or ``None`` where ``output`` selects one of several outputs by key or index
    (``output="reg"`` of ``{"cls": logits, "reg": y}``, ``output=1`` of ``(logits, aux)``; the key
    ``"logits"`` excepted): a multi-task model's losses are its heads', and the ``nn.CrossEntropyLoss``
    of its class head says nothing of its regression head. The probe's labels then decide, unless
    the model declares each head's task in a ``task`` hyperparameter keyed by output
    (``self.save_hyperparameters({"task": {"cls": "multiclass", "reg": "regression"}})``): the
    head's entry is then its task.

    Examples:
        >>> from torch import nn
        >>> model = nn.CrossEntropyLoss()
        >>> task_model(model, "reg") is None, task_model(model, "logits") is model, task_model(model, None) is model
        (True, True, True)
        >>> model.hparams = {"task": {"cls": "multiclass", "reg": "regression"}}
        >>> label_task(task_model(model, "reg")), label_task(task_model(model, "cls"))
        ('regression', 'multiclass')
    """
    if isinstance(output, int) and not isinstance(output, bool) or isinstance(output, str) and output != "logits":
        hparams = getattr(model, "hparams", None)
        tasks = hparams.get("task") if hasattr(hparams, "get") else None
        if isinstance(tasks, Mapping) and tasks.get(output) in ("multilabel", "multiclass", "regression"):
            return _DeclaredTask(tasks[output])
        return None
    return model


class _DeclaredTask:
    """What :func:`label_task` reads of one head whose task the model declares per output: that task
    as its ``task`` hyperparameter, and no modules."""

    def __init__(self, task: str) -> None:
        self.hparams = {"task": task}

    def modules(self) -> Iterator[nn.Module]:
        return iter(())


_MULTI_LABEL_LOSSES = ("BCEWithLogitsLoss", "BCELoss", "MultiLabelSoftMarginLoss", "MultiLabelMarginLoss")
_SINGLE_LABEL_LOSSES = ("CrossEntropyLoss", "NLLLoss")
_REGRESSION_LOSSES = ("MSELoss", "L1Loss", "HuberLoss", "SmoothL1Loss", "PoissonNLLLoss", "GaussianNLLLoss")


def label_task(model: Any) -> str | None:
    """What ``model`` says of its task: ``"multilabel"`` (each output its own sigmoid decision),
    ``"multiclass"`` (one class per sample), ``"regression"`` or ``None`` (nothing, or signals that
    disagree). Read, in this order, from the losses and metrics held as submodules
    (``nn.BCEWithLogitsLoss``, ``nn.BCELoss``, ``nn.MultiLabel*Loss``, torchmetrics' ``Multilabel*``
    metrics, e.g. ``Accuracy(task="multilabel")``: multi-label; ``nn.CrossEntropyLoss``,
    ``nn.NLLLoss``, ``Multiclass*`` metrics: one class; ``nn.MSELoss``, ``nn.L1Loss``,
    ``nn.HuberLoss``, ``nn.SmoothL1Loss``, ``nn.PoissonNLLLoss``, ``nn.GaussianNLLLoss``:
    regression), then a ``task`` hyperparameter (``self.hparams.task``: ``"multilabel"``,
    ``"multiclass"`` or ``"regression"``), then the last layer registered if it is an activation
    (``nn.Sigmoid``: multi-label; ``nn.Softmax``/``nn.LogSoftmax``: one class).

    Examples:
        >>> from torch import nn
        >>> class Tagger(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.fc, self.loss = nn.Linear(4, 3), nn.BCEWithLogitsLoss()
        >>> label_task(Tagger()), label_task(nn.Sequential(nn.Linear(4, 3), nn.Softmax(1))), label_task(nn.Linear(4, 3))
        ('multilabel', 'multiclass', None)
    """
    modules = getattr(model, "modules", None)
    if not callable(modules):
        return None
    found, last = set(), None
    for m in modules():
        name = type(m).__name__
        if name in _MULTI_LABEL_LOSSES or name.startswith("Multilabel"):
            found.add("multilabel")
        elif name in _SINGLE_LABEL_LOSSES or name.startswith("Multiclass"):
            found.add("multiclass")
        elif name in _REGRESSION_LOSSES:
            found.add("regression")
        elif not any(True for _ in m.children()):
            last = name
    if len(found) == 1:
        return found.pop()
    if found:
        return None
    hparams = getattr(model, "hparams", None)
    task = hparams.get("task") if hasattr(hparams, "get") else None
    if task in ("multilabel", "multiclass", "regression"):
        return task
    return {"Sigmoid": "multilabel", "Softmax": "multiclass", "LogSoftmax": "multiclass"}.get(last or "")


def multi_hot_labels(labels: Any, model: Any = None, *, task: str | None = None) -> bool:
    """Whether the probe's ``labels`` are those of a multi-label classifier: zeros and ones ``[N, C]``
    (``C >= 2``). Where ``model`` says its task (:func:`label_task`: its loss, metrics, ``task``
    hyperparameter or final activation), that decides, whatever the rows hold: a multi-label
    classifier's probe whose rows happen to hold one label each is still multi-label. Otherwise
    float labels are multi-label when some row holds no 1 or several (one-hot rows are read as one
    class per sample, a softmax classifier's labels, with a warning that names the ways to say
    the task: :data:`GUESSED_SINGLE_LABEL`): pass the model's loss as a submodule (or ``task=``) where
    the probe may hold one label per row. ``task``: :func:`label_task`'s answer
    where the caller has it (it then stands for ``model``).

    Examples:
        >>> multi_hot_labels(torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0]])), multi_hot_labels(torch.tensor([[0.0, 1.0], [1.0, 0.0]]))
        (True, False)
        >>> multi_hot_labels(torch.tensor([[0.0, 1.0], [1.0, 0.0]]), torch.nn.BCEWithLogitsLoss())
        True
    """
    if not isinstance(labels, Tensor) or labels.dim() != 2 or labels.shape[1] < 2 or labels.dtype == torch.bool:
        return False
    lab = labels.detach()
    if not bool(((lab == 0) | (lab == 1)).all()):
        return False
    task = task if task is not None else label_task(model) if model is not None else None
    if task is not None:
        return task == "multilabel"
    one_hot = bool((lab.sum(1) == 1).all())
    if labels.is_floating_point() and one_hot:
        # [N, C] named by C only: the callback's dry run and its audits of the whole probe give one message
        warnings.warn(GUESSED_SINGLE_LABEL.format(shape=f"[N, {labels.shape[1]}]"), UserWarning, stacklevel=outside_package())
    return labels.is_floating_point() and not one_hot


#: The warning of :func:`multi_hot_labels` when one-hot float labels are read as one class per sample
#: on a guess: the model says nothing of its task.
GUESSED_SINGLE_LABEL = (
    "The probe's labels {shape} hold exactly one 1 per row and the model says nothing of its task (no loss or "
    "torchmetrics metric held as a submodule, no `hparams.task`, no last nn.Sigmoid/nn.Softmax: a loss computed in "
    "`training_step`, such as F.binary_cross_entropy_with_logits, is not seen), so they are read as one class per "
    "sample (a softmax classifier's one-hot labels). If the model is multi-label, say so: "
    "`self.save_hyperparameters({{'task': 'multilabel'}})` in its `__init__` (a plain nn.Module: "
    "`model.hparams = {{'task': 'multilabel'}}`), or hold its loss, `self.loss = nn.BCEWithLogitsLoss()`; "
    "`'task': 'multiclass'` says one class per sample and silences this (docs/your_model.md, 'Multi-label classifiers'); "
    "for one head of a model of several outputs, selected by `output=` (a key or an index), declare it per head: "
    "`{{'task': {{'tags': 'multilabel', 'cls': 'multiclass'}}}}` (docs/your_model.md, 'Models of several outputs')")


def regression_labels(labels: Any, width: int | None = None, model: Any = None, *, task: str | None = None) -> bool:
    """Whether the probe's ``labels`` are a regression target: floats that are not class-like.
    Class-like floats are zeros and ones (binary, one-hot, multi-hot), soft labels ``[N, C]`` (rows
    non-negative and summing to 1) and whole numbers ``[N]`` >= 0 that can be classes of the model
    (class indices stored as floats): with its output ``width`` known, at most ``width - 1`` (0 or 1
    for one output, a binary classifier's logit); whole numbers beyond (counts 0, 1, 2, ... of a
    one-output regression) are a regression target. Where ``model`` says its task
    (:func:`label_task`), that decides: ``"regression"`` whatever the labels hold, integer counts
    included (a Poisson regression's ``int64`` targets), a classifier's never (``task``: that answer
    where the caller has it). Without it, integer labels are class indices.

    Examples:
        >>> regression_labels(torch.tensor([[0.3, -1.2], [2.5, 0.1]])), regression_labels(torch.tensor([0.0, 2.0, 1.0]))
        (True, False)
        >>> regression_labels(torch.tensor([0.0, 2.0, 1.0]), width=1), regression_labels(torch.tensor([0.0, 2.0, 1.0]), width=3)
        (True, False)
        >>> regression_labels(torch.tensor([[0.2, 0.8]])), regression_labels(torch.tensor([1, 0]))
        (False, False)
    """
    if not isinstance(labels, Tensor) or labels.numel() == 0 or labels.dtype == torch.bool:
        return False
    task = task if task is not None else label_task(model) if model is not None else None
    if task is not None:
        return task == "regression"
    if not labels.is_floating_point():
        return False
    lab = labels.detach()
    if bool(((lab == 0) | (lab == 1)).all()):
        return False
    if lab.dim() == 2 and bool((lab >= 0).all()) and bool(((lab.sum(1) - 1).abs() <= 1e-4).all()):
        return False
    if lab.dim() == 1 and bool((lab >= 0).all()) and bool((lab == lab.round()).all()):
        return width is not None and float(lab.max()) > max(1, width - 1)
    return True


_EMBEDDING_LOSSES = ("TripletMarginLoss", "TripletMarginWithDistanceLoss", "CosineEmbeddingLoss", "HingeEmbeddingLoss",
                     "NTXentLoss", "SupConLoss", "ContrastiveLoss", "InfoNCE")


def embedding_output(outputs: Any, model: Any = None, output: Any = None) -> str | None:
    """Why ``outputs`` (the model's explained output, ``[N, D]``) read as an embedding rather than
    class scores, or ``None``: every row of unit L2 norm (an L2-normalised embedding; rows of
    non-negative values summing to 1 to the rounding of ``outputs``' dtype, probabilities, excepted;
    the norm to 1e-4, so that a float16 / bfloat16 embedding is not recognised), or a ``model`` that holds a
    metric-learning loss (``nn.TripletMarginLoss``, ``nn.CosineEmbeddingLoss``, ...), says no
    other task (:func:`label_task`) and is explained as it returns (``output``, the audit's
    ``output=``, is ``None``: a chosen output, such as class-centroid similarities, is taken as given).

    Examples:
        >>> import torch.nn.functional as F
        >>> embedding_output(F.normalize(torch.randn(3, 8), dim=1)), embedding_output(torch.randn(3, 8))
        ('every row has unit L2 norm', None)
    """
    if not isinstance(outputs, Tensor) or outputs.dim() != 2 or outputs.shape[1] < 2 or outputs.shape[0] == 0:
        return None
    model = task_model(model, output)
    # float64 where the device has it (MPS has none: there float32, whose rounding is far below the 1e-4 tested)
    out = outputs.detach().to(torch.float32 if outputs.device.type == "mps" else torch.float64)
    # float16 / bfloat16 outputs round each value by up to eps/2 (relative): a bfloat16 softmax row
    # [1.0, 2e-4, ...] sums to 1 + 7e-4. The norm keeps 1e-4: widened to the rounding, a classifier's
    # one row of two logits (first_row_outputs) near the unit circle would be refused as an embedding;
    # a float16 / bfloat16 embedding (norms 1 +- 1e-3) is then missed, which only loses a warning.
    tol = max(1e-4, 4 * torch.finfo(outputs.dtype).eps) if outputs.is_floating_point() else 1e-4
    probabilities = bool((out >= 0).all()) and bool(((out.sum(1) - 1).abs() <= tol).all())
    if not probabilities and bool(((out.norm(dim=1) - 1).abs() <= 1e-4).all()):
        return "every row has unit L2 norm"
    modules = getattr(model, "modules", None)
    if output is None and callable(modules) and label_task(model) is None:
        held = sorted({type(m).__name__ for m in modules() if type(m).__name__ in _EMBEDDING_LOSSES})
        if held:
            return f"the model holds {held[0]}, a metric-learning loss"
    return None


def first_row_outputs(model: Any, probe: Any, output: Any) -> Callable[[], Tensor]:
    """A callable giving the model's explained output (``output``: the audit's ``output=``) on the
    probe's first sample, with its forward arguments, for :func:`warn_predicted_class_of_regression`;
    it leaves no trace."""
    def outputs() -> Tensor:
        from lightning_causal.causal.engine.forward import Forward
        from lightning_causal.causal.engine.state import audit_mode

        sub = probe.subset(slice(0, 1))
        inputs = sub.inputs if isinstance(sub.inputs, tuple) else (sub.inputs,)
        with audit_mode(model):
            return Forward(model, num_samples=1, output=output, **sub.forward_options)(*inputs)
    return outputs


def warn_predicted_class_of_regression(audit: str, labels: Any, outputs: Tensor | Callable[[], Tensor], *, per_sample: bool = True,
                                       model: Any = None, output: Any = None) -> None:
    """Warn that ``audit``, given ``target=None``, explains the predicted class (the largest output)
    of a model whose probe labels are a regression target (:func:`regression_labels`) and which has
    several outputs (a forecast of ``H`` horizons, a multi-output regression): the largest output is
    no class, and the audit would explain horizon 0 for some samples and horizon 2 for others.
    Multi-hot labels (:func:`multi_hot_labels`, a multi-label classifier) are warned about alike:
    each label is its own decision, and the largest logit picks one label per sample.
    An embedding (:func:`embedding_output`: rows of unit L2 norm, or a model holding a metric-learning
    loss) is warned about whatever its labels (class labels only pair its samples): its largest
    coordinate is no class; the warning names ``output=`` scores per sample (cosine similarity to class centroids).
    ``outputs``: the model's explained output on some probe rows, or a callable that computes it. ``per_sample``: the class is chosen per sample (else once, the one
    predicted most often). ``output``: the audit's ``output=`` (:func:`embedding_output`). ``model``: its task decides multi-label and regression labels (:func:`multi_hot_labels`, :func:`regression_labels`). A model with one output, class labels and a probe without labels say nothing.
    """
    model = task_model(model, output)
    multi_label = multi_hot_labels(labels, model)
    regression = not multi_label and regression_labels(labels, model=model)
    out = outputs() if callable(outputs) else outputs
    width = int(out.shape[1]) if isinstance(out, Tensor) and out.dim() >= 2 else 1
    if width < 2:
        return
    how = ("each sample is explained at whichever of its outputs is largest, so the figures mix outputs across samples"
           if per_sample else "the output that is largest on most probe samples is explained, whichever that is")
    embedding = None if multi_label or regression else embedding_output(out, model, output)
    if embedding is not None:
        warnings.warn(
            f"{audit} explains the predicted class (`target=None`: the largest of the model's {width} outputs), but the "
            f"outputs are an embedding ({embedding}): its largest coordinate is no class, and {how}. Pass `output=` a "
            "score per sample: the cosine similarity to each class's centroid (`output=lambda out: out @ centroids.T`, "
            "`centroids` [C, D] of unit rows, with `target=c`), to an anchor's embedding (`output=lambda out: out @ anchor`), "
            "or `target=k` for coordinate k", UserWarning, stacklevel=outside_package())
        return
    if not multi_label and not regression:
        return
    if multi_label:
        warnings.warn(
            f"{audit} explains the predicted class (`target=None`: the largest of the model's {width} outputs), but the "
            f"probe's labels are multi-hot {list(labels.shape)} (a multi-label classifier?): each label is its own "
            f"decision, not one class among {width}, and {how}. Pass `target=k` to explain label k's logit (one audit "
            "per label, each with its own `name=`)", UserWarning, stacklevel=outside_package())
        return
    warnings.warn(
        f"{audit} explains the predicted class (`target=None`: the largest of the model's {width} outputs), but the "
        f"probe's labels are real-valued {list(labels.shape)} (a regression, e.g. a forecast of {width} horizons?): {how}. "
        f"Pass `target=k` to explain output k (one audit per output, each with its own `name=`)",
        UserWarning, stacklevel=outside_package())


def check_one_label_per_sample(audit: str, labels: Any, n: int, why: str, *, multi_label_output: str | None = None,
                               model: Any = None) -> None:
    """``ValueError`` unless ``labels`` is one class per probe sample, ``[n]`` (per-position
    ``[N, T]`` or multi-hot ``[N, C]`` labels have no single class; ``why`` says what needs it).
    ``multi_label_output``: the ``output=`` that makes label ``k`` of a multi-label classifier the
    audit's binary classifier, named for multi-hot labels (labels ``y[:, k]`` alone would leave
    the audit explaining all the model's outputs as classes of one decision). ``model``: the model
    audited, whose task (:func:`label_task`) decides whether labels ``[N, C]`` are multi-hot (a
    multi-label model's probe whose rows hold one label each gets the hint too).

    Examples:
        >>> check_one_label_per_sample("FairnessAudit", torch.zeros(4, 3), 4, "to compare decisions with")
        Traceback (most recent call last):
        ...
        ValueError: FairnessAudit needs one class label per probe sample, [4], but got [4, 3] (per-position or multi-label ...
    """
    if not isinstance(labels, Tensor) or labels.dim() != 1 or labels.shape[0] != n:
        fix = ""
        if multi_label_output is not None and multi_hot_labels(labels, model):
            fix = (f"; for a multi-label classifier audit label k as a binary classifier, `output={multi_label_output}` with "
                   "labels `y[:, k].long()`: the labels alone would leave the model's outputs explained as the classes of "
                   "one decision")
        raise ValueError(
            f"{audit} needs one class label per probe sample, [{n}], but got "
            f"{list(getattr(labels, 'shape', [])) or type(labels).__name__} (per-position or multi-label targets have no "
            f"single class {why}); pass `unpack_batch=` (or a `probe=`) whose labels are one class per sample{fix}"
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
        f"{head}; explain the first and pass the others as forward arguments, "
        "`unpack_batch=lambda batch: (x1, y, (x2,))` (the model is called model(x1, x2)), or call "
        "lightning_causal.causal.input_effects(model, (x1, x2), ...), which takes several inputs"
    )


ONE_INPUT_WAYS_OUT = (
    "neither other inputs nor forward arguments with one row per sample can follow them: explain a model of one input "
    "(a module whose forward takes the inputs concatenated, torch.cat([x1.flatten(1), x2], 1), and splits them), or call "
    "lightning_causal.causal.sobol_indices(func, sampler) with a func [M, D] -> [M] of your own"
)
