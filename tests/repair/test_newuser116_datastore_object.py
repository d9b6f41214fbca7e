"""A kNN classifier whose memory of ``(key, label)`` pairs lives in an object of its own (``self.store.keys``,
``self.store.ptr``), written by its training-mode forward (FIFO): ``CausalRepairModule``'s term passes wrote their rows
into it too (the pointer moved 64 rows in 4 steps of 8 where plain training moves it 32, the keys other rows), fused or
not, as they did into a buffer before the memory-bank rule. Such an object's tensors are now found as a bank and put
back after the terms' passes, as a buffer's (trial newuser116)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from lightning_causal import CausalRepairModule
from lightning_causal.causal import AttributeFlip
from lightning_causal.repair import CounterfactualFairnessTerm

Q, D, C, N = 24, 4, 2, 8


class _Store:
    def __init__(self) -> None:
        self.keys, self.vals, self.ptr = torch.full((Q, D), float("nan")), torch.full((Q, C), 1.0 / C), 0


class _StoreKNN(nn.Module):
    """p = (p_knn + p_model) / 2, p_knn over the top-4 cosine neighbours among the store's raw input rows."""

    def __init__(self) -> None:
        super().__init__()
        self.head, self.store = nn.Linear(D, C), _Store()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p_model = self.head(x).softmax(1)
        keys = F.normalize(self.store.keys.nan_to_num(0.0), dim=1)
        s, i = (F.normalize(x, dim=1) @ keys.T).topk(4, dim=1)
        p = (p_model + (s / 0.1).softmax(1).unsqueeze(2).mul(self.store.vals.clone()[i]).sum(1)) / 2
        if self.training:
            with torch.no_grad():
                rows = (self.store.ptr + torch.arange(len(x))) % Q
                self.store.keys[rows], self.store.vals[rows] = x, p_model
                self.store.ptr = (self.store.ptr + len(x)) % Q
        return p.log()


def _fit(repair: bool, fuse: bool) -> _StoreKNN:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(4 * N, D, generator=g)
    x[:, 0] = (x[:, 0] > 0).float()
    y = torch.randint(0, C, (4 * N,), generator=g)
    torch.manual_seed(0)
    model = _StoreKNN()
    module = CausalRepairModule(model, [CounterfactualFairnessTerm(AttributeFlip(0), 0, weight=1.0)], fuse_forward=fuse)
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    for step in range(4):
        xb, yb = x[step * N:(step + 1) * N], y[step * N:(step + 1) * N]
        opt.zero_grad()
        if repair:
            out = module.training_step((xb, yb), step)
            (out["loss"] if isinstance(out, dict) else out).backward()
        else:
            F.nll_loss(model(xb), yb).backward()
        opt.step()
    return model


@pytest.mark.filterwarnings("ignore:.*self.log.*:UserWarning")
@pytest.mark.parametrize("fuse", [True, False])
def test_a_datastore_object_holds_the_training_rows_once(fuse: bool) -> None:
    plain, repaired = _fit(False, fuse), _fit(True, fuse)
    assert repaired.store.ptr == plain.store.ptr == 4 * N % Q
    # the same training rows in the same slots (the values are predictions, which the terms' gradients move)
    assert torch.equal(repaired.store.keys.nan_to_num(-1.0), plain.store.keys.nan_to_num(-1.0))
