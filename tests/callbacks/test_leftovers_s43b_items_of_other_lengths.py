"""Items of a ``DataLoader(batch_size=None)`` whose samples are their rows but whose tensors differ beyond them
(sequences of another length, ``[4, 5, 3]`` then ``[4, 7, 3]``) crashed the probe reader's join with torch's "Sizes of
tensors must match" (older than session 42; mends_s42h's leftover). The items read before are the probe, warned of,
naming the shapes and the ways out."""

import pytest
import torch
from torch.utils.data import DataLoader

from lightning_causal.data_reading import read_samples


def _items(lengths):
    g = torch.Generator().manual_seed(0)
    return [{"x": torch.randn(4, n, 3, generator=g), "y": torch.randint(0, 2, (4,), generator=g)} for n in lengths]


def test_items_of_another_length_are_not_joined_and_the_probe_says_so():
    items = _items((5, 5, 7))
    with pytest.warns(UserWarning, match=r"item 2 of the dataset .*\[4, 7, 3\], \[4\] against \[4, 5, 3\], \[4\]") as caught:
        batch = read_samples(DataLoader(items, batch_size=None), 12)
    assert "collate_fn that pads" in str(caught[0].message) and "`probe=` one batch" in str(caught[0].message)
    assert torch.equal(batch["x"], torch.cat([items[0]["x"], items[1]["x"]]))
    assert torch.equal(batch["y"], torch.cat([items[0]["y"], items[1]["y"]]))


def test_items_of_one_length_join_unwarned(recwarn):
    items = _items((5, 5, 5))
    batch = read_samples(DataLoader(items, batch_size=None), 10)
    assert torch.equal(batch["x"], torch.cat([i["x"] for i in items])[:10]) and not recwarn.list
