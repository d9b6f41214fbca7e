"""The checks of :class:`~lightning_causal.repair.module.CausalRepairModule`'s constructor arguments
(:func:`check_module_arguments`)."""

from __future__ import annotations

import functools
from typing import Any

from lightning.pytorch import LightningModule
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from lightning.pytorch.utilities.model_helpers import is_overridden
from torch import Tensor, nn
from torch.nn import functional as F

from lightning_causal._user_warnings import warn_at_users_line
from lightning_causal.audits.label_task import regression_labels
from lightning_causal.causal.engine.checks import check_callable, check_float
from lightning_causal.causal.engine.forward import OutputSpec, check_output_spec
from lightning_causal.causal.engine.quantized import refuse_dynamic_quantized

__all__ = ["check_module_arguments", "check_setup_inputs", "check_task_labels", "check_task_outputs"]


def check_module_arguments(model: Any, task_loss: Any, lr: Any, unpack_batch: Any, output: Any, *, wraps: bool) -> OutputSpec:
    """Checks ``CausalRepairModule``'s arguments and gives back ``output`` checked. A ``LightningModule`` given
    as the network of a plain module (not ``wraps``, a ``wrap()``) is warned about when it defines its own
    ``training_step`` or ``configure_optimizers``: they are not called.

    Raises:
        MisconfigurationException: ``model`` not a module, ``task_loss`` or ``unpack_batch`` not callable
            (``unpack_batch`` may be ``None``), ``lr`` not a number > 0, an invalid ``output``, or a model holding
            int8 ``quantize_dynamic`` layers (:func:`~lightning_causal.causal.engine.quantized.refuse_dynamic_quantized`:
            every term's estimate would hold the batch's quantization noise; refused here, not in the first step).

    Examples:
        >>> check_module_arguments(nn.Linear(3, 2), sum, 0.1, None, "logits", wraps=False)
        'logits'
        >>> check_module_arguments(nn.Linear(3, 2), sum, 0.0, None, None, wraps=False)
        Traceback (most recent call last):
        ...
        lightning.fabric.utilities.exceptions.MisconfigurationException: Expected argument `lr` ...
    """
    if not isinstance(model, nn.Module):
        raise MisconfigurationException(f"Expected argument `model` to be a torch.nn.Module but got {type(model)}")
    refuse_dynamic_quantized(model, MisconfigurationException)  # the model's own refusal, before the probe's
    if not callable(task_loss):
        raise MisconfigurationException(f"Expected argument `task_loss` to be a callable (outputs, y) -> loss but got {task_loss!r}")
    if isinstance(model, LightningModule) and not wraps:
        own = [hook for hook in ("training_step", "configure_optimizers") if is_overridden(hook, model)]
        if own:
            warn_at_users_line(
                f"CausalRepairModule(model=...) got the LightningModule {type(model).__name__}, which it uses as a network "
                f"only: its {' and '.join(f'`{h}`' for h in own)} are not called (the repair trains "
                f"`task_loss(model(x), y)` with Adam at lr={lr}). To fine-tune it with its own task loss, optimizers "
                "and hooks, use `CausalRepairModule.wrap(module, terms)`")
    check_float("lr", lr, minimum=0.0, open_min=True, error=MisconfigurationException)
    check_callable("unpack_batch", unpack_batch, "a callable batch -> (inputs, labels, additional_forward_args)",
                   none_ok=True, error=MisconfigurationException)
    return check_output_spec(output, MisconfigurationException)


def check_task_labels(task_loss: Any, labels: Any) -> None:
    """Refuse a cross-entropy task loss (the default, ``F.cross_entropy``; ``nn.CrossEntropyLoss()``; a
    ``functools.partial`` of ``F.cross_entropy``) on ``labels`` that are a regression target (floats that are
    neither zeros and ones, class probabilities nor class indices: :func:`~lightning_causal.audits.label_task.regression_labels`;
    of labels ``[N, C, d1, ...]``, class probabilities over dimension 1, as cross-entropy reads them),
    which it takes for class probabilities without a word and trains towards (a forecaster's targets ``[N, H]``: its
    validation MSE went from 0.3 to 2,569 in three epochs).

    Raises:
        MisconfigurationException: as above, naming ``task_loss=`` and ``wrap()``.

    Examples:
        >>> import torch
        >>> check_task_labels(F.cross_entropy, torch.tensor([2, 0, 1]))  # class indices: as ever
        >>> check_task_labels(F.mse_loss, torch.tensor([[0.3, -1.2]]))  # a regression's own loss
        >>> check_task_labels(F.cross_entropy, torch.softmax(torch.randn(2, 3, 5), 1))  # a sequence's soft labels
        >>> check_task_labels(F.cross_entropy, torch.tensor([[0.2, 0.8], [0.0, 0.0]]))  # a row of zeros: left out
        >>> check_task_labels(F.cross_entropy, torch.tensor([[0.3, -1.2], [2.5, 0.1]]))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        lightning.fabric.utilities.exceptions.MisconfigurationException: Expected labels ... but got a regression target ...
    """
    what = _cross_entropy_named(task_loss)
    if what is None or not isinstance(labels, Tensor):
        return
    # cross-entropy's class probabilities of outputs [N, C, d1, ...] (a sequence's or a segmentation's soft labels) sum
    # to 1 over dimension 1: read as rows [N * d1 * ..., C] (as [N, C] rows are)
    rows = labels.movedim(1, -1).reshape(-1, labels.shape[1]) if labels.dim() > 2 and labels.numel() else labels
    if rows.dim() == 2 and rows.is_floating_point():  # a row of zeros adds nothing to cross-entropy: a sample left out
        rows = rows[rows.ne(0).any(1)]  # (soft labels zeroed to ignore it), no regression's target
    if not regression_labels(rows):
        return
    shown = ", ".join(f"{v:.4g}" for v in labels.detach().reshape(-1)[:3].tolist())
    raise MisconfigurationException(
        "Expected labels of classes (class indices, or class probabilities) for CausalRepairModule's "
        f"`task_loss`, {what}, but got a regression target ({list(labels.shape)} {str(labels.dtype)[6:]} "
        f"such as {shown}), which cross-entropy would take for class probabilities and train the outputs towards: pass "
        "the regression's loss, `task_loss=F.mse_loss` (or nn.MSELoss(), nn.HuberLoss(), ...), or fine-tune a "
        "LightningModule with its own `training_step` and loss through `CausalRepairModule.wrap(module, terms)`")


def check_task_outputs(task_loss: Any, out: Any, labels: Any) -> None:
    """Refuse, or warn of, a cross-entropy task loss (:func:`_cross_entropy_named`) on outputs ``[N, T, C]`` beside
    class indices ``[N, T]`` (one class per position: a transformer's per-token logits, an in-context learner's
    per-query logits ``[B, Q, C]`` beside the queries' labels ``[B, Q]``): cross-entropy reads dimension 1 as the
    classes. Of ``T != C`` torch refuses in its own words (``Expected target size [8, 3], got [8, 5]``), refused here
    naming the way out; of ``T == C`` it trains the positions as classes without an error (3 queries of 3 classes), a
    ``UserWarning`` (a ``Conv1d``'s ``[N, C, T]`` with ``T == C`` looks the same).

    Raises:
        MisconfigurationException: classes last, ``T != C``, as above.

    Examples:
        >>> import torch
        >>> check_task_outputs(F.cross_entropy, torch.zeros(2, 3, 4), torch.zeros(2, 4, dtype=torch.long))  # [N, C, T]
        >>> check_task_outputs(F.cross_entropy, torch.zeros(2, 5, 3), torch.zeros(2, 5, dtype=torch.long))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        lightning.fabric.utilities.exceptions.MisconfigurationException: Expected outputs [N, C, T] ...
    """
    what = _cross_entropy_named(task_loss)
    if (what is None or not isinstance(out, Tensor) or not isinstance(labels, Tensor) or out.dim() != 3
            or labels.is_floating_point() or tuple(labels.shape) != tuple(out.shape[:2])):
        return
    fix = ("pass `task_loss=lambda out, y: F.cross_entropy(out.transpose(1, 2), y)`, which reads the classes last "
           "(the same loss as F.cross_entropy(out.flatten(0, 1), y.flatten()))" if task_loss is F.cross_entropy else
           "wrap your own loss, `loss = <the loss you passed>` then `task_loss=lambda out, y: loss(out.transpose(1, 2), "
           "y)`, which reads the classes last and keeps its class `weight`, `label_smoothing` and `ignore_index` (the "
           "same loss as loss(out.flatten(0, 1), y.flatten()))")
    said = (f"CausalRepairModule's `task_loss`, {what}, reads dimension 1 of the outputs as the classes, but the outputs "
            f"{list(out.shape)} beside class indices {list(labels.shape)} hold one class per position with the classes last "
            "([N, T, C]: a transformer's per-token logits, an in-context learner's per-query logits [B, Q, C])")
    if out.shape[1] != out.shape[2]:
        raise MisconfigurationException(f"Expected outputs [N, C, T] for per-position class indices [N, T]: {said}; {fix}")
    warn_at_users_line(f"{said}, or the classes first ([N, C, T], a Conv1d's, T == C = {out.shape[1]}): of classes last it "
                       f"trains the positions as the classes without an error; {fix}")


def _cross_entropy_named(task_loss: Any) -> str | None:
    """How :func:`check_task_labels` names a cross-entropy ``task_loss`` (the default ``F.cross_entropy``, an
    ``nn.CrossEntropyLoss()`` or a ``functools.partial`` of ``F.cross_entropy``, e.g. with ``label_smoothing=``); ``None``
    for any other loss, whose labels are the user's to choose."""
    if task_loss is F.cross_entropy:
        return "F.cross_entropy (the default)"
    if isinstance(task_loss, nn.CrossEntropyLoss):
        return "nn.CrossEntropyLoss()"
    if isinstance(task_loss, functools.partial) and task_loss.func is F.cross_entropy:
        return "a partial of F.cross_entropy"
    return None


def check_setup_inputs(setup_inputs: Any) -> Tensor | None:
    """Checks ``CausalRepairModule``'s ``setup_inputs``: ``None``, or one tensor of inputs ``[N, ...]`` with at least
    one row (the terms' ``setup`` takes one tensor).

    Args:
        setup_inputs: the argument's value.

    Raises:
        MisconfigurationException: anything else (a tuple of inputs, a tensor without rows, a 0-dim tensor).

    Examples:
        >>> import torch
        >>> check_setup_inputs(torch.zeros(4, 3)).shape
        torch.Size([4, 3])
        >>> check_setup_inputs(torch.zeros(0, 3))
        Traceback (most recent call last):
        ...
        lightning.fabric.utilities.exceptions.MisconfigurationException: Expected argument `setup_inputs` ...
    """
    if setup_inputs is None:
        return None
    if not isinstance(setup_inputs, Tensor) or setup_inputs.dim() == 0 or setup_inputs.shape[0] == 0:
        got = (f"a tensor of shape {list(setup_inputs.shape)}" if isinstance(setup_inputs, Tensor)
               else f"a {type(setup_inputs).__name__}")
        raise MisconfigurationException(
            f"Expected argument `setup_inputs` to be None or one tensor of training inputs [N, ...] with N >= 1 (what the "
            f"terms' setup reads, e.g. BackdoorSuppressionTerm(trigger=None)'s) but got {got}")
    return setup_inputs
