"""The probe reader asks ``unpack_batch`` for each batch's explained input and whole-passed tensors (5dbce23b,
dec2bf5b): it read the batch itself, several times an item, so an ``unpack_batch`` writing in place
(``b[0].mul_(0.5)``) halved the probe's inputs again at each read and changed the loader's stored items, the data
training reads next (final_read_E F1). It now reads a copy of each batch, once; and a 2-sample probe's one-row pass
(ab98eb53) no longer replaces the probe check's refusal with a model's own assertion (final_read_E F3)."""

import warnings

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from lightning_causal.callbacks._probe import probe_from
from lightning_causal.causal import input_effects


def test_an_in_place_unpack_batch_changes_neither_the_probe_twice_nor_the_loaders_items():
    items = [(torch.full((4, 3), 8.0), torch.zeros(4, dtype=torch.long)) for _ in range(3)]
    calls = []

    def halve(b):
        calls.append(1)
        return b[0].mul_(0.5), b[1], None

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probe = probe_from(DataLoader(items, batch_size=None), 6, halve, origin="val_dataloaders", model=nn.Linear(3, 2))
    assert torch.equal(probe.inputs, torch.full((6, 3), 4.0))  # halved once, as the probe's own unpacking does
    assert all(torch.equal(x, torch.full((4, 3), 8.0)) for x, _ in items)  # the stored items as the loader holds them
    assert len(calls) <= 2 * 2 + 1  # one reading a batch read (two batches for 6 samples), then the probe's own


class _Squeeze(nn.Module):
    """Standardises over its batch and refuses a batch of one by an assertion of its own."""

    def __init__(self) -> None:
        super().__init__()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            self.fc = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        assert x.shape[0] > 1, "batch of one"
        return self.fc((x - x.mean(0)) / (x.std(0) + 1e-5))


def test_a_model_refusing_a_batch_of_one_keeps_the_probe_checks_refusal():
    x = torch.randn(2, 3, generator=torch.Generator().manual_seed(1))
    with pytest.raises(ValueError, match="treat samples independently"):
        input_effects(_Squeeze().eval(), x)


def test_an_in_place_unpack_batch_leaves_a_tensor_datasets_own_rows_as_they_are():
    from torch.utils.data import TensorDataset

    x = torch.full((8, 3), 8.0)
    loader = DataLoader(TensorDataset(x, torch.zeros(8, dtype=torch.long)), batch_size=4)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probe = probe_from(loader, 4, lambda b: (b[0].mul_(0.5), b[1], None), origin="train_dataloader",
                           model=nn.Linear(3, 2))
    assert torch.equal(probe.inputs, torch.full((4, 3), 4.0)) and torch.equal(x, torch.full((8, 3), 8.0))


class _Graphs:
    """A batch object that is no tuple, mapping nor dataclass (a graph library's ``Batch``)."""

    def __init__(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.x, self.y = x, y


def test_an_in_place_unpack_batch_of_batch_objects_leaves_the_items_as_they_are():
    items = [_Graphs(torch.full((4, 3), 8.0), torch.zeros(4, dtype=torch.long)) for _ in range(3)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probe = probe_from(DataLoader(items, batch_size=None, collate_fn=lambda b: b), 4,
                           lambda b: (b.x.mul_(0.5), b.y, None), origin="val_dataloaders", model=nn.Linear(3, 2))
    assert torch.equal(probe.inputs, torch.full((4, 3), 4.0))
    assert all(torch.equal(i.x, torch.full((4, 3), 8.0)) for i in items)


def test_the_packages_own_unpacking_copies_no_batch(monkeypatch):
    # a dataset given whole as one batch is not copied to read a few rows of it (no unpack_batch: nothing writes)
    import lightning_causal.callbacks._probe as probe_module
    import lightning_causal.unpacked_rows as unpacked_rows

    def refuse(batch, *args):
        raise AssertionError("copied")

    monkeypatch.setattr(probe_module, "copy_of", refuse)
    monkeypatch.setattr(unpacked_rows, "copy_of", refuse)
    x = torch.randn(100, 3, generator=torch.Generator().manual_seed(0))
    probe = probe_from((x, torch.zeros(100, dtype=torch.long)), 8, None, origin="probe", model=nn.Linear(3, 2))
    assert torch.equal(probe.inputs, x[:8])


def test_a_mapping_read_by_attribute_keeps_its_type_in_the_copy():
    # Hugging Face's BatchEncoding (a UserDict read by attribute) from a loader: the copy an unpack_batch reads was a
    # plain dict, b.input_ids failed (934696f5), and the reader counted the batch's first tensor instead (23715089)
    from collections import UserDict

    from lightning_causal.unpacked_rows import input_rows

    class Encoding(UserDict):
        def __getattr__(self, key):
            if key == "data":
                raise AttributeError(key)
            try:
                return self.data[key]
            except KeyError as err:
                raise AttributeError(key) from err

    items = [{"input_ids": torch.full((3,), float(i)), "labels": torch.tensor(i % 2)} for i in range(6)]

    def collate(xs):
        return Encoding(input_ids=torch.stack([a["input_ids"] for a in xs]), labels=torch.stack([a["labels"] for a in xs]))

    def unpack_batch(b):
        return b.input_ids.mul_(0.5), b.labels, None

    batch = Encoding(extra=torch.zeros(7, 2), input_ids=torch.ones(4, 3), labels=torch.zeros(4, dtype=torch.long))
    assert input_rows(None, unpack_batch)[0](batch) == 4 and torch.equal(batch["input_ids"], torch.ones(4, 3))
    probe = probe_from(DataLoader(items, batch_size=4, collate_fn=collate), 4, unpack_batch, origin="val_dataloaders",
                       model=nn.Linear(3, 2))
    assert torch.equal(probe.inputs, torch.arange(4.0)[:, None].expand(4, 3) * 0.5)
