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


def credit_model() -> nn.Linear:
    """A two-class credit model on ``[income, savings_rate]``: approved (class 1) when
    ``0.05 income + 10 savings_rate > 5`` (class 0's logit is 0)."""
    model = nn.Linear(2, 2)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[0.0, 0.0], [0.05, 10.0]]))
        model.bias.copy_(torch.tensor([0.0, -5.0]))
    return model


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


class HeadNet(nn.Module):
    """``body`` (``Linear(4, 6)``, ReLU) and a classifier ``head`` of ``n_classes``: the model whose head grows between
    audits in the class-incremental tests (:func:`grown_head`)."""

    def __init__(self, n_classes: int) -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 6), nn.ReLU())
        self.head = nn.Linear(6, n_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(x))


def grown_linear(old: nn.Linear, out_features: int) -> nn.Linear:
    """A ``Linear`` of ``out_features`` outputs whose first ones are ``old``'s (a class-incremental head grown)."""
    new = nn.Linear(old.in_features, out_features)
    with torch.no_grad():
        new.weight[:old.out_features], new.bias[:old.out_features] = old.weight, old.bias
    return new


def grown_head(net: HeadNet, n_classes: int) -> HeadNet:
    """A copy of ``net`` whose head has ``n_classes`` outputs, the old classes' weights copied (:func:`grown_linear`)."""
    out = HeadNet(n_classes)
    out.body.load_state_dict(net.body.state_dict())
    out.head = grown_linear(net.head, n_classes)
    return out


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
