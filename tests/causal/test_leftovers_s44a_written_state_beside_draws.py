"""The probe check's written-state rule (``_buffers_read``) beside random draws and in helper objects, against what it
answered silently before: a model that draws from a global generator (MC dropout kept on) passed as noise before any
comparison, so a statistic updated at every call and read (an observation normalizer held as a plain attribute) or a
call counter read as a number (``h * clamp(count / 100, max=1)``, a float that stays whole) moved its effects with the
library's pass count; tensors held on a helper object (a ``RunningMeanStd`` of tensors) were not watched at all. A
counter that only seeds noise (read through ``int()``), and a tensor only written beside the draws, still pass."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal.causal import input_effects


class _RunningMeanStd:
    """Stable Baselines' helper, of tensors: not a module, updated at every call."""

    def __init__(self, d):
        self.mean, self.var, self.count = torch.zeros(d), torch.ones(d), 1e-4

    def update(self, x):
        mean, var, n = x.mean(0), x.var(0, unbiased=False), x.shape[0]
        delta, total = mean - self.mean, self.count + n
        self.mean = self.mean + delta * n / total
        self.var = (self.var * self.count + var * n + delta ** 2 * self.count * n / total) / total
        self.count = total


class _Policy(nn.Module):
    """``kind``: "attr" a running mean held as a plain attribute beside MC dropout; "counter" a float call counter read
    as a number beside MC dropout, "counter_alone" without it; "helper" a ``_RunningMeanStd`` of tensors (no draws); "seed" a float counter that
    seeds a generator of the forward's own, through ``int()``, beside MC dropout; "monitor" a tensor only written beside
    MC dropout."""

    def __init__(self, kind):
        super().__init__()
        torch.manual_seed(0)
        self.kind, self.l1, self.l2 = kind, nn.Linear(3, 16), nn.Linear(16, 2)
        self.mean, self.rms, self.last = torch.zeros(3), _RunningMeanStd(3), torch.zeros(2)
        self.register_buffer("count", torch.tensor(0.0))

    def forward(self, x):
        if self.kind == "attr":
            self.mean = (0.9 * self.mean + 0.1 * x.mean(0)).detach()
            x = x - self.mean
        if self.kind == "helper":
            self.rms.update(x)
            x = (x - self.rms.mean) / (self.rms.var + 1e-8).sqrt()
        h = self.l1(x).relu()
        if self.kind not in ("helper", "counter_alone"):
            h = F.dropout(h, 0.1, training=True)
        if self.kind in ("counter", "counter_alone"):
            self.count += 1
            h = h * torch.clamp(self.count / 100, max=1)
        out = self.l2(h)
        if self.kind == "seed":
            g = torch.Generator().manual_seed(int(self.count))
            self.count += 1
            out = out + 0.1 * torch.randn(out.shape, generator=g)
        if self.kind == "monitor":
            self.last = out.detach().mean(0)
        return out


def _x() -> torch.Tensor:
    return torch.randn(24, 3, generator=torch.Generator().manual_seed(1)) * 2 + 1


@pytest.mark.parametrize("kind", ["attr", "counter"])
def test_a_state_written_and_read_beside_mc_dropout_is_refused(kind):
    with pytest.raises(ValueError, match=r"wrote floating tensors of its own \((mean|count)\) in a pass of probe samples "
                                         r"\[0, 1\] alone, in eval mode, and reads them beside the random numbers"):
        input_effects(_Policy(kind).eval(), _x(), target=0)


def test_a_float_counter_read_as_a_number_without_draws_is_refused():
    """It stays a whole number, so it was put back as a step counter seeding noise, and passed as noise."""
    with pytest.raises(ValueError, match=r"run alone twice differ .* wrote floating tensors of its own in place \(count\)"):
        input_effects(_Policy("counter_alone").eval(), _x(), target=0)


def test_statistics_on_a_helper_object_of_tensors_are_refused():
    with pytest.raises(ValueError, match=r"wrote floating tensors of its own anew \(reassigned\) \(rms.mean, rms.var\)"):
        input_effects(_Policy("helper").eval(), _x(), target=0)


@pytest.mark.parametrize("kind", ["seed", "monitor"])
def test_a_counter_seeding_noise_or_a_tensor_only_written_beside_mc_dropout_passes(kind):
    model = _Policy(kind).eval()
    effects = input_effects(model, _x(), target=0)
    assert effects.shape == (24, 3) and torch.isfinite(effects).all()
    assert float(model.count) == 0.0  # the audit's passes leave the counter as it was
