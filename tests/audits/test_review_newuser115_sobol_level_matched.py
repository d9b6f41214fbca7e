"""SobolAudit's refusal of a denoiser's per-sample timesteps names one noise level passed whole,
``mark_whole((torch.full((1,), 25),), [0])``; x_t drawn at per-sample levels beside it (``noisy(x0)``'s, the
callback's draw for the other audits) are then explained as if all were at that level, silently: the refusal now says
that every probe sample's ``x_t`` is to be noised at that level."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal import SobolAudit
from lightning_causal.audits import Probe


class Denoiser(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(6, 6)
        self.temb = nn.Embedding(8, 6)

    def forward(self, x_t, t):
        return self.fc(x_t) + self.temb(t)


def test_the_one_level_way_asks_for_x_t_noised_at_that_level():
    g = torch.Generator().manual_seed(0)
    probe = Probe(torch.randn(16, 6, generator=g), additional_forward_args=(torch.randint(0, 8, (16,), generator=g),))
    with pytest.raises(ValueError, match="SobolAudit draws new inputs") as err:
        SobolAudit(n=32, output=lambda out: out[:, :1], probability=False).validate(Denoiser().eval(), probe)
    said = str(err.value)
    assert "mark_whole((torch.full((1,), 25),), [0])" in said
    assert "every probe sample's `x_t` noised at that level" in said
