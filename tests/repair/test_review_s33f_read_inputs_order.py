"""Review of 72b63894: a term's set-up warning naming samples of the ``train_inputs`` that ``CausalRepairModule`` read
from the train dataloader said "sample k is the dataset's sample k under a sequential or random sampler", but the read
follows a new iterator's order (``read_samples(loader_order=True)``): under ``shuffle=True`` sample k is the k-th of
the sampler's draw, not the dataset's sample k. The words now say so."""

from __future__ import annotations

import warnings

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import BackdoorSuppressionTerm
from lightning_causal.data_reading import read_samples
from lightning_causal.repair.module import CausalRepairModule
from tests.repair.test_leftovers_s33c_top1_contrast import _Top1, _x


def test_a_shuffled_loaders_samples_are_not_called_the_datasets_own() -> None:
    x, model = _x(), _Top1()
    with torch.no_grad():
        y = model(x).argmax(1)
    data = TensorDataset(x, y)
    loader = DataLoader(data, batch_size=16, shuffle=True, generator=torch.Generator().manual_seed(0))
    read = read_samples(loader, 32, loader_order=True)[0]
    assert not torch.equal(read, x)  # the read's sample k is not the dataset's sample k
    module = CausalRepairModule(model, [BackdoorSuppressionTerm(None, reverse_options={"steps": 5})])
    trainer = pl.Trainer(max_steps=1, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        trainer.fit(module, loader)
    (said,) = [str(w.message) for w in caught if "feature-shifted copy rule out" in str(w.message)]
    assert "the first 32 samples a new iterator of the train dataloader gives" in said
    assert "under a sequential or random sampler" not in said and "not under shuffle=True" in said
