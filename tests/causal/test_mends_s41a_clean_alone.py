"""Following the stacked-rows refusal's advice, ``max_batch_size=1``, the clean outputs run one sample per pass too:
a model branching on its batch's mean gives each sample's own effects (review_leftovers_s41b §4a)."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects, unit_effects
from lightning_causal.causal.engine.stacked_rows import StackedRowsError


class Branch(nn.Module):
    """``head(fc(x))`` where the batch's mean of x0 is above 0, else three times it."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc, self.head = nn.Linear(4, 3), nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.head(self.fc(x))
        return y if bool(x[:, 0].mean() > 0) else 3 * y


def _probe() -> torch.Tensor:
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(1))
    x[:, 0] = x[:, 0].abs() + 0.5
    x[[0, 7], 0] = -0.3  # alone these two take the x3 branch, in the probe's batch the plain one
    return x


def _zeroing_alone(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Class 1's change when feature j of sample i is set to 0, each sample run alone: the hand loop."""
    with torch.no_grad():
        return torch.stack([torch.stack([
            model(x[i:i + 1])[0, 1] - model(torch.cat([x[i:i + 1, :j], torch.zeros(1, 1), x[i:i + 1, j + 1:]], 1))[0, 1]
            for j in range(x.shape[1])]) for i in range(x.shape[0])])


def test_input_effects_one_row_per_pass_are_each_samples_own() -> None:
    model, x = Branch().eval(), _probe()
    with pytest.raises(StackedRowsError, match="max_batch_size=1"):
        input_effects(model, x, target=1)
    effects = input_effects(model, x, target=1, max_batch_size=1)
    torch.testing.assert_close(effects, _zeroing_alone(model, x), rtol=0, atol=1e-6)


def test_unit_effects_one_row_per_pass_are_each_samples_own() -> None:
    model, x = Branch().eval(), _probe()
    effects = unit_effects(model, x, "fc", target=1, max_batch_size=1)
    with torch.no_grad():
        hand = torch.stack([torch.stack([
            model.head(model.fc(x[i:i + 1]))[0, 1] - model.head(model.fc(x[i:i + 1]) * (torch.arange(3) != u))[0, 1]
            for u in range(3)]) * (1.0 if x[i, 0] > 0 else 3.0) for i in range(8)])
    torch.testing.assert_close(effects, hand, rtol=0, atol=1e-6)


def test_per_sample_model_same_effects_at_one_row_per_pass() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.ReLU(), nn.Linear(5, 2)).eval()
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(input_effects(model, x, max_batch_size=1), input_effects(model, x), rtol=0, atol=1e-6)
    torch.testing.assert_close(unit_effects(model, x, "0", max_batch_size=1), unit_effects(model, x, "0"), rtol=0, atol=1e-6)


class InputBranch(Branch):
    """:class:`Branch` behind an ``nn.Identity`` input layer, for ``input_layer=``."""

    def __init__(self) -> None:
        super().__init__()
        self.inp = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(self.inp(x))


def test_input_layer_effects_are_checked_and_one_row_per_pass_each_samples_own() -> None:
    model, x = InputBranch().eval(), _probe()
    with pytest.raises(StackedRowsError, match="max_batch_size=1"):  # no check ran on the input_layer path
        input_effects(model, x, target=1, input_layer="inp")
    effects = input_effects(model, x, target=1, input_layer="inp", max_batch_size=1)
    torch.testing.assert_close(effects, input_effects(model, x, target=1, max_batch_size=1), rtol=0, atol=1e-6)


class EarlyExit(nn.Module):
    """``fc(x)`` where the batch's mean of x0 is above 0, else zeros: rows alone on the exit's side give one value."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x) if bool(x[:, 0].mean() > 0) else torch.zeros(x.shape[0], 2)


def test_constant_branch_refusal_names_the_way_out_it_has() -> None:
    model, x = EarlyExit().eval(), _probe()
    with pytest.raises(StackedRowsError, match=r"early exit's zeros.*`max_batch_size=1`.*gives each sample's own effects"):
        input_effects(model, x, target=1)
    effects = input_effects(model, x, target=1, max_batch_size=1)
    torch.testing.assert_close(effects, _zeroing_alone(model, x), rtol=0, atol=1e-6)
