"""With a user's ``unpack_batch`` the probe reader copied every batch it asked about whole, to keep an ``unpack_batch``
that writes in place off the user's data (23715089, 934696f5): 64 rows of a dataset given as one batch of 102 MB took
100 MB more (final_read_H). 74d23721 counted the rows on a ``meta`` copy of the batch instead, which ran the user's
``unpack_batch`` on stand-ins (a running mean it kept became a meta tensor: mends_s42d); the batch is copied whole again
to count its rows (and since leftovers_s43b only its first rows: test_leftovers_s43b_cut_first), and these tests keep what
the copies guard: the user's data untouched, the rows read right."""

import warnings

import torch
from torch import nn
from torch.utils.data import DataLoader

import lightning_causal.callbacks._probe as probe_module
import lightning_causal.unpacked_rows as unpacked_rows
from lightning_causal.callbacks._probe import probe_from
from lightning_causal.causal import mark_whole


def _cloned_rows(monkeypatch) -> list[int]:
    """The first-dimension sizes of the batch tensors cloned for an ``unpack_batch`` to read."""
    seen: list[int] = []

    real = unpacked_rows.copy_of

    def copy_of(batch):
        copy, originals = real(batch)
        return unpacked_rows.map_tensors(copy, lambda t: seen.append(t.shape[0] if t.dim() else 0) or t), originals

    monkeypatch.setattr(unpacked_rows, "copy_of", copy_of)
    monkeypatch.setattr(probe_module, "copy_of", copy_of)
    return seen


def _read(source, size, unpack_batch):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return probe_from(source, size, unpack_batch, origin="probe", model=nn.Linear(3, 2))


def test_a_batch_given_whole_is_copied_to_count_its_rows(monkeypatch):
    seen = _cloned_rows(monkeypatch)
    x = torch.full((1000, 3), 8.0)
    probe = _read((x, torch.zeros(1000, dtype=torch.long)), 8, lambda b: (b[0].mul_(0.5), b[1], None))
    assert torch.equal(probe.inputs, torch.full((8, 3), 4.0)) and torch.equal(x, torch.full((1000, 3), 8.0))
    assert sorted(seen) == [8, 8, 8, 8]  # the batch's first 8 rows to count them, then the 8 rows read (b7525f7a: 1000, 1000 first)


def test_an_unpack_batch_reading_values_still_reads_a_copy(monkeypatch):
    # a mask's rows and a support set it casts and marks whole (found by value)
    seen = _cloned_rows(monkeypatch)
    x, keep = torch.full((40, 3), 8.0), torch.arange(40) % 2 == 0
    probe = _read((x, torch.zeros(40, dtype=torch.long), keep), 6,
                  lambda b: (b[0][b[2]].mul_(0.5), b[1][b[2]], None))
    assert torch.equal(probe.inputs, torch.full((6, 3), 4.0)) and torch.equal(x, torch.full((40, 3), 8.0))
    assert 40 in seen  # the whole batch, copied to read its values
    items = [{"support": torch.full((5, 3), 2.0), "x": torch.full((4, 3), float(i))} for i in range(3)]
    probe = _read(DataLoader(items, batch_size=None), 3,
                  lambda b: (b["x"].mul_(0.5), None, mark_whole((b["support"].double(),), [0])))
    assert torch.equal(probe.inputs, torch.zeros(3, 3)) and probe.additional_forward_args[0].shape == (5, 3)
    assert all(torch.equal(i["x"], torch.full((4, 3), float(n))) for n, i in enumerate(items))
