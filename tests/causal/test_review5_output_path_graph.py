"""off_output_path keeps every layer the explained output is computed from, whatever its effect on the
probe's first samples: a layer behind a ReLU dead on them, a branch behind a gate closed on them, a
small branch whose noise rounds away in bfloat16. Only another output's head is left out."""

from __future__ import annotations

import torch
from torch import nn

from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.structure.default_layers import default_layers
from lightning_causal.causal.structure.output_path import off_output_path


class _DeadRelu(nn.Module):
    """``a -> b -> ReLU -> c`` with ``b``'s bias -50: the ReLU is dead on every probe sample."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Linear(4, 6), nn.Linear(6, 6), nn.Linear(6, 2)
        with torch.no_grad():
            self.b.bias.fill_(-50.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.c(torch.relu(self.b(self.a(x))))


class _Gated(nn.Module):
    """``c(a(x)) + [x_0 > 2.5] * g(a(x))``: ``g`` is read where the gate opens, on none of the probe."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.g, self.c = nn.Linear(4, 6), nn.Linear(6, 2), nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.a(x)
        return self.c(h) + (x[:, :1] > 2.5).to(h.dtype) * self.g(h)


class _SmallBranch(nn.Module):
    """``c(h + 1e-5 * br(h))``: in bfloat16 the noise on ``br`` rounds away in the sum."""

    def __init__(self) -> None:
        super().__init__()
        self.a, self.br, self.c = nn.Linear(4, 6), nn.Linear(6, 6), nn.Linear(6, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.a(x)
        return self.c(h + 1e-5 * self.br(h))


class _TwoHeads(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.body, self.cls, self.reg = nn.Linear(4, 6), nn.Linear(6, 3), nn.Linear(6, 1)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        h = torch.relu(self.body(x))
        return {"cls": self.cls(h), "reg": self.reg(h)}


def _x() -> torch.Tensor:
    return torch.randn(40, 4, generator=torch.Generator().manual_seed(0)).clamp(-2.0, 2.0)


def test_a_layer_behind_a_dead_relu_is_on_the_path():
    torch.manual_seed(0)
    model = _DeadRelu().eval()
    with torch.no_grad():
        assert off_output_path(Forward(model), (_x(),), ["a", "b", "c"]) == []
        assert default_layers(Forward(model), (_x(),)) == ["a", "b", "c"]


def test_a_branch_behind_a_gate_closed_on_the_probe_is_on_the_path():
    torch.manual_seed(0)
    with torch.no_grad():
        assert off_output_path(Forward(_Gated().eval()), (_x(),), ["a", "g", "c"]) == []


def test_a_small_branch_in_bfloat16_is_on_the_path():
    torch.manual_seed(0)
    model = _SmallBranch().to(torch.bfloat16).eval()
    with torch.no_grad():
        assert off_output_path(Forward(model), (_x().to(torch.bfloat16),), ["a", "br", "c"]) == []


def test_another_heads_layer_is_still_off_the_path_and_no_grad_is_left():
    torch.manual_seed(0)
    model = _TwoHeads().eval()
    x = _x()
    with torch.inference_mode():  # inference tensors: the pass with gradients runs on copies
        xi = x.clone()
        assert off_output_path(Forward(model, output="cls"), (xi,), ["body", "cls", "reg"]) == ["reg"]
    with torch.no_grad():
        assert off_output_path(Forward(model, output="reg"), (x,), ["body", "cls", "reg"]) == ["cls"]
    assert all(p.grad is None for p in model.parameters())
    assert not any(m._forward_hooks for m in model.modules())
