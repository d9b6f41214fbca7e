"""Review of 37863070 (newuser88's sparse probe head): ``data_reading._sparse_head`` cut the rows of COO and CSR
tensors only and returned the other sparse layouts whole, so a CSC, BSR or BSC bag of words read as the probe
(``read_samples((X, y), 4)``) came back with all of its rows beside ``size`` labels (before 37863070, ``to_dense()[:size]``
cut them), and a batched CSR ``[B, M, V]`` (a 2-D ``crow_indices``) failed with "only one element tensors can be
converted to Python scalars". Every layout now gives the first ``size`` samples, dense, as the dense tensor's slice."""

from __future__ import annotations

import warnings

import pytest
import torch

from lightning_causal.data_reading import read_samples

LAYOUTS = {
    "coo": lambda t: t.to_sparse(),
    "coo_uncoalesced": lambda t: torch.sparse_coo_tensor(t.to_sparse().indices().repeat(1, 2),
                                                         t.to_sparse().values().repeat(2) / 2, t.shape),
    "coo_hybrid": lambda t: t[..., None].expand(*t.shape, 2).contiguous().to_sparse(2),
    "csr": lambda t: t.to_sparse_csr(),
    "csc": lambda t: t.to_sparse_csc(),
    "bsr": lambda t: t.to_sparse_bsr((2, 2)),
    "bsc": lambda t: t.to_sparse_bsc((2, 2)),
}


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_every_sparse_layout_gives_the_first_samples(layout):
    x = torch.zeros(10, 6)
    x[torch.arange(10), torch.arange(10) % 6] = torch.arange(1.0, 11.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torch's beta notes on sparse layouts
        sparse = LAYOUTS[layout](x)
        head, labels = read_samples((sparse, torch.arange(10)), 4)
    assert head.layout == torch.strided and labels.tolist() == [0, 1, 2, 3]
    torch.testing.assert_close(head, sparse.to_dense()[:4], rtol=0, atol=0)


def test_a_batched_csr_gives_its_first_samples():
    x = torch.arange(1.0, 121.0).reshape(2, 10, 6)  # [B, M, V]: as many nonzeros in every sample, as torch requires
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        head, labels = read_samples((x.to_sparse_csr(), torch.tensor([0, 1])), 1)
    assert labels.tolist() == [0]
    torch.testing.assert_close(head, x[:1], rtol=0, atol=0)
