"""Layers a model computes in functional code, outside every module the layer map reads.

The layer map's default layers are modules (:func:`~lightning_causal.causal.structure.default_layers.leaf_layers`). A
layer computed with ``F.linear``/``F.conv2d`` in a forward of the model's own, from weights it holds or generates (a
hypernetwork's main net, a dynamic filter whose kernel a module makes from each sample), is the output of no module:
the map cannot show it, and a map of the modules around it alone says nothing of the path through it.
:func:`functional_layer_calls` watches a pass (a ``TorchFunctionMode``) and counts those calls, so that the map can say so
(:func:`functional_layers_note`): the pass of two probe samples that checks the layers' shapes, not the clean pass, as
under a function mode ``nn.TransformerEncoderLayer`` leaves its fast path, whose rounding the intervened passes'
differences from the clean one would hold."""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterable, Iterator

import torch
import torch.nn.functional as F
from torch import nn
from torch.overrides import TorchFunctionMode

from lightning_causal.causal.structure.default_layers import leaf_layers

__all__ = ["FUNCTIONAL", "functional_layer_calls", "functional_layers_note"]

#: why a layer computed in functional code is in no layer of the map (its ``meta["left_out"]`` entry, keyed by the call:
#: ``"F.conv2d in DynamicFilter.forward"``), which the audit's notes and the map's figure say
FUNCTIONAL = "computed in functional code, the output of no module: pass it through an nn.Identity named with `layers=`"

#: the functions that are layers (weights times the input): a call of one outside every module the map reads is a
#: layer the map cannot show; matmul/einsum/bmm are left out, as a hand-written attention multiplies activations with them
_LAYER_FUNCTIONS = {F.linear: "F.linear", F.bilinear: "F.bilinear", F.conv1d: "F.conv1d", F.conv2d: "F.conv2d",
                    F.conv3d: "F.conv3d", F.conv_transpose1d: "F.conv_transpose1d", F.conv_transpose2d: "F.conv_transpose2d",
                    F.conv_transpose3d: "F.conv_transpose3d"}


def _of_torch(module: nn.Module) -> bool:
    """A module of torch's own (``nn.MultiheadAttention`` calls ``F.linear`` with its ``out_proj``'s weight): its
    functional calls are its own business, the map reads it or its layers where it can."""
    return type(module).__module__.split(".")[0] == "torch"


class _Watch(TorchFunctionMode):
    def __init__(self, running: list[str | None], found: Counter) -> None:
        super().__init__()
        self.running, self.found = running, found

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204 - torch's signature
        name = _LAYER_FUNCTIONS.get(func)
        if name is not None and self.running and self.running[-1]:  # innermost module: one of yours, no layer, not torch's
            self.found[f"{name} in {self.running[-1]}.forward"] += 1
        return func(*args, **(kwargs or {}))


@contextlib.contextmanager
def functional_layer_calls(model: nn.Module, covered: Iterable[str]) -> Iterator[Counter]:
    """Counts, during the block, the layer functions (``F.linear``, ``F.conv*``, ``F.bilinear``) called in the forward of
    one of the model's modules that is none of ``covered`` (the layers the map reads) nor a layer the map leaves out
    (:func:`~lightning_causal.causal.structure.default_layers.leaf_layers`: another output's head), inside none of
    them, and not one of torch's own modules (a module of yours in an ``nn.Sequential`` is yours):
    ``"F.conv2d in DynamicFilter.forward" -> calls``. A model run compiled or scripted,
    where no Python mode sees the calls, gives an empty count.

    Args:
        model: the model (its root's forward counts as one of its modules).
        covered: the names of the modules the map reads.

    Examples:
        >>> class Hyper(nn.Module):  # the main layer's weights made by a module, applied with F.linear
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.make = nn.Linear(1, 6)
        ...     def forward(self, x):
        ...         return F.linear(x, self.make(torch.ones(1)).view(2, 3))
        >>> with functional_layer_calls(Hyper(), ["make"]) as calls:
        ...     _ = Hyper()(torch.ones(4, 3))  # another instance: nothing of this model ran
        >>> model = Hyper()
        >>> with functional_layer_calls(model, ["make"]) as calls:
        ...     _ = model(torch.ones(4, 3))
        >>> dict(calls)
        {'F.linear in Hyper.forward': 1}
    """
    found: Counter = Counter()
    covered = set(covered) | set(leaf_layers(model))  # a layer left out of the map (another output's head) is a layer
    # per running module: its class where its functional calls count; None in a layer read (down to its end); "" for one
    # of torch's own, whose own calls are its business but whose modules of yours are yours (an nn.Sequential's)
    running: list[str | None] = []
    handles = []

    def enter(kind: str | None):  # noqa: ANN202
        def pre(_module: nn.Module, _args: object) -> None:
            running.append(None if kind is None or (running and running[-1] is None) else kind)
        return pre

    def leave(_module: nn.Module, _args: object, _out: object) -> None:
        if running:
            running.pop()

    compiled = any(type(m).__name__ == "OptimizedModule" or isinstance(m, torch.jit.ScriptModule) for m in model.modules())
    if compiled:
        yield found
        return
    for name, module in model.named_modules():
        kind = None if name in covered else "" if _of_torch(module) else type(module).__name__
        handles.append(module.register_forward_pre_hook(enter(kind)))
        handles.append(module.register_forward_hook(leave, always_call=True))
    try:
        with _Watch(running, found):
            yield found
    finally:
        for handle in handles:
            handle.remove()


def functional_layers_note(calls: Counter) -> str:
    """The layer map's warning for the functional layers :func:`functional_layer_calls` counted (``""``: none).

    Examples:
        >>> print(functional_layers_note(Counter({"F.conv2d in DynamicFilter.forward": 1}))[:80])
        The layer map reads modules only, and the model computes layers in functional co
    """
    if not calls:
        return ""
    shown = ", ".join(f"{k} ({c} call{'s' if c > 1 else ''} per pass)" for k, c in list(calls.items())[:6])
    return (f"The layer map reads modules only, and the model computes layers in functional code outside them: {shown}. "
            "Their outputs are in no layer of the map, which shows the modules around them only (a hypernetwork's or "
            "dynamic filter's generator, not the layer its weights run in): give each such layer's output a module of "
            "its own, an nn.Identity (self.hidden = nn.Identity() in __init__, h = self.hidden(F.conv2d(x, w)) in "
            "forward), and name it with `layers=` (docs/your_model.md, 'Layers in functional code')")
