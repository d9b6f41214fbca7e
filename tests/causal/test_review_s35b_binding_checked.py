"""Review of 3d753bba (the suffix binding that bakes non-tensor values into a generated flat forward):

- ``_Binding.values`` checked only the names of a later call's values: a call with another non-tensor value (a
  scale, a tuple of columns) or a tensor where the trace specialised ``None`` was bound to the traced graph, which
  computed the traced call's values in silence. It is refused (``SplitRefused`` naming the argument);
- the flat forward, now generated for any forward given a non-tensor value (``mask=None`` left at its default), had
  globals of its own, so torch.fx no longer patched the root forward's module for the ``math`` functions it imports
  by name (``from math import sqrt``; ``sqrt(h.size(-1))`` on a traced size): the trace failed, the fast path was
  lost (``unit_effects`` on the hooks path). The flat forward reads the class forward's globals;
- ``bypassed`` without a call traced the class's forward of a model whose forward is replaced on the instance,
  where its docstring says such a model answers ``True`` (as with a call)."""

from __future__ import annotations

import types
from math import sqrt

import pytest
import torch
from torch import nn

from lightning_causal.causal.effects.unit_effects import unit_effects
from lightning_causal.causal.engine.suffix import SplitRefused, fx_split, suffix_module
from lightning_causal.causal.structure.graph_context import bypassed
from tests.causal.test_leftovers_s35a_specialised_values import Chain, Skipped


class Scaled(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.l1, self.act, self.l2 = nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)

    def forward(self, x, scale=1.0, mask=None, cols=(0, 1)):
        out = self.l2(self.act(self.l1(x))) * scale
        if mask is not None:
            out = out * mask
        return out[:, list(cols)]


def _model(cls):
    torch.manual_seed(0)
    return cls().double().eval()


X = torch.randn(6, 3, generator=torch.Generator().manual_seed(1), dtype=torch.float64)


@pytest.mark.parametrize("kwargs, name", [
    ({"scale": 2.0}, "scale"),
    ({"scale": 0.5, "cols": (1, 0)}, "cols"),
    ({"scale": 0.5, "cols": [1, 0]}, "cols"),
    ({"scale": 0.5, "mask": torch.zeros(6, 1, dtype=torch.float64)}, "mask"),
])
def test_a_later_call_with_other_specialised_values_is_refused_not_bound_to_the_traced_ones(kwargs, name):
    model = _model(Scaled)
    split = fx_split(model, "act", (X,), {"scale": 0.5})
    torch.testing.assert_close(split.recorder(*split.binding.values((X,), {"scale": 0.5}))[0], model(X, scale=0.5))
    assert not torch.allclose(model(X, **kwargs), model(X, scale=0.5))  # the values change what forward computes
    with pytest.raises(SplitRefused, match=f"'{name}'"):  # before: bound, the graph computing scale=0.5, no mask
        split.binding.values((X,), kwargs)


def test_a_tensor_traced_as_a_placeholder_given_as_none_later_is_refused():
    model = _model(Scaled)
    mask = torch.ones(6, 1, dtype=torch.float64)
    split = fx_split(model, "act", (X,), {"mask": mask})
    assert len(split.binding.values((X,), {"mask": 2 * mask})) == 2  # another tensor: a placeholder's value
    with pytest.raises(SplitRefused, match="'mask'"):
        split.binding.values((X,), {})


class Attention(nn.Module):
    """Scaled by ``sqrt`` imported from ``math`` by name, which torch.fx patches in the traced forward's module."""

    def __init__(self) -> None:
        super().__init__()
        self.q, self.act, self.o = nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2)

    def forward(self, x, mask=None):
        h = self.act(self.q(x))
        h = h / sqrt(h.size(-1))
        if mask is not None:
            h = h * mask
        return self.o(h)


def test_a_forward_given_a_default_keeps_torch_fx_autowrapping_its_module_math_functions():
    model = _model(Attention)
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    got, info = unit_effects(model, x, "act", target=0, unit_dim=-1, return_info=True)
    full = unit_effects(model, x, "act", target=0, unit_dim=-1, use_suffix=False)
    assert info.path == "fx", info.reason  # before: hooks ('must be real number, not Proxy')
    torch.testing.assert_close(got, full, atol=1e-12, rtol=0)
    tail = suffix_module(model, "act", ((x,), {}))
    torch.testing.assert_close(tail(model.act(model.q(x))), model(x), atol=0, rtol=0)


def test_bypassed_without_a_call_refuses_a_forward_replaced_on_the_instance_too():
    model = _model(Chain)
    assert not bypassed(model, "act", "act2")
    model.forward = types.MethodType(Skipped.forward, model)
    assert bypassed(model, "act", "act2")  # before: False, read from the class's forward without the skip
