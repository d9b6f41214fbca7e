"""The layers a layer causal map reads when none are named: the chain of repeated blocks (the
residual stream of a transformer, the blocks of a ResNet) when the model has one, else every leaf
module with parameters.

The layer map assumes its layers run one after another. The leaves of a transformer block do not:
the query, key and value projections (and a ResNet's projection shortcut) run side by side, and a
map over them draws parallel branches as a chain. The blocks themselves do form a chain — each
block's input is the previous block's output — so they are the default where they can be found.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.utils import parametrize

from lightning_causal.causal.engine.eager import named_modules
from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.module_sites import graph_calls
from lightning_causal.causal.engine.state import is_fake_quant
from lightning_causal.causal.engine.unit_sites import first_tensor
from lightning_causal.causal.engine.user_frame import outside_package
from lightning_causal.causal.structure.output_path import unread_layers

__all__ = ["NO_TENSOR", "block_candidates", "default_layer_choice", "default_layers", "leaf_layers"]

#: why a default layer whose output holds no tensor left the layer map (its ``meta["left_out"]`` entry)
NO_TENSOR = ("it returns no tensor of the samples' rows (a recurrent layer run on a PackedSequence returns "
             "(PackedSequence, h_n)): name modules that read them as tensors with `layers=`")


def _parametrization_modules(model: nn.Module) -> set[int]:
    """Ids of the modules that hold weight parametrizations (``torch.nn.utils.parametrize``: the
    ``parametrizations`` of a ``weight_norm``/``spectral_norm``-ed layer and everything in them):
    they compute a weight when it is read, not a layer's output."""
    return {id(m) for layer in model.modules() if parametrize.is_parametrized(layer)
            for m in layer.parametrizations.modules()}


def _qat_parts(model: nn.Module) -> set[int]:
    """Ids of the quantization-aware parts of ``model`` that are no layers: its fake-quant modules and their observers
    (``weight_fake_quant``, ``activation_post_process``; a learnable one, ``_LearnableFakeQuantize``, holds its scale
    and zero point as parameters), and the submodules of torch's fused quantization-aware layers (``fuse_modules_qat``
    + ``prepare_qat``: ``torch.ao.nn.intrinsic.qat``'s ``ConvBnReLU2d``, ``ConvBn2d``, ``LinearBn1d``, ...): such a
    layer folds its ``bn`` into the convolution's weight and applies the ReLU and the activation's fake quantization in
    its own forward, so its ``bn`` is a part of it, not the layer the next one reads."""
    return {id(d) for m in model.modules()
            if is_fake_quant(m) or type(m).__module__.startswith("torch.ao.nn.intrinsic.qat")
            for d in m.modules() if d is not m or is_fake_quant(m)}


def _adapters(model: nn.Module) -> list[nn.Module]:
    """The adapter-wrapped layers of ``model``, each one layer whose parts are no layers: a module with a ``base_layer`` submodule
    (PEFT's convention for LoRA, IA3, DoRA, ...: ``base_layer`` the frozen layer, ``lora_A``/``lora_B``
    the adapter beside it) computes ``base_layer(x) + B(A(x))`` from one input, so its parts run side
    by side, not one after another: the wrapper is the layer, its output the one the model uses. So is
    an adapter written by hand in another layout (:func:`_is_frozen_wrapper`), below the model itself."""
    return [m for m in model.modules() if _is_adapter(m) or (m is not model and _is_frozen_wrapper(m))]


def _is_adapter(module: nn.Module) -> bool:
    """A PEFT tuner layer (a ``BaseTunerLayer``), or a module with ``base_layer``, ``lora_A`` and
    ``lora_B`` (the same layout written by hand)."""
    if not isinstance(getattr(module, "base_layer", None), nn.Module):
        return False
    return any(c.__name__ == "BaseTunerLayer" for c in type(module).__mro__) or (
        isinstance(getattr(module, "lora_A", None), nn.Module) and isinstance(getattr(module, "lora_B", None), nn.Module))


def _is_frozen_wrapper(module: nn.Module) -> bool:
    """A hand-written adapter in any names: a module of the user's own class around one frozen layer (a child
    that owns parameters, none of which requires grad, and no submodule that owns any) whose trainable
    parameters are its own (``self.A = nn.Parameter(...)``, lit-gpt's ``LoRALinear``) or those of other children
    of the user's own class that hold no layer inside (``self.lora = LoRALayer(...)``), or torch layers named for
    LoRA (``self.lora_down``, ``self.lora_up``: convolutions of kohya's layout). Such a module adds its
    parameters' term to the frozen layer's output, so its output, not the frozen layer's, is what the model
    reads. A block of torch's layers with the first one frozen (partial fine-tuning) is no such wrapper."""
    if _is_torch_class(module):
        return False
    owning = [(name, c) for name, c in module.named_children() if any(True for _ in c.parameters())]
    frozen = [c for _, c in owning if not any(p.requires_grad for p in c.parameters())]
    if len(frozen) != 1 or any(any(True for _ in d.parameters(recurse=False)) for d in frozen[0].modules() if d is not frozen[0]):
        return False
    parts = [(name, c) for name, c in owning if c is not frozen[0]]
    own = list(module.parameters(recurse=False))
    return bool(own or parts) and all(p.requires_grad for p in own) and all(
        (not _is_torch_class(c) or "lora" in name.lower()) and all(p.requires_grad for p in c.parameters())
        and not any(any(True for _ in d.parameters(recurse=False)) for d in c.modules() if d is not c) for name, c in parts)


def _is_torch_class(module: nn.Module) -> bool:
    """Whether ``module`` is one of torch's own modules (``nn.Linear``, ``nn.Sequential``, ...)."""
    return type(module).__module__.split(".")[0] == "torch"


def leaf_layers(model: nn.Module) -> list[str]:
    """Leaf modules that own parameters (convolutions, linear layers, normalisations), by name.

    A layer is a module that owns parameters none of whose submodules does: its submodules are
    then auxiliary, not layers. A layer with parametrized weights (``torch.nn.utils.parametrizations.weight_norm``,
    ``spectral_norm``, ``parametrize.register_parametrization``) owns them (its ``parametrizations``
    compute its weight and are not layers), and so does a quantization-aware layer (``prepare_qat``:
    its ``weight_fake_quant`` and ``activation_post_process`` are no layers, also where a learnable fake quant holds its scale as a parameter; a fused one, ``fuse_modules_qat``'s
    ``ConvBnReLU2d``, holds its ``bn`` as a part: the layer is the fused module, whose output the next one reads). A layer wrapped by
    an adapter (PEFT's LoRA: a module with a ``base_layer`` beside ``lora_A``/``lora_B``; or written by
    hand in other names: a module of your class around one frozen layer, with trainable parameters of its
    own, in a child of your class that holds no layer, or in layers named ``lora...``) is one layer, the wrapper:
    its parts run side by
    side on the same input, and the wrapper's output is what the next layer reads. A TorchScript submodule of an eager model (``torch.jit.script``/``trace``:
    a scripted backbone) and what it holds are no layers: they run compiled, where hooks cannot reach; nor are the
    modules of a ``torch.export``'ed submodule that its graph does not call (holders of the weights it reads).
    A module whose weights are on the ``meta`` device in a model that also holds real ones is the skeleton
    ``torch.func.functional_call`` runs with stacked weights (the model-ensembling recipe): no layer.

    Args:
        model: the model.

    Examples:
        >>> leaf_layers(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)))
        ['0', '2']
        >>> model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.utils.parametrizations.weight_norm(nn.Linear(3, 1)))
        >>> leaf_layers(model)
        ['0', '2']
    """
    adapters = _adapters(model)  # once: the frozen-wrapper test walks each module's subtree
    hidden = _parametrization_modules(model) | _qat_parts(model) | {id(d) for a in adapters for d in a.modules() if d is not a}
    wrappers = {id(a) for a in adapters}
    scripted = isinstance(model, torch.jit.ScriptModule)  # all of it: its layers, which the estimators refuse, naming why
    uncalled = _uncalled_in_graphs(model)  # a torch.export'ed submodule's weight holders, which its graph never calls
    owns = {id(m) for m in model.modules()
            if id(m) not in hidden and (any(True for _ in m.parameters(recurse=False)) or parametrize.is_parametrized(m)
                                        or id(m) in wrappers)}
    # a module with meta weights in a model that runs is a functional_call skeleton (an ensemble's, under vmap): no layer
    # (each module's own tensors first, once: a model without meta ones, nearly every one, walks no subtree)
    own_meta = any(isinstance(t, Tensor) and t.is_meta for m in model.modules() for t in (*m._parameters.values(), *m._buffers.values()))
    meta = {id(m) for m in model.modules() if any(t.is_meta for t in (*m.parameters(), *m.buffers()))} if own_meta else set()
    everything_meta = meta and all(t.is_meta for t in (*model.parameters(), *model.buffers()))  # refused by name later
    return [name for name, m in named_modules(model).items()
            if name and id(m) in owns and not any(id(d) in owns for d in m.modules() if d is not m)
            and (scripted or not isinstance(m, torch.jit.ScriptModule)) and (everything_meta or id(m) not in meta)
            and id(m) not in uncalled]


def _uncalled_in_graphs(model: nn.Module) -> set[int]:
    """The modules inside a ``torch.fx.GraphModule`` of ``model`` (not ``model`` itself, whose layers the estimators
    refuse naming why) that its graph does not call: ``torch.export``'s ``ExportedProgram.module()`` keeps the eager
    layers as holders of the weights its operations read, where no hook runs."""
    out: set[int] = set()
    for name, graph_module in named_modules(model).items():
        if not name or not isinstance(graph_module, torch.fx.GraphModule):
            continue
        out |= {id(m) for sub, m in graph_module.named_modules() if sub and not graph_calls(graph_module, sub)}
    return out


def block_candidates(model: nn.Module, *, all_sizes: bool = False) -> list[list[str]]:
    """Lists of repeated blocks that may form the model's chain, most promising first.

    A *block* is a child of an ``nn.ModuleList`` or ``nn.Sequential`` whose children are all of one
    class, holding at least two leaf modules with parameters (a block of layers, not a single
    layer: the leaves of a plain MLP or CNN already form its chain). Candidates: the blocks of one
    container (at least two), and the blocks of one class (not a plain container class) across
    containers (a ResNet's stages ``layer1`` ... ``layer4``); each must hold more than half of the
    model's leaf modules with parameters. Ordered by the leaves they hold, then by their number
    (an outer list of stages before the blocks of one stage). ``all_sizes=True`` keeps the lists that
    hold fewer leaves too (an encoder-decoder's smaller stack).

    Args:
        model: the model.
        all_sizes: keep the lists that hold fewer leaves too, as above.

    Examples:
        >>> block = lambda: nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
        >>> model = nn.Sequential(nn.Linear(2, 4), nn.Sequential(block(), block(), block()), nn.Linear(4, 1))
        >>> block_candidates(model)
        [['1.0', '1.1', '1.2']]
    """
    modules = named_modules(model)
    leaves = leaf_layers(model)
    held = lambda block: sum(1 for leaf in leaves if leaf.startswith(block + "."))  # noqa: E731
    lists = []
    for name, container in modules.items():
        if not isinstance(container, (nn.ModuleList, nn.Sequential)) or not len(container):
            continue
        children = [f"{name}.{child}" if name else child for child, _ in container.named_children()]
        if any(c not in modules for c in children) or len({type(modules[c]) for c in children}) != 1:
            continue
        if all(held(c) >= 2 for c in children):
            lists.append(children)
    by_class: dict[type, list[str]] = {}
    for children in lists:
        kind = type(modules[children[0]])
        if not issubclass(kind, (nn.ModuleList, nn.Sequential, nn.ModuleDict)):
            by_class.setdefault(kind, []).extend(children)
    found = {tuple(c) for c in lists if len(c) >= 2} | {tuple(c) for c in by_class.values() if len(c) >= 2}
    found = [(sum(held(b) for b in c), len(c), list(c)) for c in found]
    return [c for total, _, c in sorted(found, key=lambda f: (-f[0], -f[1], f[2])) if all_sizes or 2 * total > len(leaves)]


def _takes(args: tuple, kwargs: dict, prev: Tensor | None) -> bool:
    """Whether one of the tensor arguments (positional or keyword: ``layer(hidden_states=h, ...)``)
    is or equals ``prev``."""
    return prev is not None and any(isinstance(v, Tensor) and (v is prev or (v.shape == prev.shape and bool(torch.equal(v, prev))))
                                    for v in (*args, *kwargs.values()))


@dataclass
class _Chain:
    """The run of one candidate so far: the next block expected, the last block's output (a
    reference, not a copy), and whether it still runs as a chain."""

    blocks: list[str]
    next: int = 0
    last: Tensor | None = None
    ok: bool = True


def default_layers(forward: Forward, xs: tuple[Tensor, ...]) -> list[str]:
    """The default layers of :func:`~lightning_causal.causal.structure.layer_map.layer_causal_map`.

    The first of :func:`block_candidates` whose blocks run as a chain on the probe (one forward
    pass, hooks removed after it: the blocks run once each, in order, each returns one row per
    sample, and each takes the previous block's output, element 0 of a tuple, as one of its
    tensor arguments) — the residual stream of a ViT, BERT, Llama or ``nn.TransformerEncoder``,
    the blocks of a ResNet. Otherwise (plain CNNs and MLPs; parallel branches or experts, whose
    inputs are not each other's outputs) every leaf module with parameters, :func:`leaf_layers`,
    that the explained output reads (:func:`~lightning_causal.causal.structure.output_path.off_output_path`:
    the heads of a multi-head model's other outputs are left out). Call inside ``audit_mode``.

    Args:
        forward: the model's prepared :class:`~lightning_causal.causal.engine.forward.Forward`
            (``output=`` says which output is explained).
        xs: the probe inputs ``[N, ...]``.

    Examples:
        >>> class Block(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.a, self.b = nn.Linear(4, 4), nn.Linear(4, 4)
        ...     def forward(self, h):
        ...         return h + self.b(self.a(h))
        >>> model = nn.Sequential(nn.Linear(2, 4), nn.Sequential(Block(), Block()), nn.Linear(4, 1))
        >>> with torch.no_grad():
        ...     default_layers(Forward(model), (torch.randn(3, 2),))
        ['1.0', '1.1']
    """
    return default_layer_choice(forward, xs)[0]


def default_layer_choice(forward: Forward, xs: tuple[Tensor, ...]) -> tuple[list[str], dict[str, str]]:
    """:func:`default_layers`, and the leaf layers it leaves out because the explained output does not
    read them, each with why (:func:`~lightning_causal.causal.structure.output_path.unread_layers`:
    another output's head, or a layer nothing of which reaches the output on the probe, such as one
    before a ReLU that no probe sample activates). Empty where the blocks are taken. Call inside ``audit_mode``.

    Args:
        forward: the model's prepared :class:`~lightning_causal.causal.engine.forward.Forward`
            (``output=`` says which output is explained).
        xs: the probe inputs ``[N, ...]``.

    Examples:
        >>> model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> _ = nn.init.constant_(model[2].bias, -100.0)  # no unit of the second ReLU is active: nothing of layer 0 passes
        >>> with torch.no_grad():
        ...     layers, left_out = default_layer_choice(Forward(model), (torch.randn(5, 3),))
        >>> layers, list(left_out)
        (['2', '4'], ['0'])
    """
    model = forward.model
    candidates = block_candidates(model)
    if not candidates:
        return _reaching_output(forward, xs, leaf_layers(model))
    chains = [_Chain(c) for c in candidates + [c for c in block_candidates(model, all_sizes=True) if c not in candidates]]
    modules, n = named_modules(model), xs[0].shape[0]
    member: dict[str, list[tuple[_Chain, int]]] = {}
    for chain in chains:
        for i, b in enumerate(chain.blocks):
            member.setdefault(b, []).append((chain, i))

    def pre_hook(name: str):
        def hook(_m: nn.Module, args: tuple, kwargs: dict) -> None:
            for chain, i in member[name]:
                chain.ok = chain.ok and chain.next == i and (i == 0 or _takes(args, kwargs, chain.last))
        return hook

    def post_hook(name: str):
        def hook(_m: nn.Module, _i: object, out: object) -> None:
            y = first_tensor(out)
            for chain, i in member[name]:
                chain.ok = chain.ok and y is not None and not y.is_nested and y.dim() > 0 and y.shape[0] == n
                chain.next, chain.last = i + 1, y
        return hook

    handles = []
    try:
        for b in member:
            handles.append(modules[b].register_forward_pre_hook(pre_hook(b), with_kwargs=True))
            handles.append(modules[b].register_forward_hook(post_hook(b)))
        forward(*xs)
    finally:
        for h in handles:
            h.remove()
    ran = [c.blocks for c in chains if c.ok and c.next == len(c.blocks)]
    if not ran or ran[0] not in candidates:
        return _reaching_output(forward, xs, leaf_layers(model))
    _warn_other_stacks(ran[0], ran[1:])
    return ran[0], {}


def _reaching_output(forward: Forward, xs: tuple[Tensor, ...], names: list[str]) -> tuple[list[str], dict[str, str]]:
    """``names`` without the layers the explained output does not read (:func:`unread_layers`), and
    those with why: the heads of a multi-head model's other outputs (``{"cls": ..., "reg": ...}``
    explained at ``"cls"``), which are no layers between its input and the explained output, and
    layers nothing of which reaches it on the probe (a dead ReLU after them); and without those whose output holds
    no tensor (:data:`NO_TENSOR`: an ``nn.GRU`` run on a ``PackedSequence``), with a warning."""
    untensored = dict.fromkeys(_tensorless(forward, xs, names), NO_TENSOR)
    if untensored:
        import warnings

        warnings.warn(f"The layer map leaves the layers {list(untensored)} out of its default layers: {NO_TENSOR}",
                      UserWarning, stacklevel=outside_package())
        names = [name for name in names if name not in untensored]
    off = unread_layers(forward, xs, names) if len(names) > 1 else {}
    return [name for name in names if name not in off], {**untensored, **off}


def _tensorless(forward: Forward, xs: tuple[Tensor, ...], names: list[str]) -> list[str]:
    """The modules among ``names`` whose output holds no tensor (:func:`first_tensor` finds none: a recurrent layer's
    ``(PackedSequence, h_n)``) on a pass of the first probe row, in forward order; hooks removed after it."""
    modules = named_modules(forward.model)
    found: dict[str, None] = {}

    def hook(name: str):
        def record(_m: nn.Module, _i: object, out: object) -> None:
            if first_tensor(out) is None:
                found[name] = None
        return record

    handles = [modules[name].register_forward_hook(hook(name)) for name in names
               if not isinstance(modules[name], torch.jit.ScriptModule)]
    try:
        forward(*(x[:1] for x in xs), rows=torch.arange(1, device=xs[0].device))
    except Exception:  # noqa: BLE001 - a check only: the map's own passes report the model's errors
        pass
    finally:
        for handle in handles:
            handle.remove()
    return list(found)


def _warn_other_stacks(chosen: list[str], others: list[list[str]]) -> None:
    """Warn when blocks apart from ``chosen`` (none inside or around them) also ran as a chain: the
    other stack of an encoder-decoder (BART, T5: the decoder's blocks, with more leaves, are taken,
    the encoder's, where the tokens enter, left out)."""
    def apart(a: str, b: str) -> bool:
        return a != b and not a.startswith(b + ".") and not b.startswith(a + ".")

    left = [c for c in others if all(apart(a, b) for a in c for b in chosen)]
    if left:
        import warnings

        stacks = "; ".join(f"{c[0]!r} ... {c[-1]!r}" for c in left)
        warnings.warn(
            f"The layer map's default layers are the blocks {chosen[0]!r} ... {chosen[-1]!r}; the blocks {stacks} "
            "also run as a chain (e.g. the other stack of an encoder-decoder) and are left out: name `layers=` to map them "
            "(the blocks of both stacks, in forward order, for one map)", UserWarning, stacklevel=outside_package())
