"""Lead (session 37), final read of 54542695/745097e3/7a41ee3e (the check of samples run alone, stateful models).

- A spiking membrane kept two dicts deep (``self.st["l1"]["mem"] = mem - spk``) was not among the kept tensors, so the
  second run alone read the first run's membrane, passed as noise, and ``input_effects`` ran off the hand loop (0.44 on
  effects up to 5) in silence: it is refused, naming the state.
- A model drawing noise seeded by a call counter it keeps (``self.step += 1``) and keeping its last output
  (``self.last = out.detach()``, only written) was refused as reading a state it keeps: the restore between the runs
  alone put the counter back too, so both drew the same noise. It runs, as it did before 54542695.
"""

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects


class NestedLIF(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc1, self.fc2 = nn.Linear(6, 12), nn.Linear(12, 2)
        with torch.no_grad():
            self.fc1.weight.mul_(4)
        self.st = {"l1": {}}

    def forward(self, x):
        out = 0
        for _ in range(6):
            cur = self.fc1(x)
            mem = self.st["l1"].get("mem")
            mem = mem if mem is not None and mem.shape == cur.shape else torch.zeros_like(cur)
            mem = 0.8 * mem + cur
            spk = (mem > 1).to(mem.dtype)
            self.st["l1"]["mem"] = mem - spk
            out = out + self.fc2(spk)
        return out


def test_a_membrane_two_dicts_deep_is_refused():
    model = NestedLIF().double().eval()
    x = torch.rand(16, 6, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        model(x)  # a validation batch of the probe's size leaves its membrane
    kept = model.st["l1"]["mem"]
    with pytest.raises(ValueError, match=r"st\['l1'\]\['mem'\]"):
        input_effects(model, x, target=1)
    assert model.st["l1"]["mem"] is kept


class CounterNoise(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(6, 2)
        self.register_buffer("step", torch.zeros((), dtype=torch.long))

    def forward(self, x):
        g = torch.Generator().manual_seed(int(self.step))
        self.step += 1
        out = self.fc(x) + 0.5 * torch.randn(x.shape[0], 2, generator=g)
        self.last = out.detach()  # kept for a plot, never read
        return out


def test_counter_seeded_noise_beside_a_kept_output_runs_and_leaves_the_state():
    model = CounterNoise().eval()
    x = torch.rand(16, 6, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        model(x)
    step, last = model.step.clone(), model.last
    effects = input_effects(model, x, target=1)
    assert effects.shape == (16, 6)
    assert torch.equal(model.step, step) and model.last is last
