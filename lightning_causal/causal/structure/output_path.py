"""Which layers the explained output reads: the head of another output is no layer of its map.

A model of several outputs (``{"cls": logits, "reg": y}``, ``(logits, aux_logits)``) computes
each head beside the others from a shared body. Explained at one output (``output="cls"``), the
layers of the other heads do not reach it: a layer causal map that placed them in its chain of
layers (``body -> cls -> reg -> <output>``) would draw a path that does not exist.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from lightning_causal.causal.engine.eager import named_modules
from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.user_frame import outside_package

__all__ = ["BLOCKED", "UNUSED", "off_output_path", "unread_layers", "warn_off_output_path"]

#: Probe rows of the pass with gradients that finds the layers the explained output reads there (a nonzero
#: gradient); the noisy passes of the other layers run on every probe sample.
PATH_ROWS = 32

#: Why :func:`unread_layers` finds a layer off the path: the explained output's computation does not use its output
#: (no gradient: the head of another output) ...
UNUSED = "another output's head"
#: ... or uses it, but no change of it reaches the output on the probe (a zero gradient, and noise leaves the output as
#: it was): units after it that no probe sample activates (a dead ReLU), or a head stacked beside the explained one and
#: sliced off by ``output=``.
BLOCKED = "not read on the probe: a dead ReLU after it, or an output that `output=` slices off"


def off_output_path(forward: Forward, xs: tuple[Tensor, ...], names: Sequence[str], *, seed: int = 0) -> list[str]:
    """The layers among ``names`` whose output the explained output does not read (:func:`unread_layers`, without why).

    Examples:
        >>> class TwoHeads(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.body, self.cls, self.reg = nn.Linear(3, 4), nn.Linear(4, 2), nn.Linear(4, 1)
        ...     def forward(self, x):
        ...         h = self.body(x)
        ...         return {"cls": self.cls(h), "reg": self.reg(h)}
        >>> with torch.no_grad():
        ...     off_output_path(Forward(TwoHeads(), output="cls"), (torch.randn(4, 3),), ["body", "cls", "reg"])
        ['reg']
    """
    return list(unread_layers(forward, xs, names, seed=seed))


def unread_layers(forward: Forward, xs: tuple[Tensor, ...], names: Sequence[str], *, seed: int = 0) -> dict[str, str]:
    """The layers among ``names`` whose output the explained output does not read, each with why: :data:`UNUSED`
    (the output's computation does not use it: no gradient) or :data:`BLOCKED` (it does, but nothing of the layer
    reaches the output on the probe: a zero gradient, or no pass with gradients, and unchanged by noise).

    A layer is on the path when the explained output's gradient with respect to its output, on the
    first ``PATH_ROWS`` probe samples, is nonzero somewhere (one pass with gradients,
    :func:`_gradient_read`: a branch whose noise rounds away in bfloat16 is read). Any other layer is
    off the path when noise added to its output (one pass of every probe sample per such layer)
    leaves the explained output exactly as it was: the head of another output of a multi-head model,
    stacked beside the explained one or not; an expert or a branch that only later samples of the
    probe read is on it. Kept whatever the passes give: a layer that
    does not run in them, one whose output is no floating-point tensor (a tuple, token ids), a
    TorchScript module (no hook reaches it), one whose noisy pass fails (the noise reached the
    output's computation), and every layer of a model whose two clean passes differ (noise
    drawn in eval mode). Call inside
    ``audit_mode``; the hooks are removed after each pass, the gradients are taken with
    ``torch.autograd.grad`` (no parameter's ``.grad`` is touched), and the noise comes from a
    private generator seeded with ``seed``.

    Examples:
        >>> class TwoHeads(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.body, self.cls, self.reg = nn.Linear(3, 4), nn.Linear(4, 2), nn.Linear(4, 1)
        ...     def forward(self, x):
        ...         h = self.body(x)
        ...         return {"cls": self.cls(h), "reg": self.reg(h)}
        >>> dead = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> _ = nn.init.constant_(dead[2].bias, -100.0)  # no unit after layer 0 is active: a dead ReLU
        >>> with torch.no_grad():
        ...     off = unread_layers(Forward(TwoHeads(), output="cls"), (torch.randn(4, 3),), ["body", "cls", "reg"])
        ...     blocked = unread_layers(Forward(dead), (torch.randn(4, 3),), ["0", "2", "4"])
        >>> off == {"reg": UNUSED}, blocked == {"0": BLOCKED}
        (True, True)
    """
    k = min(PATH_ROWS, int(xs[0].shape[0]))
    modules = named_modules(forward.model)
    grads = _gradient_read(forward, tuple(x[:k] for x in xs), torch.arange(k, device=xs[0].device), modules, names)
    names = [name for name in names if grads.get(name) is not True]
    if not names:
        return {}
    clean = forward(*xs)
    if not torch.equal(clean, forward(*xs)):  # the model draws noise: no pass can tell
        return {}
    generator = torch.Generator().manual_seed(seed)
    off = {}
    for name in names:
        if isinstance(modules[name], torch.jit.ScriptModule):  # no hooks there: the layer map names why
            continue
        moved: list[bool] = []
        handle = modules[name].register_forward_hook(_noise_hook(generator, moved))
        try:
            changed = forward(*xs)
        except Exception:  # noqa: BLE001 - the noise reached something that refuses it (an index made of it): on the path
            continue
        finally:
            handle.remove()
        if moved and all(moved) and torch.equal(changed, clean):
            off[name] = UNUSED if name in grads and grads[name] is None else BLOCKED
    return off


def _gradient_read(forward: Forward, xs: tuple[Tensor, ...], rows: Tensor, modules: dict[str, nn.Module],
                   names: Sequence[str]) -> dict[str, bool | None]:
    """Whether the explained output's gradient on ``xs`` with respect to each layer's output is nonzero
    somewhere (``True``), zero (``False``) or none (``None``: the output's computation does not use it):
    a hook adds a zero that requires grad to each floating-point output (the values unchanged),
    differentiated by ``torch.autograd.grad(..., allow_unused=True)``. A gradient that is ``None``
    (another head) or zero (a head stacked beside the explained one and sliced off, a gate closed on
    these samples, a dead ReLU) reads nothing here: the noisy passes decide. A layer that does not run
    in the pass, or whose output is no floating-point tensor, is left out, and every layer where the pass fails."""
    zeros: dict[str, Tensor] = {}

    def hook(name: str) -> Callable[[nn.Module, object, object], object]:
        def add_zero(_m: nn.Module, _i: object, out: object) -> object:
            if not isinstance(out, Tensor) or not out.is_floating_point():
                return None
            zero = zeros.setdefault(name, torch.zeros((), dtype=out.dtype, device=out.device, requires_grad=True))
            return out + zero
        return add_zero

    handles = [modules[name].register_forward_hook(hook(name)) for name in names
               if not isinstance(modules[name], torch.jit.ScriptModule)]
    try:
        with torch.inference_mode(False), torch.enable_grad():
            out = forward(*(x.clone() for x in xs), rows=rows)  # clones: inference tensors cannot be saved for backward
            if not zeros or not isinstance(out, Tensor) or not out.requires_grad:
                return {}
            named = list(zeros)
            grads = torch.autograd.grad(out, [zeros[name] for name in named], grad_outputs=torch.ones_like(out),
                                        allow_unused=True)
    except Exception:  # noqa: BLE001 - a check only: the noisy passes decide, the map's own passes report errors
        return {}
    finally:
        for handle in handles:
            handle.remove()
    return {name: None if grad is None else bool(grad != 0) for name, grad in zip(named, grads)}


def _noise_hook(generator: torch.Generator, moved: list[bool]) -> Callable[[nn.Module, object, object], object]:
    """A forward hook adding noise of the output's scale to a floating-point output; ``moved``
    records, per call, whether it did."""
    def hook(_m: nn.Module, _i: object, out: object) -> object:
        if not isinstance(out, Tensor) or not out.is_floating_point():
            moved.append(False)
            return None
        moved.append(True)
        noise = torch.randn(out.shape, generator=generator).to(device=out.device, dtype=out.dtype)
        return out + noise * (out.detach().abs().mean() + 1)
    return hook


def warn_off_output_path(off: Sequence[str]) -> None:
    """Warn that the named layers ``off`` (:func:`off_output_path`) do not reach the explained output:
    a layer causal map places every named layer in one chain between the input and the output."""
    if off:
        warnings.warn(
            f"The layers {list(off)} do not reach the explained output (noise added to their outputs leaves it unchanged: "
            "the head of another output of a multi-head model?); the layer map places them in its chain of layers between "
            "the input and the output all the same, a path that does not exist: leave them out of `layers=`, or explain "
            "their output with `output=`", UserWarning, stacklevel=outside_package())
