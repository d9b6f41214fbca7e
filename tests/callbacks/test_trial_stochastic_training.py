"""Models that draw noise in eval mode and seeded interventions in a fit: training sees the same
random stream with and without the audits, audits of the same weights give the same numbers."""

from __future__ import annotations

import random
import warnings

import lightning.pytorch as pl
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, InputEffectAudit, SobolAudit, UnitImportanceAudit
from lightning_causal.audits.base import Probe
from lightning_causal.causal import Resample, capture
from lightning_causal.models import LightningClassifier
from tests.helpers.lightning import trainer

X = torch.randn(96, 6, generator=torch.Generator().manual_seed(0))
Y = (X[:, 0] + X[:, 1] > 0).long()


class MCDropoutVAE(nn.Module):
    """A sampled latent and dropout kept on, both in eval mode."""

    def __init__(self) -> None:
        super().__init__()
        self.enc, self.fc, self.out = nn.Linear(6, 8), nn.Linear(4, 8), nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu, logvar = self.enc(x).chunk(2, dim=1)
        z = mu + (0.5 * logvar).exp() * torch.randn_like(mu)
        return self.out(F.dropout(F.relu(self.fc(z)), 0.2, training=True))


def _loaders():
    return (DataLoader(TensorDataset(X[:64], Y[:64]), batch_size=16, shuffle=True),
            DataLoader(TensorDataset(X[64:], Y[64:]), batch_size=32))


def _fit(tmp_path, audits=None):
    pl.seed_everything(0, verbose=False)
    module = LightningClassifier(MCDropoutVAE(), lr=0.05)
    callbacks = [CausalAuditCallback(audits, probe_size=16, report_dir=tmp_path / "reports")] if audits else []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer(tmp_path, max_epochs=2, deterministic=True, callbacks=callbacks).fit(module, *_loaders())
    streams = (torch.rand(2), np.random.rand(), random.random())
    return module, streams, (callbacks[0].last_scalars if callbacks else None)


def test_audits_of_a_noisy_model_leave_training_bit_identical_and_repeat_exactly(tmp_path):
    def audits():
        return [InputEffectAudit(ace_values=3, ace_samples=8), UnitImportanceAudit(["model.fc"]),
                SobolAudit(n=64, n_bootstrap=0)]

    plain, plain_streams, _ = _fit(tmp_path / "plain")
    audited, streams, scalars = _fit(tmp_path / "a", audits())
    _, _, again = _fit(tmp_path / "b", audits())
    for k, v in plain.state_dict().items():
        assert torch.equal(v, audited.state_dict()[k]), k
    assert torch.equal(plain_streams[0], streams[0]) and plain_streams[1:] == streams[1:]
    timing = "causal/audit_seconds"
    assert {k: v for k, v in scalars.items() if k != timing} == {k: v for k, v in again.items() if k != timing}
    assert len(scalars) > 10  # same seed, same weights: every audit number is bit-identical


def test_a_resample_audit_draws_the_same_donors_at_every_run(tmp_path):
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(6, 8), nn.ReLU(), nn.Linear(8, 2))
    with capture(net, ["1"]) as acts:
        net(X)
    audit = UnitImportanceAudit(["model.1"], intervention=Resample(acts["1"], torch.Generator().manual_seed(3)))
    module = LightningClassifier(net, lr=0.05)
    cb = CausalAuditCallback([audit], probe=X[64:80], report_dir=tmp_path / "reports")
    trainer(tmp_path, max_epochs=1, callbacks=[cb]).fit(module, *_loaders())
    # the dry run at set-up and the epoch's audit drew nothing from the donors the next run sees
    by_hand = audit.run(module, Probe(X[64:80])).scalars
    assert all(cb.last_scalars[f"causal/unit_importance/{k}"] == v for k, v in by_hand.items())
    assert by_hand == audit.run(module, Probe(X[64:80])).scalars


def test_an_audit_of_a_noisy_model_draws_from_seed_0_not_from_where_training_left_the_stream(tmp_path):
    torch.manual_seed(0)
    module = LightningClassifier(MCDropoutVAE(), lr=0.05)
    audit = InputEffectAudit(ace_values=None)
    cb = CausalAuditCallback([audit], probe=X[64:80], report_dir=tmp_path / "reports")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        trainer(tmp_path, max_epochs=1, callbacks=[cb]).fit(module, *_loaders())
        torch.manual_seed(0)
        by_hand = audit.run(module, Probe(X[64:80])).scalars
    assert by_hand and all(cb.last_scalars[f"causal/input_effect/{k}"] == v for k, v in by_hand.items())
