"""Leftovers of session 38: the flow-latent warning read the shapes only (an element of the input's shape beside one
number per sample), so an actor-critic with as many actions as observation features, ``(logits, value)``, and an
autoencoder returning ``(reconstruction, error per sample)`` that declare no task were told their output may be a flow's
``(z, log_det)``. An output coming out of a torch layer that changes the width (a policy head, a decoder's last layer,
through an activation) is no step of a flow, which keeps the width throughout: not warned of; flows still are."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal import InputEffectAudit, audit_model
from lightning_causal.audits import Probe
from tests.audits.test_lead_s38_flow_warnings_told_task import _SigmoidCouplingFlow
from tests.callbacks.test_trial_newuser90_flow_latent import AffineFlow

WORDS = "normalizing flow's `(z, log_det)`"


class _ActorCritic(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.trunk = nn.Sequential(nn.Linear(4, 16), nn.Tanh())
        self.policy, self.value = nn.Linear(16, 4), nn.Linear(16, 1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.trunk(x)
        return self.policy(h), self.value(h)


class _Autoencoder(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.encoder = nn.Sequential(nn.Linear(4, 2), nn.ReLU())
        self.decoder = nn.Sequential(nn.Linear(2, 4), nn.Sigmoid())

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        recon = self.decoder(self.encoder(x))
        return recon, (recon - x).pow(2).mean(1)


def _warned(model: nn.Module) -> list[str]:
    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(1))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        audit_model(model, [InputEffectAudit(ace_values=None, output=0)], Probe(x), probe_size=32)
    return [str(w.message) for w in seen if WORDS in str(w.message)]


@pytest.mark.parametrize("model", [_ActorCritic, _Autoencoder])
def test_a_head_of_another_width_is_no_flow_latent(model):
    assert _warned(model()) == []


@pytest.mark.parametrize("model", [AffineFlow, _SigmoidCouplingFlow])
def test_flows_are_still_warned_of(model):
    assert len(_warned(model())) == 1
