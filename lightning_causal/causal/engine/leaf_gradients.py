"""The gradient of an output with respect to leaf tensors, also through a reentrant activation checkpoint.

``torch.autograd.grad`` is how the estimators take input gradients without touching any ``.grad``. A model
that checkpoints activations with ``torch.utils.checkpoint(..., use_reentrant=True)`` (in eval mode too) refuses
it ("torch.utils.checkpoint is incompatible with .grad()"), while ``.backward()`` runs through it.
:func:`leaf_grads` takes the first where it can and falls back to the second, reading the leaves' ``.grad`` and
putting back every ``.grad`` the backward pass touched (the leaves', the model's parameters' and those of any other
tensor of the graph that requires grad: a head given as ``output=``); their gradient hooks (``register_hook``,
``register_post_accumulate_grad_hook``: an optimizer stepped in the backward pass) are set aside during that pass, so
none runs.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

__all__ = ["leaf_grad", "leaf_grads"]


def leaf_grads(output: Tensor, leaves: Sequence[Tensor], model: nn.Module, *, retain_graph: bool = False,
               allow_unused: bool = False) -> tuple[Tensor | None, ...]:
    """``∂ output / ∂ leaf`` for each of ``leaves`` (``output`` a scalar), as ``torch.autograd.grad(output, leaves)``
    gives them; where a reentrant ``torch.utils.checkpoint`` in ``model``'s forward refuses that, by
    ``output.backward()``, reading the leaves' ``.grad``: each leaf's, each parameter's and each other graph leaf's
    ``.grad`` (a tensor the forward or ``output=`` uses that is not ``model``'s) is set aside before and put back after
    (the gradients the pass accumulated into them are dropped), so no ``.grad`` changes either way; their gradient
    hooks do not run in that pass (they are set aside and put back).

    Args:
        output: a scalar tensor that depends on the leaves through autograd.
        leaves: tensors that require grad (leaves of the graph: the inputs, the change of the inputs).
        model: the model the graph runs through (its parameters' ``.grad`` are kept as they were).
        retain_graph: keep the graph for another gradient of it.
        allow_unused: ``None`` for a leaf that ``output`` does not depend on, instead of an error.

    Examples:
        >>> x, z = torch.ones(2, requires_grad=True), torch.ones(1, requires_grad=True)
        >>> leaf_grads((torch.tensor([2.0, -1.0]) * x).sum(), (x, z), nn.Identity(), allow_unused=True)
        (tensor([ 2., -1.]), None)
    """
    leaves = tuple(leaves)
    if not _reentrant_checkpoint(output):  # the graph freed as the caller asks (a refused attempt would free part of it)
        return torch.autograd.grad(output, leaves, retain_graph=retain_graph, allow_unused=allow_unused)
    held = {id(t): t for t in (*leaves, *model.parameters(), *_graph_leaves(output))}
    saved = {key: t.grad for key, t in held.items()}
    hooks = [(d, dict(d)) for p in held.values()
             for d in (p._backward_hooks, getattr(p, "_post_accumulate_grad_hooks", None)) if d]
    try:
        for t in held.values():
            t.grad = None
        for d, _ in hooks:  # the parameters' gradient hooks (an optimizer stepped in backward, a logger) do not run
            d.clear()
        output.backward(retain_graph=retain_graph)
        grads = tuple(leaf.grad for leaf in leaves)
    finally:
        for d, kept in hooks:
            d.update(kept)
        for key, t in held.items():
            t.grad = saved[key]
    if not allow_unused and any(g is None for g in grads):
        raise RuntimeError("One of the differentiated Tensors appears to not have been used in the graph. Set "
                           "allow_unused=True if this is the desired behavior.")
    return grads


def _reentrant_checkpoint(output: Tensor) -> bool:
    """Whether ``output``'s graph runs through a reentrant activation checkpoint (torch's ``CheckpointFunction``, or
    a library's of that name), whose backward refuses ``torch.autograd.grad``."""
    stack, seen = [output.grad_fn], set()
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        if type(node).__name__ == "CheckpointFunctionBackward":
            return True
        seen.add(node)
        stack.extend(n for n, _ in node.next_functions)
    return False


def _graph_leaves(output: Tensor) -> list[Tensor]:
    """The tensors ``output.backward()`` accumulates a ``.grad`` into outside a checkpoint's recomputation (the
    variables of the graph's ``AccumulateGrad`` nodes: a head's weights given as ``output=``, not ``model``'s)."""
    stack, seen, found = [output.grad_fn], set(), []
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        if type(node).__name__ == "AccumulateGrad":
            found.append(node.variable)
        stack.extend(n for n, _ in node.next_functions)
    return found


def leaf_grad(output: Tensor, leaf: Tensor, model: nn.Module, *, retain_graph: bool = False,
              allow_unused: bool = False) -> Tensor | None:
    """:func:`leaf_grads` of one leaf: ``∂ output / ∂ leaf``, also through a reentrant activation checkpoint.

    Args:
        output: a scalar tensor that depends on ``leaf`` through autograd.
        leaf: a tensor that requires grad.
        model: the model the graph runs through.
        retain_graph: keep the graph for another gradient of it.
        allow_unused: ``None`` where ``output`` does not depend on ``leaf``, instead of an error.

    Examples:
        >>> x = torch.ones(2, requires_grad=True)
        >>> leaf_grad((torch.tensor([2.0, -1.0]) * x).sum(), x, nn.Identity())
        tensor([ 2., -1.])
    """
    return leaf_grads(output, (leaf,), model, retain_graph=retain_graph, allow_unused=allow_unused)[0]
