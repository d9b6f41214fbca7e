"""Trial "edge": InputEffectAudit's ACE curve on a probe holding NaN, for a model that reads NaN as
a missing value (finite outputs: the effects are defined and the callback's probe check lets it
through). Before, the audit failed with the core's advice "pass the values as a tensor", which the
audit does not take; it now names the samples and `ace_values=None`, and with that the effects
match a hand-computed do(x_g := 0)."""

import pytest
import torch
from torch import nn

from lightning_causal.audits import InputEffectAudit, Probe


class Imputing(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(3, 2).double()
        with torch.no_grad():
            self.linear.weight.copy_(torch.tensor([[1.0, -2.0, 0.5], [0.0, 1.0, 1.0]], dtype=torch.float64))
            self.linear.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(torch.nan_to_num(x, nan=0.0))


def _x() -> torch.Tensor:
    x = torch.randn(8, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x[5, 2] = float("nan")
    return x


def test_the_ace_names_the_samples_and_the_way_out():
    with pytest.raises(ValueError, match=r"ACE curve.*samples \[5\] of its first 8.*ace_values=None"):
        InputEffectAudit().run(Imputing(), Probe(_x()))


def test_without_the_ace_the_effects_of_a_model_that_imputes_are_exact():
    x = _x()
    result = InputEffectAudit(ace_values=None, target=0).run(Imputing(), Probe(x))
    expected = (torch.nan_to_num(x, nan=0.0) * torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)).abs().mean(0)
    torch.testing.assert_close(result.vectors["mean_abs_effect"].double(), expected, rtol=0, atol=1e-12)


def test_the_ace_of_one_sample_says_why_it_is_zero():
    # before: mean_ace_range 0 for every group of a one-sample probe, read as "no effect", without a word
    model = Imputing()
    one = InputEffectAudit(target=0).run(model, Probe(torch.tensor([[0.5, -1.0, 2.0]], dtype=torch.float64)))
    assert one.scalars["mean_ace_range"] == 0.0 and "ace_range is 0 for every group" in " ".join(one.meta["notes"])
    x = torch.tensor([[0.5, -1.0, 2.0], [1.5, 1.0, 0.0], [-0.5, 0.0, 1.0]], dtype=torch.float64)
    many = InputEffectAudit(target=0).run(model, Probe(x))
    assert many.scalars["mean_ace_range"] > 0 and "notes" not in many.meta
