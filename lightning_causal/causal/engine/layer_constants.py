"""Whether a forward differentiates through a layer: the one check of the prefix cache (a forward taking
``torch.autograd.grad`` of its inputs, forces ``-dE/dx``) and of the causal graph (``torch.func.grad`` too, whose
output records no autograd and so passes the prefix cache's fast paths' test).

The estimators that give a layer's output as values of their own (a cached value, a clamp) answer such a forward with
constants, through which it finds a derivative of 0 (``torch.func.grad``) or fails (``torch.autograd.grad``: "appears
to not have been used in the graph"). :func:`constants_verdict` asks the model itself: the probe's full pass with the
layers' outputs given back as constants equal to themselves (``detach``; element 0 of a tuple; the first call of each)
against the same pass without, both over every probe row in one batch (a sample whose derivative through the layer is
0, its ReLU units all off, gives the same output either way; kernels rounding by the batch size do not tell them apart)
from the same RNG state (the global ones and the generators the model holds, left as found: dropout kept on in eval
draws the same masks)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Literal

import torch
from torch import Tensor, nn

from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.generators import model_rngs_kept
from lightning_causal.causal.engine.interventions import module_output, replace_output
from lightning_causal.causal.engine.live_values import close
from lightning_causal.causal.engine.state import rng_preserved

__all__ = ["ConstantsVerdict", "constants_verdict", "probe_pass"]

#: torch's error where the tensor ``autograd.grad`` differentiates with respect to records no graph: the layer's output
#: given as constants, where the forward differentiates with respect to it or a value computed from it (``dy/dh``)
NOT_DIFFERENTIABLE = "One of the differentiated Tensors does not require grad"


@dataclass(frozen=True)
class ConstantsVerdict:
    """What giving the layers' outputs back as constants did to the probe's output.

    Attributes:
        kind: ``"same"`` (the output as it is: the forward does not differentiate through them), ``"changes"`` (it
            does: ``torch.func.grad`` finds 0 through them), ``"fails"`` (the constants pass fails where the plain one
            runs: ``torch.autograd.grad``) or ``"noise"`` (they changed it, but so does a second plain pass: noise no
            watch restores, not judged).
        error: the constants pass's error (``"fails"``), else ``None``.
    """

    kind: Literal["same", "changes", "fails", "noise"]
    error: Exception | None = None

    @property
    def differentiates(self) -> bool:
        """Whether the forward differentiates through the layers (``"changes"`` or ``"fails"``)."""
        return self.kind in ("changes", "fails")

    @property
    def of_layer_itself(self) -> bool:
        """Whether the constants pass failed with torch's "One of the differentiated Tensors does not require grad": the
        forward differentiates with respect to a layer's own output or a value computed from it (``dy/dh``, ``dy/dz``
        with ``z = tanh(h)``), not an input before it."""
        return self.kind == "fails" and NOT_DIFFERENTIABLE in str(self.error)


@contextlib.contextmanager
def _as_constants(modules: Sequence[nn.Module]) -> Iterator[None]:
    """During the block, each module's first call gives back its output (element 0 of a tuple) detached."""
    def once(module: nn.Module) -> torch.utils.hooks.RemovableHandle:
        def hook(_m: nn.Module, _i: object, out: object) -> object:
            handle.remove()
            value = module_output(out)
            return replace_output(out, value.detach()) if isinstance(value, Tensor) else None

        handle = module.register_forward_hook(hook)
        return handle

    handles = [once(m) for m in modules]
    try:
        yield
    finally:
        for handle in handles:
            handle.remove()


def probe_pass(forward: Forward, xs: tuple[Tensor, ...], constant: Sequence[nn.Module] = ()) -> Tensor:
    """``forward``'s output on every probe row in one pass, from the RNG state as found (left as found), with the
    outputs of the modules ``constant`` given back as constants equal to themselves (:func:`_as_constants`).

    Args:
        forward: the model's prepared :class:`~lightning_causal.causal.engine.forward.Forward`.
        xs: the probe inputs ``[N, ...]``.
        constant: the modules whose outputs are given as constants.
    """
    rows = torch.arange(xs[0].shape[0], device=xs[0].device)
    with rng_preserved(), model_rngs_kept(forward.model), _as_constants(constant):
        return forward(*(x[rows] for x in xs), rows=rows)


def constants_verdict(forward: Forward, xs: tuple[Tensor, ...], modules: Sequence[nn.Module],
                      clean: Tensor | None = None) -> ConstantsVerdict:
    """Whether ``forward`` differentiates through ``modules`` (see the module's docstring).

    Args:
        forward: the model's prepared :class:`~lightning_causal.causal.engine.forward.Forward`.
        xs: the probe inputs ``[N, ...]``.
        modules: the layers given as constants together.
        clean: the plain pass's output (:func:`probe_pass` with no constants), where the caller ran it already.

    Raises:
        Exception: the constants pass's error, where the plain pass fails too (out of memory: not the constants'
            doing).

    Examples:
        >>> from torch.func import grad
        >>> class Forces(nn.Module):  # (dH/dp, -dH/dq) of a learned energy H
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.H = nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1))
        ...     def forward(self, z):
        ...         with torch.enable_grad():
        ...             d = grad(lambda zb: self.H(zb).sum())(z)
        ...         return torch.stack([d[:, 1], -d[:, 0]], 1)
        >>> model, z = Forces(), torch.randn(3, 2)
        >>> constants_verdict(Forward(model), (z,), [model.H[1]]).kind, constants_verdict(Forward(model.H), (z,), [model.H[1]]).kind
        ('changes', 'same')
    """
    try:
        constants = probe_pass(forward, xs, modules)
    except Exception as err:  # noqa: BLE001 - the model's own autograd.grad: "appears to not have been used in the graph"
        try:  # or, with allow_unused=True, its None gradient used (TypeError): it needs the layers' graph, if the plain
            probe_pass(forward, xs)  # pass runs; else (out of memory) the error is not the constants' doing
        except Exception:  # noqa: BLE001
            raise err from None
        return ConstantsVerdict("fails", err)
    plain = probe_pass(forward, xs) if clean is None else clean
    if close(constants, plain):
        return ConstantsVerdict("same")
    return ConstantsVerdict("changes" if close(probe_pass(forward, xs), plain) else "noise")
