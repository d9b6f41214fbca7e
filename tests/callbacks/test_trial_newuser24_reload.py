"""``reload_dataloaders_every_n_epochs=1`` with a validation set that changes at each reload (newuser24 trial): the
fit validates on each reloaded loader while every audit explains the samples read at the start of fit (docs/index.md,
"When, with other Trainer settings"), and the callback requests no loader of its own."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback
from lightning_causal.audits import Audit, AuditResult, Probe
from tests.helpers.lightning import quick_trainer


class _Reloading(pl.LightningModule):
    """A linear classifier whose ``val_dataloader`` gives other samples at each call (seed = the call's number)."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(3, 2)
        self.val_calls: list[torch.Tensor] = []
        self.validated: list[torch.Tensor] = []

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        return F.cross_entropy(self(batch[0]), batch[1])

    def validation_step(self, batch, batch_idx):
        self.validated.append(batch[0][0].clone())
        self.log("val_loss", F.cross_entropy(self(batch[0]), batch[1]))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        g = torch.Generator().manual_seed(100)
        return DataLoader(TensorDataset(torch.randn(16, 3, generator=g), torch.randint(0, 2, (16,), generator=g)), batch_size=8)

    def val_dataloader(self):
        g = torch.Generator().manual_seed(len(self.val_calls))
        x = torch.randn(6, 3, generator=g)
        self.val_calls.append(x)
        return DataLoader(TensorDataset(x, torch.randint(0, 2, (6,), generator=g)), batch_size=6)


class _SeenProbe(Audit):
    """Records the probe of each audit."""

    def __init__(self) -> None:
        super().__init__("seen")
        self.probes: list[torch.Tensor] = []

    def run(self, model, probe: Probe, *, max_batch_size=None) -> AuditResult:
        self.probes.append(probe.first.clone())
        return AuditResult(self.name, scalars={"n": float(len(probe))})


def _fit(audit: _SeenProbe | None) -> _Reloading:
    torch.manual_seed(0)
    module = _Reloading()
    callbacks = [CausalAuditCallback([audit], probe_size=4)] if audit is not None else []
    quick_trainer(max_epochs=3, callbacks=callbacks, reload_dataloaders_every_n_epochs=1).fit(module)
    return module


def test_each_audit_explains_the_first_loaders_samples_while_validation_follows_the_reloads():
    audit = _SeenProbe()
    module, plain = _fit(audit), _fit(None)
    assert len(module.val_calls) == len(plain.val_calls) == 3  # the sanity check's and two reloads: none added
    assert not torch.equal(module.val_calls[0], module.val_calls[2])  # the reloads give other samples
    assert torch.equal(module.validated[-1], module.val_calls[2][0])  # validated on the last reload
    assert len(audit.probes) == 3 + 1  # the dry run at set-up (2 samples), then epochs 0, 1, 2
    for seen in audit.probes[1:]:
        assert torch.equal(seen, module.val_calls[0][:4])
    assert all(torch.equal(a, b) for a, b in zip(module.state_dict().values(), plain.state_dict().values()))
