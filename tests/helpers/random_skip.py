"""A model that skips its middle layer ``b`` at random, eval mode included (stochastic depth drawing from a
generator it holds), shared by the tests of what the estimators say when a site stops running."""

import torch
from torch import nn


class RandomSkip(nn.Module):
    def __init__(self, seed: int) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Linear(4, 6), nn.Linear(6, 6), nn.Linear(6, 2)
        self.gen = torch.Generator().manual_seed(seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.a(x).relu()
        if torch.rand((), generator=self.gen) < 0.5:  # the block runs in half the passes, eval mode included
            h = h + self.b(h)
        return self.c(h)
