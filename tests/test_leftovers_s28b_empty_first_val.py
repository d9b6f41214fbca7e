"""Of several validation dataloaders, an empty first one (a split that kept no sample) beside one with samples stopped
the fit at CausalAuditCallback's set-up ("Expected the fit's val_dataloaders[0] of 2 to hold samples ..."), where
Lightning fits and validates on the other. The callback reads the first validation dataloader that holds samples, as
Lightning validates on it, and its line says which it took and why."""

import logging

import torch
from lightning.pytorch import LightningModule
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalAuditCallback
from lightning_causal.audits import InputEffectAudit
from tests.helpers.lightning import trainer


class _Model(LightningModule):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.net = nn.Linear(4, 2)
        self.validated = []

    def forward(self, x):
        return self.net(x)

    def training_step(self, batch, batch_idx):
        return nn.functional.cross_entropy(self(batch[0]), batch[1])

    def validation_step(self, batch, batch_idx, dataloader_idx=0):
        self.validated.append(dataloader_idx)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _data(n: int, start: float = 0.0) -> TensorDataset:
    return TensorDataset(start + torch.arange(n * 4, dtype=torch.float32).reshape(n, 4), torch.arange(n) % 2)


def _fit(tmp_path, val, caplog):
    caplog.set_level(logging.INFO)
    cb = CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=3)
    model = _Model()
    trainer(tmp_path, max_epochs=1, callbacks=[cb]).fit(model, DataLoader(_data(8), batch_size=4), val)
    return cb, model, caplog.text


def test_an_empty_first_validation_loader_is_passed_over_for_the_next_with_samples(tmp_path, caplog):
    val = [DataLoader(_data(0), batch_size=4), DataLoader(_data(6, start=100.0), batch_size=4)]
    cb, model, out = _fit(tmp_path, val, caplog)
    assert set(model.validated) == {1}  # Lightning validated on the second
    assert cb.audited_epochs == [0] and cb.probe_origin == "val_dataloaders[1] of 2"
    assert torch.equal(cb.probe.first, _data(6, start=100.0).tensors[0][:3])  # its first 3 samples
    assert "CausalAuditCallback explains val_dataloaders[1] of 2 (the first one holds no samples)" in out


def test_a_mapping_of_validation_loaders_names_the_key_taken(tmp_path, caplog):
    val = {"empty": DataLoader(_data(0), batch_size=4), "also": DataLoader(_data(0), batch_size=4),
           "ood": DataLoader(_data(5, start=50.0), batch_size=4)}
    cb, _, out = _fit(tmp_path, val, caplog)
    assert cb.probe_origin == "val_dataloaders['ood'] of 3"
    assert torch.equal(cb.probe.first, _data(5, start=50.0).tensors[0][:3])
    assert "explains val_dataloaders['ood'] of 3 (the first 2 hold no samples)" in out


def test_a_first_loader_with_samples_is_read_as_before(tmp_path, caplog):
    val = [DataLoader(_data(6, start=100.0), batch_size=4), DataLoader(_data(0), batch_size=4)]
    cb, _, out = _fit(tmp_path, val, caplog)
    assert cb.probe_origin == "val_dataloaders[0] of 2" and "holds no samples" not in out
    assert torch.equal(cb.probe.first, _data(6, start=100.0).tensors[0][:3])
