"""BackdoorSuppressionTerm with every weight 0 returns a zero loss that can take a gradient, also for integer inputs."""

import torch
from torch import nn

from lightning_causal.causal.backdoor.triggers import Trigger
from lightning_causal.repair.backdoor import BackdoorSuppressionTerm


class _CastingNet(nn.Module):
    """A classifier of uint8 pixels that casts them in its first line."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x.float() / 255)


def test_all_weights_zero_gives_a_float_zero_with_uint8_inputs():
    trigger = Trigger(torch.tensor([0.0, 0.0, 0.0, 1.0]), torch.tensor([0.0, 0.0, 0.0, 255.0]), target=1)
    term = BackdoorSuppressionTerm(trigger, unlearn_weight=0.0, path_weight=0.0, distill_weight=0.0, augment=None)
    x = torch.randint(0, 256, (6, 4), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    loss = term.loss(_CastingNet(), x, torch.tensor([0, 1, 2, 0, 1, 2]))
    assert loss.dtype == torch.get_default_dtype() and loss.requires_grad and float(loss.detach()) == 0.0
    loss.backward()  # a leaf: nothing to reach, no error
    assert dict(term.last_parts) == {"unlearn": 0.0, "path": 0.0, "distill": 0.0}


def test_all_weights_zero_keeps_the_float_inputs_dtype():
    trigger = Trigger(torch.tensor([0.0, 1.0]), torch.tensor([0.0, 3.0]), target=1)
    term = BackdoorSuppressionTerm(trigger, unlearn_weight=0.0, path_weight=0.0, distill_weight=0.0, augment=None)
    x = torch.zeros(4, 2, dtype=torch.float64)
    loss = term.loss(nn.Linear(2, 2).double(), x, torch.tensor([0, 1, 0, 1]))
    assert loss.dtype == torch.float64 and loss.requires_grad and float(loss.detach()) == 0.0
