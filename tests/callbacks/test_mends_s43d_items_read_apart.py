"""Items of a ``DataLoader(batch_size=None)`` that each hold a permutation of their own rows (sorted by length for
packing), which ``unpack_batch`` gathers by (``b["x"][b["order"]]``), were joined: the index has as many rows as the
tensors, so nothing told it from a sample's values, and joined, item 1's permutation read item 0's rows, silently. Items
are now joined only where the joined batch's first input, as the user's function makes it, is the items' own made apart
(read from the calls the reader made anyway: no call more); else the first item, warned of, with the way out."""

import warnings

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from lightning_causal.callbacks._probe import probe_from


def _items() -> list[dict[str, torch.Tensor]]:
    g = torch.Generator().manual_seed(0)
    return [{"x": torch.randn(8, 3, generator=g) + 100 * i, "order": torch.randperm(8, generator=g),
             "y": torch.full((8,), i)} for i in range(3)]


def test_items_gathered_by_a_permutation_of_their_rows_are_not_joined():
    items, calls = _items(), []

    def gather(b):
        calls.append(b["x"].shape[0])
        return b["x"][b["order"]], b["y"][b["order"]], None

    with pytest.warns(UserWarning, match=r"holds the 8 samples of the loader's first item, not 16: .*rows 8-15") as caught:
        probe = probe_from(DataLoader(items, batch_size=None), 16, gather, model=nn.Linear(3, 2))
    assert "b['x'][b['order']]" in str(caught[0].message) and "torch.arange(n)" in str(caught[0].message)
    assert torch.equal(probe.inputs, items[0]["x"][items[0]["order"]]) and torch.equal(probe.labels, torch.zeros(8).long())
    assert len(calls) == 4  # each item, the joined items (counted, as before) and the probe's: no call more than before
    items[0]["x"].mul_(0)  # the first item written in place (a training_step given the stored item): the probe a copy
    assert probe.inputs.abs().min() > 0


class _RunningMean:
    """A first input centred on a running mean of those seen (a state moved at every call: the first item's rows joined
    differ too, so nothing tells a gather; joined, as before)."""

    def __init__(self):
        self.mean = torch.tensor(0.0)

    def __call__(self, b):
        self.mean = 0.9 * self.mean + 0.1 * b["x"].mean()
        return b["x"] - self.mean


@pytest.mark.parametrize("make", ["cast", "projection", "trimmed", "drawn", "stateful"])
def test_items_made_alike_joined_or_apart_are_still_joined(make):
    items, w = _items(), torch.randn(3, 64, generator=torch.Generator().manual_seed(1))
    for i, item in enumerate(items):  # token ids padded with 0 to 9 columns, the longest of item i 6 + i long
        item["ids"] = torch.cat([torch.randint(1, 9, (8, 6 + i)), torch.zeros(8, 3 - i, dtype=torch.long)], 1)
    first = {"cast": lambda b: b["x"].half() * 3,
             "projection": lambda b: b["x"] @ w,  # sums run in another order on more rows: equal within rounding
             "trimmed": lambda b: b["ids"][:, : int((b["ids"] != 0).sum(1).max())],  # to its own longest sequence
             "drawn": lambda b: b["x"] + torch.randint_like(b["x"], 3),  # a denoiser's noise: cannot be compared
             "stateful": _RunningMean()}[make]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        probe = probe_from(DataLoader(items, batch_size=None), 24, lambda b: (first(b), b["y"], None))
    assert torch.equal(probe.labels, torch.arange(3).repeat_interleave(8))
    if make not in ("drawn", "stateful"):
        apart = [first(item) for item in items]
        assert torch.allclose(probe.inputs[:8, : apart[0].shape[1]].double(), apart[0].double(), rtol=1e-5, atol=1e-5)
