"""Which calls of a layer reach the output through autograd, in a pass with gradients: :func:`check_last_call_reaches`.

Captum's layer methods hook a module and read its last call of the pass they differentiate, a pass with gradients.
A forward may call a module once more there only, for its backward pass: a deep-equilibrium model whose implicit
gradient hook needs ``f0 = f(z*.detach().requires_grad_())`` (``if z.requires_grad:``), an auxiliary value computed
after the output. That call's output reaches the model's output through no gradient, while an earlier call's does
(the one-step ``z = f(z*)``): Captum's gradient methods would differentiate with respect to a value the output does
not depend on (torch's 'appears to not have been used in the graph', or the model's own hook recursing on Captum's
replaced values), and the checks that count the calls without gradients do not see it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor, nn

from lightning_causal.causal.engine.leaf_gradients import graph_nodes

__all__ = ["check_last_call_reaches"]


def _tensors(value: Any) -> list[Tensor]:
    """The tensors of a return value (a tensor, or a tuple, list or dict of them, one level)."""
    if isinstance(value, Tensor):
        return [value]
    items = value.values() if isinstance(value, dict) else value if isinstance(value, (tuple, list)) else ()
    return [v for v in items if isinstance(v, Tensor)]


def check_last_call_reaches(module: nn.Module, layer: str, method: str, run: Callable[[], Any]) -> None:
    """Refuse Captum's gradient layer ``method`` on ``layer`` where, in the pass ``run()`` with gradients on, the
    module's last call reaches the output through no gradient while an earlier call does (see the module's words). A
    call reaches it where its output's ``grad_fn`` is in the output's graph, or, for a call returning a leaf that
    requires grad (an ``nn.Identity`` on the input), where the leaf's ``AccumulateGrad`` is.

    Args:
        module: the layer's module (element 0 of a tuple output is read, the tensor Captum hooks).
        layer: its name, for the message.
        method: the Captum layer method's name.
        run: one pass of the model (a row or two), returning the output Captum differentiates.

    Raises:
        ValueError: naming the calls with and without gradients, the call that reaches the output and the way out.

    Examples:
        >>> class Backward(nn.Module):  # a call made for the backward pass only, after the one the output reads
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.f = nn.Tanh()
        ...     def forward(self, x):
        ...         z = self.f(x)
        ...         if z.requires_grad:
        ...             self.f(z.detach().requires_grad_())
        ...         return z
        >>> check_last_call_reaches(nn.Tanh(), "f", "LayerGradientXActivation", lambda: None)  # no call: nothing said
        >>> m = Backward()
        >>> check_last_call_reaches(m.f, "f", "LayerGradientXActivation", lambda: m(torch.ones(1, 2, requires_grad=True)))
        Traceback (most recent call last):
        ...
        ValueError: Expected the last call of layer 'f' ...
    """
    heads: list[Tensor | None] = []

    def seen(_m: nn.Module, _i: Any, out: Any) -> None:
        head = out[0] if isinstance(out, (tuple, list)) and out else out
        heads.append(head if isinstance(head, Tensor) else None)

    handle = module.register_forward_hook(seen)
    try:
        with torch.enable_grad():
            result = run()
    finally:
        handle.remove()
    if len(heads) < 2:
        return
    reached: dict[Any, None] = {}
    for t in _tensors(result):
        reached.update(graph_nodes(t))
    # a call that returns a leaf (an nn.Identity on the input) reaches the output through the leaf's AccumulateGrad node
    leaves = {id(node.variable) for node in reached if type(node).__name__ == "AccumulateGrad"}
    on_path = [i + 1 for i, t in enumerate(heads) if t is not None
               and (t.grad_fn in reached if t.grad_fn is not None else t.requires_grad and id(t) in leaves)]
    if not on_path or on_path[-1] == len(heads):
        return
    with torch.no_grad():
        calls = [0]
        handle = module.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
        try:
            run()
        finally:
            handle.remove()
    raise ValueError(
        f"Expected the last call of layer {layer!r} in a pass with gradients to reach the output, for Captum's {method}, "
        f"which reads that call, but it runs {len(heads)} times in such a pass ({calls[0]} without gradients) and the "
        f"output's gradient reaches call {on_path[-1]} of them, not call {len(heads)}, the last: the forward calls it "
        "again for its backward pass or after its output (a deep-equilibrium model's f(z*) made for its implicit-gradient "
        "hook, `if z.requires_grad:`), a value the output does not depend on. Name a module that runs once on the way to "
        "the output (an nn.Identity applied to the output of the call that reaches it, the fixed point z*), or use "
        "unit_effects, which sets each unit at every call and needs no gradient")
