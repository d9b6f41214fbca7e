"""First-order input estimates (input_effects(method="attribution")) on models as shipped with non-differentiable
parts. With torch.round of the activations the gradient is 0 at every sample while the exact effects are not:
the estimates came back all 0, silently; now refused naming the cause, as a cut gradient already was. A hard
threshold cuts the gradient altogether: its refusal now names such steps (it named .detach() and no_grad only).
A model whose inputs equal the baseline has effects of 0 and estimates of 0: not refused."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal import input_effects, unit_effects
from lightning_causal.causal.engine.interventions import SetTo

X = torch.randn(6, 4, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


class Net(nn.Module):
    def __init__(self, step) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.l1, self.l2, self.step = nn.Linear(4, 8).double(), nn.Linear(8, 2).double(), step

    def forward(self, x):
        return self.l2(self.step(self.l1(x)))


def rounded(h):
    return torch.round(3 * h)


def threshold(h):
    return (h > 0).to(h.dtype)


def test_a_gradient_of_zero_everywhere_is_refused_where_the_exact_effects_are_not_zero():
    model = Net(rounded).eval()
    assert bool(input_effects(model, X, target=0).ne(0).any())  # the interventions move the output
    with pytest.raises(ValueError, match=r"it is 0 at every sample .* torch\.round.* Use method='exact'"):
        input_effects(model, X, target=0, method="attribution")


def test_a_hard_threshold_is_named_among_the_causes_of_a_cut_gradient():
    with pytest.raises(ValueError, match=r"none does: the forward cuts it \(a \.detach\(\) or torch\.no_grad\(\), or a step such as \(h > 0\)\.float\(\), argmax"):
        input_effects(Net(threshold).eval(), X, target=0, method="attribution")


def test_inputs_at_the_baseline_have_no_effect_and_are_not_refused():
    model = Net(rounded).eval()
    zero = torch.zeros_like(X)
    assert torch.equal(input_effects(model, zero, target=0), torch.zeros_like(X))
    assert torch.equal(input_effects(model, zero, target=0, method="attribution"), torch.zeros_like(X))


def test_a_gradient_of_zero_after_a_layer_is_refused_for_atp_and_the_frontier_estimate_stays_exact():
    model = Net(rounded).eval()
    exact = unit_effects(model, X, "l1", target=0)
    assert bool(exact.ne(0).any())
    with pytest.raises(ValueError, match=r"layer 'l1' .* it is 0 at every sample while intervening on them moves the output"):
        unit_effects(model, X, "l1", target=0, method="atp")
    # the frontier (the input of l2) sees the rounding exactly, and what follows it is linear
    torch.testing.assert_close(unit_effects(model, X, "l1", target=0, method="attribution"), exact, rtol=0, atol=1e-12)


def test_units_that_change_nothing_keep_their_zero_estimates():
    model = Net(torch.relu).eval()
    with torch.no_grad():
        model.l1.bias.fill_(-100.0)  # every ReLU off: the effects of zeroing its units are 0, as their estimates
    assert torch.equal(unit_effects(model, X, "l1", target=0, method="atp"), torch.zeros(6, 8, dtype=torch.float64))


def test_a_hard_threshold_after_a_layer_is_named_among_the_causes_for_atp():
    with pytest.raises(ValueError, match=r"reach layer 'l1'.*a step such as \(h > 0\)\.float\(\), argmax.*method='exact'"):
        unit_effects(Net(threshold).eval(), X, "l1", target=0, method="atp")


class Dead(nn.Module):
    """A ReLU model whose units are all off at the inputs (every feature negative) and on at the baseline 1:
    its gradient is 0 at every sample, as a step's, but not on the way to the baseline."""

    def __init__(self) -> None:
        super().__init__()
        self.l1, self.l2 = nn.Linear(4, 3).double(), nn.Linear(3, 1).double()
        with torch.no_grad():
            self.l1.weight.fill_(1.0), self.l1.bias.zero_(), self.l2.weight.fill_(1.0), self.l2.bias.zero_()

    def forward(self, x):
        return self.l2(torch.relu(self.l1(x)))


def test_relus_off_at_every_sample_keep_their_zero_estimates_and_are_not_called_a_step():
    """Refused as 'a piecewise-constant step such as torch.round' (ebaa875, 834489c): a ReLU model is no step, and
    its first-order estimates of 0 where its units are off are the method's own, as on any sample of such a model."""
    model, x = Dead().eval(), -0.1 - 0.05 * X.abs().clamp(max=3.0)  # in [-0.25, -0.1]: one feature at 1 turns them on
    exact = input_effects(model, x, baseline=1.0, target=0)
    assert bool(exact.ne(0).all())  # the output moves
    assert torch.equal(input_effects(model, x, baseline=1.0, target=0, method="attribution"), torch.zeros_like(x))
    on = SetTo(1.0)  # a unit at 1: the output goes from 0 to 1
    assert torch.equal(unit_effects(model, x, "l1", target=0, intervention=on), torch.full((6, 3), -1.0, dtype=torch.float64))
    assert torch.equal(unit_effects(model, x, "l1", target=0, intervention=on, method="atp"), torch.zeros(6, 3, dtype=torch.float64))
