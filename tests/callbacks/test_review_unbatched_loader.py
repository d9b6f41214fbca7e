"""Review of 1b4d5dd: a loader without auto-collation (``DataLoader(dataset, batch_size=None)``) was
read as a loader of batches whatever its items. For single samples (a TensorDataset's rows, items
with a 0-dim label) that counted each sample's features as samples: the probe of a TensorDataset
of [10, 4] features became 6 scalars (two samples' features run together), and with labels the
callback failed on 'labels ... with 6 rows but got torch.Size([])'. Such items are stacked again,
as before 1b4d5dd; a loader of batches is still joined."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal.callbacks._probe import probe_from
from lightning_causal.data_reading import read_samples

X, Y = torch.arange(40.0).view(10, 4), torch.arange(10)


@pytest.mark.parametrize("data", [
    TensorDataset(X, Y),
    [(X[i], Y[i]) for i in range(10)],
    [{"x": X[i], "label": Y[i]} for i in range(10)],
], ids=["TensorDataset", "tuples", "dicts"])
def test_single_samples_without_collation_are_stacked(data):
    probe = probe_from(DataLoader(data, batch_size=None), 6)
    assert torch.equal(probe.first, X[:6]) and torch.equal(probe.labels, Y[:6])


def test_a_tensor_dataset_of_features_alone_is_read_as_samples():
    (x,) = read_samples(DataLoader(TensorDataset(X), batch_size=None), 6)
    assert torch.equal(x, X[:6])


def test_a_loader_of_batches_is_still_joined():
    batches = [(X[a:b], Y[a:b]) for a, b in ((0, 4), (4, 8), (8, 10))]
    x, y = read_samples(DataLoader(batches, batch_size=None), 6)
    assert torch.equal(x, X[:6]) and torch.equal(y, Y[:6])
