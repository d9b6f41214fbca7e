"""A Hugging Face ``BatchEncoding`` given as one batch, or as ``DataLoader(batch_size=None)`` items, came back from
``read_samples`` as a plain dict (``_batch_head``, ``_concat`` rebuilt mappings as dicts), so an ``unpack_batch``
reading ``b.input_ids`` or ``b.to("cpu")`` died with a bare AttributeError in the audits' probe. The reader now keeps
the mapping's type, as the copy an ``unpack_batch`` reads already did (``data_reading.mapping_like``)."""

import warnings

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from lightning_causal.callbacks._probe import probe_from
from lightning_causal.data_reading import read_samples

transformers = pytest.importorskip("transformers")


def _encoding(lo: int, hi: int) -> "transformers.BatchEncoding":
    ids = torch.arange(lo * 5, hi * 5).reshape(hi - lo, 5) % 9
    return transformers.BatchEncoding({"input_ids": ids, "labels": torch.arange(lo, hi) % 2})


@pytest.mark.parametrize("given", ["batch", "items"])
def test_a_batch_encoding_is_read_as_one(given):
    source = _encoding(0, 20) if given == "batch" else DataLoader([_encoding(i, i + 4) for i in range(0, 20, 4)],
                                                                  batch_size=None)
    batch = read_samples(source, 7)
    assert type(batch) is transformers.BatchEncoding and torch.equal(batch.input_ids, _encoding(0, 7).input_ids)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        probe = probe_from(source, 7, lambda b: (b.to("cpu").input_ids.float(), b.labels, None), model=nn.Linear(5, 2))
    assert torch.equal(probe.inputs, _encoding(0, 7).input_ids.float()) and torch.equal(probe.labels, torch.arange(7) % 2)
