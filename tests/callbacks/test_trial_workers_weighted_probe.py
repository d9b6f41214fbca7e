"""The probe of a fit without validation whose training loader balances its classes with a
``WeightedRandomSampler`` (replacement, the default): the probe was the sampler's first draws, so it
repeated samples (one sample three times in ten) and changed with the seed. It is now the samples of
non-zero weight in dataset order, as for any sampler that draws from part of the dataset."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset, WeightedRandomSampler

from lightning_causal.audits import InputEffectAudit
from lightning_causal.callbacks import CausalAuditCallback
from lightning_causal.callbacks._probe import probe_from
from tests.helpers.net_modules import NetClassifier

_X = torch.arange(40, dtype=torch.float32).reshape(20, 2)
_Y = torch.arange(20) % 2


def _loader(weights: torch.Tensor) -> DataLoader:
    return DataLoader(TensorDataset(_X, _Y), batch_size=4, sampler=WeightedRandomSampler(weights, 20))


def test_a_weighted_sampler_gives_the_probe_its_samples_of_non_zero_weight_once_each():
    weights = torch.where(_Y == 1, 5.0, 1.0)
    weights[3] = 0.0  # never drawn
    for seed in (0, 1):
        torch.manual_seed(seed)
        probe = probe_from(_loader(weights), 6)
        assert torch.equal(probe.inputs, _X[[0, 1, 2, 4, 5, 6]])
        assert torch.equal(probe.labels, _Y[[0, 1, 2, 4, 5, 6]])


class _Net(NetClassifier):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Linear(2, 2)

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.01)


def test_the_callbacks_probe_from_a_weighted_training_loader_has_no_repeats(tmp_path):
    pl.seed_everything(0, verbose=False)
    cb = CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=10, report_dir=tmp_path)
    pl.Trainer(max_epochs=1, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False, callbacks=[cb]).fit(_Net(), _loader(torch.where(_Y == 1, 5.0, 1.0)))
    assert cb.probe_origin == "train_dataloader"
    assert torch.equal(cb.probe.first, _X[:10])
