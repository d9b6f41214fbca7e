"""An SNGP (a spectral-normalised trunk, whose power iteration updates its ``u``/``v`` buffers at every training-mode
forward, and a random-Fourier-feature Gaussian-process head whose precision matrix, a buffer, is accumulated in the
forward passes of the last epoch) and a Bayesian last layer that samples its weights at every forward, eval included:
the same seed gives bit-identical weights and buffers with and without ``CausalAuditCallback``; an SNGP's mean-field
logits are explained by default, its ``(logits, var)`` return by ``output=0``/``output=1``, and a covariance across the
batch ``[N, N]`` (Edward2's ``return_covmat=True``) is refused as an output whose width follows the batch, its diagonal
taken. A user's check, ``docs/your_model.md`` (probabilistic models)."""

from __future__ import annotations

import math

import lightning.pytorch as pl
import pytest
import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils.parametrizations import spectral_norm
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, InputEffectAudit, UnitImportanceAudit
from lightning_causal.causal import input_effects


class GPHead(nn.Module):
    def __init__(self, d: int = 16, m: int = 32, k: int = 3, returns: str = "mean_field") -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.register_buffer("W", torch.randn(m, d, generator=g))
        self.register_buffer("b", torch.rand(m, generator=g) * 2 * math.pi)
        self.beta = nn.Linear(m, k, bias=False)
        self.register_buffer("precision", torch.eye(m))
        self.update, self.returns = False, returns

    def forward(self, h):
        phi = math.sqrt(2.0 / self.W.shape[0]) * torch.cos(h @ self.W.T + self.b)
        logits = self.beta(phi)
        if self.training:
            if self.update:
                self.precision += phi.detach().T @ phi.detach()
            return logits
        cov = phi @ torch.linalg.inv(self.precision) @ phi.T
        if self.returns == "covmat":
            return logits, cov
        var = cov.diagonal().unsqueeze(1)
        return logits / torch.sqrt(1 + math.pi / 8 * var) if self.returns == "mean_field" else (logits, var)


class SNGP(nn.Module):
    def __init__(self, returns: str = "mean_field") -> None:
        super().__init__()
        self.trunk = nn.Sequential(spectral_norm(nn.Linear(4, 16)), nn.ReLU(), spectral_norm(nn.Linear(16, 16)), nn.ReLU())
        self.gp = GPHead(returns=returns)

    def forward(self, x):
        return self.gp(self.trunk(x))


class BayesLast(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.trunk = nn.Sequential(nn.Linear(4, 16), nn.ReLU())
        self.w_mu, self.w_rho = nn.Parameter(torch.randn(3, 16) * 0.1), nn.Parameter(torch.full((3, 16), -3.0))

    def forward(self, x):
        w = self.w_mu + F.softplus(self.w_rho) * torch.randn_like(self.w_mu)  # a new draw at every forward
        return self.trunk(x) @ w.T


class Lit(pl.LightningModule):
    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x):
        return self.model(x)

    def on_train_epoch_start(self) -> None:
        gp = getattr(self.model, "gp", None)
        if gp is not None and self.current_epoch == self.trainer.max_epochs - 1:
            gp.update = True  # the precision of the last epoch's features

    def training_step(self, batch, i):
        return F.cross_entropy(self.model(batch[0]), batch[1])

    def validation_step(self, batch, i):
        self.log("val_loss", F.cross_entropy(self.model(batch[0]), batch[1]))

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-2)


def _data(n: int = 128):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    return x, (x[:, 0] > 0.5).long() + (x[:, 0] > -0.5).long()


def _fit(make, audited: bool) -> dict[str, torch.Tensor]:
    pl.seed_everything(0, verbose=False)
    lit, (x, y) = Lit(make()), _data()
    callbacks = [CausalAuditCallback([InputEffectAudit(), UnitImportanceAudit(["model.trunk.1"])], probe_size=32)] if audited else []
    trainer = pl.Trainer(max_epochs=2, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, callbacks=callbacks, deterministic=True, default_root_dir=None)
    loader = DataLoader(TensorDataset(x, y), batch_size=32)
    trainer.fit(lit, loader, loader)
    return {k: v.clone() for k, v in lit.model.state_dict().items()}


@pytest.mark.parametrize("make", [SNGP, BayesLast], ids=["sngp", "bayes_last_layer"])
def test_same_seed_same_weights_and_buffers_with_and_without_the_callback(make, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    plain, audited = _fit(make, False), _fit(make, True)
    if make is SNGP:  # the buffers at stake moved in training
        assert not torch.equal(plain["gp.precision"], torch.eye(32))
        assert "trunk.0.parametrizations.weight.0._u" in plain
    assert [k for k in plain if not torch.equal(plain[k], audited[k])] == []


def test_the_outputs_of_an_sngp():
    x, _ = _data(32)
    torch.manual_seed(0)
    mean_field, pair, covmat = SNGP().eval(), SNGP("pair").eval(), SNGP("covmat").eval()
    pair.load_state_dict(mean_field.state_dict())
    covmat.load_state_dict(mean_field.state_dict())
    with pytest.raises(TypeError, match=r"got tuple of 2 items.*`output=0`"):
        input_effects(pair, x)
    variance = input_effects(pair, x, output=1)
    torch.testing.assert_close(input_effects(covmat, x, output=lambda o: o[1].diagonal().unsqueeze(1)), variance)
    with torch.no_grad():  # by hand: set column 0 to 0, rerun, difference
        hand = pair(x)[1][:, 0] - pair(torch.cat([torch.zeros(32, 1), x[:, 1:]], 1))[1][:, 0]
    torch.testing.assert_close(variance[:, 0], hand)
    with pytest.raises(ValueError, match="width follows the batch"):
        input_effects(covmat, x, output=1)
    input_effects(mean_field, x)  # a tensor: explained as logits
