"""The probe read from the trainer's data: no random stream moves, the sampler's split is honoured,
iterable datasets are refused clearly."""

import random

import numpy as np
import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    IterableDataset,
    SubsetRandomSampler,
    TensorDataset,
)

from lightning_causal.audits.input_effects import InputEffectAudit
from lightning_causal.callbacks import CausalAuditCallback
from lightning_causal.callbacks._probe import probe_from
from lightning_causal.data_reading import read_samples
from lightning_causal.models import LightningClassifier
from tests.helpers.lightning import quick_trainer


class _Augmenting(Dataset):
    """Adds noise from generators of its own (NumPy, torch and Python's), as augmentations do."""

    def __init__(self, n: int = 64) -> None:
        self.x = torch.randn(n, 4, generator=torch.Generator().manual_seed(1))
        self.y = (self.x[:, 0] > 0).long()
        self.np_rng = np.random.default_rng(0)
        self.transform = {"ops": [torch.Generator().manual_seed(2)]}  # nested, as in a transform object
        self.py_rng = random.Random(3)

    def __len__(self) -> int:
        return len(self.y)

    def __getitem__(self, i: int):
        noise = float(self.np_rng.normal()) + torch.rand((), generator=self.transform["ops"][0]) + self.py_rng.random()
        return self.x[i] + 0.01 * noise, self.y[i]


def _states(ds: _Augmenting):
    return ds.np_rng.bit_generator.state, ds.transform["ops"][0].get_state(), ds.py_rng.getstate()


def test_reading_the_probe_leaves_the_datasets_and_loaders_generators_alone():
    ds = _Augmenting()
    g = torch.Generator().manual_seed(5)
    loader = DataLoader(ds, batch_size=8, shuffle=True, generator=g)
    before, g_before, global_before = _states(ds), g.get_state(), torch.get_rng_state()
    probe_from(loader, 16)
    read_samples(loader, 16, loader_order=True)
    after = _states(ds)
    assert before[0] == after[0] and torch.equal(before[1], after[1]) and before[2] == after[2]
    assert torch.equal(g.get_state(), g_before) and torch.equal(torch.get_rng_state(), global_before)


def _fit(with_callback: bool, tmp_path):
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(4, 2))
    module = LightningClassifier(net, lr=0.1)
    callbacks = [CausalAuditCallback([InputEffectAudit(ace_values=None)], probe_size=16, report_dir=tmp_path)] if with_callback else []
    quick_trainer(callbacks=callbacks, max_epochs=1).fit(module, DataLoader(_Augmenting(), batch_size=16, shuffle=True))
    return [p.detach().clone() for p in net.parameters()]


def test_callback_probing_an_augmenting_training_set_leaves_training_bit_identical(tmp_path):
    plain, audited = _fit(False, tmp_path), _fit(True, tmp_path)
    assert all(torch.equal(a, b) for a, b in zip(plain, audited))


def _indexed(n: int = 100) -> TensorDataset:
    return TensorDataset(torch.arange(n, dtype=torch.float32)[:, None].repeat(1, 4), torch.zeros(n, dtype=torch.long))


def test_probe_follows_a_sampler_that_selects_part_of_the_dataset():
    ds = _indexed()
    val = list(range(80, 100))
    for loader in (
        DataLoader(ds, batch_size=16, sampler=val),  # a list of indices as sampler
        DataLoader(ds, batch_size=16, sampler=SubsetRandomSampler(val)),
        DataLoader(ds, batch_sampler=BatchSampler(val, batch_size=4, drop_last=False)),
        DataLoader(ds, batch_sampler=[val[:4], val[4:8], val[8:]]),  # a custom batch sampler
    ):
        assert probe_from(loader, 8).first[:, 0].long().tolist() == val[:8]
    rows = probe_from(DataLoader(ds, batch_size=16, shuffle=True), 8).first[:, 0].long().tolist()
    assert rows == list(range(8))  # the whole dataset: its first samples


class _DrawnSampler(torch.utils.data.Sampler):
    """50 of 100 indices drawn from its own generator at each iteration (a custom sampler)."""

    def __init__(self, generator: torch.Generator) -> None:
        self.generator = generator

    def __len__(self) -> int:
        return 50

    def __iter__(self):
        return iter(torch.randperm(100, generator=self.generator)[:50].tolist())


def test_probe_from_a_custom_sampler_takes_its_first_indices_without_moving_its_generator():
    ds = _indexed()
    g = torch.Generator().manual_seed(0)
    sampler = _DrawnSampler(g)  # (a WeightedRandomSampler gives its samples of non-zero weight instead of its draws)
    state = g.get_state()
    expected = list(sampler)[:8]
    g.set_state(state)
    assert probe_from(DataLoader(ds, sampler=sampler), 8).first[:, 0].long().tolist() == expected
    assert torch.equal(g.get_state(), state)


class _SizedStream(IterableDataset):
    def __iter__(self):
        for i in range(8):
            yield torch.full((4,), float(i)), torch.tensor(0)

    def __len__(self) -> int:
        return 8


def test_a_sized_iterable_dataset_is_refused_with_a_clear_message():
    with pytest.raises(MisconfigurationException, match=r"IterableDataset \(_SizedStream\).*tensors or a batch"):
        probe_from(DataLoader(_SizedStream(), batch_size=4), 4)
    with pytest.raises(MisconfigurationException, match="IterableDataset"):
        probe_from(_SizedStream(), 4)


def test_read_samples_validates_size():
    with pytest.raises(MisconfigurationException, match="`size` to be a positive int but got 0"):
        read_samples(_indexed(), 0)


def test_a_dataset_of_samples_of_different_lengths_names_the_collate_function():
    """torch's bare 'each element in list of batch should be of equal size' named neither `probe`
    nor a collate function."""
    from torch.utils.data import DataLoader, Dataset

    class Ragged(Dataset):
        def __len__(self):
            return 4

        def __getitem__(self, i):
            return {"input_ids": torch.arange(3 + i), "labels": torch.tensor(i % 2)}

    with pytest.raises(MisconfigurationException, match=r"`probe` dataset \(Ragged\).*collate_fn"):
        probe_from(Ragged(), 4)

    def pad(items):
        ids = torch.nn.utils.rnn.pad_sequence([it["input_ids"] for it in items], batch_first=True)
        return ids, torch.stack([it["labels"] for it in items])

    probe = probe_from(DataLoader(Ragged(), collate_fn=pad), 4)
    assert probe.first.shape == (4, 6)


def test_validation_dataloaders_given_as_a_dict_give_the_probe_of_the_first(tmp_path):
    from tests.helpers.lightning import small_module, synthetic_loaders

    train, val = synthetic_loaders()
    other = DataLoader(TensorDataset(val.dataset.tensors[0] * 0.5, val.dataset.tensors[1]), batch_size=8)
    cb = CausalAuditCallback([InputEffectAudit(patch_size=4)], probe_size=5, report_dir=tmp_path)
    # before the fix: MisconfigurationException "Expected argument `probe` to be ... but got a mapping with keys
    # ['clean', 'dim']", about a `probe` the user never passed, for a dict Lightning accepts as `val_dataloaders`
    module = small_module()  # its validation_step takes dataloader_idx (fcaf118b), as Lightning asks of several loaders
    quick_trainer(callbacks=[cb], max_epochs=1, limit_train_batches=1).fit(module, train, {"clean": val, "dim": other})
    assert torch.equal(cb.probe.first, val.dataset.tensors[0][:5]) and cb.audited_epochs == [0]
    assert torch.equal(probe_from({"dim": other, "clean": val}, 3).first, other.dataset.tensors[0][:3])
