"""Review of newuser86's change (54542695, d263f079): a model drawing noise keyed by a call counter is not refused as
reading a carried state, a membrane kept in a dict is, and grey levels in [0, 1] that sit at 0 or 1 in a few pixels
are not warned of as 0/1 events."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal import counterfactual_explanation, input_effects


class CounterNoise(nn.Module):
    """Noise drawn afresh at every call, seeded by a call counter it keeps (a 0-dim buffer)."""

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(6, 2)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def forward(self, x):
        g = torch.Generator().manual_seed(int(self.step))
        self.step += 1
        return self.fc(x) + 0.5 * torch.randn(x.shape[0], 2, generator=g)


def test_noise_seeded_by_a_call_counter_passes_as_noise_not_as_a_carried_state():
    torch.manual_seed(0)
    m = CounterNoise().eval()
    x = torch.rand(16, 6)
    e = input_effects(m, x, target=1)  # was refused after 54542695: "reads a state it keeps from earlier calls: step"
    assert e.shape == (16, 6) and bool(torch.isfinite(e).all())


def test_grey_levels_at_0_or_1_in_a_few_pixels_are_not_warned_of_as_binary_events():
    torch.manual_seed(0)
    x = torch.randint(1, 16, (4, 16)).float() / 16  # grey levels in (0, 1)
    x[:, :3] = 0.0  # a blank border
    x[:, 3] = torch.tensor([0.0, 1.0, 0.0, 1.0])  # one pixel at 0 or full ink in each of the 4 rows
    m = nn.Linear(16, 2)
    with torch.no_grad():
        m.weight.zero_()
        m.bias.zero_()
        m.weight[1, :4] = 1.0  # the border and that pixel decide: the search moves them to grey levels
        m.weight[0, 4:] = 0.5
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned after d263f079: "hold only 0 and 1 ... (4 of 16 features"
        r = counterfactual_explanation(m, x, torch.ones(4, dtype=torch.long))
    moved = r.counterfactuals[:, :4]
    assert bool(r.success.any()) and bool(((moved != 0) & (moved != 1)).any())  # the pixels did move to grey levels


class DictLIF(nn.Module):
    """A LIF neuron whose membrane persists between calls in a dict (``self.state["mem"]``), fresh where the shape
    changes."""

    def __init__(self, beta: float = 0.8):
        super().__init__()
        self.beta, self.state = beta, {}

    def forward(self, cur):
        mem = self.state.get("mem")
        if mem is None or mem.shape != cur.shape:
            mem = torch.zeros_like(cur)
        mem = self.beta * mem + cur
        spk = (mem > 1.0).to(mem.dtype)
        self.state["mem"] = mem - spk
        return spk


class DictSNN(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1, self.lif1, self.fc2 = nn.Linear(6, 12), DictLIF(), nn.Linear(12, 2)

    def forward(self, x):
        out = 0
        for _ in range(6):
            out = out + self.fc2(self.lif1(self.fc1(x)))
        return out


def test_a_membrane_kept_in_a_dict_of_the_probes_size_is_refused_naming_it():
    torch.manual_seed(0)
    m = DictSNN().double().eval()
    with torch.no_grad():
        m.fc1.weight.mul_(4)
    x = torch.rand(16, 6, dtype=torch.float64)
    with torch.no_grad():
        m(x)  # a validation pass without reset: the membrane [16, 12] stays in the dict
    left = m.lif1.state["mem"].clone()
    with pytest.raises(ValueError, match=r"reads a state it keeps from earlier calls: lif1\.state\['mem'\] \[16, 12\]"):
        input_effects(m, x, target=1)  # ran silently after 54542695: a dict's tensors were no kept state
    assert torch.equal(m.lif1.state["mem"], left)


class OneNeuron(nn.Module):
    """One LIF neuron per sample, its membrane ``[B]`` kept on the module between calls."""

    def __init__(self):
        super().__init__()
        self.fc, self.mem = nn.Linear(6, 1), None

    def forward(self, x):
        out = 0
        for _ in range(3):
            cur = 1.5 * self.fc(x)[:, 0]
            mem = self.mem if self.mem is not None and self.mem.shape == cur.shape else torch.zeros_like(cur)
            mem = 0.8 * mem + cur
            spk = (mem > 1.0).to(mem.dtype)
            self.mem = mem - spk
            out = out + spk
        return torch.stack([-out, out + self.mem], 1)  # the spike count and the membrane left


def test_a_one_dimensional_membrane_of_the_probes_size_is_refused():
    torch.manual_seed(0)
    m = OneNeuron().double().eval()
    with torch.no_grad():
        m.fc.weight.fill_(0.25)
        m.fc.bias.zero_()
    x = torch.rand(16, 6, dtype=torch.float64)
    with torch.no_grad():
        m(x)  # the membrane [16] stays
        assert not torch.equal(m(x), m(x))  # which the next call of 16 rows reads
    with pytest.raises(ValueError, match=r"reads a state it keeps from earlier calls: mem"):
        input_effects(m, x, target=1)
