"""Sites: the module a name resolves to (``resolve_module``: unknown names with close matches; sites
inside weight parametrizations, TorchScript modules or meta-device skeletons refused), and the tensor
a module returns read and replaced (``module_output``, ``replace_output``: a tuple's element 0, a
Hugging Face ``ModelOutput``'s first field).

A *site* is a module path from ``model.named_modules()``, or ``"<module>:input"`` for the module's
first positional input (:mod:`~lightning_causal.causal.engine.input_sites`).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping, Sequence
from itertools import chain

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from lightning_causal.causal.engine.chosen_input import model_name
from lightning_causal.causal.engine.eager import named_modules, user_name
from lightning_causal.causal.engine.forward import check_not_meta
from lightning_causal.causal.engine.input_sites import SUFFIX, attached_site, input_parent
from lightning_causal.causal.engine.live_values import rebuild
from lightning_causal.causal.engine.unit_sites import (
    PACKED_HINT,
    first_tensor,
    functional_layer_hint,
    holds_tensors_only,
    is_model_output,
    returns_packed,
    scalar_parameter_hint,
)

__all__ = ["graph_calls", "module_output", "replace_output", "resolve_module", "resolve_modules"]


def resolve_module(model: nn.Module, name: str) -> nn.Module:
    """Return the submodule called ``name``; unknown names raise ``ValueError`` with close matches.

    A module inside a layer's weight parametrizations (``"2.parametrizations.weight"`` of a
    ``weight_norm``-ed layer ``"2"``: it computes the weight, not activations) and the name of a
    parameter or buffer (``"2.weight_orig"`` of a pruned layer) raise a ``ValueError`` naming the layer.

    Args:
        model: the model.
        name: the module's name as ``model.named_modules()`` gives it (a compiled model's ``_orig_mod``
            components may be given or left out), or ``"<module>:input"`` for a module's first input attached
            by :func:`~lightning_causal.causal.engine.input_sites.input_sites`.

    Examples:
        >>> m = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
        >>> resolve_module(m, "0")
        Linear(in_features=2, out_features=3, bias=True)
    """
    return _resolve(model, name, None)


def resolve_modules(model: nn.Module, names: Sequence[str]) -> dict[str, nn.Module]:
    """:func:`resolve_module` of each name (name -> module, in order), with the same checks and errors, the model's
    modules listed and looked at once for all of them (``capture`` of the 134 layers of a deep CNN's layer map listed
    the modules 134 times per pass: a tenth of the map's time).

    Args:
        model: the model.
        names: module names, as :func:`resolve_module` takes them.

    Examples:
        >>> m = nn.Sequential(nn.Linear(2, 3), nn.ReLU())
        >>> list(resolve_modules(m, ["1", "0"]).values())
        [ReLU(), Linear(in_features=2, out_features=3, bias=True)]
    """
    listed = _Listed(model)
    return {name: _resolve(model, name, listed) for name in names}


class _Listed:
    """A model's modules (:func:`~lightning_causal.causal.engine.eager.named_modules`) and whether any holds a tensor on
    the meta device, found once for several names."""

    def __init__(self, model: nn.Module) -> None:
        self.modules = named_modules(model)
        self.meta = _holds_meta(self.modules)


def _resolve(model: nn.Module, name: str, listed: _Listed | None) -> nn.Module:
    """:func:`resolve_module`, from the model's ``listed`` modules where given (else listed now)."""
    if not isinstance(name, str):
        names = [n for n in named_modules(model) if n][:5]
        raise TypeError(f"Expected a layer given as one module name (str), e.g. one of {names}, but got "
                        f"{type(name).__name__} {name!r:.80}")
    parent = input_parent(name)
    if parent is not None:  # "<module>:input": the module's input, attached by `input_sites`
        return attached_site(_resolve(model, parent, listed), name)
    modules = named_modules(model) if listed is None else listed.modules
    name = user_name(name)
    layer = _parametrized_layer(modules, name)
    if layer is not None:  # a module of a weight parametrization (or its parameter): it computes a weight, not activations
        raise ValueError(
            f"Expected a layer's name but {name!r} lies in the weight parametrizations of module {layer!r} "
            "(torch.nn.utils.parametrize: weight_norm, spectral_norm, register_parametrization), which compute that "
            f"layer's weight when it is read, not an activation of the samples; name the layer {layer!r} for its output "
            f"(or {layer + SUFFIX!r} for its input)")
    if name not in modules:
        owner, _, attr = name.rpartition(".")
        if isinstance(getattr(modules.get(owner), attr, None), Tensor):  # a parameter or buffer ("2.weight_orig")
            holder = modules[owner]
            if not owner or holds_tensors_only(holder):  # the model's own weights, an nn.ParameterList's: functional code
                held = "the model itself" if not owner else f"the {type(holder).__name__} {owner!r} (no forward: it never runs)"
                if getattr(holder, attr).numel() == 1:  # a learnable temperature (CLIP's logit_scale): no layer, one number
                    raise ValueError(f"Expected a module name but {name!r} is one number held by {held}: "
                                     + scalar_parameter_hint(name))
                raise ValueError(f"Expected a module name but {name!r} is a tensor held by {held}, which the model reads "
                                 "in functional code: " + functional_layer_hint())
            raise ValueError(f"Expected a module name but {name!r} is a tensor ({attr!r}) of module {owner!r}; name the "
                             f"module {owner!r} for its output (or {owner + SUFFIX!r} for its input)")
        names = [n for n in modules if n and _parametrized_layer(modules, n) is None]
        nested = [n for n in names if n.endswith("." + name)]
        if nested:  # a layer's path inside a submodule: a wrapper's (Fabric's `setup`, DDP) or a LightningModule's
            raise ValueError(f"Unknown module name {name!r} in model {model_name(model)}; {_nested_hint(model, name, nested)}")
        listed = _listed_name(model, modules, name)
        if listed is not None:  # a module registered under two names (tied embeddings): named_modules() lists one
            raise ValueError(f"{name!r} is the module {listed!r} of model {model_name(model)}, registered under two names "
                             f"(e.g. tied embeddings) and listed once, as {listed!r} (named_modules()): name {listed!r}, whose hooks "
                             "act at each of its calls (an encoder's and a decoder's for a shared embedding)")
        close = difflib.get_close_matches(name, names, n=5, cutoff=0.4)
        hint = f"close matches: {close}" if close else f"available: {names[:20]}"
        # every weight held by the model itself or an nn.ParameterList, none by a layer that runs: the hidden layers are
        # computed in functional code, and the one the user means has no module
        holders = [n for n, m in modules.items() if any(True for _ in m.parameters(recurse=False))]
        if holders and all(not n or holds_tensors_only(modules[n]) for n in holders):
            held = " and ".join(["its own parameters" if not n else repr(n) for n in holders][:3])
            hint += f". The model reads {held} in functional code: " + functional_layer_hint()
        elif not close and _own_forward(modules):  # e.g. a hypernetwork's target layer, an einsum of generated weights
            hint += (f". If {name!r} is a tensor that a forward of yours computes itself (torch.einsum or bmm with "
                     "per-sample weights a hypernetwork made, F.linear, F.relu): " + functional_layer_hint())
        raise ValueError(f"Unknown module name {name!r} in model {model_name(model)}; {hint}")
    _check_eager(model, modules, name)
    _check_not_meta_site(model, modules, name, None if listed is None else listed.meta)
    return modules[name]


def _own_forward(modules: Mapping[str, nn.Module]) -> bool:
    """Whether one of ``modules`` runs a ``forward`` of the user's (its class from no package of torch's or Lightning's):
    code that may compute a layer no module returns. An ``nn.Sequential`` of torch's layers has none."""
    return any(type(m).forward is not nn.Module.forward
               and type(m).__module__.partition(".")[0] not in ("torch", "lightning", "pytorch_lightning")
               for m in modules.values())


def _listed_name(model: nn.Module, modules: dict[str, nn.Module], name: str) -> str | None:
    """The name under which ``modules`` lists the module that ``name`` reaches by attribute, if another."""
    try:
        module = model.get_submodule(name)
    except AttributeError:
        return None
    return next((listed for listed, m in modules.items() if m is module and listed != name), None)


def _nested_hint(model: nn.Module, name: str, nested: list[str]) -> str:
    """The hint for ``name``, a path that exists inside a submodule of ``model`` (``nested``: the full
    names ending with it): the full name, or the wrapped module (``model.module`` of Lightning Fabric's
    ``_FabricModule``, DDP and DataParallel) where ``name`` is a path of that module."""
    inner = getattr(model, "module", None)
    if isinstance(inner, nn.Module) and inner is not model and name in named_modules(inner):
        where = "the module it wraps, `model.module`"
    else:
        where = f"the submodule {nested[0][: -len(name) - 1]!r} itself"
    shown = ", ".join(repr(n) for n in nested[:3])
    return (f"{name!r} names a layer inside a submodule: {shown}. Names are paths from the model passed: pass the full "
            f"name, or pass {where} (Lightning Fabric's `fabric.setup(model)`, DDP and DataParallel put every layer of "
            "your model under their own attribute)")


def _holds_meta(modules: Mapping[str, nn.Module]) -> bool:
    """Whether any of ``modules`` holds a parameter or buffer of its own on the meta device."""
    return any(isinstance(t, Tensor) and t.is_meta for m in modules.values() for t in chain(m._parameters.values(), m._buffers.values()))


def _check_not_meta_site(model: nn.Module, modules: Mapping[str, nn.Module], name: str, meta: bool | None = None) -> None:
    """Refuse a layer that is, or lies inside, a module whose weights are all on the ``meta`` device: in
    a model that runs, such a module is the skeleton that ``torch.func.functional_call`` runs with other
    weights (the model-ensembling recipe: ``stack_module_state`` and ``vmap``), where hooks see vmapped
    tensors (a container holding it beside real layers is no skeleton: its other layers are sites); a
    model that is meta throughout gets :func:`~lightning_causal.causal.engine.forward.check_not_meta`'s message."""
    # one look at each module's own tensors (a buffer a torch.fx trace left as a Proxy is none): a model without
    # meta ones, nearly every one, has no such module (``meta``: that look taken already)
    if not (_holds_meta(modules) if meta is None else meta):
        return
    parts = name.split(".") if name else []
    for path in (".".join(parts[: i + 1]) for i in range(len(parts))):
        module = modules.get(path)
        tensors = [] if module is None else [t for t in chain(module.parameters(), module.buffers()) if isinstance(t, Tensor)]
        if not tensors or not all(t.is_meta for t in tensors):
            continue
        if all(t.is_meta for t in (*model.parameters(), *model.buffers())):
            check_not_meta(model)
        raise ValueError(
            f"Expected layer {name!r} to run with weights of its own, but module {path!r} holds its weights on the meta "
            "device (shapes without data): it runs only through torch.func.functional_call with other weights (under "
            "vmap for an ensemble), where hooks cannot intervene per sample. Name a site outside it (the input of the "
            "module that reads its result, '<module>:input'), or materialise it (`to_empty` then `load_state_dict`)")


def _check_eager(model: nn.Module, modules: Mapping[str, nn.Module], name: str) -> None:
    """Refuse a layer that is, or lies inside, a TorchScript module (``torch.jit.script``/``trace``):
    its submodules run inside the compiled graph, where forward hooks can neither see nor replace their
    outputs (a scripted module refuses hooks; a traced one never calls them); and one inside a
    ``torch.fx.GraphModule`` whose graph does not call it (``torch.export``'s ``ExportedProgram.module()``
    keeps the layers as holders of weights that its aten operations read; ``torch.fx.symbolic_trace``'s
    graphs call their leaf modules, which take hooks)."""
    parts = name.split(".") if name else []
    for path in ["", *(".".join(parts[: i + 1]) for i in range(len(parts)))]:
        module = model if not path else modules.get(path)
        if isinstance(module, torch.jit.ScriptModule):
            where = "the model" if not path else f"module {path!r}"
            raise ValueError(
                f"Expected layer {name!r} in an eager nn.Module, but {where} is a TorchScript module "
                f"({type(module).__name__}, made by torch.jit.script or torch.jit.trace): its submodules run inside the "
                "compiled graph, where forward hooks cannot see or replace their outputs. Pass the eager module you "
                "scripted or traced (input-level methods such as input_effects accept TorchScript models)")
        if isinstance(module, torch.fx.GraphModule) and path != name and not graph_calls(module, name[len(path) + 1 if path else 0:]):
            where = "the model" if not path else f"module {path!r}"
            raise ValueError(
                f"Expected layer {name!r} to be called by the forward pass, but {where} is a torch.fx GraphModule "
                f"({type(module).__name__}; torch.export's ExportedProgram.module() is one) whose graph never calls it: "
                "the graph runs the layer's operations on its weights directly, so forward hooks on it never run. Pass "
                "the eager module you exported (input-level methods such as input_effects accept exported models)")


def graph_calls(graph_module: torch.fx.GraphModule, name: str) -> bool:
    """Whether the graph of ``graph_module`` calls the submodule ``name`` (a path inside it), or a module that
    holds it (an eager module runs its own submodules).

    Args:
        graph_module: an ``fx`` graph module (``torch.export``'s ``ExportedProgram.module()``, ``symbolic_trace``).
        name: a submodule's path inside ``graph_module`` (``"encoder.0.linear"``).
    """
    return any(node.op == "call_module" and (name == node.target or name.startswith(f"{node.target}."))
               for node in graph_module.graph.nodes)


def _parametrized_layer(modules: Mapping[str, nn.Module], name: str) -> str | None:
    """The layer in whose ``parametrizations`` (``torch.nn.utils.parametrize``) ``name`` lies
    (``"2"`` for ``"2.parametrizations.weight"`` or ``"2.parametrizations.weight.original0"``), else ``None``."""
    parts = name.split(".")
    for i, part in enumerate(parts):
        layer = ".".join(parts[:i])
        if part == "parametrizations" and layer in modules and parametrize.is_parametrized(modules[layer]):
            return layer
    return None


NESTED_HINT = ("torch's `nn.TransformerEncoder` runs its layers on nested tensors (its fast path, taken in eval mode "
               "with `src_key_padding_mask`), which hold no rows to read or intervene on; build it with "
               "`nn.TransformerEncoder(layer, num_layers, enable_nested_tensor=False)` (the same outputs), or name the "
               "encoder itself")
"""The way out where a layer returns a nested tensor (:func:`module_output`)."""


def module_output(output: object, name: str = "module") -> Tensor:
    """The tensor a module returns: the output itself, or element 0 of a tuple or list (Hugging Face
    attention and transformer blocks return ``(hidden, attention weights, ...)``).

    Args:
        output: what the module returned: a tensor, a tuple or list whose element 0 is one, or a Hugging
            Face ``ModelOutput`` whose first field is one.
        name: the module's name, for the error message.

    Examples:
        >>> module_output((torch.ones(1), None))
        tensor([1.])
    """
    tensor = first_tensor(output)
    if tensor is not None and tensor.is_nested:
        raise TypeError(f"Expected module {name!r} to return a tensor of one row per sample but got a nested tensor: {NESTED_HINT}")
    if tensor is not None:
        return tensor
    got = type(output).__name__
    if isinstance(output, (tuple, list)) and not hasattr(output, "_fields"):
        got += f" ({', '.join(type(v).__name__ for v in output[:4])}{', ...' if len(output) > 4 else ''})"
    hint = f": {PACKED_HINT}" if returns_packed(output) else ""
    raise TypeError(f"Expected module {name!r} to return a tensor, a tuple whose element 0 is a tensor or a Hugging Face "
                    f"ModelOutput whose first field is one but got {got}{hint}")


def replace_output(output: object, value: Tensor) -> object:
    """``output`` with its tensor (itself, or element 0 of a tuple/list) replaced by a copy of
    ``value``: the model may write to it in place (``ReLU(inplace=True)``), which must reach neither
    a broadcast value (an error) nor a tensor the caller reuses (a silent change).

    Args:
        output: what the module returned (as in :func:`module_output`).
        value: the new tensor (copied).
    """
    value = value.clone()
    if isinstance(output, Tensor):
        return value
    if is_model_output(output):  # a Hugging Face ModelOutput: its first field replaced, in a copy
        fields = dict(output)
        fields[next(iter(fields))] = value
        return type(output)(**fields)
    return rebuild(output, (value, *output[1:])) if isinstance(output, tuple) else [value, *output[1:]]
