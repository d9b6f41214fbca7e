"""BackdoorSuppressionTerm's frozen reference of a kNN classifier whose memory bank is a plain tensor attribute
(``self.keys``) or lives in a datastore object (``self.store.keys``): neither is in the reference's ``state_dict``, so a
fit resumed from a checkpoint made the reference from the network as it was at resume and held its live memory, not the
one set up (the uninterrupted fit's), silently: the consistency term compared against another model. The term's state
now holds those tensors too and gives them back (trial newuser116)."""

from __future__ import annotations

import io

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from lightning_causal.causal import Trigger
from lightning_causal.repair import BackdoorSuppressionTerm

D, C = 6, 2


class _Store:
    def __init__(self) -> None:
        self.keys, self.vals = torch.randn(32, D), torch.randint(0, C, (32,))


class _KNN(nn.Module):
    def __init__(self, where: str) -> None:
        super().__init__()
        self.head, self.where = nn.Linear(D, C), where
        if where == "buffer":
            self.register_buffer("keys", torch.randn(32, D))
            self.register_buffer("vals", torch.randint(0, C, (32,)))
        elif where == "attribute":
            self.keys, self.vals = torch.randn(32, D), torch.randint(0, C, (32,))
        else:
            self.store = _Store()

    def memory(self) -> nn.Module | _Store:
        return self.store if self.where == "object" else self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mem = self.memory()
        w, i = (x @ mem.keys.T).topk(4, dim=1)
        p_knn = w.softmax(1).unsqueeze(2).mul(F.one_hot(mem.vals[i], C).float()).sum(1)
        return (0.5 * self.head(x).softmax(1) + 0.5 * p_knn).log()


@pytest.mark.parametrize("where", ["buffer", "attribute", "object"])
def test_a_resumed_reference_holds_the_memory_set_up(where: str) -> None:
    torch.manual_seed(0)
    model, x = _KNN(where), torch.randn(16, D)
    trigger = Trigger(mask=(torch.arange(D) == 5).float(), pattern=torch.full((D,), 3.0), target=1)
    term = BackdoorSuppressionTerm(trigger, distill_weight=1.0)
    term.setup(model, x)
    buffer = io.BytesIO()
    torch.save(term.state_dict(), buffer)  # a checkpoint: plain values and tensors
    with torch.no_grad():
        model.memory().keys.add_(1.0)  # the fine-tune moved the network's memory since
    resumed = BackdoorSuppressionTerm(trigger, distill_weight=1.0)
    buffer.seek(0)
    resumed.load_state_dict(torch.load(buffer, weights_only=True), model)
    assert torch.equal(resumed.reference.memory().keys, term.reference.memory().keys)
    assert torch.equal(resumed.reference(x), term.reference(x))
