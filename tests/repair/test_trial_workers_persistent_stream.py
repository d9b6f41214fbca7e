"""Reading a term's training inputs from a stream (an ``IterableDataset``) with ``persistent_workers=True``
iterated the loader's persistent iterator, the one training holds (Lightning creates it, and fetches a
first batch, before ``on_train_start``): it was reset and advanced, so a term of weight 0 changed the
batches (5 of 8 trained) and the weights; a read before training's first iterator left one for training
to reuse (no base seed drawn, workers' streams advanced). ``rngs_untouched`` now reads such a loader on
a fresh iterator, shuts it down and gives the loader back the iterator it held."""

from __future__ import annotations

import lightning.pytorch as pl
import torch
from torch import nn
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from lightning_causal import CausalRepairModule
from lightning_causal.data_reading import rngs_untouched
from tests.helpers.training_spies import BatchSpy, InputsReadingTerm


class _NoisyStream(IterableDataset):
    """16 samples split between the workers, each with noise drawn from the worker's torch generator."""

    def __iter__(self):
        info = get_worker_info()
        rows = range(16) if info is None else range(info.id, 16, info.num_workers)
        for i in rows:
            x = torch.full((3,), float(i)) + torch.rand(3)
            yield x, torch.tensor(i % 2)


def _loader() -> DataLoader:
    return DataLoader(_NoisyStream(), batch_size=4, num_workers=2, persistent_workers=True)


def _epoch(loader: DataLoader) -> list[torch.Tensor]:
    return [x.clone() for x, _ in loader]


def test_a_read_leaves_a_persistent_loaders_batches_and_iterator_as_they_were():
    torch.manual_seed(0)
    plain = _loader()
    expected = [_epoch(plain), _epoch(plain)]
    torch.manual_seed(0)
    read = _loader()
    with rngs_untouched(read):
        next(iter(read))  # a read before training's first epoch
    first = _epoch(read)
    held = read._iterator
    with rngs_untouched(read):
        next(iter(read))  # and between epochs, while the loader holds its persistent iterator
    assert read._iterator is held
    second = _epoch(read)
    for got, want in zip((first, second), expected):
        assert len(got) == len(want) == 4
        assert all(torch.equal(a, b) for a, b in zip(got, want))


class _ZeroNotReading(InputsReadingTerm):
    """The same term, reading no training inputs."""

    @property
    def needs_train_inputs(self) -> bool:
        return False


def _fit(needs_inputs: bool):
    pl.seed_everything(3, workers=True, verbose=False)
    net = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Dropout(0.5), nn.Linear(8, 2))
    term = InputsReadingTerm("zero") if needs_inputs else _ZeroNotReading("zero")
    module = CausalRepairModule(net, [term], lr=1e-2)
    spy = BatchSpy()
    trainer = pl.Trainer(max_epochs=2, accelerator="cpu", devices=1, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, callbacks=[spy])
    trainer.fit(module, _loader())
    return net, spy.seen, term.inputs


def test_a_term_reading_a_persistent_stream_leaves_training_bit_identical():
    net_a, seen_a, _ = _fit(needs_inputs=False)
    net_b, seen_b, inputs = _fit(needs_inputs=True)
    assert inputs is not None and inputs.shape == (16, 3)  # the term did read the stream
    assert len(seen_a) == len(seen_b) == 8
    assert all(torch.equal(a, b) for a, b in zip(seen_a, seen_b))
    for (name, a), (_, b) in zip(net_a.state_dict().items(), net_b.state_dict().items()):
        assert torch.equal(a, b), name
