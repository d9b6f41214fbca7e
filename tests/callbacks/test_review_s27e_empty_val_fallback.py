"""A fit whose validation dataset is empty (a split whose filter kept nothing: Lightning runs the fit, warns "Total
length of `DataLoader` across ranks is zero" and validates on nothing) was stopped at set-up by CausalAuditCallback
(2b37c2c0: "Expected the fit's val_dataloaders to hold samples ..."), while a fit that validates on nothing otherwise
(no `val_dataloaders`, an empty list of them, `limit_val_batches=0`) explains the first training samples and says so
(docs/index.md). An empty validation set is such a fit: the callback explains the training data and says why."""

from __future__ import annotations

import logging

import torch
from torch.utils.data import DataLoader, Subset, TensorDataset

from lightning_causal import CausalAuditCallback
from lightning_causal.audits import InputEffectAudit
from tests.helpers.lightning import trainer
from tests.repair.test_leftovers_s27_no_val_warning import _WithValidation


class _Module(_WithValidation):
    def forward(self, x):  # noqa: ANN001, ANN201
        return self.net(x)


def _data(n: int) -> TensorDataset:
    return TensorDataset(torch.randn(n, 4, generator=torch.Generator().manual_seed(0)), torch.arange(n) % 2)


def test_an_empty_validation_set_explains_the_training_data_and_says_so(tmp_path, caplog):
    train = _data(12)
    for empty in (_data(0), Subset(_data(6), [])):  # no samples, or a split that kept none
        cb = CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=5, report_dir=str(tmp_path / "reports"))
        with caplog.at_level(logging.INFO, logger="lightning.pytorch"):
            # failed before: MisconfigurationException "Expected the fit's val_dataloaders to hold samples ..."
            trainer(tmp_path, max_epochs=1, callbacks=[cb]).fit(
                _Module(), DataLoader(train, batch_size=4), DataLoader(empty, batch_size=4))
        assert cb.probe_origin == "train_dataloader"
        assert torch.equal(cb.probe.first, train.tensors[0][:5])  # the first training samples, in order
        assert cb.audited_epochs == [0]
        said = caplog.text.replace("\n", " ")
        assert "explains the first samples of the training data: this fit validates on no data" in said
        assert "an empty validation set" in said
        caplog.clear()
