"""Shared toy models for the tests (hand-weighted where the expected numbers are literals)."""

from __future__ import annotations

import torch
from torch import nn

from lightning_causal.models import MLP, DigitsCNN, ResidualCNN  # noqa: F401  (re-exported for tests)


def hand_linear(weights, bias: float = 0.0) -> nn.Linear:
    """``f(x) = w·x + b`` with one output."""
    w = torch.tensor([weights], dtype=torch.float32)
    lin = nn.Linear(w.shape[1], 1)
    with torch.no_grad():
        lin.weight.copy_(w)
        lin.bias.fill_(bias)
    return lin


def seeded(module: nn.Module, seed: int = 0) -> nn.Module:
    """Re-initialise ``module`` deterministically without touching the global RNG."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return module


class TupleModel(nn.Module):
    """Two inputs: an image ``[N, 1, 4, 4]`` and a vector ``[N, 3]``."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.fc_img = nn.Linear(32, 4)
        self.fc_vec = nn.Linear(3, 4)
        self.out = nn.Linear(4, 3)

    def forward(self, img: torch.Tensor, vec: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.fc_img(torch.relu(self.conv(img)).flatten(1)) + self.fc_vec(vec))
        return self.out(h)


def all_hook_counts(model: nn.Module) -> int:
    return sum(
        len(m._forward_hooks) + len(m._forward_pre_hooks) + len(m._backward_hooks) for m in model.modules()
    )


def zeroed_feature_effects(model: nn.Module, module: nn.Module, args: tuple, target: torch.Tensor, units: int) -> torch.Tensor:
    """``[N, units]``: ``f_t(x) - f_t(x | do(h[..., u] := 0))`` for each feature ``u`` of ``module``'s
    output, one full forward pass per unit with a forward hook (``target``: the class of each sample)."""
    with torch.no_grad():
        base = model(*args).gather(1, target[:, None])[:, 0]
        cols = []
        for u in range(units):
            def zero(_m, _i, out, u=u):
                out = out.clone()
                out[..., u] = 0
                return out

            handle = module.register_forward_hook(zero)
            try:
                cols.append(base - model(*args).gather(1, target[:, None])[:, 0])
            finally:
                handle.remove()
    return torch.stack(cols, 1)
