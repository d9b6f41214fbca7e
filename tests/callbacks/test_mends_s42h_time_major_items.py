"""DataLoader(batch_size=None) items of a time-major tagger, {"x": [T, N, F], "y": [T, N]}, with an unpack_batch that
transposes them: no tensor holds the N samples as rows, so b7525f7a joined the items along T, and items whose N differ
crashed in torch.cat (before, the first item with a warning). Items whose tensors differ beyond the joined rows are
not joined: the first item, warned of (mends_s42h, final_read_D F3)."""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from lightning_causal.callbacks._probe import probe_from
from lightning_causal.data_reading import read_samples
from lightning_causal.unpacked_rows import input_rows


def _unpack(b):
    return b["x"].transpose(0, 1), b["y"].transpose(0, 1), None


def _items(ns):
    g = torch.Generator().manual_seed(0)
    return [{"x": torch.randn(5, n, 3, generator=g), "y": torch.randint(0, 2, (5, n), generator=g)} for n in ns]


@pytest.mark.parametrize("ns", [(4, 8), (8, 4), (4, 8, 8)])
def test_time_major_items_of_other_batch_sizes_give_the_first_item_warned(ns):
    items = _items(ns)
    rows_of, whole_of = input_rows(None, _unpack)
    with pytest.warns(UserWarning, match=r"the loader's first batch, not 10: .* differ from the first's beyond their 5 rows"):
        got = read_samples(DataLoader(items, batch_size=None), 10, rows_of=rows_of, whole_of=whole_of)
    assert torch.equal(got["x"], items[0]["x"]) and torch.equal(got["y"], items[0]["y"])


def test_the_audits_probe_of_time_major_items_is_the_first_item():
    items = _items((8, 8, 4))[::-1]
    with pytest.warns(UserWarning, match="time-major"):
        probe = probe_from(DataLoader(items, batch_size=None), 10, _unpack, model=nn.Linear(3, 2))
    assert torch.equal(probe.inputs, items[0]["x"].transpose(0, 1))
