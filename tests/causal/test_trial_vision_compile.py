"""Findings of the vision trial: layer names of compiled submodules.

``model.named_modules()`` of a model with a compiled submodule lists its layers under
``"body._orig_mod.<layer>"``; the estimators name them ``"body.<layer>"`` and refused the name the
model itself lists ("Unknown module name 'body._orig_mod.conv'").
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import Zero, capture, causal_graph, intervene, unit_effects


class _Wrapped(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Conv2d(2, 4, 3, padding=1), nn.ReLU(), nn.Conv2d(4, 4, 3, padding=1, groups=2),
                                  nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.head = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def _brute(model: nn.Module, x: torch.Tensor, layer: nn.Module, target: int) -> torch.Tensor:
    """f_t(x) - f_t(x | do(channel u := 0)) by a hand-written forward hook per channel."""
    with torch.no_grad():
        base = model(x)[:, target]
        cols = []
        for u in range(4):
            def zero(module, args, out, u=u):
                out = out.clone()
                out[:, u] = 0
                return out
            handle = layer.register_forward_hook(zero)
            cols.append(base - model(x)[:, target])
            handle.remove()
    return torch.stack(cols, 1)


@pytest.mark.skipif(getattr(torch.compiler, "set_stance", None) is None,
                    reason="interventions on a torch.compile'd model need torch >= 2.6 (refused before)")
def test_a_compiled_submodule_layer_is_found_under_its_named_modules_name():
    torch.manual_seed(0)
    eager = _Wrapped().double().eval()
    model = _Wrapped().double().eval()
    model.load_state_dict(eager.state_dict())
    model.body = torch.compile(model.body, backend="eager")
    x = torch.randn(5, 2, 6, 6, dtype=torch.float64)
    assert "body._orig_mod.2" in dict(model.named_modules())
    expected = _brute(eager, x, eager.body[2], target=1)
    torch.testing.assert_close(unit_effects(model, x, "body._orig_mod.2", target=1), expected)
    torch.testing.assert_close(unit_effects(model, x, "body.2", target=1), expected)
    with torch.no_grad(), intervene(model, {"body._orig_mod.2": Zero(units=[0])}):
        zeroed = model(x)[:, 1]
    torch.testing.assert_close(eager(x)[:, 1].detach() - zeroed, expected[:, 0])
    with torch.no_grad(), capture(model, ["body._orig_mod.0:input"]) as acts:
        model(x)
    torch.testing.assert_close(acts["body._orig_mod.0:input"], x)
    graph = causal_graph(model, x, ["body._orig_mod.0", "body._orig_mod.2"], target=1)
    assert graph.layers == ["body._orig_mod.0", "body._orig_mod.2"]
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
