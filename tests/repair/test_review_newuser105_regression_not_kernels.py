"""A model that says it regresses (an ``nn.MSELoss`` held) with several outputs in [0, 1] (sigmoids) and whole-number
labels (counts): ``CounterfactualFairnessTerm``'s check for independent probabilities (ad280128, DUQ's kernel values)
took its outputs for a DUQ head's, told it of "class k's own probability as a binary classifier's logit" and skipped the
regression's warning (a sigmoid that saturates, one term per output with ``distance='logit'``), which it gave before.
A regression's outputs are no class scores: the regression's warning stands; a DUQ head beside class indices is still
warned of."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from lightning_causal import AttributeFlip, CounterfactualFairnessTerm

KERNELS = "lies in [0, 1] and their rows do not sum to 1"


class Bounded(nn.Module):
    def __init__(self, says_regression: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Sequential(nn.Linear(3, 3), nn.Sigmoid())  # every output in (0, 1), rows not summing to 1
        if says_regression:
            self.loss = nn.MSELoss()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _said(model: nn.Module, top: int = 5) -> list[str]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(32, 3, generator=g)
    x[:, 2] = (torch.rand(32, generator=g) < 0.5).float()
    y = torch.randint(0, top, (32,), generator=g)  # 5: whole numbers, counts beyond the 3 outputs' classes
    term = CounterfactualFairnessTerm(AttributeFlip(2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        term.loss(model, x, y)
    return [str(w.message) for w in caught]


def test_a_model_that_says_it_regresses_keeps_the_regression_warning():
    said = _said(Bounded(says_regression=True))
    assert not any(KERNELS in s for s in said)
    assert any("labels are a regression target" in s and "one term per output" in s for s in said)


def test_outputs_in_0_1_of_a_model_that_says_nothing_are_still_read_as_kernels():
    assert sum(KERNELS in s for s in _said(Bounded(says_regression=False), top=3)) == 1
