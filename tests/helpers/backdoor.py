"""A poisoned MLP on the digits, shared by the backdoor tests (core, audit, repair term)."""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

from lightning_causal.datasets.poisoning import patch_trigger, poison
from lightning_causal.models import load_digits_tensors

TARGET = 3


def train_poisoned_mlp(rate: float = 0.1, seed: int = 0, steps: int = 300):
    """An MLP on digits where ``rate`` of the training images carry a 2x2 top-left patch -> class 3."""
    xt, yt, xv, yv = load_digits_tensors()
    trig = patch_trigger((1, 8, 8), 2, "top_left", 1.0, target=TARGET)
    xp, yp, _ = poison(xt, yt, trig, rate, generator=torch.Generator().manual_seed(1))
    g = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) / p.shape[-1] ** 0.5)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(steps):
        idx = torch.randint(len(yp), (128,), generator=g)
        loss = F.cross_entropy(model(xp[idx]), yp[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.zero_grad(set_to_none=True)
    return model.eval(), trig, (xt, yt, xv, yv)


def hand_units_shift(stamped: torch.Tensor, clean: torch.Tensor) -> torch.Tensor:
    """The units path's penalty of one call, by hand: the mean squared shift of the suspect units over the variance of
    their values on the clean and the stamped rows together (the mean square about their joint mean), no gradient;
    units constant on both halves (dead ReLUs) give 0, the variance floored at the dtype's smallest normal number."""
    both = torch.cat([clean, stamped]).detach()
    spread = (both - both.mean()).pow(2).mean()
    return (stamped - clean.detach()).pow(2).mean() / spread.clamp_min(torch.finfo(spread.dtype).tiny)
