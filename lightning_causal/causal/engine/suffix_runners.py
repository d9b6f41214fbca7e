"""How a :class:`~.prefix_cache.PrefixCache` runs rows after the cut: the traced suffix of the ``"fx"``
path (:class:`FxRunner`) and full forward passes with the layer's output replaced (:class:`FullRunner`:
the ``"full"`` path, the fallback of the ``"hooks"`` path and the reference of the trial passes), both
through :func:`edit_calls`, which sets the layer's first call and edits its later ones."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.hook_split import edit_copy
from lightning_causal.causal.engine.interventions import module_output, replace_output
from lightning_causal.causal.engine.live_values import rows_of, take
from lightning_causal.causal.engine.suffix import FxSplit

__all__ = ["Edit", "FullRunner", "FxRunner", "edit_calls", "keeping_graph"]

#: An edit of the layer's clean output (a callable ``value`` of a cache call).
Edit = Callable[[Tensor], Tensor]


def keeping_graph(value: Tensor, live: Tensor, clean: Tensor | None) -> Tensor:
    """``value`` in place of a layer's ``live`` output, where the model's forward records gradients through the
    layer (``live.requires_grad`` inside ``torch.no_grad()``: forces ``-dE/dx`` taken by ``torch.autograd.grad`` in
    forward): the elements equal to the ``clean`` cached output stay differentiable as ``live``'s, the others
    (the intervened units) are constants, as in a hand ``do()``. All constants would cut the inputs off the
    graph behind the layer (the model's own ``autograd.grad`` fails: "appears to not have been used in the
    graph"). The values are ``value``'s (``live - live.detach()`` is 0, and 0 where ``live`` is not finite: a masked
    score of ``-inf``); without a graph, ``value`` itself.

    Args:
        value: the layer's output for the rows (the clean cached one, or one with units set).
        live: the layer's output the pass computed.
        clean: the rows' clean cached output; ``None``: none known (``value`` is returned).

    Examples:
        >>> import torch
        >>> x = torch.tensor([1.0, 2.0], requires_grad=True)
        >>> clean = torch.tensor([1.0, 4.0])
        >>> out = keeping_graph(torch.tensor([1.0, 0.0]), x * x, clean)  # do(h_1 := 0); h_0 = x_0^2 live
        >>> out.detach(), torch.autograd.grad(out.sum(), x)[0]
        (tensor([1., 0.]), tensor([2., 0.]))
    """
    if clean is None or not live.requires_grad or not (live.shape == value.shape == clean.shape) or not value.is_floating_point():
        return value
    return torch.where(value == clean, value + (live - live.detach()).nan_to_num(0.0, 0.0, 0.0), value)


@contextlib.contextmanager
def edit_calls(module: nn.Module, value: Tensor | Edit, first_is_cut: bool,
               clean: Callable[[], Tensor] | None = None) -> Iterator[None]:
    """During the block, the module's first call returns ``value`` (``first_is_cut``) and every
    other call has the edit applied (a callable ``value``; a tensor leaves them unchanged). ``clean``:
    gives the rows' cached clean output, whose elements in ``value`` keep the live output's graph
    (:func:`keeping_graph`); called only where the live output records one, so that a model that takes no
    gradients in its forward pays nothing for it."""
    if isinstance(value, Tensor) and not first_is_cut:
        yield
        return
    count = iter(range(1 << 62))

    def hook(_m: nn.Module, _i: Any, out: Any) -> Any:
        if next(count) == 0 and first_is_cut:
            if not isinstance(value, Tensor):
                return replace_output(out, value(module_output(out)))
            live = module_output(out)
            return replace_output(out, keeping_graph(value, live, clean()) if clean is not None and live.requires_grad else value)
        return None if isinstance(value, Tensor) else replace_output(out, value(module_output(out)))

    handle = module.register_forward_hook(hook)
    try:
        yield
    finally:
        handle.remove()


class FxRunner:
    """The ``"fx"`` path's runner: the traced suffix after the cut, given the rows' layer output (or the edit of
    their cached one) and the values live at the cut taken by row (``plans``: :func:`~.live_values.value_plan`)."""

    def __init__(self, split: FxSplit, module: nn.Module, h: Tensor, live: list[Any], plans: list[Any]) -> None:
        self.split, self.module, self.h, self.live, self.plans = split, module, h, live, plans

    def __call__(self, value: Tensor | Edit, rows: Tensor) -> Any:
        first = value.clone() if isinstance(value, Tensor) else edit_copy(value, rows_of(self.h, rows))  # the suffix may write to it in place
        live = [take(p, v, rows) for p, v in zip(self.plans, self.live)]
        with edit_calls(self.module, value, first_is_cut=False):
            return self.split.suffix(first, *live)


class FullRunner:
    """The ``"full"`` path's runner (and the reference every fast path is checked against): full forward passes
    of the rows' inputs with the layer's output replaced by a hook; ``fold > 1``: a folded layer's ``[R, k, ...]``
    value is given to the model as its ``[R·k, ...]``."""

    def __init__(self, forward: Forward, xs: tuple[Tensor, ...], module: nn.Module, fold: int = 1,
                 clean: Tensor | Callable[[Tensor], Tensor] | None = None) -> None:
        self.forward, self.xs, self.module, self.fold = forward, xs, module, fold
        #: the layer's clean output on the probe (the cache's value), or a function of the rows giving theirs: a forward
        #: that records gradients through the layer differentiates its unchanged elements (:func:`keeping_graph`)
        self.clean = clean

    def __call__(self, value: Tensor | Edit, rows: Tensor) -> Any:
        # a pass the caller runs under autograd (the first-order estimates) differentiates its own leaves: nothing to keep
        keep = isinstance(value, Tensor) and self.clean is not None and not torch.is_grad_enabled()
        if self.fold > 1 and isinstance(value, Tensor):  # the cache's [R, k, ...] view of a folded layer's [R·k, ...]
            value = value.reshape(-1, *value.shape[2:])

        def clean() -> Tensor:  # taken only where the live output records a graph (edit_calls)
            rows_clean = self.clean(rows) if callable(self.clean) else self.clean[rows]
            return rows_clean.reshape(-1, *rows_clean.shape[2:]) if self.fold > 1 else rows_clean

        with edit_calls(self.module, value, first_is_cut=True, clean=clean if keep else None):
            return self.forward.raw(*(rows_of(x, rows) for x in self.xs), rows=rows)
