"""A memory bank trained by ``CausalRepairModule`` beside the same bank written by plain training (the bank tests)."""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from lightning_causal import CausalRepairModule
from lightning_causal.causal import AttributeFlip
from lightning_causal.repair import CounterfactualFairnessTerm


def flip_batches(steps: int, n: int, d: int) -> list[torch.Tensor]:
    """``steps`` batches of ``n`` rows of ``d`` features, the first a binary column the fairness term flips."""
    g = torch.Generator().manual_seed(1)
    data = torch.randn(steps * n, d, generator=g)
    data[:, 0] = (data[:, 0] > 0).float()
    return list(data.split(n))


def repaired_beside_plain(make: Callable[[], nn.Module], batches: list[torch.Tensor], fuse: bool) -> tuple[nn.Module, nn.Module]:
    """``(repaired, plain)``: a model of ``make`` fitted by ``CausalRepairModule`` (a counterfactual fairness term
    flipping column 0, ``fuse_forward=fuse``, SGD) and one run in train mode on the same ``batches`` without a term, so
    that a test compares the banks each holds."""
    plain = make().train()
    with torch.no_grad():
        for x in batches:
            plain(x)
    torch.manual_seed(0)
    model = make()
    repair = CausalRepairModule(model, [CounterfactualFairnessTerm(AttributeFlip(0), 0, weight=1.0)], fuse_forward=fuse)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for step, x in enumerate(batches):
        opt.zero_grad()
        out = repair.training_step((x, torch.zeros(x.shape[0], dtype=torch.long)), step)
        (out["loss"] if isinstance(out, dict) else out).backward()
        opt.step()
    return model, plain
