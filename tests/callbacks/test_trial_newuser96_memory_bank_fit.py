"""A kNN classifier whose memory bank of (key, label) buffers its training-mode forward fills (a FIFO queue, as MoCo's)
trains the same with and without the audits: the same seed gives bit-identical weights and bank (trial newuser96,
who checked it with all nine audits; here the effects, their ACE curves and the units)."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, InputEffectAudit, UnitImportanceAudit

Q, D, H, C = 32, 4, 8, 2


class _KNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.enc, self.head = nn.Linear(D, H), nn.Linear(H, C)
        self.register_buffer("keys", torch.zeros(Q, H))
        self.register_buffer("labels", torch.full((Q,), -1, dtype=torch.long))
        self.register_buffer("ptr", torch.zeros((), dtype=torch.long))

    def forward(self, x: torch.Tensor, y: torch.Tensor | None = None) -> torch.Tensor:
        z = F.normalize(self.enc(x), dim=1)
        p = self.head(z).softmax(1)
        s, i = (z @ self.keys.clone().T).masked_fill(self.labels < 0, -1e4).topk(4, dim=1)
        p_knn = torch.zeros_like(p).scatter_add(1, self.labels[i].clamp(min=0), (s / 0.1).softmax(1))
        if self.training and y is not None:  # the bank is written with the training rows' labels
            with torch.no_grad():
                rows = (self.ptr + torch.arange(x.shape[0])) % Q
                self.keys[rows], self.labels[rows] = z, y
                self.ptr.copy_((self.ptr + x.shape[0]) % Q)
        return (0.5 * p + 0.5 * p_knn).clamp_min(1e-8).log()


class _Lit(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.model = _KNN()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> torch.Tensor:
        return F.nll_loss(self.model(*batch), batch[1])

    def validation_step(self, batch: tuple[torch.Tensor, torch.Tensor], _: int) -> None:
        self.log("val_loss", F.nll_loss(self.model(batch[0]), batch[1]))

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=1e-2)


def _fit(tmp_path, audits: bool) -> dict[str, torch.Tensor]:
    pl.seed_everything(0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(96, D, generator=g)
    y = (x[:, 0] > 0).long()
    lit = _Lit()
    callbacks = [CausalAuditCallback([InputEffectAudit(), UnitImportanceAudit(["model.enc"])], probe_size=16)] if audits else []
    trainer = pl.Trainer(max_epochs=2, callbacks=callbacks, default_root_dir=tmp_path, logger=False,
                         enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False)
    trainer.fit(lit, DataLoader(TensorDataset(x[:64], y[:64]), batch_size=16, shuffle=True),
                DataLoader(TensorDataset(x[64:], y[64:]), batch_size=32))
    return {k: v.clone() for k, v in lit.state_dict().items()}


def test_same_seed_same_weights_and_memory_bank_with_and_without_the_audits(tmp_path) -> None:
    plain, audited = _fit(tmp_path / "plain", False), _fit(tmp_path / "audited", True)
    assert int(plain["model.ptr"]) == 128 % Q and bool((plain["model.labels"] >= 0).all())  # the bank was written
    for name in plain:
        assert torch.equal(plain[name], audited[name]), name
