"""What the model and the probe's labels say of the task: multi-label, one class, regression, embedding.

:func:`label_task` reads what a model says of its task (the losses and metrics it holds, a ``task``
hyperparameter, its last activation); :func:`task_model` narrows that to the explained output of a
multi-task model; :func:`multi_hot_labels`, :func:`regression_labels` and :func:`embedding_output`
read the probe's labels and the model's outputs where the model says nothing. The audits' warnings
(:mod:`lightning_causal.audits.task_warnings`) and checks (:mod:`lightning_causal.audits.options`)
build on them.
"""

from __future__ import annotations

import keyword
import warnings
import weakref
from collections.abc import Iterator, Mapping
from typing import Any

import torch
from torch import Tensor, nn

from lightning_causal.causal.engine.checks import ranks_beyond
from lightning_causal.causal.engine.layer_calls import output_layer
from lightning_causal.causal.engine.state import rows_sum_to_one
from lightning_causal.causal.engine.user_frame import outside_package

__all__ = ["DISAGREEING_TASK", "MIXED_LOSSES", "GUESSED_SINGLE_LABEL", "GUESSED_SOFT_LABELS", "GUESS_ROWS", "ascending_outputs", "class_distributions", "class_indices", "embedding_output", "independent_probabilities", "label_task", "level_outputs", "LEVEL_WAYS_OUT",
           "multi_hot_labels", "per_level_labels", "rank_labels", "ranks_said", "sigmoid_levels", "SAYS_NOTHING",
           "regression_labels", "smoothed_multi_hot", "soft_binary_targets", "state_task", "task_model"]


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
#: a Hugging Face config's ``problem_type`` (which a ``...ForSequenceClassification`` sets at its first batch with
#: labels, choosing its loss by it) -> the task
_HF_PROBLEM_TYPES = {"single_label_classification": "multiclass", "multi_label_classification": "multilabel",
                     "regression": "regression"}


#: the Hugging Face heads whose loss their config's ``problem_type`` chooses (transformers' loss mapping)
_HF_PROBLEM_HEADS = ("ForSequenceClassification", "ForImageClassification", "ForVideoClassification",
                     "ForAudioClassification")


def _hugging_face_task(module: nn.Module) -> str | None:
    """The task a Hugging Face head ``module`` computes its own loss for: ``"multiclass"`` for a
    ``...ForTokenClassification`` (cross-entropy over its labels, -100 ignored, whatever the config says), a sequence,
    image, video or audio classifier's config ``problem_type``, else ``None``: a sequence classifier before its first
    batch with labels, or another module. A backbone (``BertModel``) shares its head's config, but not its loss: one
    loaded from a fine-tuned classifier's checkpoint carries that ``problem_type`` beside the user's own head and
    loss, which say the task."""
    config = module.__dict__.get("config")
    if config is None or not hasattr(config, "num_labels"):
        return None
    name = type(module).__name__
    if name.endswith("ForTokenClassification"):
        return "multiclass"
    return _HF_PROBLEM_TYPES.get(getattr(config, "problem_type", None) or "") if name.endswith(_HF_PROBLEM_HEADS) else None


def label_task(model: Any) -> str | None:
    """What ``model`` says of its task: ``"multilabel"`` (each output its own sigmoid decision),
    ``"multiclass"`` (one class per sample), ``"regression"`` or ``None`` (nothing, or signals that
    disagree). Read, in this order, from a ``task`` hyperparameter (``self.hparams.task``: ``"multilabel"``,
    ``"multiclass"`` or ``"regression"``; it decides over the losses held, one of which may be auxiliary: a
    classifier's ``nn.MSELoss`` of a consistency term beside ``F.cross_entropy``; the model's own, else the first
    submodule's that says one: a ``CausalRepairModule`` reads its network's), then the losses and metrics held as submodules
    (``nn.BCEWithLogitsLoss``, ``nn.BCELoss``, ``nn.MultiLabel*Loss``, torchmetrics' ``Multilabel*``
    metrics, e.g. ``Accuracy(task="multilabel")``: multi-label; ``nn.CrossEntropyLoss``,
    ``nn.NLLLoss``, ``Multiclass*`` metrics: one class; ``nn.MSELoss``, ``nn.L1Loss``,
    ``nn.HuberLoss``, ``nn.SmoothL1Loss``, ``nn.PoissonNLLLoss``, ``nn.GaussianNLLLoss``:
    regression; held losses of two kinds, a classifier's auxiliary ``nn.MSELoss`` beside its task loss, say what the
    loss stated says, else ``None``, warned once a model: :data:`MIXED_LOSSES`, naming ``hparams.task``), then the task of the loss a module holding the model trains it with (:func:`state_task`:
    ``CausalRepairModule(model, terms, task_loss=nn.CrossEntropyLoss())`` says ``"multiclass"`` of
    ``model``, whose terms are given the network, not the repair module), then a Hugging Face model's loss computed in
    its forward (:func:`_hugging_face_task`: a classifier head's config ``problem_type``, not a backbone's, a
    ``...ForTokenClassification``'s cross-entropy; it computes that loss only where called with labels, so a loss held
    or stated beside it says how the model is trained: a ``...ForSequenceClassification`` whose checkpoint says
    ``single_label_classification`` fine-tuned with ``task_loss=nn.BCEWithLogitsLoss()`` is multi-label; but a held
    regression loss beside a classifier head's config, an auxiliary term's ``nn.MSELoss`` as likely as the task's, says
    ``None``: the two disagree, warned once a model (:data:`DISAGREEING_TASK`, naming ``hparams.task``), unless a
    ``task_loss`` is stated (``CausalRepairModule(net, terms, task_loss=nn.MSELoss())`` says ``"regression"`` of the
    repair module holding that loss, as of ``net``), then the
    activation its output comes out of (``nn.Sigmoid``: multi-label;
    ``nn.Softmax``/``nn.LogSoftmax``: one class): the layer that computed its output (where a function of torch's did,
    a clamp or a cast after the activation, the last layer it called) in its last pass watched by
    :func:`~lightning_causal.causal.engine.layer_calls.layer_calls` (call order: an auxiliary ``nn.Sigmoid`` registered
    last, or a head's registered first, is told rightly; the callback's and ``audit_model``'s probe check, the judge
    of every audit epoch and direct run, a first direct run's pass before it
    (:func:`~lightning_causal.audits.logit_reads.read_call_order`), ``FairnessAudit``'s passes watch), else, never
    watched, the last layer it registers.

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
    hparams = getattr(model, "hparams", None)
    task = hparams.get("task") if hasattr(hparams, "get") else None
    if task in ("multilabel", "multiclass", "regression"):  # said in so many words: before the losses held, which may be
        return task  # auxiliary (a classifier's nn.MSELoss of a consistency term, its task loss F.cross_entropy)
    found, hugging_face, last, stated, named, held_said = set(), set(), None, None, {}, None
    held: dict[str, str] = {}  # the first loss or metric held of each task
    for m in modules():
        if _STATED and stated is None:
            stated = _STATED.get(m)
        inner = getattr(m, "hparams", None) if m is not model else None  # a network's own word inside a wrapper
        if held_said is None and hasattr(inner, "get") and inner.get("task") in ("multilabel", "multiclass", "regression"):
            held_said = inner.get("task")  # (a CausalRepairModule's): as the model's own hparams.task
        name = type(m).__name__
        if name in _MULTI_LABEL_LOSSES or name.startswith("Multilabel"):
            found.add("multilabel")
            held.setdefault("multilabel", name)
        elif name in _SINGLE_LABEL_LOSSES or name.startswith("Multiclass"):
            found.add("multiclass")
            held.setdefault("multiclass", name)
        elif name in _REGRESSION_LOSSES:
            found.add("regression")
            named.setdefault("loss", name)
            held.setdefault("regression", name)
        elif (said := _hugging_face_task(m)) is not None:  # the loss a Hugging Face model computes in its forward: after
            hugging_face.add(said)  # the losses held and stated, which it computes only where called with labels
            named.setdefault(said, name)
        elif not any(True for _ in m.children()):
            last = name
    if held_said is not None:
        return held_said
    if len(found) == 1:  # a held classification loss outranks a head's config; a held regression loss beside a
        task = found.pop()  # classifier's config may be an auxiliary term's (nn.MSELoss) or the task's: the loss stated
        if task == "regression" and hugging_face - {"regression"}:  # (task_loss) says which, else the two disagree
            if stated is None:
                _warn_disagreeing(model, named, sorted(hugging_face - {"regression"}))
            return stated
        return task
    if found:  # losses of two kinds held (a classifier's auxiliary nn.MSELoss): the task loss stated decides, else none,
        if stated is None:  # warned once a model
            _warn_once(model, MIXED_LOSSES.format(model=type(model).__name__, held=", ".join(
                f"{held[k]} ({k})" for k in sorted(held))))
        return stated
    if stated or hugging_face:
        return stated or (hugging_face.pop() if len(hugging_face) == 1 else None)
    seen = output_layer(model)  # the layer its last watched pass computed its output with: call order
    last = seen[0] if seen is not None else last
    return {"Sigmoid": "multilabel", "Softmax": "multiclass", "LogSoftmax": "multiclass"}.get(last or "")


#: what :func:`label_task` warns where a held regression loss sits beside a Hugging Face classifier head's config and
#: nothing states the task (once a model)
DISAGREEING_TASK = ("{model} holds {loss} (a regression loss) beside {head}, whose config's problem_type says "
                    "{config!r}: the two readings of its task disagree (the {loss} may be its task loss, or an "
                    "auxiliary term's beside the head's own loss), so the audits read no task and fall back to what "
                    "the probe's labels and outputs say (a classifier's probabilities where nothing else is said). "
                    "Say the task: self.save_hyperparameters({{'task': 'regression'}}) (hparams.task='regression') "
                    "where {loss} is the task loss, or hparams.task='multiclass' ('multilabel') where it is auxiliary.")
#: what :func:`label_task` warns where losses (or metrics) of two tasks are held and nothing states the task (once a
#: model): a classifier's auxiliary ``nn.MSELoss`` beside its ``nn.CrossEntropyLoss``, which of them trains the task
#: its modules do not say
MIXED_LOSSES = ("{model} holds losses of two tasks, {held}, and nothing says which is its task loss (the others may be "
                "auxiliary terms'), so the audits read no task and fall back to what the probe's labels and outputs say "
                "(a classifier's probabilities where nothing else is said). Say the task: "
                "self.save_hyperparameters({{'task': 'multiclass'}}) (hparams.task: 'multiclass', 'multilabel' or "
                "'regression'), or state the task loss, CausalRepairModule(model, terms, task_loss=nn.CrossEntropyLoss()).")
_WARNED: weakref.WeakSet[Any] = weakref.WeakSet()


def _warn_disagreeing(model: Any, named: dict[str, str], configs: list[str]) -> None:
    """Warn, once for ``model``, that its held regression loss and a classifier head's config disagree
    (:data:`DISAGREEING_TASK`)."""
    config = {"multiclass": "single_label_classification", "multilabel": "multi_label_classification"}[configs[0]]
    _warn_once(model, DISAGREEING_TASK.format(model=type(model).__name__, loss=f"nn.{named.get('loss')}",
                                              head=named.get(configs[0]), config=config))


def _warn_once(model: Any, message: str) -> None:
    """Warn ``message`` once for ``model`` (each time for a model that is not weakly referable)."""
    try:
        if model in _WARNED:
            return
        _WARNED.add(model)
    except TypeError:  # not weakly referable: warned each time
        pass
    warnings.warn(message, UserWarning, stacklevel=outside_package())


#: model -> the task of the loss it is trained with from outside (:func:`state_task`)
_STATED: weakref.WeakKeyDictionary[nn.Module, str] = weakref.WeakKeyDictionary()


def state_task(model: nn.Module, loss: Any) -> None:
    """Record that ``model`` is trained with ``loss`` held outside it (a ``CausalRepairModule``'s
    ``task_loss``), so that :func:`label_task` of ``model``, or of any module holding it, reads the
    task ``loss`` says (``nn.CrossEntropyLoss()``: ``"multiclass"``) where the model says nothing in
    its own losses, metrics or ``task`` hyperparameter. A loss that says nothing (a function, such as
    ``F.cross_entropy``, whose use a ``task_step`` may override) clears an earlier record. Held by weak
    reference: the record goes with the model, and a copy of it has none (a ``CausalRepairModule`` states it
    again for its copies' networks, deep-copied or unpickled, and at the start of each fit). The record is what
    :func:`label_task` reads, for the audits of the network; the repair module's terms get the network's task
    from the module itself (:meth:`~lightning_causal.repair.base.RepairTerm.take_task`), read once, not per step.

    Examples:
        >>> net = nn.Linear(4, 3)
        >>> state_task(net, nn.CrossEntropyLoss()); label_task(net), label_task(nn.Sequential(net))
        ('multiclass', 'multiclass')
        >>> state_task(net, torch.nn.functional.cross_entropy); label_task(net) is None
        True
    """
    if not isinstance(model, nn.Module):
        return
    task = label_task(loss) if isinstance(loss, nn.Module) else None
    if task is None:
        _STATED.pop(model, None)
    else:
        _STATED[model] = task


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


def smoothed_multi_hot(labels: Any) -> tuple[float, float] | None:
    """The two values ``(low, high)`` of ``labels`` that read as a multi-label classifier's multi-hot
    targets after label smoothing (``y * (1 - eps) + eps / 2``: 0.05 and 0.95), or ``None``: floats
    ``[N, C]`` (``C >= 2``) holding exactly two values, ``0 <= low < 0.5 < high <= 1`` and not 0 and 1
    (plain multi-hot: :func:`multi_hot_labels`), whose rows do not all sum to 1 (those are class
    distributions, a single-label classifier's smoothed one-hot rows: :func:`class_distributions`).
    They have no single class per sample; :func:`regression_labels` reads them, where the model says
    nothing of its task, as real-valued. The rows alone say it: a regression's targets seldom take two
    values only.

    Examples:
        >>> smoothed_multi_hot(torch.tensor([[0.95, 0.05, 0.95], [0.05, 0.95, 0.05]]))
        (0.05, 0.95)
        >>> smoothed_multi_hot(torch.tensor([[0.95, 0.05], [0.05, 0.95]])), smoothed_multi_hot(torch.tensor([[1.0, 0.0, 1.0]]))
        (None, None)
    """
    if (not isinstance(labels, Tensor) or not labels.is_floating_point() or labels.dim() != 2 or labels.shape[1] < 2
            or labels.shape[0] == 0):
        return None
    values = torch.unique(labels.detach())
    if values.numel() != 2:
        return None
    low, high = float(values[0]), float(values[1])
    if not 0 <= low < 0.5 < high <= 1 or (low, high) == (0.0, 1.0) or rows_sum_to_one(labels):
        return None
    return round(low, 6), round(high, 6)


#: The warning of :func:`multi_hot_labels` when one-hot float labels are read as one class per sample
#: on a guess: the model says nothing of its task.
GUESSED_SINGLE_LABEL = (
    "The probe's labels {shape} hold exactly one 1 per row and the model says nothing of its task (no loss or "
    "torchmetrics metric held as a submodule, no `hparams.task`, no nn.Sigmoid/nn.Softmax its output comes out of: a "
    "loss computed in `training_step`, such as F.binary_cross_entropy_with_logits, is not seen), so they are read as "
    "one class per sample (a softmax classifier's one-hot labels). If the model is multi-label, say so: "
    "`self.save_hyperparameters({{'task': 'multilabel'}})` in its `__init__` (a plain nn.Module: "
    "`model.hparams = {{'task': 'multilabel'}}`), or hold its loss, `self.loss = nn.BCEWithLogitsLoss()`; "
    "`'task': 'multiclass'` says one class per sample and silences this (docs/your_model.md, 'Multi-label classifiers'); "
    "for one head of a model of several outputs, selected by `output=` (a key or an index), declare it per head: "
    "`{{'task': {{'tags': 'multilabel', 'cls': 'multiclass'}}}}` (docs/your_model.md, 'Models of several outputs')")


#: The warning of :func:`class_distributions` when soft labels ``[N, C]`` (rows non-negative summing to 1,
#: not one-hot) are read as a classifier's on a guess: the model says nothing of its task.
GUESSED_SOFT_LABELS = (
    "The labels {shape} are rows of non-negative values summing to 1 and the model says nothing of its task (no "
    "loss or torchmetrics metric held as a submodule, no `hparams.task`, no nn.Sigmoid/nn.Softmax its output comes out "
    "of: a loss computed in `training_step` is not seen), so they are read as a classifier's soft labels (mixup, label "
    "smoothing, a teacher's probabilities), each sample's class the largest entry of its row. "
    "If they are a regression's targets "
    "(proportions, compositional data), say so: `self.save_hyperparameters({{'task': 'regression'}})` in its `__init__` "
    "(a plain nn.Module: `model.hparams = {{'task': 'regression'}}`), or hold its loss, `self.loss = nn.MSELoss()`; "
    "`'task': 'multiclass'` says one class per sample and silences this (docs/your_model.md, 'Soft labels'); for one "
    "head of a model of several outputs, selected by `output=`, declare it per head: `{{'task': {{'shares': "
    "'regression', 'cls': 'multiclass'}}}}` (docs/your_model.md, 'Models of several outputs')")


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
    if lab.dim() == 2 and rows_sum_to_one(lab):
        return False
    if lab.dim() == 1 and bool((lab >= 0).all()) and bool((lab == lab.round()).all()):
        return width is not None and float(lab.max()) > max(1, width - 1)
    return True


def soft_binary_targets(labels: Any, width: int, *, task: str | None = None) -> bool:
    """Whether real-valued ``labels`` are a binary classifier's soft targets rather than a regression target: floats
    inside [0, 1] (label smoothing's 0.05/0.95, a BCE target's probabilities) of a model that declares no ``task``
    (:func:`label_task`), one a sample (``[N]``), on at most 2 outputs (``width``: a binary logit or a pair), or
    ``[N, width]``, one per output, holding two values only (a multi-label classifier's smoothed multi-hot rows,
    :func:`smoothed_multi_hot`; other rows in [0, 1], a box regressor's min-max-scaled targets, stay a regression).
    The audits reading the largest output as a class (BackdoorAudit, CounterfactualAudit's ``towards="runner_up"``)
    keep such labels as classes (FairnessAudit keeps any labels in [0, 1], thresholded at 0.5); a quantile regressor's
    targets ``[N]`` inside [0, 1] on 3 or more outputs stay a regression (:func:`regression_labels`).

    Examples:
        >>> soft = torch.tensor([0.05, 0.95, 0.95])
        >>> soft_binary_targets(soft, 2), soft_binary_targets(soft, 1), soft_binary_targets(soft, 3)
        (True, True, False)
        >>> soft_binary_targets(soft, 2, task="regression"), soft_binary_targets(torch.tensor([0.5, 1.5]), 2)
        (False, False)
        >>> soft_binary_targets(torch.tensor([[0.1, 0.7, 0.3, 0.9], [0.2, 0.6, 0.4, 0.8]]), 4)  # boxes scaled to [0, 1]
        False
    """
    if task is not None or not isinstance(labels, Tensor) or not labels.is_floating_point() or labels.numel() == 0:
        return False
    if labels.dim() == 1 or labels.dim() == 2 and labels.shape[1] == 1:  # one target a sample: a binary classifier's
        return width <= 2 and bool(((labels >= 0) & (labels <= 1)).all())
    return labels.dim() == 2 and labels.shape[1] == width and smoothed_multi_hot(labels) is not None  # two values only:
    # a box regressor's min-max-scaled targets [N, 4] in [0, 1] stay a regression


#: the rows of outputs that :func:`independent_probabilities` and :func:`ascending_outputs` need to say anything (the
#: callback's dry run of 2 rows says nothing); the audits read as many of the probe where they hold none
#: (``first_row_outputs(..., rows=GUESS_ROWS)``: SobolAudit, CausalGraphAudit, LayerMapAudit under ``target=None``)
GUESS_ROWS = 8


def independent_probabilities(outputs: Any) -> str | None:
    """Why ``outputs`` (the explained output on the probe, ``[N, C]``) read as independent probabilities rather than
    logits, or ``None``: every entry of at least 8 rows lies in ``[0, 1]`` and some row does not sum to 1 (a sigmoid per
    class: a multi-label head ending in ``nn.Sigmoid``, a detector's best score per class, 0 where it found none).
    Logits of a classifier rarely all lie there (a head's logits spread around 0 from its initialisation on); fewer rows
    (the callback's dry run, one sample's row) say nothing.

    Examples:
        >>> independent_probabilities(torch.tensor([[0.9, 0.0, 0.0]] * 8))
        'every entry of the outputs [N, 3] lies in [0, 1] and their rows do not sum to 1'
        >>> independent_probabilities(torch.randn(8, 3)), independent_probabilities(torch.tensor([[0.9, 0.0]]))
        (None, None)
    """
    if not isinstance(outputs, Tensor) or outputs.dim() != 2 or outputs.shape[1] < 2 or outputs.shape[0] < GUESS_ROWS \
            or not outputs.is_floating_point():
        return None
    out = outputs.detach()
    if not bool(((out >= 0) & (out <= 1)).all()) or rows_sum_to_one(out):
        return None
    return f"every entry of the outputs [N, {outputs.shape[1]}] lies in [0, 1] and their rows do not sum to 1"


def ascending_outputs(outputs: Any) -> str | None:
    """Why ``outputs`` (the explained output on the probe, ``[N, C]``) read as a quantile regressor's quantiles rather
    than logits, or ``None``: 3 outputs or more that rise from the first to the last in every one of at least 8 rows
    (the quantiles 0.1, 0.5, 0.9 of a head trained with the pinball loss, or made monotone by a cumulative softplus).
    A classifier's logits rise so only where every row predicts the last class and ranks the others alike, which a
    probe of several classes does not; fewer rows (the callback's dry run), or 2 outputs (a binary classifier
    predicting class 1 on every row), say nothing.

    Examples:
        >>> ascending_outputs(torch.tensor([[-1.0, 0.0, 1.5]] * 8))
        'the outputs [N, 3] rise from the first to the last in every one of the 8 rows read'
        >>> ascending_outputs(torch.tensor([[-1.0, 0.0, 1.5]] * 7)), ascending_outputs(torch.tensor([[0.0, 1.0]] * 8))
        (None, None)
    """
    if not isinstance(outputs, Tensor) or outputs.dim() != 2 or outputs.shape[1] < 3 or outputs.shape[0] < GUESS_ROWS \
            or not outputs.is_floating_point() or not bool((outputs.detach().diff(dim=1) > 0).all()):
        return None
    return f"the outputs [N, {outputs.shape[1]}] rise from the first to the last in every one of the {outputs.shape[0]} rows read"


def class_distributions(labels: Any, model: Any = None, *, task: str | None = None) -> bool:
    """Whether the probe's ``labels`` are one class distribution per sample, ``[N, C]`` floats
    (``C >= 2``) whose rows are non-negative and sum to 1 (to their dtype's rounding): soft labels
    (mixup, CutMix, label smoothing, a teacher's probabilities) or one-hot rows. The audits that need
    one class per sample read them by their largest entry (:func:`class_indices`). Not where ``model``
    says it is multi-label or a regression (:func:`label_task`; ``task``: that answer where the caller
    has it). Where it says nothing, the rows alone cannot tell a classifier's soft labels from a
    regression's proportions (compositional targets) or one-hot rows from a multi-label model's: they
    are read as class distributions with a warning that names how to say the task
    (:data:`GUESSED_SOFT_LABELS`; one-hot rows: :data:`GUESSED_SINGLE_LABEL`).

    Examples:
        >>> soft = torch.tensor([[0.7, 0.3, 0.0], [0.05, 0.05, 0.9]])
        >>> class_distributions(soft, task="multiclass"), class_distributions(torch.tensor([[0.7, 0.7]]))
        (True, False)
        >>> class_distributions(torch.tensor([[0.7, 0.3]]), task="multilabel"), class_distributions(torch.tensor([2, 0]))
        (False, False)
    """
    if (not isinstance(labels, Tensor) or not labels.is_floating_point() or labels.dim() != 2 or labels.shape[1] < 2
            or labels.shape[0] == 0):
        return False
    task = task if task is not None else label_task(model) if model is not None else None
    if task in ("multilabel", "regression") or not rows_sum_to_one(labels):
        return False
    if task is None:  # a guess: rows summing to 1 are zeros and ones only where one-hot
        lab = labels.detach()
        guess = GUESSED_SINGLE_LABEL if bool(((lab == 0) | (lab == 1)).all()) else GUESSED_SOFT_LABELS
        warnings.warn(guess.format(shape=f"[N, {labels.shape[1]}]"), UserWarning, stacklevel=outside_package())
    return True


def class_indices(labels: Any, model: Any = None, *, task: str | None = None) -> Any:
    """``labels`` as one class per sample where they are class distributions ``[N, C]``
    (:func:`class_distributions`: soft labels of mixup, CutMix, label smoothing or distillation, or
    one-hot floats): the class of each row's largest entry, ``int64`` ``[N]`` (a row's first such class
    where two tie, a 50/50 mixup: the lower index); any other ``labels`` as they are. "Misclassified" is then a
    predicted class other than that argmax.

    Examples:
        >>> class_indices(torch.tensor([[0.3, 0.7, 0.0], [0.9, 0.05, 0.05]]), task="multiclass"), class_indices(torch.tensor([2, 0]))
        (tensor([1, 0]), tensor([2, 0]))
    """
    return labels.argmax(1) if class_distributions(labels, model, task=task) else labels


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
    # float16 / bfloat16 outputs round each value by up to eps/2 (relative): a bfloat16 softmax row
    # [1.0, 2e-4, ...] sums to 1 + 7e-4, within rows_sum_to_one's tolerance. The norm keeps 1e-4: widened to the
    # rounding, a classifier's one row of two logits (first_row_outputs) near the unit circle would be refused as an
    # embedding; a float16 / bfloat16 embedding (norms 1 +- 1e-3) is then missed, which only loses a warning.
    if not rows_sum_to_one(outputs):
        # float64 where the device has it (MPS has none: there float32, whose rounding is far below the 1e-4 tested)
        out = outputs.detach().to(torch.float32 if outputs.device.type == "mps" else torch.float64)
        if bool(((out.norm(dim=1) - 1).abs() <= 1e-4).all()):
            return "every row has unit L2 norm"
    modules = getattr(model, "modules", None)
    if output is None and callable(modules) and label_task(model) is None:
        held = sorted({type(m).__name__ for m in modules() if type(m).__name__ in _EMBEDDING_LOSSES})
        if held:
            return f"the model holds {held[0]}, a metric-learning loss"
    return None


def _head_in(output: int | str) -> str:
    """How a lambda reads the head that ``output=`` (a key or an index) selects from the model's whole output ``out``,
    as :func:`~lightning_causal.causal.engine.output_selection.select_output` reads it: ``out[1]`` of a tuple; a name
    is a mapping's key (a dict, a ``ModelOutput``: ``out['key']``) or else an attribute (a dataclass, a namedtuple:
    ``out.key``, ``out['key']`` fails there; ``getattr(out, 'class')`` for a name that is no Python identifier or is a
    keyword)."""
    if not isinstance(output, str):
        return f"`out[{output!r}]`"
    # a keyword (`class`, `lambda`) is no attribute name in Python source: `out.class` is a syntax error
    attribute = f"out.{output}" if output.isidentifier() and not keyword.iskeyword(output) else f"getattr(out, {output!r})"
    return (f"`out[{output!r}]` where it is a mapping (a dict, a ModelOutput), `{attribute}` where it is an object read "
            "by attribute (a dataclass, a namedtuple)")


#: the ways out named wherever :func:`level_outputs` is warned about (docs/your_model.md, "Ordinal heads")
LEVEL_WAYS_OUT = (
    "pass `output=` the quantity that matters: the expected rank of an ordinal head's cumulative logits "
    "(`output=lambda out: torch.sigmoid(out).sum(1, keepdim=True)`; of CORN's conditional logits, rank > k given "
    "rank > k - 1: `output=lambda out: torch.sigmoid(out).cumprod(1).sum(1, keepdim=True)`; explained by the effect "
    "audits with "
    "`probability=False` / `CompareSettings(score='raw')` and labels left out of the probe: `unpack_batch=lambda b: "
    "(b[0], None, None)`), the survival to interval t of a model of interval hazards (`output=lambda out: "
    "(-torch.nn.functional.softplus(out[:, :t + 1])).sum(1, keepdim=True).exp()`, log(1 - sigmoid) = -softplus: "
    "finite gradients where a hazard saturates), or, for the audits that need classes, "
    "class log-probabilities [N, K] (docs/your_model.md, 'Ordinal heads and survival models'); a one-vs-rest "
    "classifier (trained with BCE on one-hot classes, `F.one_hot(y)`: each output one class's logit, the largest its "
    "class), whose labels look alike, says so by `output=lambda out: out` (a callable `output=` is taken as given)"
)


def rank_labels(labels: Any) -> bool:
    """Whether ``labels`` are one whole-number class per sample ``[N]``, none below 0, some beyond 1: the ranks that
    per-level logits (an ordinal head's cumulative logits, a survival model's interval hazards) are trained on, not a
    multi-label classifier's multi-hot ``[N, C]`` nor one label's 0/1 decision (:func:`level_outputs`; the same reading
    in :class:`~lightning_causal.repair.CounterfactualFairnessTerm`).

    Examples:
        >>> rank_labels(torch.tensor([0, 3, 2])), rank_labels(torch.tensor([0, 1, 1])), rank_labels(torch.tensor([0.5, 2.0]))
        (True, False, False)
    """
    if not isinstance(labels, Tensor) or labels.dim() != 1 or labels.numel() == 0 or labels.dtype == torch.bool \
            or labels.is_complex():
        return False
    lab = labels.detach()
    if lab.is_floating_point() and not bool(((lab == lab.round()) & lab.isfinite()).all()):  # inf: no class (int(inf))
        return False
    return float(lab.max()) >= 2 and float(lab.min()) >= 0


def per_level_labels(labels: Any, outputs: Tensor, task: str | None) -> bool:
    """Whether ranks ``labels`` (:func:`rank_labels`) beside ``outputs`` ``[N, C >= 2]`` read as per-level logits: the
    model's ``task`` (:func:`label_task`) is ``"multilabel"`` (each output its own sigmoid decision), or it says nothing
    (``None``: no loss held, the loss given to the repair module or computed in ``training_step``) and the labels are
    ranks ``0 .. C`` (:func:`~lightning_causal.causal.engine.checks.ranks_beyond`: one class beyond the outputs, which
    no classifier of ``C`` classes has, as the class label checks read it). :func:`level_outputs` and
    :class:`~lightning_causal.repair.CounterfactualFairnessTerm` read it.

    Examples:
        >>> ranks, out = torch.tensor([0, 4, 2]), torch.zeros(3, 4)
        >>> per_level_labels(ranks, out, None), per_level_labels(ranks - 1, out, None), per_level_labels(ranks, out, "multiclass")
        (True, False, False)
    """
    if not isinstance(outputs, Tensor) or outputs.dim() != 2 or outputs.shape[1] < 2 or not rank_labels(labels):
        return False
    return task == "multilabel" or task is None and ranks_beyond(labels, int(outputs.shape[1]))


def ranks_said(labels: Tensor, outputs: Tensor, task: str | None, said: str, whose: str) -> str:
    """The words ``"the model says <said> while <whose> are one class per sample, <lo> to <hi>"`` of
    :func:`per_level_labels`' reading; where the model says nothing (``task`` ``None``) they add that the ranks reach
    one beyond its outputs."""
    lo, hi, width = int(labels.min()), int(labels.max()), int(outputs.shape[1])
    beyond = (f", one more than its {width} outputs (no classifier of {width} classes has a class {hi})" if task is None
              else "")
    return f"the model says {said} while {whose} are one class per sample, {lo} to {hi}{beyond}"


#: what :func:`ranks_said` says of a model that says nothing of its task
SAYS_NOTHING = "nothing of its task (no loss or `task` it holds)"


def sigmoid_levels(outputs: Tensor) -> str:
    """``""``, or where per-level outputs are sigmoids already (:func:`independent_probabilities`: a head ending in
    ``nn.Sigmoid``, trained with ``nn.BCELoss``, whose outputs are ``P(rank > k)``) the words that turn the ways out
    named for logits into theirs: ``out`` where they take ``torch.sigmoid(out)`` (the expected rank ``out.sum(1)``;
    ``torch.sigmoid`` of a probability lies in [0.5, 0.73], which shrinks a CORAL head's effects about fourfold) and
    ``torch.log1p(-out)`` where they take ``-softplus(out)`` (``log(1 - sigmoid(h))``).

    Examples:
        >>> sigmoid_levels(torch.randn(8, 3)), sigmoid_levels(torch.full((8, 3), 0.4)).startswith("; its outputs")
        ('', True)
    """
    why = independent_probabilities(outputs)
    return ("" if why is None else
            f"; its outputs are sigmoids already ({why}: a head ending in nn.Sigmoid, trained with nn.BCELoss), so take "
            "`out` where the ways out named take `torch.sigmoid(out)` (the expected rank: `output=lambda out: out.sum(1, "
            "keepdim=True)`; CORN's: `out.cumprod(1).sum(1, keepdim=True)`) and `torch.log1p(-out)` where they take "
            "`-softplus(out)`")


def level_outputs(labels: Any, outputs: Any, model: Any = None, output: Any = None) -> str | None:
    """Why the model's outputs ``[N, C]`` (``C >= 2``) read as per-level sigmoid decisions rather than
    the class scores of one decision, or ``None``: ``model`` says it is multi-label (:func:`label_task`:
    a held ``nn.BCEWithLogitsLoss``, ``hparams.task = "multilabel"``, ...), or says nothing and the labels are ranks
    ``0 .. C``, one class beyond its outputs (:func:`per_level_labels`: a CORAL head whose loss is given to the repair
    module or computed in ``training_step``), and is explained as it returns
    or by one of its heads (``output``, the audit's ``output=``, is ``None``, a key or an index: ``model`` is then
    :func:`task_model`'s, the head's task where the model declares it per head, as callers pass it; a callable
    ``output=`` is taken as given, the way out named for a one-vs-rest classifier), yet its probe's ``labels`` are
    one whole-number class per sample ``[N]`` beyond 0 and 1 (a multi-label classifier's labels are multi-hot ``[N, C]``;
    labels 0/1 ``[N]`` are one label's binary decision). That is an ordinal head's cumulative logits
    (CORAL, trained with BCE on ``rank > k``; CORN's conditional logits, ``rank > k`` given ``rank > k - 1``)
    or a discrete-time survival model's interval hazards: the largest output is no rank, and the softmax over them no probability. A guess, warned about
    (:data:`LEVEL_WAYS_OUT` names the ways out), not refused: a one-vs-rest classifier (BCE on one-hot classes) has
    such labels and outputs too, its largest output its class.

    Examples:
        >>> from torch import nn
        >>> class Coral(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.fc, self.loss = nn.Linear(4, 3), nn.BCEWithLogitsLoss()
        >>> level_outputs(torch.tensor([0, 3, 2]), torch.zeros(3, 3), Coral()) is not None
        True
        >>> level_outputs(torch.tensor([0, 1, 1]), torch.zeros(3, 3), Coral()), level_outputs(torch.tensor([0, 2, 2]), torch.zeros(3, 3), nn.Linear(4, 3))
        (None, None)
        >>> level_outputs(torch.tensor([0, 3, 2]), torch.zeros(3, 3), nn.Linear(4, 3))[:63]  # no loss: ranks 0 .. 3 beside 3
        'the model says nothing of its task (no loss or `task` it holds)'
    """
    if callable(output) or not isinstance(outputs, Tensor) or outputs.dim() != 2 or outputs.shape[1] < 2:
        return None  # a key or an index selects a head, which may itself be ordinal: its declared task decides
    task = label_task(model)
    if not per_level_labels(labels, outputs, task):
        return None
    said = (f"each of its {outputs.shape[1]} outputs is its own sigmoid decision (a multi-label loss or `task` it holds)"
            if output is None or output == "logits" else
            f"each of the {outputs.shape[1]} outputs of its head `output={output!r}` is its own sigmoid decision (the "
            f"`task` it declares for that head; the `output=` lambdas named below take the model's whole output, in which "
            f"the head is {_head_in(output)})")
    if task is None:
        said = (SAYS_NOTHING if output is None or output == "logits" else
                f"nothing of the task of its head `output={output!r}` (the `output=` lambdas named below take the "
                f"model's whole output, in which the head is {_head_in(output)})")
    return (ranks_said(labels, outputs, task, said, "its probe's labels") + ": "
            "per-level logits, such as an ordinal head's cumulative logits (rank > k) or a survival model's interval "
            "hazards" + sigmoid_levels(outputs))
