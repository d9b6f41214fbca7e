"""One walk of the helper objects' tensors (``kept_attributes.helper_tensors``) serves the checkpoint's held tensors
(``held_tensors``) and the batch-dependence check's kept places (``sample_independence._kept_places``), which walked
them alike, each its own way (task leftovers_s45a)."""

from __future__ import annotations

import torch
from torch import nn

from lightning_causal.causal.engine.kept_attributes import held_tensors, helper_tensors
from lightning_causal.causal.engine.sample_independence import _kept_places


class _Stats:
    def __init__(self) -> None:
        self.mean, self.var, self.count, self.w = torch.zeros(3), torch.ones(3), 4, nn.Parameter(torch.ones(1))


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2)
        self.lin.rms = _Stats()
        self.h = torch.zeros(2)


def test_the_helper_tensors_are_named_alike_by_both_users() -> None:
    model = _Net()
    found = helper_tensors(model)
    assert list(found) == ["lin.rms.mean", "lin.rms.var"]  # not the number, not the parameter
    assert all(found[k][0] is model.lin.rms and found[k][2] is getattr(model.lin.rms, k.split(".")[-1]) for k in found)
    assert sorted(held_tensors(model)) == ["h", "lin.rms.mean", "lin.rms.var"]
    places = _kept_places(model)
    assert {k: places[k] for k in found} == found
    model.lin.rms.var = torch.ones(3, requires_grad=True) * 2  # computed in the autograd graph: no held tensor
    assert sorted(held_tensors(model)) == ["h", "lin.rms.mean"] and "lin.rms.var" in helper_tensors(model)
