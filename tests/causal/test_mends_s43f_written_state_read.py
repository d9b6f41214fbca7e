"""The probe check's rule for floating tensors a forward writes at every call, in eval mode too, and reads
(``_buffers_read``: the rows run twice from one snapshot, as they are and with those tensors changed, differ), against
what it answered silently before: a normalizer gated by its own count (NaN > warm-up read as the warm-up), a model that
holds a ``torch.Generator`` (the check skipped), statistics held as plain tensor attributes (not buffers); a float step
counter seeding noise (refused with the wrong cause, as its int twin passes); the message naming how each was written;
and ``_other_value``'s integers, each another of the tensor's own values (1 for 0 indexed past a table of one row)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects
from lightning_causal.causal.engine.sample_independence import _other_value


class _Normalizer(nn.Module):
    """An observation normalizer updated at every call (no `if self.training:`), its mean a buffer updated in place or
    a plain attribute reassigned (``attr=True``), its variance-like scale reassigned (``scale=True``); ``gated``: the raw
    observations until its count passes a warm-up; ``gen``: a generator of its own for exploration noise in training."""

    def __init__(self, gated=False, attr=False, scale=False, gen=False):
        super().__init__()
        torch.manual_seed(0)
        self.fc, self.gated, self.attr, self.scale = nn.Linear(3, 2), gated, attr, scale
        if attr:
            self.mean = torch.zeros(3)
        else:
            self.register_buffer("mean", torch.zeros(3))
        self.register_buffer("count", torch.tensor(10.0))
        self.register_buffer("spread", torch.ones(3))
        self.gen = torch.Generator().manual_seed(0) if gen else None

    def forward(self, x):
        n = x.shape[0]
        step = (x.mean(0) - self.mean) * n / (self.count + n)
        if self.attr:
            self.mean = (self.mean + step).detach()
        else:
            self.mean.add_(step)
        if self.scale:
            self.spread = self.spread * 0.5 + 0.5 * x.std(0).detach()
        self.count.add_(n)
        out = x if self.gated and not bool(self.count > 5) else (x - self.mean) / self.spread
        out = self.fc(out)
        if self.training and self.gen is not None:
            out = out + 0.1 * torch.randn(out.shape, generator=self.gen)
        return out


def _x() -> torch.Tensor:
    return torch.randn(12, 3, generator=torch.Generator().manual_seed(0)) * 2 + 1


@pytest.mark.parametrize("kind", [dict(gated=True), dict(gen=True), dict(attr=True)], ids=["gated", "generator", "attr"])
def test_a_normalizer_updated_at_every_call_and_read_is_refused(kind):
    model = _Normalizer(**kind).eval()
    with pytest.raises(ValueError, match=r"run alone twice differ .* wrote floating tensors of its own .*mean.* and reads "
                                         r"them: a statistic it updates at every call"):
        input_effects(model, _x(), target=0)


def test_the_message_names_what_was_written_in_place_and_what_anew():
    with pytest.raises(ValueError, match=r"in place \(mean, count\) and anew \(reassigned\) \(spread\) in between"):
        input_effects(_Normalizer(scale=True).eval(), _x(), target=0)


class _FloatStepNoise(nn.Module):
    """Noise seeded by a step counter kept as a float buffer: fresh draws at every call, as its int twin's."""

    def __init__(self, dtype):
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(3, 2)
        self.register_buffer("step", torch.zeros((), dtype=dtype))

    def forward(self, x):
        g = torch.Generator().manual_seed(int(self.step))
        self.step += 1
        h = self.fc(x)
        return h + 0.5 * torch.randn(h.shape, generator=g)


@pytest.mark.parametrize("dtype", [torch.long, torch.float32])
def test_noise_seeded_by_a_step_counter_passes_as_noise_whatever_its_dtype(dtype):
    model = _FloatStepNoise(dtype).eval()
    effects = input_effects(model, _x(), target=0)
    assert effects.shape == (12, 3) and torch.isfinite(effects).all()
    assert float(model.step) == 0  # the audit's passes leave the counter as it was


class _MonitoredNoise(nn.Module):
    """Noise from a generator of its own in eval mode beside a buffer it only writes (an activation monitor)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc, self.gen = nn.Linear(3, 2), torch.Generator().manual_seed(0)
        self.register_buffer("last", torch.zeros(2))

    def forward(self, x):
        h = self.fc(x) + 0.5 * torch.randn(x.shape[0], 2, generator=self.gen)
        self.last.copy_(h.detach().mean(0))
        return h


def test_noise_of_a_generator_held_beside_a_tensor_only_written_passes():
    assert input_effects(_MonitoredNoise().eval(), _x(), target=0).shape == (12, 3)


def test_another_integer_value_is_one_of_the_tensors_own_values():
    t = torch.tensor([[3, 0], [3, 7]])
    other = _other_value(t)
    assert (other != t).all() and torch.isin(other, t).all()
    assert _other_value(torch.zeros(4, dtype=torch.long)) is None  # one value: none other known to be in range
    table = nn.Embedding(2, 2)  # a table of two rows indexed by a state of 0s and 1s: still rows of it
    assert table(_other_value(torch.tensor([0, 1, 1]))).shape == (3, 2)


_OUTSIDE = torch.Generator()  # a generator the user's code holds outside the model: no snapshot resets it


class _OutsideNoise(nn.Module):
    """Noise from a generator held outside the model beside a buffer it only writes (an activation monitor)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(3, 2)
        self.register_buffer("last", torch.zeros(2))

    def forward(self, x):
        h = self.fc(x) + 0.5 * torch.randn(x.shape[0], 2, generator=_OUTSIDE)
        self.last.copy_(h.detach().mean(0))
        return h


def test_noise_of_a_generator_held_outside_the_model_beside_a_tensor_only_written_passes():
    _OUTSIDE.manual_seed(0)  # the rows run as they are twice differ: the NaN rule, a monitor only written unread
    assert input_effects(_OutsideNoise().eval(), _x(), target=0).shape == (12, 3)
