"""Review of leftovers_s41a (3235f100): where a model draws random numbers, the stamped rows run as a pass of their
own whose calls of a suspect layer are paired with the clean pass's call for call. A stamped pass calling the layer
MORE times than the clean pass was refused (_UNPAIRED_CALLS); one calling it FEWER times (an early exit the trigger
takes) was accepted in silence, the clean pass's last calls left without a twin and out of the penalty. Both are now
refused in the same words."""

import pytest
import torch
from torch import nn

from lightning_causal import BackdoorSuppressionTerm
from lightning_causal.causal.backdoor.triggers import Trigger


class Halting(nn.Module):
    """Dropout, then a block repeated once more while the rows' mean is above 0.5."""

    def __init__(self) -> None:
        super().__init__()
        self.inp, self.drop, self.cell, self.head = nn.Linear(4, 8), nn.Dropout(0.2), nn.Linear(8, 8), nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.cell(self.drop(self.inp(x)))
        for _ in range(int(x.mean() > 0.5)):
            h = self.cell(h)
        return self.head(h)


def _loss(shift: float, fill: float) -> None:
    torch.manual_seed(0)
    x = torch.randn(16, 4, generator=torch.Generator().manual_seed(1)) + shift
    trigger = Trigger(torch.ones(4), torch.full((4,), fill), target=1)
    term = BackdoorSuppressionTerm(trigger, suspects={"cell": [0]}, unlearn_weight=0.0, distill_weight=0.0, augment=None)
    term.loss(Halting().train(), x, torch.zeros(16, dtype=torch.long))


def test_a_stamped_pass_calling_the_layer_fewer_times_is_refused():
    with pytest.raises(ValueError, match=r"call for call.*its call 2 returned no call where the clean pass's call of "
                                         r"that number returned \[16, 8\] \(the clean pass called it 2 times\)"):
        _loss(2.0, -9.0)  # the clean rows' mean above 0.5 (two calls), the stamped rows' below (one): before, accepted


def test_a_stamped_pass_calling_it_more_times_is_still_refused():
    with pytest.raises(ValueError, match=r"its call 2 returned shape \[16, 8\] where the clean pass's call of that "
                                         r"number returned no call \(the clean pass called it 1 times\)"):
        _loss(0.0, 9.0)
