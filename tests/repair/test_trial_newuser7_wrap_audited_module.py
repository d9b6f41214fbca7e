"""CausalRepairModule.wrap of a module that names its audited network (``audited_module``: an EMA copy, newuser7
trial; a GAN's discriminator): the wrap's own ``audited_module`` returned the wrapped module, so the audits switched
to its ``forward`` network and the fit stopped at set-up ("Unknown module name '0' ... 'net.0', 'ema.0'"), though
wrapping promises the layer names and tags of before. The wrap passes the wrapped module's ``audited_module`` on."""

from __future__ import annotations

import copy
import warnings
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback, CausalRepairModule, UnitImportanceAudit


class WithEMA(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
        self.ema = copy.deepcopy(self.net).requires_grad_(False)

    @property
    def audited_module(self) -> nn.Module:
        return self.ema

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        return F.cross_entropy(self(batch[0]), batch[1])

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        with torch.no_grad():
            for e, p in zip(self.ema.parameters(), self.net.parameters()):
                e.lerp_(p, 0.5)

    def configure_optimizers(self):
        return torch.optim.SGD(self.net.parameters(), lr=0.1)


def _fit(module: pl.LightningModule, tmp_path: Path) -> dict[str, float]:
    x = torch.randn(32, 4, generator=torch.Generator().manual_seed(0))
    y = (x[:, 0] > 0).long()
    callback = CausalAuditCallback([UnitImportanceAudit(["0"])], probe=(x[:16], y[:16]))
    pl.seed_everything(0, verbose=False)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pl.Trainer(max_epochs=1, logger=False, callbacks=[callback], enable_checkpointing=False, enable_progress_bar=False,
                   enable_model_summary=False, default_root_dir=tmp_path).fit(module, DataLoader(TensorDataset(x, y), batch_size=16))
    return callback.last_scalars


def test_the_wrap_audits_what_the_wrapped_module_names(tmp_path: Path) -> None:
    pl.seed_everything(0, verbose=False)
    module = WithEMA()
    repair = CausalRepairModule.wrap(module, [])
    assert repair.audited_module is module.ema
    pl.seed_everything(0, verbose=False)
    plain = _fit(WithEMA(), tmp_path)
    pl.seed_everything(0, verbose=False)
    wrapped = _fit(CausalRepairModule.wrap(WithEMA(), []), tmp_path)
    assert "causal/unit_importance/0/top1_importance" in plain
    wrapped.pop("causal/audit_seconds"), plain.pop("causal/audit_seconds")
    assert wrapped == plain  # no terms: the same training, the same EMA network explained, the same tags
