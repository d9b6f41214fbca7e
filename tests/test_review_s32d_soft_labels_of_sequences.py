"""Review of f30c59f1: CausalRepairModule's check of the default task loss's labels refused class probabilities of
K-dimensional outputs, soft labels [N, C, T] of a sequence's per-step classes or [N, C, H, W] of a segmentation (label
smoothing, mixup, a teacher's probabilities), which F.cross_entropy reads over dimension 1: the rows of [N, C] alone
were taken for class probabilities, and every other float shape for a regression's target. They train as before now;
a regression's target of any shape is still refused."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn

from lightning_causal import AttributeFlip, CausalRepairModule, CounterfactualFairnessTerm


class _PerStep(nn.Module):
    """Class scores of each step and position, [N, 4, *rest], from inputs [N, 3, *rest]."""

    def __init__(self) -> None:
        super().__init__()
        self.mix = nn.Linear(3, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.mix(x.movedim(1, -1)).movedim(-1, 1)


def _module() -> CausalRepairModule:
    torch.manual_seed(0)
    return CausalRepairModule(_PerStep(), [CounterfactualFairnessTerm(AttributeFlip(2), distance="logit", weight=0.0)])


@pytest.mark.parametrize("rest", [(5,), (3, 3)])
def test_soft_labels_over_dimension_one_give_cross_entropy(rest: tuple[int, ...]) -> None:
    module = _module()
    torch.manual_seed(1)
    x = torch.randn(8, 3, *rest)
    soft = torch.softmax(torch.randn(8, 4, *rest), 1)  # each step's (each pixel's) class probabilities
    hand = -(soft * torch.log_softmax(module.model(x), 1)).sum(1).mean()  # cross-entropy with probabilities, by hand
    assert torch.allclose(module.objective((x, soft), 0)[0], hand)


def test_a_regression_target_of_three_dimensions_is_still_refused() -> None:
    torch.manual_seed(1)
    with pytest.raises(MisconfigurationException, match=r"regression target \(\[8, 4, 5\] float32"):
        _module().objective((torch.randn(8, 3, 5), torch.randn(8, 4, 5)), 0)
