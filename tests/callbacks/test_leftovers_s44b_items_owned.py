"""A ``DataLoader(batch_size=None)``'s items read for the probe or the repair set-up: a first item of more rows than
asked for is read off a cut of its rows (the user's ``unpack_batch`` reads a copy, which was of the whole item: 99.8 MiB
for 64 rows of a 102 MB item, benchmarks/bench_probe_reader_memory.py), and what the read returns shares no memory with
the dataset's items (an ``unpack_batch`` that writes in place wrote into the 0-dim values, tensors of other rows,
support sets marked whole and arrays the read kept of the item)."""

import numpy as np
import torch
from torch.utils.data import DataLoader

from lightning_causal.causal import mark_whole
from lightning_causal.data_reading import read_samples
from lightning_causal.unpacked_rows import input_rows


def _shares(a, b) -> bool:
    if isinstance(a, np.ndarray):
        return np.shares_memory(a, b)
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def test_a_large_item_is_counted_off_a_cut_of_its_rows():
    x, y = torch.arange(4000.0).reshape(1000, 4), torch.arange(1000)
    given = []

    def unpack(b):
        given.append(int(b[0].shape[0]))
        return b[0], b[1], None

    rows_of, whole_of = input_rows(None, unpack)
    read = read_samples(DataLoader([(x, y)], batch_size=None), 8, rows_of=rows_of, whole_of=whole_of)
    assert given == [8]  # the first 8 rows copied for unpack_batch, not the 1000 (was [1000])
    assert torch.equal(read[0], x[:8]) and torch.equal(read[1], y[:8])
    assert not _shares(read[0], x) and not _shares(read[1], y)


def test_values_kept_of_one_item_are_copies():
    item = {"x": torch.ones(8, 3), "meta": (torch.tensor(2.0), torch.ones(5, 3))}
    rows_of, whole_of = input_rows(None, lambda b: (b["x"], None, b["meta"]))
    read = read_samples(DataLoader([item], batch_size=None), 4, rows_of=rows_of, whole_of=whole_of)
    assert read["x"].shape == (4, 3) and read["meta"][1].shape == (5, 3)
    assert not any(_shares(a, b) for a, b in zip(read["meta"], item["meta"]))
    for t in (read["x"], *read["meta"]):
        t.mul_(0)  # the set-up's unpack_batch writing in place
    assert float(item["meta"][0]) == 2.0 and torch.equal(item["meta"][1], torch.ones(5, 3))
    assert torch.equal(item["x"], torch.ones(8, 3))


def test_a_support_set_marked_whole_and_an_array_are_copies():
    item = (torch.ones(8, 3), torch.zeros(8), torch.ones(8, 3))  # the support set: as many rows as the queries
    rows_of, whole_of = input_rows(None, lambda b: (b[0], b[1], mark_whole((b[2],), [0])))
    read = read_samples(DataLoader([item], batch_size=None), 4, rows_of=rows_of, whole_of=whole_of)
    assert [tuple(t.shape) for t in read] == [(4, 3), (4,), (8, 3)]  # the support set not cut
    assert not any(_shares(a, b) for a, b in zip(read, item))
    arrays = {"x": torch.ones(8, 3), "codes": np.ones(4)}  # a collate_fn that keeps arrays
    read = read_samples(DataLoader([arrays], batch_size=None, collate_fn=lambda b: b), 8)
    assert not _shares(read["codes"], arrays["codes"]) and not _shares(read["x"], arrays["x"])


def test_the_first_items_support_set_in_a_join_is_a_copy():
    items = [(torch.full((8, 3), float(i)), torch.zeros(8), torch.ones(5, 3)) for i in range(2)]
    rows_of, whole_of = input_rows(None, lambda b: (b[0], b[1], (b[2],)))
    read = read_samples(DataLoader(items, batch_size=None), 12, rows_of=rows_of, whole_of=whole_of)
    assert [tuple(t.shape) for t in read] == [(12, 3), (12,), (5, 3)]
    assert torch.equal(read[0][8:], torch.ones(4, 3))  # the second item's rows
    assert not _shares(read[2], items[0][2])
