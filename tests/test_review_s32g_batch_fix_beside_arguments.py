"""Review of 8368df38: where the model has a forward argument of one row per sample, the batch-dependence refusal now
opens with a set gathered by row by chance (a few-shot support set) and advises ``mark_whole``; but it said nothing
more to a model that truly depends on its batch beside a per-sample argument (a per-sample weight, the inputs centred
by the batch's mean), whose way out, a per-sample forward, it had dropped: ``mark_whole`` of a per-sample weight, or
another number of samples, mends nothing there."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects


class Centred(nn.Module):
    """Each sample's output scaled by its own weight, the inputs less the batch's mean (batch-coupled)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        return self.lin(x - x.mean(0)) * weight[:, None]


def test_a_batch_coupled_model_with_a_per_sample_argument_is_told_both_ways_out():
    torch.manual_seed(1)
    x, weight = torch.rand(8, 4), torch.rand(8) + 0.5
    with pytest.raises(ValueError, match="Expected the model to treat samples independently") as err:
        input_effects(Centred().eval(), x, torch.arange(4), target=0, additional_forward_args=(weight,))
    message = str(err.value)
    assert "mark_whole((support, support_y), [0, 1])" in message  # the support set's way out, first
    assert "if its forward depends on the batch, make the forward per-sample" in message  # and the batch's
