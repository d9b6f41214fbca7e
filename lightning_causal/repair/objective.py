"""The parts of :class:`~lightning_causal.repair.module.CausalRepairModule`'s objective: the terms
checked (:func:`check_terms`), the fused forward pass of the task and the terms' extra inputs
(:func:`fusable`, :func:`batch_statistics_in_use`, :func:`fused_losses`), the weighted terms added to
the task loss with their logs (:func:`add_terms`), the task step's loss checked (:func:`checked_task_loss`),
the model calls whose forward arguments came from the batch (:func:`forward_arguments_checked`), the
warning of weight schedules run without a Trainer (:func:`warn_of_schedules`) and the steps run eagerly
under ``torch.compile`` (:func:`eager_step`)."""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any

import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm

from lightning_causal._user_warnings import warn_at_users_line
from lightning_causal.batches import num_rows
from lightning_causal.causal.engine.forward import OutputSpec
from lightning_causal.causal.engine.kept_attributes import (
    is_norm_layer,
    traced_batch_norm_in_training,
)
from lightning_causal.causal.engine.state import is_fake_quant, observer_on
from lightning_causal.repair.base import RepairTerm
from lightning_causal.repair.carried_state import kept_step_state, term_pass_noted

__all__ = [
    "add_terms",
    "batch_statistics_in_use",
    "check_terms",
    "checked_task_loss",
    "eager_step",
    "forward_arguments_checked",
    "fused_losses",
    "fusable",
    "warn_of_schedules",
]


def check_terms(terms: Sequence[RepairTerm]) -> list[RepairTerm]:
    """``terms`` as a list (one term alone too), checked: ``RepairTerm`` objects with unique names."""
    if isinstance(terms, RepairTerm):
        terms = [terms]
    if isinstance(terms, (str, bytes)) or not isinstance(terms, Sequence) or not all(isinstance(t, RepairTerm) for t in terms):
        raise MisconfigurationException(f"Expected argument `terms` to be a sequence of RepairTerm objects but got {terms!r}")
    names = [t.name for t in terms]
    if len(set(names)) != len(names):
        raise MisconfigurationException(f"Expected argument `terms` to have unique names (logged as repair/<name>) but got {names}")
    return list(terms)


def checked_task_loss(task: Any, owner: str) -> Tensor | None:
    """``task``, what the task step of the module class ``owner`` returned: the task loss as a tensor, or
    ``None`` (the batch is skipped).

    Raises:
        MisconfigurationException: anything else (e.g. a dict, as a LightningModule's ``training_step`` may return).

    Examples:
        >>> checked_task_loss(torch.tensor(0.5), "CausalRepairModule")
        tensor(0.5000)
        >>> checked_task_loss({"loss": torch.tensor(0.5)}, "MyRepair")
        Traceback (most recent call last):
        ...
        lightning.fabric.utilities.exceptions.MisconfigurationException: Expected `MyRepair.task_step` to return ... got dict: return its 'loss'
    """
    if task is None or isinstance(task, Tensor):
        return task
    raise MisconfigurationException(
        f"Expected `{owner}.task_step` to return the task loss as a tensor (or None to skip the "
        f"batch) but got {type(task).__name__}" + (": return its 'loss'" if isinstance(task, Mapping) else ""))


def warn_of_schedules(terms: Sequence[RepairTerm]) -> bool:
    """Warns, and says whether it did, when one of ``terms`` has a weight schedule (a callable of the
    epoch) in a module run without a Trainer (a Fabric or plain loop calling ``training_step`` or
    ``objective`` without ``epoch=``), whose ``current_epoch`` is 0 at every step: the schedule keeps its
    epoch-0 weight."""
    scheduled = [t.name for t in terms if callable(t.weight)]
    if scheduled:
        warn_at_users_line(
            f"CausalRepairModule runs without a Trainer (a Fabric or plain PyTorch loop), where its `current_epoch` "
            f"is 0 at every step: the weight schedule of term(s) {scheduled} stays at its epoch-0 weight "
            f"({', '.join(f'{t.weight_at(0):g}' for t in terms if callable(t.weight))}). Pass the loop's epoch, "
            "`total, logs = repair.objective(batch, batch_idx, epoch=epoch)`, and backpropagate `total`")
    return bool(scheduled)


@contextlib.contextmanager
def forward_arguments_checked(args: Any, who: str) -> Iterator[None]:
    """A model call with the batch's keyword forward arguments ``args``: a ``TypeError`` saying the
    forward does not take one of them becomes an error naming it, where it came from (``unpack_batch``)
    and an ``unpack_batch=`` without it."""
    try:
        yield
    except TypeError as err:
        key = next((k for k in args if f"unexpected keyword argument '{k}'" in str(err)), None) if isinstance(args, Mapping) else None
        if key is None:
            raise
        kept = ", ".join(f"{k!r}: b[{k!r}]" for k in args if k != key)
        raise MisconfigurationException(
            f"CausalRepairModule's {who} calls the model with the batch's forward arguments {sorted(args)} (read from "
            "the batch by `unpack_batch`: a mapping's 'attention_mask' and 'token_type_ids' are keyword arguments), but "
            f"the model's forward does not take {key!r} ({err}). Pass `unpack_batch=` without it, e.g. "
            f"`unpack_batch=lambda b: (b['input_ids'], b['labels'], {{{kept}}})`, or let the model's forward take it") from err


def eager_step(step: Callable[..., Any]) -> Callable[..., Any]:
    """``step`` run eagerly under ``torch.compile``: ``trainer.fit(torch.compile(repair))`` compiles the
    module's steps, and TorchDynamo cannot trace the repair's own work (the terms' hooks, the compiled-model
    stance of the estimators, the wrapped module's logging routed through this one): it failed with an
    internal error. The step's Python runs eagerly; a network compiled inside (``self.net = torch.compile(net)``)
    still runs its compiled code.

    The disabled step is called from a plain wrapper: TorchDynamo before torch 2.5 unwraps a method whose function
    carries ``torch.compiler.disable``'s mark to that unbound function when Lightning compiles the module's steps, so
    that ``validation_step(batch, batch_idx)`` lost its ``self`` ("missing 1 required positional argument:
    'batch_idx'")."""
    disabled = torch.compiler.disable(step)

    @functools.wraps(step)
    def run(*args: Any, **kwargs: Any) -> Any:
        return disabled(*args, **kwargs)

    return run


def fusable(term: RepairTerm, output: OutputSpec = None) -> bool:
    """Whether ``term`` declares extra inputs (``extra_inputs``/``loss_from_outputs``) that may run in
    the task's forward pass (and does not opt out with ``fusable = False``). The fused pass gives every
    term the module's ``output`` (the tensor the task loss takes): a term with another ``output=``
    (e.g. one label's logit, ``out[:, [k]]``) runs its own pass."""
    fns = callable(getattr(term, "extra_inputs", None)) and callable(getattr(term, "loss_from_outputs", None))
    return fns and getattr(term, "fusable", True) and getattr(term, "output", None) is output


def batch_statistics_in_use(model: nn.Module) -> bool:
    """Whether a BatchNorm layer of ``model`` (eager or scripted:
    :func:`~lightning_causal.causal.engine.kept_attributes.is_norm_layer`) normalises by the batch's statistics now
    (training mode, or no running statistics; traced in training mode, whose graph does so in either mode:
    :func:`~lightning_causal.causal.engine.kept_attributes.traced_batch_norm_in_training`), or ``model`` is quantization-aware with an observer on (a fake-quant module,
    whose observer updates the range and scale the pass quantizes with from its rows; its flag read from the device
    only when it was written since, :func:`~lightning_causal.causal.engine.state.observer_on`): a joint forward pass of
    ``x`` and the counterfactuals would mix them, and the task loss would not be the one of ``x`` alone. A QAT model
    whose observers are off (``model.apply(torch.ao.quantization.disable_observer)``) quantizes every row with the
    scales it holds and fuses."""
    return any((is_norm_layer(m, _BatchNorm) and (m.training or not m.track_running_stats))
               or traced_batch_norm_in_training(m) or (is_fake_quant(m) and observer_on(m))
               for m in model.modules())  # not cached: `sync_batchnorm=True` replaces the modules at set-up


def fused_losses(
    model_outputs: Callable[[Tensor], Tensor],
    task_loss: Callable[[Tensor, Tensor], Tensor],
    x: Tensor,
    y: Tensor,
    terms: Sequence[RepairTerm],
) -> tuple[Tensor, dict[str, Tensor]]:
    """One forward pass (``model_outputs``) over ``x`` and every term's extra inputs: the task loss
    on the ``x`` rows and each term's value by name."""
    extras = [t.extra_inputs(x) for t in terms]  # type: ignore[attr-defined]
    out = model_outputs(torch.cat([x, *extras]))
    n = x.shape[0]
    head = out[:n]  # one slice shared by the task loss and every term
    task = task_loss(head, y)
    values, start = {}, n
    for term, extra in zip(terms, extras):
        values[term.name] = term.loss_from_outputs(head, out[start : start + extra.shape[0]], y)  # type: ignore[attr-defined]
        start += extra.shape[0]
    return task, values


@functools.lru_cache(maxsize=128)
def _takes_forward_args(loss: Callable[..., Any]) -> bool:
    """Whether ``loss`` takes ``additional_forward_args=`` (by name or ``**kwargs``); cached, as
    :func:`add_terms` asks at every training step on a batch with forward arguments."""
    params = inspect.signature(loss).parameters.values()
    return any(p.name == "additional_forward_args" or p.kind is p.VAR_KEYWORD for p in params)


def _loss_taking_forward_args(term: RepairTerm, args: Any) -> Callable[..., Tensor]:
    """``term.loss``, checked to take ``additional_forward_args=`` (the base class's ``loss(model, x, y)`` does not:
    a term of one's own written after it met the batch's forward arguments with a bare ``TypeError``).

    Raises:
        MisconfigurationException: the term's ``loss`` takes no ``additional_forward_args`` (nor ``**kwargs``).
    """
    if not _takes_forward_args(getattr(term.loss, "__func__", term.loss)):  # the class's function: read once, not per step
        given = sorted(args) if isinstance(args, Mapping) else type(args).__name__
        raise MisconfigurationException(
            f"Expected the loss of term {term.name!r} ({type(term).__name__}) to take `additional_forward_args=`: the batch "
            f"carries forward arguments ({given}, read by `unpack_batch`) that the model needs. Define "
            "`loss(self, model, x, y, *, additional_forward_args=None)` and call the model with them "
            "(`self.outputs(model, x, additional_forward_args)`)")
    return term.loss


def _part(value: Any) -> Tensor:
    """A part of a term's ``last_parts`` as a logged value: a tensor detached as it is (on its device: a float taken
    here would wait for the device at every step), a number as a tensor."""
    return value.detach() if isinstance(value, Tensor) else torch.as_tensor(float(value))


def _term_value(term: RepairTerm, model: nn.Module, x: Tensor, y: Tensor | None, args: Any) -> Tensor:
    """``term``'s value on the batch ``(x, y)``, with the forward arguments ``args`` where there are any."""
    if args is None:
        return term.loss(model, x, y)
    loss = _loss_taking_forward_args(term, args)
    with forward_arguments_checked(args, f"term {term.name!r}"):
        return loss(model, x, y, additional_forward_args=args)


def add_terms(
    model: nn.Module,
    task: Tensor,
    active: Sequence[tuple[RepairTerm, float]],
    values: Mapping[str, Tensor],
    batch: tuple[Tensor, Tensor | None, Any],
    epoch: int,
    state: Sequence[tuple[str, tuple[int, ...]]] | None = None,
    undone: Collection[str] = (),
) -> tuple[Tensor, dict[str, Tensor]]:
    """``task + Σ w · term`` over the ``active`` ``(term, weight)`` pairs and its detached logs
    (``repair/task_loss``, ``repair/<name>``, a term's ``last_parts`` of this step, ``repair/total``): tensors as
    computed, nothing read back from the device but the total's finiteness (a
    :class:`~lightning_causal.repair.backdoor_parts.StepParts`' ``tensors`` unread).
    A term's value is taken from ``values`` (the fused pass) or computed on ``batch``
    (``(x, y, additional_forward_args)``); the tensors the model keeps as plain attributes, its buffers (a recurrent
    state carried across batches, ``self.h = h.detach()`` or ``self.h.copy_(h)``; a step counter, ``self.steps += 1``)
    and its number attributes are put back after each term's passes (``keep_attributes(values=True)``; the running
    statistics of normalisation layers and fake-quant observers keep the terms' rows, as in a step without a carried
    state), so that the next step starts from the state the task's step left and a counter counts a step once
    (:mod:`~lightning_causal.causal.engine.kept_attributes`);
    ``state``, that state (:func:`~lightning_causal.repair.carried_state.task_pass_state`), names it in a note to an
    error the model raises in a term's pass of another row count (:func:`~lightning_causal.repair.carried_state.term_pass_noted`);
    ``()`` (the task's pass carries none: CausalRepairModule's finding at a fit's first step) skips the keeping and
    putting back, which costs about 1.4 ms a term a step on a 300-module network; ``None`` (not known) keeps it.
    The passes of the terms named in ``undone`` are kept and put back so too with ``state == ()``: at the step that
    finds a model carries no state, the terms that the next steps run in the task's pass, where a step counter counts
    once and ``spectral_norm`` iterates once, as in a plain fit.

    Raises:
        FloatingPointError: the total is not finite; the message names the task loss or the terms
            that are not (``epoch`` says when), and a term's cause where the term knows it
            (``CounterfactualFairnessTerm``: a class ruled out with ``-inf`` in one row of a pair only).
    """
    x, y, args = batch
    total, logs = task, {"repair/task_loss": task.detach()}
    for term, w in active:
        before = getattr(term, "last_parts", None)
        if term.name in values:
            value = values[term.name]
        else:
            # a state carried across batches: the term's passes (triggered, augmented rows) leave it as the task's step
            # set it; a model found to carry none (state == ()) is spared the keeping, on the training step's path
            # undone: a fused step's state, which the task's pass alone changed; a carried state, in place too
            kept = kept_step_state(model) if state != () or term.name in undone else None
            try:
                with term_pass_noted(model, term, state or (), num_rows(x)):
                    value = _term_value(term, model, x, y, args)
            finally:
                if kept is not None:
                    kept.restore()
        total = torch.add(total, value, alpha=w)  # total + w·value in one autograd node
        logs[f"repair/{term.name}"] = value.detach()
        parts = getattr(term, "last_parts", None)
        if isinstance(parts, Mapping) and parts is not before:  # a term's parts of this step (BackdoorSuppressionTerm's)
            logs.update({f"repair/{term.name}/{k}": _part(v) for k, v in getattr(parts, "tensors", parts).items()})
    if not torch.isfinite(total):
        bad = [k.removeprefix("repair/") for k, v in logs.items() if not torch.isfinite(v).all()]
        hint = ""
        if bool(task.detach().isposinf().any()):  # +inf, not NaN
            ruled_out = ("a label of a class whose output is -inf, one the model rules out (a class-incremental model's class "
                         "not yet seen, `logits.masked_fill(~seen, float('-inf'))`), or of probability 0: leave such samples out "
                         "of the batches until the model can predict their class")
            # class indices: a label the model gives probability 0; other labels (a regression's) may be outputs that overflow
            hint = (f"; the task loss is +inf: {ruled_out}" if isinstance(y, Tensor) and not y.is_floating_point() and not y.is_complex()
                    else f"; the task loss is +inf: outputs that overflow their dtype (weights that diverged: a lower learning rate), or {ruled_out}")
        for term, _ in active:  # a term's own cause (CounterfactualFairnessTerm: a class ruled out in one row of a pair)
            if term.name in bad:
                hint += term._non_finite_note(logs[f"repair/{term.name}"])
        raise FloatingPointError(f"CausalRepairModule: non-finite loss at epoch {epoch} from {bad}{hint}")
    logs["repair/total"] = total.detach()
    return total, logs
