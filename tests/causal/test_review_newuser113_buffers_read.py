"""0b1a7de2 refused a forward that writes floating buffers in place between two runs alone of the same rows (an
observation normalizer updated in eval mode too). Its neighbours: the same normalizer reassigning its buffers
(`self.mean = self.mean + ...`, as many running-statistics modules do) was still explained in silence, and a buffer only
written (an activation monitor) beside noise seeded by a step counter was refused as a statistic read, where the
noise alone passes. The buffers written are now those reassigned too, and refused only where the forward reads them
(the rows run once more with them NaN give NaN); that pass leaves no state. A cache read across calls is named with its
way out."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects


class _Normalizer(nn.Module):
    """Running mean of the observations, reassigned at every call (eval mode too)."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(3))
        self.register_buffer("count", torch.tensor(4.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        self.mean = (self.mean + (x.mean(0) - self.mean) * n / (self.count + n)).detach()
        self.count = self.count + n
        return x - self.mean


class _Noisy(nn.Module):
    """Noise seeded by a step counter (an integer buffer: noise, passed), and, with `monitor`, the mean of its hidden
    units kept in a floating buffer at every call, never read."""

    def __init__(self, monitor: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc, self.monitor = nn.Linear(3, 2), monitor
        self.register_buffer("step", torch.zeros((), dtype=torch.long))
        self.register_buffer("act_mean", torch.zeros(2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        g = torch.Generator().manual_seed(int(self.step))
        self.step += 1
        h = self.fc(x)
        if self.monitor:
            with torch.no_grad():
                self.act_mean.mul_(0.9).add_(0.1 * h.mean(0))
        return h + 0.5 * torch.randn(h.shape, generator=g)


class _Cache(nn.Module):
    """A cache of the rows' features, filled at a position that moves on at every call and read up to it (answered
    in silence before 0b1a7de2, off from the effects with the cache emptied at every call)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc, self.out = nn.Linear(4, 4), nn.Linear(4, 3)
        self.register_buffer("k_cache", torch.zeros(256, 8, 4))
        self.register_buffer("pos", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, p = x.shape[0], int(self.pos) % 8
        with torch.no_grad():
            self.k_cache[:b, p] = self.fc(x)
        self.pos += 1
        return self.out(self.k_cache[:b, :p + 1].mean(1))


def _x() -> torch.Tensor:
    return torch.randn(12, 3, generator=torch.Generator().manual_seed(0)) * 2 + 1


def test_a_normalizer_reassigning_its_buffers_is_refused_and_left_as_it_was() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(_Normalizer(), nn.Linear(3, 2)).eval()
    mean = model[0].mean
    with pytest.raises(ValueError, match=r"wrote floating tensors of its own anew \(reassigned\) \(0\.mean, 0\.count\) in between") as err:
        input_effects(model, _x())
    assert "if self.training:" in str(err.value)
    assert model[0].mean is mean and float(model[0].count) == 4.0


def test_a_monitor_only_written_beside_noise_passes_as_the_noise_alone() -> None:
    monitored, plain, x = _Noisy(monitor=True).eval(), _Noisy(monitor=False).eval(), _x()
    # the monitor never read: the same effects as without it, the check's extra pass drawing no noise of its own
    assert torch.equal(input_effects(monitored, x), input_effects(plain, x))
    assert torch.equal(monitored.act_mean, torch.zeros(2)) and int(monitored.step) == 0


def test_a_cache_read_across_calls_names_emptying_it() -> None:
    model = _Cache().eval()
    with pytest.raises(ValueError, match=r"in place \(k_cache\) in between") as err:
        input_effects(model, torch.randn(16, 4, generator=torch.Generator().manual_seed(0)) * 3 + 1)
    assert "empty it at the start of every call" in str(err.value)
    assert int(model.pos) == 0 and torch.equal(model.k_cache, torch.zeros(256, 8, 4))


def test_a_scripted_normalizer_is_refused_naming_its_buffers() -> None:
    # the read check found the buffers' modules with get_submodule, which a ScriptModule lacks: its RuntimeError was
    # read as the samples failing alone
    torch.manual_seed(0)
    model = torch.jit.script(nn.Sequential(_Normalizer(), nn.Linear(3, 2)).eval())
    with pytest.raises(ValueError, match=r"\(0\.mean, 0\.count\) in between, in eval mode, and reads them"):
        input_effects(model, _x())
    assert float(model[0].count) == 4.0
