"""The gradient of an output with respect to one leaf tensor, also through a reentrant activation checkpoint.

``torch.autograd.grad`` is how the estimators take input gradients without touching any ``.grad``. A model
that checkpoints activations with ``torch.utils.checkpoint(..., use_reentrant=True)`` (in eval mode too) refuses
it ("torch.utils.checkpoint is incompatible with .grad()"), while ``.backward()`` runs through it.
:func:`leaf_grad` takes the first where it can and falls back to the second, with every parameter of the model
frozen (the callers' ``frozen_params``), reading the leaf's ``.grad`` and restoring it.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

__all__ = ["leaf_grad"]


def leaf_grad(output: Tensor, leaf: Tensor, model: nn.Module, *, retain_graph: bool = False,
              allow_unused: bool = False) -> Tensor | None:
    """``∂ output.sum() / ∂ leaf`` (``output`` a scalar, or summed), as ``torch.autograd.grad(output, leaf)`` gives it;
    where a reentrant ``torch.utils.checkpoint`` in ``model``'s forward refuses that, by ``output.backward()`` into
    ``leaf.grad`` (its previous ``.grad`` restored), which writes no parameter's ``.grad`` as ``model``'s are all
    frozen (``requires_grad=False``, refused otherwise with torch's error).

    Args:
        output: a scalar tensor that depends on ``leaf`` through autograd.
        leaf: a tensor that requires grad (a leaf of the graph: the change of the inputs, the inputs).
        model: the model the graph runs through (its parameters must be frozen for the fallback).
        retain_graph: keep the graph for another gradient of it.
        allow_unused: return ``None`` where ``output`` does not depend on ``leaf``, instead of raising.

    Examples:
        >>> w = torch.tensor([2.0, -1.0])
        >>> x = torch.ones(2, requires_grad=True)
        >>> leaf_grad((w * x).sum(), x, nn.Identity())
        tensor([ 2., -1.])
    """
    try:  # the graph kept until `output` goes: a refused attempt has freed part of it otherwise
        return torch.autograd.grad(output, leaf, retain_graph=True, allow_unused=allow_unused)[0]
    except RuntimeError as err:
        if "use_reentrant=True" not in str(err) or any(p.requires_grad for p in model.parameters()):
            raise
    saved, leaf.grad = leaf.grad, None
    try:
        output.backward(retain_graph=retain_graph)
        grad = leaf.grad
    finally:
        leaf.grad = saved
    if grad is None and not allow_unused:
        raise RuntimeError("One of the differentiated Tensors appears to not have been used in the graph")
    return grad
