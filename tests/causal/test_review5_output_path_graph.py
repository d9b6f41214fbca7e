"""off_output_path keeps the layers the explained output reads: a branch behind a gate that opens on later
probe samples only (the noisy passes read the first 32 samples), a small branch whose noise rounds away in
bfloat16 (its gradient is nonzero). Another output's head is left out, also where the model stacks the
heads into one tensor and ``output=`` slices the explained one (a zero gradient, no change by noise)."""

from __future__ import annotations

import torch
from torch import nn

from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.structure.default_layers import default_layers
from lightning_causal.causal.structure.output_path import off_output_path


class _Gated(nn.Module):
    """``c(a(x)) + [x_0 > 2.5] * g(a(x))``: ``g`` is read where the gate opens, on probe samples 40 and 41 only."""

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


class _Stacked(_TwoHeads):
    """The two heads in one tensor ``[N, 4]``: the class logits, then the regression."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        return torch.cat([out["cls"], out["reg"]], 1)


def _x() -> torch.Tensor:
    x = torch.randn(48, 4, generator=torch.Generator().manual_seed(0)).clamp(-2.0, 2.0)
    x[40:42, 0] = 3.0  # the gate opens on samples 40 and 41
    return x


def test_a_branch_behind_a_gate_open_on_later_samples_is_on_the_path():
    torch.manual_seed(0)
    model = _Gated().eval()
    with torch.no_grad():
        assert off_output_path(Forward(model), (_x(),), ["a", "g", "c"]) == []
        assert default_layers(Forward(model), (_x(),)) == ["a", "g", "c"]


def test_a_small_branch_in_bfloat16_is_on_the_path():
    torch.manual_seed(0)
    model = _SmallBranch().to(torch.bfloat16).eval()
    with torch.no_grad():
        assert off_output_path(Forward(model), (_x().to(torch.bfloat16),), ["a", "br", "c"]) == []


def test_another_heads_layer_is_off_the_path_and_no_grad_is_left():
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


def test_a_head_stacked_beside_the_explained_one_is_off_the_path():
    torch.manual_seed(0)
    model = _Stacked().eval()
    with torch.no_grad():
        assert off_output_path(Forward(model, output=lambda out: out[:, :3]), (_x(),), ["body", "cls", "reg"]) == ["reg"]
        assert off_output_path(Forward(model, output=lambda out: out[:, 3:]), (_x(),), ["body", "cls", "reg"]) == ["cls"]
