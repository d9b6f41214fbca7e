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

__all__ = ["FUNCTIONAL", "OWN_WEIGHTS", "FunctionalCalls", "functional_layer_calls", "functional_layers_note"]

#: why a layer computed in functional code is in no layer of the map (its ``meta["left_out"]`` entry, keyed by the call:
#: ``"F.conv2d in DynamicFilter.forward"``), which the audit's notes and the map's figure say
FUNCTIONAL = "computed in functional code, the output of no module: pass it through an nn.Identity named with `layers=`"

#: why a module of yours that returns the output of a layer function it calls (a layer that applies its weights in
#: functional code: buffers, a child's weight it applies itself, a weight plus a task vector, an edit or a low-rank
#: update of its own parameters) is in no default layer (its ``meta["left_out"]`` entry, keyed by the module's name): the
#: default layers hold leaf modules with parameters only, and such a module holds none or holds other modules
OWN_WEIGHTS = ("a layer of yours that applies its weights in functional code (buffers, a child's weight, a weight plus a "
               "delta or a low-rank update), no leaf module with parameters: name it with `layers=`")

#: the functions that are layers (weights times the input): a call of one outside every module the map reads is a
#: layer the map cannot show; matmul/einsum/bmm are left out, as a hand-written attention multiplies activations with them
_LAYER_FUNCTIONS = {F.linear: "F.linear", F.bilinear: "F.bilinear", F.conv1d: "F.conv1d", F.conv2d: "F.conv2d",
                    F.conv3d: "F.conv3d", F.conv_transpose1d: "F.conv_transpose1d", F.conv_transpose2d: "F.conv_transpose2d",
                    F.conv_transpose3d: "F.conv_transpose3d"}


def _of_torch(module: nn.Module) -> bool:
    """A module of torch's own (``nn.MultiheadAttention`` calls ``F.linear`` with its ``out_proj``'s weight): its
    functional calls are its own business, the map reads it or its layers where it can."""
    return type(module).__module__.split(".")[0] == "torch"


class FunctionalCalls(Counter):
    """:func:`functional_layer_calls`' count (``"F.linear in DeltaLinear.forward" -> calls per pass``), with
    ``returned``: the modules whose forward returns the output of such a call, by name, each with its call's key (a layer
    of yours that applies its weights in functional code: name the module itself), ``rows``: the rows of each such
    module's output at its last call, where the map reads it (``None``: a scalar), ``order``: the modules read
    (``covered``) and those, in the order their calls completed, and ``dropped``: those :meth:`drop_not_of_rows` left
    out, with their outputs' rows."""

    def __init__(self, *args: object, **kwargs: object) -> None:
        super().__init__(*args, **kwargs)
        self.returned: dict[str, str] = {}
        self.rows: dict[str, int | None] = {}
        self.order: list[str] = []
        self.dropped: dict[str, int | None] = {}

    def update(self, other: object = None, /, **kwargs: object) -> None:  # noqa: D102 - Counter's, keeping the modules
        super().update(other, **kwargs)
        if isinstance(other, FunctionalCalls):
            self.returned.update(other.returned)
            self.rows.update(other.rows)
            self.order.extend(name for name in other.order if name not in self.order)

    def drop_not_of_rows(self, r: int) -> dict[str, int | None]:
        """Leave out the modules of ``returned`` whose output does not hold the pass's ``r`` rows (a hypernetwork's
        generator of yours run on one row, ``gen(self.z)``: no layer of the samples, which the map would refuse
        where named), from ``returned`` and ``order``, and their calls' keys from the count where no module kept
        returns them; returns those modules with their outputs' rows.

        Examples:
            >>> calls = FunctionalCalls({"F.linear in Delta.forward": 2})
            >>> calls.returned, calls.rows = {"gen": "F.linear in Delta.forward"}, {"gen": 1}
            >>> calls.order = ["gen", "head"]
            >>> calls.drop_not_of_rows(2), dict(calls), calls.order
            ({'gen': 1}, {}, ['head'])
        """
        dropped = {k: n for k, n in self.rows.items() if k in self.returned and n != r}
        gone = {self.returned.pop(k) for k in dropped}
        for key in gone - set(self.returned.values()):
            del self[key]
        self.order = [k for k in self.order if k not in dropped]
        self.dropped.update(dropped)
        return dropped


class _Watch(TorchFunctionMode):
    def __init__(self, running: list[str | None], made: list[list[tuple[object, str]]], found: Counter) -> None:
        super().__init__()
        self.running, self.made, self.found = running, made, found

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204 - torch's signature
        name = _LAYER_FUNCTIONS.get(func)
        out = func(*args, **(kwargs or {}))
        if name is not None and self.running and self.running[-1]:  # innermost module: one of yours, no layer, not torch's
            key = f"{name} in {self.running[-1]}.forward"
            self.found[key] += 1
            self.made[-1].append((out, key))  # the module returning it is that layer (its forward's frame, popped on leaving)
        return out


@contextlib.contextmanager
def functional_layer_calls(model: nn.Module, covered: Iterable[str]) -> Iterator[FunctionalCalls]:
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
        >>> dict(calls), calls.returned  # the root returns it: the model, no layer of it
        ({'F.linear in Hyper.forward': 1}, {})
    """
    found = FunctionalCalls()
    read = set(covered)  # the map's layers, placed in found.order with the modules that return a layer call's output
    covered = read | set(leaf_layers(model))  # a layer left out of the map (another output's head) is a layer
    # per running module: its class where its functional calls count; None in a layer read (down to its end); "" for one
    # of torch's own, whose own calls are its business but whose modules of yours are yours (an nn.Sequential's)
    running: list[str | None] = []
    made: list[list[tuple[object, str]]] = []  # per running module: the layer calls' outputs its forward made, with keys
    handles = []

    def enter(kind: str | None):  # noqa: ANN202
        def pre(_module: nn.Module, _args: object) -> None:
            running.append(None if kind is None or (running and running[-1] is None) else kind)
            made.append([])
        return pre

    def leave(name: str, kind: str | None):  # noqa: ANN202
        def post(_module: nn.Module, _args: object, out: object) -> None:
            if running:
                running.pop()
                mine = made.pop()
                key = next((k for t, k in mine if t is out), None) if name else None
                if key is not None and kind:  # a module of yours returning its layer call's output: that layer
                    found.returned.setdefault(name, key)
                if name in found.returned:  # its rows at its last call, where the map reads a module run several times
                    found.rows[name] = int(out.shape[0]) if isinstance(out, torch.Tensor) and out.dim() else None
                if (name in read or (key is not None and kind)) and name not in found.order:
                    found.order.append(name)
        return post

    compiled = any(type(m).__name__ == "OptimizedModule" or isinstance(m, torch.jit.ScriptModule) for m in model.modules())
    if compiled:
        yield found
        return
    for name, module in model.named_modules():
        kind = None if name in covered else "" if _of_torch(module) else type(module).__name__
        handles.append(module.register_forward_pre_hook(enter(kind)))
        handles.append(module.register_forward_hook(leave(name, kind), always_call=True))
    try:
        with _Watch(running, made, found):
            yield found
    finally:
        for handle in handles:
            handle.remove()


def functional_layers_note(calls: Counter) -> str:
    """The layer map's warning for the functional layers :func:`functional_layer_calls` counted (``""``: none). Calls
    whose output a module of yours returns (a :class:`FunctionalCalls`' ``returned``) are that module's: the note names
    the modules and the ``layers=`` that maps them with the default layers, in forward order; the others are the output
    of no module: the note names the ``nn.Identity`` way out.

    Examples:
        >>> print(functional_layers_note(Counter({"F.conv2d in DynamicFilter.forward": 1}))[:80])
        The layer map reads modules only, and the model computes layers in functional co
        >>> calls = FunctionalCalls({"F.linear in DeltaLinear.forward": 2})
        >>> calls.returned = {"0": "F.linear in DeltaLinear.forward", "2": "F.linear in DeltaLinear.forward"}
        >>> calls.order = ["0", "2", "4"]
        >>> print(functional_layers_note(calls)[-77:])
        Name them with the default layers, in forward order: `layers=['0', '2', '4']`
    """
    if not calls:
        return ""
    returned = getattr(calls, "returned", {})
    own = set(returned.values())

    def shown(keys: list[str]) -> str:
        return ", ".join(f"{k} ({calls[k]} call{'s' if calls[k] > 1 else ''} per pass)" for k in keys[:6])

    parts = []
    others = [k for k in calls if k not in own]
    if others:
        parts.append(f"The layer map reads modules only, and the model computes layers in functional code outside them: "
                     f"{shown(others)}. Their outputs are in no layer of the map, which shows the modules around them only "
                     "(a hypernetwork's or dynamic filter's generator, not the layer its weights run in): give each such "
                     "layer's output a module of its own, an nn.Identity (self.hidden = nn.Identity() in __init__, h = "
                     "self.hidden(F.conv2d(x, w)) in forward), and name it with `layers=` (docs/your_model.md, 'Layers in "
                     "functional code')")
    if own:
        names = list(returned)
        layers = list(getattr(calls, "order", [])) or names
        parts.append(("The layer map reads modules only, and the model" if not others else "The model also")
                     + f" computes layers in functional code: {shown([k for k in calls if k in own])}, whose outputs the "
                     f"modules {names[:6]}{' ...' if len(names) > 6 else ''} return: layers of yours that apply their "
                     "weights in functional code (buffers, a child's weight applied in forward, a weight plus a task "
                     "vector, an edit or a low-rank update), which the default layers, leaf modules with parameters, "
                     "leave out. Name them with the "
                     f"default layers, in forward order: `layers={layers!r}`")
    return ". ".join(parts)
