"""An ``unpack_batch`` that gathers each item's samples by an index tensor (``b["x"][b["idx"]]``, 5 of 8 rows) from a
``DataLoader(batch_size=None)`` stopped at the first item with the episode warning (support sets, ``mark_whole``),
which does not apply: the items cannot be joined (one item's indices would read another's rows). The warning now says
so and gives the way out, which reads the samples asked for."""

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from lightning_causal.callbacks._probe import probe_from


def _gather(b):
    return b["x"][b["idx"]], b["y"][b["idx"]], None


def test_items_gathered_by_an_index_say_why_they_are_not_joined_and_the_way_out_reads_them():
    g = torch.Generator().manual_seed(0)
    items = [{"x": torch.randn(8, 3, generator=g), "y": torch.randint(0, 2, (8,), generator=g),
              "idx": torch.tensor([1, 3, 5, 6, 7])} for _ in range(4)]
    with pytest.warns(UserWarning, match=r"makes each item's 5 samples from tensors of other rows \(\[8, 3\], \[8\]") as caught:
        probe = probe_from(DataLoader(items, batch_size=None), 12, _gather, model=nn.Linear(3, 2))
    text = str(caught[0].message)
    assert "index tensor" in text and "torch.arange(n)" in text and "mark_whole" not in text
    assert torch.equal(probe.inputs, items[0]["x"][items[0]["idx"]])
    made = {"x": torch.cat([i["x"][i["idx"]] for i in items]), "y": torch.cat([i["y"][i["idx"]] for i in items])}
    made["idx"] = torch.arange(20)  # the way out: the samples made, every row's index
    probe = probe_from(made, 12, _gather, model=nn.Linear(3, 2))
    assert torch.equal(probe.inputs, made["x"][:12]) and torch.equal(probe.labels, made["y"][:12])
