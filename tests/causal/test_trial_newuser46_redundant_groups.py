"""newuser46's trial: input effects are one group at a time, so evidence that several groups each carry alone is
missed at a fine grouping and found at the evidence's own scale (docs/methods.md, input interventions)."""

from __future__ import annotations

import torch
from torch import nn

from lightning_causal.causal import input_effects


class _LoudestWindow(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, 8] -> [N, 1]: the largest |sample|, a tone anywhere
        return x.abs().amax(1, keepdim=True)


def test_a_tone_over_four_windows_shows_only_when_its_windows_are_one_group():
    x = torch.tensor([[0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]], dtype=torch.float64)  # the tone in samples 2-5
    fine = input_effects(_LoudestWindow(), x, torch.arange(8).reshape(1, 8), 0.0, target=0)
    coarse = input_effects(_LoudestWindow(), x, torch.tensor([[0, 0, 1, 1, 1, 1, 2, 2]]), 0.0, target=0)
    assert fine.tolist() == [[0.0] * 8]  # each sample of the tone dispensable: the other three carry it
    assert coarse.tolist() == [[0.0, 1.0, 0.0]]  # the tone's window as one group: all of it
