"""A new user's spiking networks (trial newuser86): a leaky integrate-and-fire layer whose membrane potential is kept
on the module between calls, snntorch-style (``init_hidden=True``: reset by the user's ``training_step``, read by the
next call wherever its shape matches). An estimator's clean pass of the probe read the membrane an earlier call left,
and its check of samples run alone took the state its own first run alone left for noise, so the effects compared a
stale-state output with fresh-state intervened rows, silently."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects


class Spike(torch.autograd.Function):
    """Heaviside forward, fast-sigmoid surrogate backward."""

    @staticmethod
    def forward(ctx, v):
        ctx.save_for_backward(v)
        return (v > 0).to(v.dtype)

    @staticmethod
    def backward(ctx, g):
        (v,) = ctx.saved_tensors
        return g / (1 + 10 * v.abs()) ** 2


class KeptLIF(nn.Module):
    """A LIF neuron whose membrane persists between calls (reset by the user), fresh where the shape changes."""

    def __init__(self, beta: float = 0.8):
        super().__init__()
        self.beta, self.mem = beta, None

    def forward(self, cur):
        if self.mem is None or self.mem.shape != cur.shape:
            self.mem = torch.zeros_like(cur)
        self.mem = self.beta * self.mem + cur
        spk = Spike.apply(self.mem - 1.0)
        self.mem = self.mem - spk
        return spk


class SNN(nn.Module):
    def __init__(self, reset_in_forward: bool):
        super().__init__()
        self.fc1, self.lif1, self.fc2 = nn.Linear(6, 12), KeptLIF(), nn.Linear(12, 2)
        self.reset_in_forward = reset_in_forward

    def reset(self):
        self.lif1.mem = None

    def forward(self, x):
        if self.reset_in_forward:
            self.reset()
        out = 0
        for _ in range(6):  # T time steps, the same input current each step
            out = out + self.fc2(self.lif1(self.fc1(x)))
        return out


def _model(reset_in_forward: bool) -> SNN:
    torch.manual_seed(0)
    m = SNN(reset_in_forward).double().eval()
    with torch.no_grad():
        m.fc1.weight.mul_(4)
    return m


def test_a_membrane_left_by_an_earlier_call_of_the_probes_size_is_refused_naming_it():
    m = _model(reset_in_forward=False)
    x = torch.rand(16, 6, dtype=torch.float64)
    with torch.no_grad():
        m(x)  # a validation pass without reset: the membrane [16, 12] stays on the module
    left = m.lif1.mem.clone()
    with pytest.raises(ValueError, match=r"reads a state it keeps from earlier calls: lif1\.mem \[16, 12\]") as err:
        input_effects(m, x, target=1)  # was silent: the clean pass read the stale membrane, the intervened rows did not
    assert "reset it at the start of `forward`" in str(err.value)
    assert torch.equal(m.lif1.mem, left)  # the refusal leaves the state as it found it


def test_a_membrane_reset_at_the_start_of_forward_gives_the_hand_loops_effects():
    m = _model(reset_in_forward=True)
    x = torch.rand(16, 6, dtype=torch.float64)
    with torch.no_grad():
        m(x)
        base = m(x)[:, 1]
        hand = torch.stack([base - m(x.index_fill(1, torch.tensor([j]), 0.0))[:, 1] for j in range(6)], 1)
    e = input_effects(m, x, target=1)
    assert hand.abs().max() > 0.5  # the inputs move the spike counts
    torch.testing.assert_close(e, hand, rtol=0, atol=1e-12)


class Timing(nn.Module):
    """A LIF layer read over T steps of 0/1 spike trains [N, T, C]: channel 0's spike early or late decides the class."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 2)
        with torch.no_grad():
            self.fc.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
            self.fc.bias.zero_()

    def forward(self, x):
        early, late = x[:, :3, 0].sum(1), x[:, 3:, 0].sum(1)
        return self.fc(torch.stack([early, late], 1) + 0.1 * x[:, :, 1:].sum((1, 2)).unsqueeze(1))


def test_counterfactuals_of_spike_trains_set_to_fractions_are_warned_of_with_the_way_out():
    from lightning_causal.causal import counterfactual_explanation

    x = torch.zeros(4, 6, 2)
    x[:2, 1, 0] = 1.0  # class 0: an early spike
    x[2:, 4, 0] = 1.0  # class 1: a late spike
    x[0, 2, 1] = x[3, 0, 1] = 1.0  # background events
    m = Timing()
    with pytest.warns(UserWarning, match=r"hold only 0 and 1 in every one of the 4 rows \(12 of 12 features.*"
                                         r"rounded back to 0/1, 0 of those 4 still reach") as rec:
        r = counterfactual_explanation(m, x, torch.tensor([1, 1, 0, 0]))  # was silent: fractions of a spike
    assert bool(r.success.all()) and not bool(((r.counterfactuals == 0) | (r.counterfactuals == 1)).all())
    assert "`integer=`" in str(rec[0].message)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the way out: 0/1 counterfactuals, no warning
        r = counterfactual_explanation(m, x, torch.tensor([1, 1, 0, 0]), integer=torch.ones(6, 2, dtype=torch.bool),
                                       bounds=(0.0, 1.0))
    assert bool(r.success.all()) and bool(((r.counterfactuals == 0) | (r.counterfactuals == 1)).all())
