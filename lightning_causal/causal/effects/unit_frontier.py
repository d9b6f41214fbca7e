"""The *frontier* of a layer: the input ``z`` of the first module after it that mixes units.

Between a layer and the next module that mixes its units there are often only unit-local
operations (batch norm in evaluation mode, activation functions, pooling, dropout): a conv's
output goes through ``BatchNorm2d`` and ``ReLU`` before the next conv. Zeroing a channel there is
far from its clean value after batch norm (``relu(β − γμ/σ)`` instead of ``0``) and crosses the
ReLU's kink: the first-order estimate at ``h`` misses it. Linearising at ``z`` instead, with the
change of ``z`` computed exactly for every intervened row (only the cheap local operations run),
keeps the cost of attribution patching and removes that error; it is AtP*'s recipe (Kramár et al.
2024) of computing the saturating part exactly (there: the attention softmax) and the rest to
first order.

:func:`find_frontier` finds ``z`` on two trial rows: the first module call after the layer, not
a known unit-local module, whose first argument changes when the layer's output changes; and it
checks that ``z`` carries all of the layer's influence (the output is unchanged when ``h`` changes
but ``z`` is held at its clean value). A module that only holds others (an ``nn.Sequential``, a block
without weights of its own, a ``torch.compile`` wrapper) gives way to the first such call inside it that carries all of the
influence too, as in a traced model, which inlines it (else the container's input is ``z``). Otherwise (skip connections around the module, a layer
used twice, ``z`` passed by keyword) there is no frontier and the estimate is taken at ``h``.
The trial rows run on copies and each call's argument is recorded as a copy, so a model that modifies
the layer's output in place after it (``ReLU(inplace=True)``, ``g.add_(1)``) is compared as it ran.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from lightning_causal.causal.engine.hook_split import Stub
from lightning_causal.causal.engine.live_values import close
from lightning_causal.causal.engine.prefix_cache import PrefixCache
from lightning_causal.causal.engine.state import gather_target

__all__ = ["LOCAL_MODULES", "Frontier", "find_frontier", "frontier_inputs", "frontier_gradient"]

#: Module types that act on each unit separately (in evaluation mode).
LOCAL_MODULES: tuple[type[nn.Module], ...] = (
    nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.InstanceNorm1d, nn.InstanceNorm2d, nn.InstanceNorm3d,
    nn.ReLU, nn.ReLU6, nn.LeakyReLU, nn.PReLU, nn.ELU, nn.SELU, nn.CELU, nn.GELU, nn.SiLU, nn.Mish, nn.Sigmoid,
    nn.Tanh, nn.Hardtanh, nn.Hardswish, nn.Hardsigmoid, nn.Softplus, nn.Identity,
    nn.Dropout, nn.Dropout1d, nn.Dropout2d, nn.Dropout3d,
    nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AvgPool1d, nn.AvgPool2d, nn.AvgPool3d,
    nn.AdaptiveAvgPool1d, nn.AdaptiveAvgPool2d, nn.AdaptiveAvgPool3d,
    nn.AdaptiveMaxPool1d, nn.AdaptiveMaxPool2d, nn.AdaptiveMaxPool3d,
)


@dataclass(frozen=True)
class Frontier:
    """The ``call``-th call (0-based) of ``module`` takes the frontier ``z`` as its first argument;
    ``is_value``: ``z`` is the layer's output itself (no local operation in between)."""

    module: nn.Module
    call: int
    is_value: bool


class _Stop(Exception):
    def __init__(self, value: Tensor) -> None:
        super().__init__("frontier reached")
        self.value = value


@contextlib.contextmanager
def _pre_hooks(model: nn.Module, hook: Callable[[nn.Module, int, Any], Any]) -> Iterator[None]:
    """``hook(module, call index, args)`` before every module call (its return replaces ``args``)."""
    counts: dict[int, int] = {}
    handles = []

    def make(module: nn.Module) -> Callable[[nn.Module, Any], Any]:
        def pre(_m: nn.Module, args: Any) -> Any:
            k = counts.get(id(module), 0)
            counts[id(module)] = k + 1
            return hook(module, k, args)

        return pre

    try:
        for module in model.modules():
            handles.append(module.register_forward_pre_hook(make(module)))
        yield
    finally:
        for h in handles:
            h.remove()


def _first_args(cache: PrefixCache, value: Tensor, rows: Tensor) -> tuple[list[tuple[nn.Module, int, Any]], Tensor]:
    calls: list[tuple[nn.Module, int, Any]] = []

    def record(module: nn.Module, k: int, args: Any) -> None:
        first = args[0] if isinstance(args, tuple) and args and isinstance(args[0], Tensor) else None
        if first is not None and not isinstance(first, Stub):  # as the call got it: later in-place ops must not reach it
            first = first.detach().clone()
        calls.append((module, k, first))

    with _pre_hooks(cache.forward.model, record):
        out = cache(value.clone(), rows)  # a copy: the model may modify the layer's output in place (g.add_(1))
    return calls, out


def find_frontier(cache: PrefixCache, layer: nn.Module) -> Frontier | None:
    """The frontier of the cached layer (see the module docstring), or ``None``."""
    rows = torch.arange(min(2, cache.value.shape[0]), device=cache.value.device)
    h = cache.value[rows]
    moved = 1.0 - 0.5 * h  # every element changes (unless it equals 2/3)
    clean, out = _first_args(cache, h, rows)
    changed, _ = _first_args(cache, moved, rows)
    if len(clean) != len(changed) or any(a[0] is not b[0] for a, b in zip(clean, changed)):
        return None
    # the hook split's and the full path's runs call the layer once, as the cut (its output answered), after
    # the calls before it (whose unread cached arguments are stubs there); a traced suffix starts after it
    cut = [i for i, (m, _, _) in enumerate(clean) if m is layer]
    if len(cut) > (0 if cache.path == "fx" else 1):
        return None  # the layer is called again after the cut
    after = cut[0] + 1 if cut else 0
    outer = None  # a container or wrapper that carries the layer's influence, until a module inside it does
    for (module, k, z), (_, _, z_moved) in zip(clean[after:], changed[after:]):
        if z is None or z_moved is None or isinstance(z, Stub) or isinstance(z_moved, Stub):
            continue
        if z.shape != z_moved.shape or torch.equal(z, z_moved):
            continue
        if isinstance(module, LOCAL_MODULES):
            continue
        if not _dominates(cache, module, k, z, moved, rows, out):
            return outer
        same = z.shape == h.shape and torch.equal(z, h) and torch.equal(z_moved, moved)
        if not _container(module):
            return Frontier(module, k, same)
        # an nn.Sequential, a block or a torch.compile wrapper: its first call takes the layer's output as it is, and
        # the unit-local modules inside it run before the module that mixes units (as a traced model, which inlines it)
        outer = outer or Frontier(module, k, same)
    return outer


def _container(module: nn.Module) -> bool:
    """A module that only holds others: submodules, and no weights of its own (a layer with parametrized
    or fake-quantized weights, or an adapter with its own low-rank weights, computes with them itself)."""
    return (any(True for _ in module.children()) and not any(True for _ in module.parameters(recurse=False))
            and not parametrize.is_parametrized(module))


@contextlib.contextmanager
def _at_frontier(frontier: Frontier, hook: Callable[[Any], Any]) -> Iterator[None]:
    """``hook(args)`` before the frontier call of the frontier module (its return replaces ``args``)."""
    count = iter(range(1 << 62))

    def pre(_m: nn.Module, args: Any) -> Any:
        return hook(args) if next(count) == frontier.call else None

    handle = frontier.module.register_forward_pre_hook(pre)
    try:
        yield
    finally:
        handle.remove()


def _dominates(cache: PrefixCache, module: nn.Module, k: int, z: Tensor, moved: Tensor, rows: Tensor, out: Tensor) -> bool:
    """Holding ``z`` at its clean value while the layer's output moves leaves the output clean."""
    with _at_frontier(Frontier(module, k, False), lambda args: (z.clone(), *args[1:])):
        held = cache(moved.clone(), rows)
    return close(held, out)


def frontier_inputs(cache: PrefixCache, frontier: Frontier, value: Any, rows: Tensor) -> Tensor:
    """``z`` for rows of samples ``rows`` whose layer output is ``value`` (a tensor or an edit);
    the forward stops at the frontier."""

    def stop(args: Any) -> Any:
        raise _Stop(args[0])

    cache.prepare(value)  # the linear update's trial runs, outside the stop (they would stop there, and count its calls)
    try:
        with _at_frontier(frontier, stop):
            cache(value, rows)
    except _Stop as reached:
        return reached.value
    raise RuntimeError("the forward pass did not reach the frontier module")


def frontier_gradient(cache: PrefixCache, frontier: Frontier, target_idx: Tensor, rows: Tensor) -> tuple[Tensor, Tensor | None]:
    """``(z, ∂f_t/∂z)`` of the clean rows of samples ``rows`` (backpropagation from the output to ``z`` only);
    ``None`` for the gradient when none reaches ``z`` (a forward that cuts it, or does not depend on ``z``)."""
    leaf: list[Tensor] = []

    def grab(args: Any) -> Any:
        leaf.append(args[0].detach().requires_grad_(True))
        return (leaf[0], *args[1:])

    with torch.enable_grad(), _at_frontier(frontier, grab):
        f = gather_target(cache(cache.value[rows], rows), target_idx[rows])
        (g,) = torch.autograd.grad(f.sum(), leaf[0], allow_unused=True) if f.requires_grad else (None,)
    return leaf[0].detach(), g
