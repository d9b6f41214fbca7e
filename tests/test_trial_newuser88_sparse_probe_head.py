"""A bag of words given whole as the probe, ``probe=(X, y)`` with ``X`` a sparse ``[N, V]`` TF-IDF matrix of the whole
corpus (newuser88 trial): the probe reader made all ``N`` rows dense before cutting the first ``probe_size``, so a
corpus of 100,000 documents over 50,000 words asked for 20 GB for a probe of 256 rows. The rows are cut while the tensor
is sparse (COO and CSR), and only those are made dense; the probe holds the same values."""

from __future__ import annotations

import torch

from lightning_causal.data_reading import read_samples


def _corpus() -> torch.Tensor:
    x = torch.zeros(40, 12)
    g = torch.Generator().manual_seed(0)
    x[torch.arange(40), torch.randint(0, 12, (40,), generator=g)] = torch.rand(40, generator=g) + 0.5
    return x


def test_only_the_probe_rows_of_a_sparse_batch_are_made_dense(monkeypatch):
    dense_rows = []
    to_dense = torch.Tensor.to_dense

    def watched(self, *args, **kwargs):
        dense_rows.append(self.shape[0])
        return to_dense(self, *args, **kwargs)

    x, y = _corpus(), torch.arange(40) % 2
    for sparse in (x.to_sparse(), x.to_sparse_csr()):
        dense_rows.clear()
        monkeypatch.setattr(torch.Tensor, "to_dense", watched)
        head, labels = read_samples((sparse, y), 8)
        monkeypatch.undo()
        assert dense_rows and max(dense_rows) == 8, dense_rows
        assert head.layout == torch.strided and torch.equal(head, x[:8]) and torch.equal(labels, y[:8])
