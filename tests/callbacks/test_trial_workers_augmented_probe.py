"""The probe of validation data augmented at random (torch and NumPy draws in ``__getitem__``) was read
from the global generators wherever the fit had left them at ``on_train_start``: another seed, or a
fit resumed from a checkpoint (the generators elsewhere than in the uninterrupted fit), gave another
probe, so the resumed fit's audits explained other samples than the uninterrupted fit's, with no
warning (the probe's summary, its size and source, is the same). The probe is now read from the
generators seeded with ``AUDIT_SEED``, as the audits run, and they are restored afterwards."""

from __future__ import annotations

import lightning.pytorch as pl
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset, TensorDataset

from lightning_causal.audits import InputEffectAudit
from lightning_causal.callbacks import CausalAuditCallback
from lightning_causal.callbacks._probe import probe_from
from tests.helpers.net_modules import NetClassifier

_X = torch.arange(48, dtype=torch.float32).reshape(16, 3)
_Y = torch.arange(16) % 2


class _Augmented(Dataset):
    def __len__(self) -> int:
        return 16

    def __getitem__(self, i):
        noise = torch.rand(3) + torch.from_numpy(np.random.rand(3)).float()
        return _X[i] + noise, _Y[i]


def test_the_probe_of_an_augmenting_dataset_is_the_same_whatever_the_global_generators():
    probes = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        np.random.seed(seed)
        before = torch.get_rng_state(), np.random.get_state()[1].copy()
        probes.append(probe_from(DataLoader(_Augmented(), batch_size=4, shuffle=True), 6).first)
        assert torch.equal(torch.get_rng_state(), before[0])  # the training streams are where they were
        assert np.array_equal(np.random.get_state()[1], before[1])
    assert torch.equal(probes[0], probes[1])
    assert ((probes[0] - _X[:6]) > 0).all() and ((probes[0] - _X[:6]) < 2).all()  # the first 6 samples, augmented


class _Net(NetClassifier):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(3, 2)

    def validation_step(self, batch, batch_idx):
        pass

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def test_fits_of_other_seeds_audit_the_same_augmented_probe(tmp_path):
    probes = []
    for seed in (1, 2):
        pl.seed_everything(seed, verbose=False)
        cb = CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=5, report_dir=tmp_path / str(seed))
        pl.Trainer(max_epochs=1, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                   enable_progress_bar=False, enable_model_summary=False, callbacks=[cb]).fit(
            _Net(), DataLoader(TensorDataset(_X, _Y), batch_size=4, shuffle=True), DataLoader(_Augmented(), batch_size=4))
        assert cb.probe_origin == "val_dataloaders"
        probes.append(cb.probe.first)
    assert torch.equal(probes[0], probes[1])
