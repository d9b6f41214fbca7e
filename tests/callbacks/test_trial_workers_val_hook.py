"""A ``val_dataloader`` hook that draws at random (a random subset of the validation set), in a fit whose
first epoch does not validate (``check_val_every_n_epoch=2``, no sanity check): the callback requested the
validation data at ``on_train_start`` to read its probe, so the hook drew from the global generator there
instead of at the first validation. Training's random stream shifted (other dropout masks, other weights)
and validation ran on another subset than the same fit without the callback."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, Subset, TensorDataset

from lightning_causal.audits import InputEffectAudit
from lightning_causal.callbacks import CausalAuditCallback
from tests.helpers.net_modules import NetClassifier

_G = torch.Generator().manual_seed(0)
_X = torch.randn(48, 4, generator=_G)
_Y = (_X[:, 0] > 0).long()


class _Net(NetClassifier):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 2))
        self.validated: list[torch.Tensor] = []
        self.val_requests = 0

    def validation_step(self, batch, batch_idx):
        self.validated.append(batch[0].clone())

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def train_dataloader(self):
        return DataLoader(TensorDataset(_X[:32], _Y[:32]), batch_size=8, shuffle=True)

    def val_dataloader(self):
        self.val_requests += 1
        rows = torch.randperm(16)[:8].tolist()  # a random subset of the validation rows, from the global generator
        return DataLoader(Subset(TensorDataset(_X[32:], _Y[32:]), rows), batch_size=4)


def _fit(tmp_path, with_callback: bool):
    pl.seed_everything(5, verbose=False)
    module = _Net()
    cb = CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=3, report_dir=tmp_path / "r")
    pl.Trainer(max_epochs=4, check_val_every_n_epoch=2, num_sanity_val_steps=0, accelerator="cpu", devices=1, logger=False,
               enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
               callbacks=[cb] if with_callback else []).fit(module)
    return module, cb


def test_reading_the_probe_from_a_random_val_hook_leaves_training_and_validation_as_without_the_callback(tmp_path):
    plain, _ = _fit(tmp_path / "plain", False)
    audited, cb = _fit(tmp_path / "audited", True)
    assert cb.audited_epochs == [0, 1, 2, 3] and cb.probe_origin == "val_dataloaders"
    assert cb.probe.first.shape == (3, 4)
    assert len(audited.validated) == len(plain.validated) == 4  # epochs 1 and 3, two batches each
    assert all(torch.equal(a, b) for a, b in zip(audited.validated, plain.validated))  # the same validation samples
    for name, value in plain.state_dict().items():
        assert torch.equal(audited.state_dict()[name], value), name
    assert audited.val_requests == plain.val_requests  # the probe's request put its counter back: the fit's own requests
