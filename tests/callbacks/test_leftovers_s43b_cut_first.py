"""With a user's ``unpack_batch`` the probe reader copied a batch given whole to count its rows (64 rows of a 102 MB
one-batch dataset took 100 MB more; session 42's meta-device route ran the user's function on stand-ins and was
removed). It now reads the batch off a copy of its first rows: the user's function runs on real rows only, no more
often than before, and where the cut does not read as its rows (a gather, a filter, a transposing unpack) the batch
is read whole, as before; a ``DataLoader(batch_size=None)`` of one item no longer copies (and unpacks) it twice."""

import warnings

import torch
from torch import nn
from torch.utils.data import DataLoader

from lightning_causal.callbacks._probe import probe_from
from lightning_causal.causal import mark_whole
from tests.callbacks.test_leftovers_s42b_reader_copies import _cloned_rows


class Seen:
    """An ``unpack_batch`` given as ``fn``, recording the rows of the first tensor of each batch it is called on."""

    def __init__(self, fn, key=0):
        self.fn, self.key, self.calls = fn, key, []

    def __call__(self, b):
        self.calls.append(int(b[self.key].shape[0]))
        return self.fn(b)


def _read(source, size, unpack_batch, features=3):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return probe_from(source, size, unpack_batch, origin="probe", model=nn.Linear(features, 2))


def test_a_batch_given_whole_copies_only_the_rows_read(monkeypatch):
    seen = _cloned_rows(monkeypatch)
    x, y = torch.arange(3000.0).reshape(1000, 3), torch.arange(1000)
    unpack = Seen(lambda b: (b[0].mul_(0.5), b[1], None))  # writes in place
    probe = _read((x, y), 8, unpack)
    assert torch.equal(probe.inputs, x[:8] * 0.5) and torch.equal(probe.labels, y[:8])
    assert torch.equal(x, torch.arange(3000.0).reshape(1000, 3))  # the user's data untouched
    assert max(seen) == 8 and unpack.calls == [8, 8]  # 1000 rows copied and unpacked before


def test_a_gathering_filtering_or_failing_unpack_reads_the_batch_whole(monkeypatch):
    x, y = torch.arange(300.0).reshape(100, 3), torch.arange(100)
    idx = torch.arange(99, 59, -1)  # 40 rows gathered from the end: none among the first rows
    unpack = Seen(lambda b: (b[0][b[2]], b[1][b[2]], None))
    probe = _read((x, y, idx), 6, unpack)
    assert torch.equal(probe.inputs, x[idx[:6]]) and torch.equal(probe.labels, y[idx[:6]]) and len(unpack.calls) == 2
    assert probe.inputs.untyped_storage().nbytes() == 6 * 3 * 4  # not views of the whole batch's copy
    keep = torch.arange(100) % 3 == 0
    unpack = Seen(lambda b: (b[0][b[2]], b[1][b[2]], None))
    probe = _read((x, y, keep), 6, unpack)
    assert torch.equal(probe.inputs, x[keep][:6]) and len(unpack.calls) == 2
    perm = torch.arange(99, -1, -1)  # as many rows as the batch, indices beyond the cut's
    unpack = Seen(lambda b: (b[0][b[2]], b[1][b[2]], None))
    probe = _read((x, y, perm), 6, unpack)
    assert torch.equal(probe.inputs, x[perm[:6]]) and len(unpack.calls) == 2


def test_a_transposing_unpack_whose_samples_equal_the_probe_is_not_cut_along_time():
    # time-major [T=50, N=8, F]: a cut of 8 time steps would read as 8 samples; the cut is of 9 (no dimension holds 9)
    x, y = torch.randn(50, 8, 3, generator=torch.Generator().manual_seed(0)), torch.arange(8)
    unpack = Seen(lambda b: (b[0].transpose(0, 1), b[1], None))
    probe = _read((x, y), 8, unpack)
    assert torch.equal(probe.inputs, x.transpose(0, 1)) and len(unpack.calls) == 2


def test_a_support_set_first_and_marked_whole_stays_whole():
    support, x, y = torch.full((30, 3), 2.0), torch.arange(60.0).reshape(20, 3), torch.arange(20)
    unpack = Seen(lambda b: (b[1], b[2], mark_whole((b[0],), [0])))
    probe = _read((support, x, y), 4, unpack)
    assert torch.equal(probe.inputs, x[:4]) and torch.equal(probe.additional_forward_args[0], support)
    support = torch.full((20, 3), 2.0)  # as many rows as the queries: marked whole, not cut with them
    probe = _read((x, y, support), 4, Seen(lambda b: (b[0], b[1], mark_whole((b[2],), [0]))))
    assert torch.equal(probe.inputs, x[:4]) and torch.equal(probe.additional_forward_args[0], support)


def test_one_item_of_a_loader_without_collation_is_read_once(monkeypatch):
    seen = _cloned_rows(monkeypatch)
    x, y = torch.arange(300.0).reshape(100, 3), torch.arange(100)
    unpack = Seen(lambda b: (b[0], b[1], None))
    probe = _read(DataLoader([(x, y)], batch_size=None), 8, unpack)
    # [100, 100, 8]: the item joined to itself; [100, 8] before leftovers_s44b: the item copied whole to be counted
    assert torch.equal(probe.inputs, x[:8]) and unpack.calls == [8, 8]
    assert max(seen) == 8
