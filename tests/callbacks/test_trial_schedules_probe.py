"""The probe of a fit whose first epoch does not validate (found by the schedules trial).

Lightning loads the validation dataloaders before ``on_train_start`` only when the first epoch
validates or the sanity check runs: with ``check_val_every_n_epoch=2`` and
``num_sanity_val_steps=0`` the callback found no validation data and explained the training data,
silently (``probe_origin == "train_dataloader"``), while the same fit with a sanity check explained
the validation data.
"""

import lightning.pytorch as pl
import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal.audits import InputEffectAudit
from lightning_causal.callbacks import CausalAuditCallback


class _Net(pl.LightningModule):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2))
        self.validated_epochs: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)

    def training_step(self, batch, batch_idx):
        x, y = batch
        return F.cross_entropy(self(x), y)

    def validation_step(self, batch, batch_idx):
        x, y = batch
        self.validated_epochs.append(self.current_epoch)
        self.log("val_loss", F.cross_entropy(self(x), y))

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


def _data():
    g = torch.Generator().manual_seed(0)
    xt, xv = torch.randn(32, 4, generator=g), torch.randn(16, 4, generator=g) + 5.0  # the val rows are not training rows
    yt, yv = (xt[:, 0] > 0).long(), (xv[:, 0] > 5).long()
    return DataLoader(TensorDataset(xt, yt), batch_size=8, shuffle=True), DataLoader(TensorDataset(xv, yv), batch_size=8)


def _fit(tmp_path, with_callback: bool, **trainer_options):
    train, val = _data()
    torch.manual_seed(0)
    module = _Net()
    cb = CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=5, report_dir=tmp_path)
    options = dict(max_epochs=2, logger=False, enable_progress_bar=False, enable_model_summary=False, enable_checkpointing=False,
                   accelerator="cpu", devices=1, num_sanity_val_steps=0)
    options.update(trainer_options)
    pl.Trainer(callbacks=[cb] if with_callback else [], **options).fit(module, train, val)
    return cb, module, val


@pytest.mark.parametrize("options", [dict(check_val_every_n_epoch=2), dict(check_val_every_n_epoch=2, reload_dataloaders_every_n_epochs=1)])
def test_the_probe_is_the_validation_data_when_the_first_epoch_does_not_validate(tmp_path, options):
    cb, module, val = _fit(tmp_path, True, **options)
    assert cb.probe_origin == "val_dataloaders"  # before the fix: "train_dataloader"
    assert torch.equal(cb.probe.first, val.dataset.tensors[0][:5])
    assert cb.audited_epochs == [0, 1] and set(module.validated_epochs) == {1}  # validation keeps its own schedule
    _, plain, _ = _fit(tmp_path / "plain", False, **options)
    for name, value in plain.state_dict().items():  # loading the validation data early leaves training bit-identical
        assert torch.equal(module.state_dict()[name], value), name


def test_a_fit_without_validation_explains_the_training_data(tmp_path):
    cb, module, _ = _fit(tmp_path, True, limit_val_batches=0)
    train, _ = _data()
    assert cb.probe_origin == "train_dataloader" and not module.validated_epochs
    assert torch.equal(cb.probe.first, train.dataset.tensors[0][:5])
