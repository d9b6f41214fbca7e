"""A new user's spiking networks (trial newuser86): a leaky integrate-and-fire layer whose membrane potential is kept
on the module between calls, snntorch-style (``init_hidden=True``: reset by the user's ``training_step``, read by the
next call wherever its shape matches). An estimator's clean pass of the probe read the membrane an earlier call left,
and its check of samples run alone took the state its own first run alone left for noise, so the effects compared a
stale-state output with fresh-state intervened rows, silently."""

from __future__ import annotations

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
