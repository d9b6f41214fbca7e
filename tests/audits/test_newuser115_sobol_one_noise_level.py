"""SobolAudit on a denoiser ``forward(x_t, t)``: its per-sample timesteps cannot follow the inputs it draws, and the
refusal named only a concatenating wrapper, ``sobol_indices`` by hand, and ``mark_whole`` for a context set. It now
names the way that keeps the model as it is: one noise level passed whole, ``mark_whole((torch.full((1,), 25),), [0])``.
Followed, a region of ``x_t`` that the network never sees (masked) gets first-order and total indices of exactly 0, and
the indices equal those of the model with that noise level fixed inside its ``forward``."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal import SobolAudit
from lightning_causal.audits import Probe
from lightning_causal.causal import mark_whole


class Denoiser(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("seen", torch.ones(1, 1, 4, 4))
        self.seen[..., 2:] = 0  # columns 2-3 of x_t never reach the network
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.gn = nn.GroupNorm(1, 3)
        self.temb = nn.Embedding(10, 3)
        self.out = nn.Conv2d(3, 1, 3, padding=1)

    def forward(self, x_t, t):
        h = torch.tanh(self.gn(self.conv(x_t * self.seen))) + self.temb(t)[:, :, None, None]
        return self.out(h)


def region(out):
    return out.mean((1, 2, 3))[:, None]


def _probe(whole: bool) -> Probe:
    g = torch.Generator().manual_seed(0)
    x_t = torch.randn(32, 1, 4, 4, generator=g)
    t = torch.full((1,), 4) if whole else torch.randint(0, 10, (32,), generator=g)
    return Probe(x_t, additional_forward_args=mark_whole((t,), [0]) if whole else (t,))


def test_per_sample_timesteps_are_refused_naming_one_noise_level_passed_whole():
    torch.manual_seed(0)
    with pytest.raises(ValueError, match="SobolAudit draws new inputs") as err:
        SobolAudit(n=64, patch_size=2, output=region, probability=False).validate(Denoiser().eval(), _probe(False))
    said = str(err.value)
    assert "denoiser's timesteps `t` fixed at one noise level" in said
    assert "mark_whole((torch.full((1,), 25),), [0])" in said


class AtOneLevel(nn.Module):
    """The denoiser with its noise level fixed inside: ``forward(x_t)``."""

    def __init__(self, model: Denoiser) -> None:
        super().__init__()
        self.model = model

    def forward(self, x_t):
        return self.model(x_t, torch.full((1,), 4))


def test_one_noise_level_passed_whole_gives_the_fixed_level_models_indices_and_zero_for_the_unseen_columns():
    torch.manual_seed(0)
    model = Denoiser().eval()
    probe = _probe(True)
    audit = SobolAudit(n=128, patch_size=2, output=region, probability=False, seed=3)
    result = audit.run(model, probe)
    fixed = audit.run(AtOneLevel(model).eval(), Probe(probe.inputs))
    for key in ("first", "total"):
        torch.testing.assert_close(torch.as_tensor(result.vectors[key]), torch.as_tensor(fixed.vectors[key]), rtol=0, atol=1e-6)
    first, total = torch.as_tensor(result.vectors["first"]), torch.as_tensor(result.vectors["total"])
    unseen = [1, 3]  # the patches of columns 2-3
    assert first[unseen].abs().max() == 0 and total[unseen].abs().max() == 0
    assert total[[0, 2]].min() > 0.05
