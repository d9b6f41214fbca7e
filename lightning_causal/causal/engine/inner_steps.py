"""Optimizer steps a model's own forward takes on its parameters: test-time adaptation (TENT's entropy step on the
BatchNorm affine parameters, test-time training's steps on a self-supervised loss) steps an optimizer inside
``forward`` under ``torch.enable_grad()``. Inside an audit's passes each step would move the weights the next pass
explains, the rows of a pass would adapt the model for each other, and the model would come back adapted to the probe
and to every intervened row: :func:`inner_steps_kept` puts the stepped parameters, their ``.grad`` and the optimizer's
state back, and refuses a forward that leaves them changed. A forward that puts its weights back itself (test-time
training that reloads the trained weights after predicting) runs; the stacked-rows checks judge its batch dependence."""

from __future__ import annotations

import contextlib
import weakref
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn
from torch.optim.optimizer import register_optimizer_step_pre_hook

__all__ = ["inner_steps_kept", "stepped", "INNER_STEP_FIX", "BATCH_STEP_CAUSE", "BATCH_STEP_FIX"]

#: the way to explain an adapted model
ADAPTED_OFF = ("adapt first and audit the network it adapted with the adaptation off (TENT: run the wrapper on the test "
               "batch, then audit a copy of `wrapper.net` in eval mode, with running statistics)")
#: the way out the refusal names
INNER_STEP_FIX = (f"{ADAPTED_OFF}, or write the adaptation so that forward puts the trained weights back after "
                  "predicting (test-time training that reloads them): its passes then explain one model")

#: the cause and the way out named where a forward that steps an optimizer and puts its weights back gives other outputs
#: for rows alone than in their pass (test-time training on the batch's loss)
BATCH_STEP_CAUSE = ("its forward steps an optimizer on its parameters with its batch's loss (test-time training or "
                    "adaptation), so that every row of a pass moves the weights the others are predicted with")
BATCH_STEP_FIX = ("adapt on one sample at a time inside forward (its steps on that sample's loss, the trained weights put "
                  "back before the next: the audits then explain each sample's own adapted model), or " + ADAPTED_OFF)


@dataclass
class _Kept:
    """What the outermost :func:`inner_steps_kept` block found: the model and its parameters' ``.grad`` (by
    ``id``; ``aside``: taken off the parameters for the block), the values of those an optimizer stepped, copied before
    its first step, and the optimizers' state before their first step."""

    model: nn.Module
    grads: dict[int, tuple[Tensor, Tensor | None]]
    aside: bool = False
    params: dict[int, tuple[Tensor, Tensor]] = field(default_factory=dict)
    states: dict[int, tuple[Any, str, dict[Any, dict[str, Any]]]] = field(default_factory=dict)
    steps: int = 0

    def copy_before_step(self, optimizer: torch.optim.Optimizer) -> None:
        """The optimizer hook: copy what ``optimizer``'s step may write, the first time it steps a parameter."""
        held = [p for group in optimizer.param_groups for p in group["params"] if id(p) in self.grads]
        if not held:  # an inner optimizer over tensors forward made (a latent code): none of the model's
            return
        self.steps += 1
        found = self.states.get(id(optimizer))
        if found is None or found[0]() is not optimizer:  # a local optimizer's id may be a collected one's
            self.states[id(optimizer)] = (weakref.ref(optimizer), type(optimizer).__name__, _state_copy(optimizer.state))
        for p in held:
            if id(p) not in self.params:
                self.params[id(p)] = (p, p.detach().clone())

    def set_aside(self) -> None:
        """Take the ``.grad`` tensors off the parameters for the block: a backward inside writes new ones, never into
        these (no copy of their values needed)."""
        self.aside = True
        for p, grad in self.grads.values():
            if grad is not None:
                p.grad = None

    def put_back(self, outermost: bool) -> list[str]:
        """Put the stepped parameters, the ``.grad`` objects and the optimizers' state back; the names of the parameters
        a step moved. A ``.grad`` the block found (none at an audit after ``zero_grad``) is the very tensor again where
        the ``outermost`` block ends (inside it, none where they were set aside); one left on the parameters that a
        backward inside accumulated into in place is not undone (the callback's ``no_trace`` copies their values)."""
        moved = []
        names = {id(p): name for name, p in self.model.named_parameters()} if self.params else {}  # read where stepped
        with torch.no_grad():
            for key, (p, values) in self.params.items():
                if not torch.equal(p, values):
                    moved.append(names.get(key, "?"))
                    p.copy_(values)
        for ref, _, state in self.states.values():
            optimizer = ref()
            if optimizer is not None:
                optimizer.state.clear()
                optimizer.state.update(_state_copy(state))
        for p, grad in self.grads.values():  # a backward of forward's (also where no step followed)
            found = None if self.aside and not outermost else grad
            if p.grad is not found:
                p.grad = found
        return moved


def _state_copy(state: Any) -> dict[Any, dict[str, Any]]:
    """A copy of an optimizer's ``state`` (per parameter: its momentum buffers, step counts), the tensors cloned."""
    return {p: {k: v.clone() if isinstance(v, Tensor) else v for k, v in s.items()} for p, s in state.items()}


#: the copies of the outermost :func:`inner_steps_kept` block open now, which blocks inside it share
_KEPT: ContextVar[_Kept | None] = ContextVar("lightning_causal_inner_steps", default=None)


@contextlib.contextmanager
def inner_steps_kept(model: nn.Module, grads: bool = True) -> Iterator[None]:
    """Put back, after the block (also on exceptions), the parameters of ``model`` that an optimizer stepped inside it
    (the very tensors, their values and ``.grad``), the state of that optimizer (momentum buffers, step counts), and the
    ``.grad`` a backward inside left on a parameter none stepped; then refuse the passes if a parameter stepped was
    left changed: a forward that adapts the model at test time (TENT) explains other weights at every pass, and its
    rows adapt them for each other. Costs nothing for a model whose forward steps no optimizer (one global hook,
    a list of the parameters' ``.grad``); copies only what a step writes, once per outermost block.

    Args:
        model: the model.
        grads: set the ``.grad`` tensors the parameters hold (after a fit, the last step's) aside for the block, so that
            a backward inside writes new ones and never accumulates into them (no copy of their values: a model's worth
            of memory); ``False`` where the caller copies their values itself and its code inside may read them (the
            callback's ``no_trace``, around audits of the user's own): the very objects are put back either way.

    Raises:
        ValueError: an optimizer stepped inside the block left parameters of ``model`` changed (the block itself
            raised nothing).

    Examples:
        >>> class Adapts(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.lin = nn.Linear(2, 1)
        ...         self.opt = torch.optim.SGD(self.parameters(), lr=0.1)
        ...     def forward(self, x):
        ...         with torch.enable_grad():
        ...             self.lin(x).pow(2).mean().backward()
        ...             self.opt.step()
        ...         return self.lin(x)
        >>> m = Adapts()
        >>> before = m.lin.weight.clone()
        >>> with inner_steps_kept(m):  # doctest: +ELLIPSIS
        ...     _ = m(torch.ones(3, 2))
        Traceback (most recent call last):
            ...
        ValueError: Expected the model's forward to leave its parameters as it found them, but an optimizer (SGD) ...
        >>> torch.equal(m.lin.weight, before), m.lin.weight.grad is None
        (True, True)
    """
    outer = _KEPT.get()
    handle = None
    if outer is None:
        kept = _Kept(model, {id(p): (p, p.grad) for p in model.parameters()})
        handle = register_optimizer_step_pre_hook(lambda opt, args, kwargs: kept.copy_before_step(opt))
    else:
        kept = outer
    token = _KEPT.set(kept)
    steps = kept.steps
    failed = True
    try:
        if handle is not None and grads:
            kept.set_aside()
        yield
        failed = False
    finally:
        _KEPT.reset(token)
        if handle is not None:
            handle.remove()
        moved = kept.put_back(outer is None) if (kept.steps > steps or outer is None) else []
        if moved and not failed:
            optimizers = sorted({name for _, name, _ in kept.states.values()})
            raise ValueError(
                f"Expected the model's forward to leave its parameters as it found them, but an optimizer "
                f"({', '.join(optimizers)}) stepped inside the audit's passes and left {moved[:8]}"
                f"{' ...' if len(moved) > 8 else ''} changed: a forward that adapts at test time (TENT's entropy step, "
                f"test-time training that keeps its steps) explains other weights at every pass, and the rows of a pass "
                f"(the intervened copies of the samples among them) adapt the model for each other, so no effect would be "
                f"the trained model's nor one model's. The parameters, their .grad and the optimizer's state are put back; "
                f"{INNER_STEP_FIX}")


def stepped() -> bool:
    """Whether an optimizer stepped parameters of the model of the :func:`inner_steps_kept` block open now."""
    kept = _KEPT.get()
    return kept is not None and kept.steps > 0
