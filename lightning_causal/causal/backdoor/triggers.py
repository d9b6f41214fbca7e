"""Backdoor triggers and what they do to a model: the attack success rate and the trigger's effect
on the target logit (suspect classes and units: :mod:`~lightning_causal.causal.backdoor.suspects`;
Neural Cleanse reverse engineering: :mod:`~lightning_causal.causal.backdoor.neural_cleanse`).

A *trigger* stamps a pattern ``p`` through a mask ``m`` onto an input, ``x' = (1 − m)·x + m·p``
(BadNets, Gu et al. 2017; the trigger model of Neural Cleanse, Wang et al. 2019). A backdoored
model maps stamped inputs to the trigger's ``target`` class whatever their content.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from lightning_causal.causal.engine.batching import check_max_batch_size, map_rows, rows_per_pass
from lightning_causal.causal.engine.checks import check_class_labels
from lightning_causal.causal.engine.forward import Forward, OutputSpec
from lightning_causal.causal.engine.gradient_cuts import float_reading
from lightning_causal.causal.engine.noise import GeneratorWatch, common_noise
from lightning_causal.causal.engine.sample_independence import check_samples_independent
from lightning_causal.causal.engine.stacked_rows import (
    WAY_OUT,
    StackedRowsError,
    rows_alone_checked,
)
from lightning_causal.causal.engine.state import audit_mode, rng_preserved

__all__ = ["Trigger", "attack_success_rate", "trigger_effect"]


class Trigger:
    """A stamp ``x' = (1 − m)·x + m·p`` that a backdoored model maps to class ``target``.

    Args:
        mask: values in ``[0, 1]``, shaped like one input or broadcastable to it (e.g. ``[1, H, W]``
            for images ``[N, C, H, W]``: one mask shared by the channels).
        pattern: the stamped values, broadcastable to one input.
        target: the class the backdoor leads to (an int ``>= 0``).

    Raises:
        TypeError: ``mask``/``pattern`` not floating tensors, ``target`` not an int.
        ValueError: mask outside ``[0, 1]``, non-finite values, ``mask`` and ``pattern`` not
            broadcastable to each other, ``target < 0``.

    Examples:
        >>> t = Trigger(torch.tensor([0.0, 1.0]), torch.tensor([9.0, 9.0]), target=3)
        >>> t.apply(torch.tensor([[1.0, 2.0]]))
        tensor([[1., 9.]])
    """

    def __init__(self, mask: Tensor, pattern: Tensor | float, target: int) -> None:
        if not isinstance(mask, Tensor) or not mask.is_floating_point():
            raise TypeError(f"Expected argument `mask` to be a floating-point tensor but got {getattr(mask, 'dtype', type(mask))}")
        pattern = torch.as_tensor(pattern, dtype=mask.dtype, device=mask.device) if not isinstance(pattern, Tensor) else pattern
        if not pattern.is_floating_point():
            raise TypeError(f"Expected argument `pattern` to be a floating-point tensor but got {pattern.dtype}")
        if isinstance(target, bool) or not isinstance(target, int):
            raise TypeError(f"Expected argument `target` to be an int class index but got {target!r}")
        if target < 0:
            raise ValueError(f"Expected argument `target` to be a class index >= 0 but got {target}")
        if mask.numel() == 0 or not torch.isfinite(mask).all() or mask.min() < 0 or mask.max() > 1:
            raise ValueError("Expected argument `mask` to be a non-empty tensor with values in [0, 1]")
        if not torch.isfinite(pattern).all():
            raise ValueError("Expected argument `pattern` to be finite but it holds NaN or infinity")
        try:
            torch.broadcast_shapes(mask.shape, pattern.shape)
        except RuntimeError as err:
            raise ValueError(
                f"Expected arguments `mask` {list(mask.shape)} and `pattern` {list(pattern.shape)} to be broadcastable"
            ) from err
        self.mask, self.pattern, self.target = mask.detach(), pattern.detach(), target

    def check(self, x: Tensor) -> None:
        """Raise ``ValueError`` unless ``x`` is a batch ``[N, ...]`` this trigger can be stamped on.

        Args:
            x: a batch ``[N, ...]`` (floating point).
        """
        if not isinstance(x, Tensor) or x.dim() < 2:
            raise ValueError(f"Expected a floating-point batch of inputs [N, ...] but got {getattr(x, 'shape', type(x))}")
        if not x.is_floating_point():  # the shape alone read as the fault
            raise ValueError(f"Expected a floating-point batch of inputs [N, ...] but got dtype {x.dtype} (shape "
                             f"{list(x.shape)}): a trigger is stamped as (1 - mask) * x + mask * pattern; give the "
                             f"inputs as floats ({float_reading(x.dtype)}), with the pattern on the same scale")
        sample = tuple(x.shape[1:])
        if not (_fits(self.mask.shape, sample) and _fits(self.pattern.shape, sample)):
            batched = [name for name, t in (("mask", self.mask), ("pattern", self.pattern))
                       if t.dim() == len(sample) + 1 and t.shape[0] == 1 and _fits(t.shape[1:], sample)]
            way = (f": {' and '.join(f'`{n}`' for n in batched)} laid out with a batch dimension [1, ...] (as a feature_mask "
                   f"is); give one input's, {', '.join(f'{n}[0]' for n in batched)}") if batched else ""
            raise ValueError(
                f"Expected the trigger's `mask` {list(self.mask.shape)} and `pattern` {list(self.pattern.shape)} "
                f"to broadcast to one input of shape {list(sample)}{way}"
            )

    def apply(self, x: Tensor) -> Tensor:
        """``(1 − m)·x + m·p`` for every row of the batch ``x`` (differentiable in ``x``).

        Args:
            x: a floating-point batch ``[N, ...]`` the mask and pattern broadcast to (:meth:`check`).
        """
        self.check(x)
        m = self.mask.to(device=x.device, dtype=x.dtype)
        return (1 - m) * x + m * self.pattern.to(device=x.device, dtype=x.dtype)

    @property
    def norm(self) -> float:
        """``|m|_1``, the size of the trigger."""
        return float(self.mask.abs().sum())

    def to(self, device: torch.device | str) -> Trigger:
        """A copy on ``device``.

        Args:
            device: the target device.
        """
        return Trigger(self.mask.to(device), self.pattern.to(device), self.target)

    def __repr__(self) -> str:
        return f"Trigger(mask={list(self.mask.shape)}, |m|_1={self.norm:.3g}, target={self.target})"


def _check_model(model: nn.Module) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"Expected argument `model` to be a torch.nn.Module but got {type(model)}")


#: the stacked-rows refusal's way out for the trigger searches (``reverse_trigger``, ``neural_cleanse``), which honour no
#: ``max_batch_size=1``: each step of the search stacks ``batch_size`` samples whatever ``max_batch_size``
SEARCH_WAY_OUT = ("search on one sample, `x[i:i + 1]` (`max_batch_size=1` is no way out here: each step of the trigger "
                  "search stacks `batch_size` samples whatever `max_batch_size`)")


def _logits(model: nn.Module, x: Tensor, max_batch_size: int | None, forward: Forward | _RowsOf | None = None,
            what: str | None = None, samples: int | None = None, *, sample_ids: Tensor | None = None,
            batch: str | None = None, way_out: str | None = None) -> Tensor:
    """``model(x)`` in chunks (call inside ``audit_mode``), through ``forward`` if given (its
    per-sample arguments follow the rows of ``x``); checks a ``[N, C]`` output. With ``what`` (the public function's
    name, and ``forward``), two of the rows run alone must give their logits in the pass, as ``BackdoorAudit`` checks its
    probe (:func:`~lightning_causal.causal.engine.sample_independence.check_samples_independent`, once per call: one
    pass of two rows, its draws put back): a model that normalises over the batch (a BatchNorm built with
    ``track_running_stats=False``) would give numbers of whichever rows share a chunk, silently. ``samples``: the
    first rows are the caller's samples, which the check takes and its message counts (``trigger_effect``'s clean
    rows, its stamped copies after them: of one sample, that row twice alone against its pass beside its copy);
    ``None``: every row. ``sample_ids`` and ``batch``: the check's message names the user's index of each row and
    the batch in those words (``attack_success_rate``'s rows are the samples not of the target).

    ``way_out`` (with ``what``): the rows stacked in a pass are checked against rows run alone too
    (:func:`~lightning_causal.causal.engine.stacked_rows.rows_alone_checked`, as the other estimators' intervened rows: a
    branch on a statistic of the batch that the probe's check does not see, the stamped rows' or the clean ones'),
    the refusal ending with ``way_out``: :data:`~lightning_causal.causal.engine.stacked_rows.WAY_OUT` where one row a
    pass (``max_batch_size=1``) gives each sample's own logits (``trigger_effect``, ``attack_success_rate``), whose
    probe check then runs against a pass of the samples stacked (two rows alone against rows alone told nothing and
    refused every such model: a loop), :data:`SEARCH_WAY_OUT` for the searches, whose samples' pass is stacked and
    checked at every ``max_batch_size``. Where the stacked rows are refused, the probe's check runs first, whose words
    name the cause more exactly."""
    rows = rows_per_pass(model, (x,), max_batch_size, forward=forward)
    call = (lambda idx: forward(x[idx], rows=idx)) if forward is not None else (lambda idx: model(x[idx]))
    if what is None or forward is None:
        return _class_logits(map_rows(x.shape[0], rows, call, x.device))
    k = x.shape[0] if samples is None else samples
    alone = rows == 1 and k > 1  # the samples' probe check needs them stacked: a pass of its own

    def stacked() -> Tensor:  # the samples in passes of the default size, as the probe's check compares them
        return _class_logits(map_rows(k, rows_per_pass(model, (x[:k],), None, forward=forward), call, x.device))

    checked = way_out is not None
    try:
        with rows_alone_checked(what, model=forward.model, way_out=way_out,  # a search's pass: its samples, clean
                                rows="samples" if way_out == SEARCH_WAY_OUT else "intervened rows",
                                ) if checked else contextlib.nullcontext():
            out = _class_logits(map_rows(x.shape[0], rows, call, x.device))
            clean = stacked() if alone and way_out == SEARCH_WAY_OUT else None  # no row alone honoured: checked too
    except StackedRowsError:
        if x.shape[0] > 1:
            _check_samples(forward, x, k, stacked, what, sample_ids, batch)  # its words first, where it refuses
        raise
    if x.shape[0] > 1:
        _check_samples(forward, x, k, (lambda: clean) if clean is not None else stacked if alone else (lambda: out[:k]),
                       what, sample_ids, batch, one_row=alone and clean is None)  # each row alone: its own logits
    return out


def _check_samples(forward: Forward | _RowsOf, x: Tensor, k: int, out: Callable[[], Tensor], what: str,
                   sample_ids: Tensor | None, batch: str | None, *, one_row: bool = False) -> None:
    """:func:`~lightning_causal.causal.engine.sample_independence.check_samples_independent` of the first ``k`` rows of
    ``x`` against ``out()``, their logits in a pass of them stacked, its draws and those of ``out`` put back
    (:func:`_logits`); ``one_row``: every row ran alone (``max_batch_size=1`` honoured), whose own logits a forward
    depending on its batch gives there (``check_samples_independent(one_row=True)``)."""
    with rng_preserved():  # its passes leave the later passes' draws (an MC-dropout model's) as they were
        check_samples_independent(forward, (x[:k],), out(), what, sample_ids=sample_ids,  # type: ignore[arg-type]
                                  batch=batch, one_row=one_row)  # _RowsOf: forward.model, rows=


def _predicted(out: Tensor) -> Tensor:
    """Each row's class, ``argmax`` of ``out`` ``[N, C]``, and -1 where every class is -inf (a row of no class: a mask
    ruling every class out, or a :class:`~.feature_shift.Contrast` whose two models share none there): ``argmax`` gives
    such a row as class 0, and a trigger driving rows there read as reaching class 0."""
    return out.argmax(1).masked_fill(out.isneginf().all(1), -1)


def _class_logits(out: Tensor) -> Tensor:
    if out.dim() != 2 or out.shape[1] < 2:
        raise ValueError(f"Expected the model to return class logits [N, C] with C >= 2 but got {list(out.shape)}")
    return out


class _RowsOf:
    """``forward`` called on rows of a batch whose row ``r`` belongs to sample ``samples[r]`` (so
    that per-sample forward arguments follow a subset or a stacked copy of the probe)."""

    def __init__(self, forward: Forward, samples: Tensor) -> None:
        self.forward, self.samples, self.model = forward, samples, forward.model

    def __call__(self, x: Tensor, rows: Tensor) -> Tensor:
        return self.forward(x, rows=self.samples[rows.to(self.samples.device)])


def _check_target(trigger: Trigger, num_classes: int) -> None:
    if not isinstance(trigger, Trigger):
        raise TypeError(f"Expected argument `trigger` to be a Trigger but got {type(trigger)}")
    if trigger.target >= num_classes:
        raise ValueError(f"Expected the trigger's `target` in [0, {num_classes - 1}] for a {num_classes}-class model but got {trigger.target}")


def attack_success_rate(
    model: nn.Module, x: Tensor, y: Tensor, trigger: Trigger, *, max_batch_size: int | None = None,
    output: OutputSpec = None, additional_forward_args: Any = None,
) -> float:
    """Share of triggered inputs classified as the target, over inputs whose true class is not it.

    .. math:: ASR = \\frac{|\\{i : y_i \\ne t,\\ \\arg\\max f(T(x_i)) = t\\}|}{|\\{i : y_i \\ne t\\}|}

    A triggered input whose outputs are -inf in every class (every class ruled out) reaches no class.

    Args:
        model: a classifier returning logits ``[N, C]`` (run in eval mode, no gradient).
        x: inputs ``[N, ...]``.
        y: true classes ``[N]``.
        trigger: the :class:`Trigger`.
        max_batch_size: rows per forward pass; ``1``: each triggered input alone (the way out of the stacked-rows
            refusal of a model whose forward branches on a statistic of its batch,
            :func:`~lightning_causal.causal.engine.stacked_rows.rows_alone_checked`).
        output: which tensor of the model's return value holds the logits (``None``: a tensor,
            ``.logits`` of a Hugging Face ``ModelOutput`` or ``["logits"]``; a key, an index or a
            callable, as everywhere in :mod:`lightning_causal.causal`).
        additional_forward_args: extra forward arguments (Captum's convention); tensors with ``N``
            rows follow their samples.

    Raises:
        ValueError: shapes that do not match, no input outside the target class, target out of range.

    Examples:
        >>> model = nn.Linear(2, 2, bias=False)
        >>> _ = model.weight.data.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        >>> t = Trigger(torch.tensor([0.0, 1.0]), torch.tensor([0.0, 5.0]), target=1)
        >>> attack_success_rate(model, torch.tensor([[1.0, 0.0], [9.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0, 1]), t)
        0.5
    """
    _check_model(model)
    trigger.check(x) if isinstance(trigger, Trigger) else _check_target(trigger, 2)
    if not isinstance(y, Tensor) or y.dim() != 1 or y.shape[0] != x.shape[0] or y.is_floating_point() or y.dtype.is_complex:
        got = f"{list(y.shape)} of dtype {y.dtype}" if isinstance(y, Tensor) else type(y).__name__
        raise ValueError(f"Expected argument `y` to be integer class labels of shape [{x.shape[0]}] but got {got}")
    keep = y != trigger.target
    if not keep.any():
        raise ValueError(f"Expected at least one input whose true class is not the target {trigger.target}")
    fwd = Forward(model, output=output, additional_forward_args=additional_forward_args, num_samples=x.shape[0])
    rows = torch.nonzero(keep).flatten()
    with audit_mode(model):
        out = _logits(model, trigger.apply(x[keep]), check_max_batch_size(max_batch_size), _RowsOf(fwd, rows),
                      "attack_success_rate", sample_ids=rows,  # the check's message names the user's samples
                      batch=f"the batch of the {len(rows)} samples whose label is not the target {trigger.target} "
                            f"(of {x.shape[0]})", way_out=WAY_OUT)
    _check_target(trigger, out.shape[1])
    check_class_labels("y", y, int(out.shape[1]), outputs=out)
    return float((_predicted(out) == trigger.target).double().mean())  # an exact share: 5 of 19 is 0.2631578947368421


def trigger_effect(
    model: nn.Module, x: Tensor, trigger: Trigger, max_batch_size: int | None = None, *,
    output: OutputSpec = None, additional_forward_args: Any = None,
) -> Tensor:
    """Per-sample causal effect of stamping the trigger on the target logit,
    ``f_t(T(x)) − f_t(x)`` ``[N]``; its mean is the trigger's ACE (do(trigger) vs do(no trigger)).
    ``output`` and ``additional_forward_args`` as in :func:`attack_success_rate`.

    Args:
        model: the classifier.
        x: clean inputs ``[N, ...]``.
        trigger: the :class:`Trigger` stamped.
        max_batch_size: rows per forward pass; ``None``: chosen from the memory budget; ``1``: each clean and
            stamped input alone (the way out of the stacked-rows refusal of a model whose forward branches on a
            statistic of its batch, :func:`~lightning_causal.causal.engine.stacked_rows.rows_alone_checked`).
        output: as in :func:`attack_success_rate`.
        additional_forward_args: as in :func:`attack_success_rate`.

    Examples:
        >>> t = Trigger(torch.tensor([0.0, 1.0]), torch.tensor([0.0, 5.0]), target=1)
        >>> trigger_effect(nn.Identity(), torch.tensor([[1.0, 2.0]]), t)
        tensor([3.])
    """
    _check_model(model)
    if not isinstance(trigger, Trigger):
        raise TypeError(f"Expected argument `trigger` to be a Trigger but got {type(trigger)}")
    n = x.shape[0]
    fwd = Forward(model, output=output, additional_forward_args=additional_forward_args, num_samples=n)
    rows = torch.arange(2 * n, device=x.device) % n  # clean rows, then their triggered copies
    with audit_mode(model):
        with GeneratorWatch() as passes:  # whether the model draws from a global generator: no pass of its own
            both = _logits(model, torch.cat([x, trigger.apply(x)]), check_max_batch_size(max_batch_size), _RowsOf(fwd, rows),
                           "trigger_effect", samples=n, way_out=WAY_OUT)
        # common random numbers for a model that draws noise: a sample and its triggered copy draw one noise
        noise = common_noise(fwd, model, (x,), lambda: rows_per_pass(model, (x,), check_max_batch_size(max_batch_size), forward=fwd),
                             drew=passes.moved)
        if noise is not None:
            stamped = trigger.apply(x)
            clean = noise.clean(lambda s: fwd(x[s], rows=s), x.device)
            both = _class_logits(torch.cat([clean, noise.rows(1, lambda _, s: fwd(stamped[s], rows=s), x.device)[0]]))
    _check_target(trigger, both.shape[1])
    return both[n:, trigger.target] - both[:n, trigger.target]


def _fits(shape: tuple[int, ...], sample: tuple[int, ...]) -> bool:
    """Whether ``shape`` broadcasts to ``sample`` (no larger than it)."""
    try:
        return torch.broadcast_shapes(shape, sample) == sample
    except RuntimeError:
        return False
