"""Neural Cleanse's refusal of clean outputs that cannot be searched opened "they hold NaN or infinity at samples [...]"
where the outputs held none, a sample's every class being -infinity (a mask ruling every class out; a Contrast whose
two models share no class there), the cause named after it right (95d23d30). The opening now says what was seen
(second_s32a)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal.backdoor.neural_cleanse import neural_cleanse


def _x() -> torch.Tensor:
    x = torch.rand(4, 4, generator=torch.Generator().manual_seed(0))
    x[1, 0], x[2, 1] = 5.0, 5.0
    return x


class _Filled(nn.Module):
    """3 classes of 4 features; -inf in every class where feature 0 is 5 (sample 1 of :func:`_x`), and NaN in class 0
    where feature 1 is 5 (sample 2) if ``nan``."""

    def __init__(self, nan: bool) -> None:
        super().__init__()
        self.net, self.nan = nn.Linear(4, 3), nan

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.net(x).masked_fill((x[:, :1] == 5), float("-inf"))
        return torch.cat([z[:, :1].masked_fill(x[:, 1:2] == 5, float("nan")), z[:, 1:]], 1) if self.nan else z


def test_every_class_minus_infinity_alone_is_not_called_nan_or_infinity() -> None:
    with pytest.raises(ValueError) as caught:
        neural_cleanse(_Filled(nan=False), _x(), 3, steps=2)
    said = str(caught.value)
    assert said.startswith("Expected the model's outputs on the samples `x` searched over to be finite in one class at "
                           "least for each sample, but they are -infinity in every class at samples [1] of 4: "
                           "neural_cleanse's trigger search")  # before: 'to be finite, but they hold NaN or infinity'
    assert "NaN or infinity at" not in said and "diverged" not in said


def test_both_causes_are_opened_each_at_its_samples() -> None:
    with pytest.raises(ValueError, match=r"to be finite, but they hold NaN or infinity at samples \[2\] and are "
                                         r"-infinity in every class at samples \[1\] of 4: neural_cleanse's"):
        neural_cleanse(_Filled(nan=True), _x(), 3, steps=2)
