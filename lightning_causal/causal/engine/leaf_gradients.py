"""The gradient of an output with respect to leaf tensors, also through a reentrant activation checkpoint.

``torch.autograd.grad`` is how the estimators take input gradients without touching any ``.grad``. A model
that checkpoints activations with ``torch.utils.checkpoint(..., use_reentrant=True)`` (in eval mode too) refuses
it ("torch.utils.checkpoint is incompatible with .grad()"), while ``.backward()`` runs through it.
:func:`leaf_grads` takes the first where it can and falls back to the second, reading the leaves' ``.grad`` and
putting back every ``.grad`` the backward pass touched (the leaves', the model's parameters' and those of any other
tensor of the graph that requires grad: a head given as ``output=``); their gradient hooks (``register_hook``,
``register_post_accumulate_grad_hook``: an optimizer stepped in the backward pass) are set aside during that pass, so
none runs. Which of the two applies is found by a walk of the output's graph (:func:`has_reentrant_checkpoint`): at
every call of :func:`leaf_grads`, at the first call only of a :class:`LeafGradients` (one per search: the counterfactual
search's steps, the backdoor repair's region search).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from lightning_causal._compat import with_note

__all__ = ["LeafGradients", "graph_nodes", "has_reentrant_checkpoint", "leaf_grad", "leaf_grads"]


def leaf_grads(output: Tensor, leaves: Sequence[Tensor], model: nn.Module, *, retain_graph: bool = False,
               allow_unused: bool = False) -> tuple[Tensor | None, ...]:
    """``∂ output / ∂ leaf`` for each of ``leaves`` (``output`` a scalar), as ``torch.autograd.grad(output, leaves)``
    gives them; where a reentrant ``torch.utils.checkpoint`` in ``model``'s forward refuses that, by
    ``output.backward()``, reading the leaves' ``.grad``: each leaf's, each parameter's and each other graph leaf's
    ``.grad`` (a tensor the forward or ``output=`` uses that is not ``model``'s) is set aside before and put back after
    (the gradients the pass accumulated into them are dropped), so no ``.grad`` changes either way; their gradient
    hooks do not run in that pass (they are set aside and put back).

    Whether the graph holds such a checkpoint is found by a walk of it (:func:`has_reentrant_checkpoint`) at every
    call; a search that takes a gradient at every step takes them through one :class:`LeafGradients`, which walks once.

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
    return LeafGradients(model).grads(output, leaves, retain_graph=retain_graph, allow_unused=allow_unused)


class LeafGradients:
    """:func:`leaf_grads` for the passes of one search (the counterfactual search's steps, the backdoor repair's
    region search in a training step): whether the graph runs through a reentrant checkpoint is decided at the first
    call, by a walk of its graph (:func:`has_reentrant_checkpoint`, about 0.5 µs a node: 0.5 ms for a 450-module MLP's 1,127),
    and kept for the later calls, which walk nothing.

    Within one search nothing but the model's own forward runs between its passes: the caller keeps the model's
    modes and flags and the inputs' shape, so every pass takes the same checkpoints. A new search (the next call of
    ``counterfactual_explanation``, the next training step) makes a new one and decides again: a checkpoint switched
    on between calls, or one taken in train mode only (Hugging Face's ``gradient_checkpointing``), is seen there.
    Should a later pass take a reentrant checkpoint all the same (a forward that switches it on by itself), torch
    refuses ``torch.autograd.grad`` before it returns any gradient; the refusal is told from other errors by a walk of
    that graph (not by its text), the decision turns to ``backward()`` for good and the pass is taken again by it:
    with ``retain_graph=True`` the graph is whole (the backward hooks of what ran before the refusal run once more);
    without it the refused attempt has freed what it ran, so the pass is run again where the caller gives ``again``
    (the searches do: a forward that checkpoints once a budget or a call count is reached), and otherwise, where what
    was freed held saved tensors, torch's error is raised with a note naming the cause.

    Args:
        model: the model the graphs run through (its parameters' ``.grad`` are kept as they were).

    Examples:
        >>> x = torch.ones(2, requires_grad=True)
        >>> grads = LeafGradients(nn.Identity())
        >>> [grads.grad((k * x).sum(), x) for k in (1.0, 3.0)], grads.reentrant
        ([tensor([1., 1.]), tensor([3., 3.])], False)
    """

    def __init__(self, model: nn.Module) -> None:
        self.model = model
        #: whether the graphs run through a reentrant checkpoint: ``None`` until the first call decides
        self.reentrant: bool | None = None

    def grads(self, output: Tensor, leaves: Sequence[Tensor], *, retain_graph: bool = False,
              allow_unused: bool = False, again: Callable[[], Tensor] | None = None) -> tuple[Tensor | None, ...]:
        """:func:`leaf_grads` of ``output`` (a scalar) with respect to ``leaves``, the decision kept from the first call.

        Args:
            output: a scalar tensor that depends on the leaves through autograd.
            leaves: tensors that require grad.
            retain_graph: keep the graph for another gradient of it.
            allow_unused: ``None`` for a leaf that ``output`` does not depend on, instead of an error.
            again: runs the pass again and returns its ``output`` (of the same leaves), taken by ``backward()`` where
                torch refused a pass's ``.grad()`` without ``retain_graph`` (the refused attempt freed part of the graph).

        Examples:
            >>> x = torch.ones(2, requires_grad=True)
            >>> LeafGradients(nn.Identity()).grads((torch.tensor([2.0, -1.0]) * x).sum(), (x,))
            (tensor([ 2., -1.]),)
        """
        leaves = tuple(leaves)
        if self.reentrant is None:  # the graph freed as the caller asks (a refused attempt would free part of it)
            self.reentrant = has_reentrant_checkpoint(output)
        if self.reentrant:
            return _through_backward(output, leaves, self.model, retain_graph, allow_unused)
        try:
            return torch.autograd.grad(output, leaves, retain_graph=retain_graph, allow_unused=allow_unused)
        except RuntimeError as err:
            if not has_reentrant_checkpoint(output):
                raise
            self.reentrant = True  # a checkpoint the first pass did not take: backward() from now on
            refused = err
        if not retain_graph and again is not None:  # the refused attempt freed part of the graph: the pass again
            output = again()
        try:
            return _through_backward(output, leaves, self.model, retain_graph, allow_unused)
        except RuntimeError as err:
            if retain_graph or again is not None:  # the graph was whole: not the refused attempt's doing
                raise
            with_note(err, f"The first pass of this search took no reentrant torch.utils.checkpoint, this one did "
                      f"(torch refused .grad(): {str(refused).splitlines()[0]}), and the refused attempt freed part "
                      "of its graph. Checkpoint with use_reentrant=False, or take the same checkpoints at every pass")
            raise

    def grad(self, output: Tensor, leaf: Tensor, *, retain_graph: bool = False, allow_unused: bool = False,
             again: Callable[[], Tensor] | None = None) -> Tensor | None:
        """:meth:`grads` of one leaf: ``∂ output / ∂ leaf``.

        Args:
            output: a scalar tensor that depends on ``leaf`` through autograd.
            leaf: a tensor that requires grad.
            retain_graph: keep the graph for another gradient of it.
            allow_unused: ``None`` where ``output`` does not depend on ``leaf``, instead of an error.
            again: runs the pass again and returns its ``output``, as in :meth:`grads`.

        Examples:
            >>> x = torch.ones(2, requires_grad=True)
            >>> LeafGradients(nn.Identity()).grad((torch.tensor([2.0, -1.0]) * x).sum(), x)
            tensor([ 2., -1.])
        """
        return self.grads(output, (leaf,), retain_graph=retain_graph, allow_unused=allow_unused, again=again)[0]


def _through_backward(output: Tensor, leaves: tuple[Tensor, ...], model: nn.Module, retain_graph: bool,
                      allow_unused: bool) -> tuple[Tensor | None, ...]:
    """The leaves' gradients by ``output.backward()``, every ``.grad`` it touches and its hooks set aside and put back."""
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


def has_reentrant_checkpoint(output: Tensor) -> bool:
    """Whether ``output``'s graph runs through a reentrant activation checkpoint (torch's ``CheckpointFunction``, or
    a library's of that name: DeepSpeed's, fairscale's, Megatron's), whose backward refuses ``torch.autograd.grad``:
    a walk of the graph's nodes (about 0.5 µs each).

    Args:
        output: a tensor (``False`` where it has no graph).

    Examples:
        >>> from torch.utils.checkpoint import checkpoint
        >>> x = torch.ones(2, requires_grad=True)
        >>> has_reentrant_checkpoint(torch.tanh(x).sum()), has_reentrant_checkpoint(checkpoint(torch.tanh, x, use_reentrant=True).sum())
        (False, True)
    """
    return any(type(node).__name__ == "CheckpointFunctionBackward" for node in graph_nodes(output))


def graph_nodes(output: Tensor) -> dict[Any, None]:
    """The nodes of ``output``'s autograd graph (its ``grad_fn`` and every node it reaches, as dict keys in the order
    of a depth-first walk; empty without a graph): a tensor whose ``grad_fn`` is among them is one the output's
    gradient reaches.

    Examples:
        >>> x = torch.ones(2, requires_grad=True)
        >>> h, unused = torch.tanh(x), torch.sin(x)
        >>> nodes = graph_nodes((2 * h).sum())
        >>> h.grad_fn in nodes, unused.grad_fn in nodes, graph_nodes(torch.ones(1))
        (True, False, {})
    """
    stack: list[Any] = [output.grad_fn]
    seen: dict[Any, None] = {}
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen[node] = None
        stack.extend(n for n, _ in node.next_functions)
    return seen


def _graph_leaves(output: Tensor) -> list[Tensor]:
    """The tensors ``output.backward()`` accumulates a ``.grad`` into outside a checkpoint's recomputation (the
    variables of the graph's ``AccumulateGrad`` nodes: a head's weights given as ``output=``, not ``model``'s)."""
    return [node.variable for node in graph_nodes(output) if type(node).__name__ == "AccumulateGrad"]


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
