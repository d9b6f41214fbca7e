"""The layers a layer causal map reads when none are named: the chain of repeated blocks (the
residual stream of a transformer, the blocks of a ResNet) when the model has one, else every leaf
module with parameters.

The layer map assumes its layers run one after another. The leaves of a transformer block do not:
the query, key and value projections (and a ResNet's projection shortcut) run side by side, and a
map over them draws parallel branches as a chain. The blocks themselves do form a chain — each
block's input is the previous block's output — so they are the default where they can be found.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lightning_causal.causal.engine.eager import named_modules
from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.unit_sites import first_tensor

__all__ = ["block_candidates", "default_layers", "leaf_layers"]


def leaf_layers(model: nn.Module) -> list[str]:
    """Leaf modules that own parameters (convolutions, linear layers, normalisations), by name.

    Examples:
        >>> leaf_layers(nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 1)))
        ['0', '2']
    """
    return [name for name, m in named_modules(model).items()
            if name and not list(m.children()) and any(True for _ in m.parameters(recurse=False))]


def block_candidates(model: nn.Module) -> list[list[str]]:
    """Lists of repeated blocks that may form the model's chain, most promising first.

    A candidate is the children of an ``nn.ModuleList`` or ``nn.Sequential`` with at least two
    children, all of one class, each holding at least two leaf modules with parameters (a block of
    layers, not a single layer: the leaves of a plain MLP or CNN already form its chain), which
    together hold more than half of the model's leaf modules with parameters. Ordered by the
    number of leaves they hold (an outer list of stages before the blocks of one stage).

    Examples:
        >>> block = lambda: nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4))
        >>> model = nn.Sequential(nn.Linear(2, 4), nn.Sequential(block(), block(), block()), nn.Linear(4, 1))
        >>> block_candidates(model)
        [['1.0', '1.1', '1.2']]
    """
    modules = named_modules(model)
    leaves = leaf_layers(model)
    found = []
    for name, container in modules.items():
        if not isinstance(container, (nn.ModuleList, nn.Sequential)) or len(container) < 2:
            continue
        children = [f"{name}.{child}" if name else child for child, _ in container.named_children()]
        if len({type(modules.get(c)) for c in children}) != 1 or any(c not in modules for c in children):
            continue
        held = [sum(1 for leaf in leaves if leaf.startswith(c + ".")) for c in children]
        if min(held) >= 2 and 2 * sum(held) > len(leaves):
            found.append((sum(held), children))
    return [children for _, children in sorted(found, key=lambda f: -f[0])]


def _is_chain(blocks: list[str], calls: dict[str, list[tuple[bool, int]]], n: int) -> bool:
    """Every block ran once, on ``n`` rows, taking the previous block's output as its input."""
    if any(len(calls.get(b, ())) != 1 for b in blocks):
        return False
    return all(rows == n and (i == 0 or chained) for i, (chained, rows) in enumerate(calls[b][0] for b in blocks))


def _takes(args: tuple, kwargs: dict, prev: Tensor | None) -> bool:
    """Whether one of the tensor arguments (positional or keyword: ``layer(hidden_states=h, ...)``)
    equals ``prev``."""
    return prev is not None and any(isinstance(v, Tensor) and v.shape == prev.shape and bool(torch.equal(v, prev))
                                    for v in (*args, *kwargs.values()))


def default_layers(forward: Forward, xs: tuple[Tensor, ...]) -> list[str]:
    """The default layers of :func:`~lightning_causal.causal.structure.layer_map.layer_causal_map`.

    The first of :func:`block_candidates` whose blocks run as a chain on the probe (one forward
    pass, hooks removed after it: each block runs once, returns one row per sample, and takes the
    previous block's output, element 0 of a tuple, as one of its tensor arguments) — the residual stream of
    a ViT, BERT, Llama or ``nn.TransformerEncoder``, the blocks of a ResNet. Otherwise (plain CNNs
    and MLPs; parallel branches or experts, whose inputs are not each other's outputs) every leaf
    module with parameters, :func:`leaf_layers`. Call inside ``audit_mode``.

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
    model = forward.model
    candidates = block_candidates(model)
    if not candidates:
        return leaf_layers(model)
    modules = named_modules(model)
    outputs: dict[str, Tensor] = {}
    calls: dict[str, list[tuple[bool, int]]] = {}
    before = {b: (c[i - 1] if i else None) for c in candidates for i, b in enumerate(c)}

    def pre_hook(name: str):
        def hook(_m: nn.Module, args: tuple, kwargs: dict) -> None:
            calls.setdefault(name, []).append((_takes(args, kwargs, outputs.get(before[name] or "")), -1))
        return hook

    def post_hook(name: str):
        def hook(_m: nn.Module, _i: object, out: object) -> None:
            y = first_tensor(out)
            chained, _ = calls[name][-1]
            calls[name][-1] = (chained, -1 if y is None or y.dim() == 0 else y.shape[0])
            if y is not None:
                outputs[name] = y.detach().clone()  # a later in-place op must not change it
        return hook

    handles = []
    try:
        for b in before:
            handles.append(modules[b].register_forward_pre_hook(pre_hook(b), with_kwargs=True))
            handles.append(modules[b].register_forward_hook(post_hook(b)))
        forward(*xs)
    finally:
        for h in handles:
            h.remove()
    n = xs[0].shape[0]
    return next((c for c in candidates if _is_chain(c, calls, n)), None) or leaf_layers(model)
