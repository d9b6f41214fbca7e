"""A VAE explained through its latent mean (`output=lambda out: out[1]`, 4 columns) with digit labels
0..9 in its batches: the callback refused the labels as 'classes 0 to 3 ... (e.g. labels numbered
from 1)' without the way out for a model whose labels are no classes of its output. The message now
names `unpack_batch=` dropping them; with it the fit runs and the logged effect is a float64 loop's."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from lightning.fabric.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, InputEffectAudit


class VAE(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Sequential(nn.Linear(6, 8), nn.ReLU())
        self.mu, self.logvar = nn.Linear(8, 4), nn.Linear(8, 4)
        self.dec = nn.Linear(4, 6)

    def forward(self, x):
        h = self.enc(x)
        mu, logvar = self.mu(h), self.logvar(h)
        z = mu + torch.randn_like(mu) * (0.5 * logvar).exp() if self.training else mu  # reparameterised in training only
        return self.dec(z), mu, logvar

    def training_step(self, batch, batch_idx):
        x, _ = batch
        recon, mu, logvar = self(x)
        return F.mse_loss(recon, x) + (-0.5 * (1 + logvar - mu**2 - logvar.exp()).sum(1)).mean()

    def validation_step(self, batch, batch_idx):
        pass

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def _fit(report_dir, unpack_batch=None):
    torch.manual_seed(0)
    x, y = torch.randn(40, 6), torch.arange(40) % 10
    loader = DataLoader(TensorDataset(x, y), batch_size=20)
    model = VAE()
    callback = CausalAuditCallback([InputEffectAudit(output=lambda out: out[1], target=2, ace_values=None, name="mu2")],
                                   probe_size=16, unpack_batch=unpack_batch, report_dir=report_dir)
    trainer = pl.Trainer(max_epochs=1, logger=False, callbacks=[callback], enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False)
    trainer.fit(model, loader, loader)
    return trainer, model, x[:16]


def test_labels_that_are_no_classes_of_the_output_name_the_way_out(tmp_path):
    with pytest.raises(MisconfigurationException, match=r"unpack_batch=lambda batch: \(batch\[0\], None, None\)"):
        _fit(tmp_path)


def test_without_labels_the_latent_effects_equal_a_float64_loop(tmp_path):
    trainer, model, x = _fit(tmp_path, unpack_batch=lambda batch: (batch[0], None, None))
    assert model.training  # back in training mode after the audit
    m64, x64 = model.double().eval(), x.double()
    with torch.no_grad():
        full = m64(x64)[1][:, 2]
        reference = torch.stack([full - m64(x64.index_fill(1, torch.tensor([g]), 0.0))[1][:, 2] for g in range(6)], 1)
    logged = float(trainer.callback_metrics["causal/mu2/mean_abs_effect"])
    assert logged == pytest.approx(float(reference.abs().mean()), rel=1e-5)
