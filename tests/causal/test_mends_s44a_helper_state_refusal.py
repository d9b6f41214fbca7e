"""A kNN model whose output reads a datastore object of its own (``self.store.keys``, ``self.store.vals``) that every
call writes, eval mode too: the clean-probe check refused it as a forward that "depends on the batch" with a batch
advice, where the same store kept as buffers is refused as a state kept from earlier calls, with that fix (final read
A44). The helper object's tensors are now watched as the modules' own."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from lightning_causal.causal import input_effects

Q, D, C = 24, 4, 2


class _Store:
    def __init__(self) -> None:
        self.keys, self.vals, self.ptr = torch.zeros(Q, D), torch.full((Q, C), 0.5), 0


class _KNN(nn.Module):
    def __init__(self, helper: bool) -> None:
        super().__init__()
        self.head, self.helper = nn.Linear(D, C), helper
        store = _Store()
        if helper:
            self.store = store
        else:
            self.register_buffer("keys", store.keys)
            self.register_buffer("vals", store.vals)
            self.ptr = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = self.store if self.helper else self
        p_model = self.head(x).softmax(1)
        sim = F.normalize(x, dim=1) @ F.normalize(s.keys, dim=1).T
        p = (p_model + (sim / 0.1).softmax(1) @ s.vals) / 2
        with torch.no_grad():
            rows = (s.ptr + torch.arange(len(x))) % Q
            s.keys[rows], s.vals[rows] = x, p_model
            s.ptr = (s.ptr + len(x)) % Q
        return p.log()


def _refusal(helper: bool) -> str:
    x = torch.randn(12, D, generator=torch.Generator().manual_seed(0))
    torch.manual_seed(0)
    model = _KNN(helper)
    model(torch.randn(Q, D))
    model.eval()
    with pytest.raises(ValueError) as err:
        input_effects(model, x, max_batch_size=4)
    return str(err.value)


def test_a_store_in_a_helper_object_is_refused_as_a_state_kept() -> None:
    as_buffers, in_helper = _refusal(False), _refusal(True)
    assert "reads a state it keeps from earlier calls: keys, vals" in as_buffers
    assert "reads a state it keeps from earlier calls: store.keys, store.vals" in in_helper
    assert "depends on the batch" not in in_helper
    # the same cause and fix as the buffers'
    assert in_helper.replace("store.", "") == as_buffers
