"""The estimators called directly put back a datastore object a module holds (tensors and numbers, ``self.store.keys``,
``self.store.ptr``), written by a forward that enqueues at every call: before, one ``input_effects`` call left the probe's
features in it and its pointer moved (trial newuser116). A user's ``Dataset`` kept on a module is no such state (its
data would be copied at every audit)."""

from __future__ import annotations

import torch
from torch import nn
from torch.utils.data import Dataset

from lightning_causal.causal import input_effects, unit_effects
from lightning_causal.causal.engine.kept_attributes import helper_objects


class _Store:
    def __init__(self) -> None:
        self.keys, self.ptr = torch.zeros(16, 4), 0


class _Enqueues(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.enc, self.head, self.store = nn.Linear(3, 4), nn.Linear(4, 2), _Store()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.enc(x)
        with torch.no_grad():
            self.store.keys[(self.store.ptr + torch.arange(len(x))) % 16] = z
            self.store.ptr = (self.store.ptr + len(x)) % 16
        return self.head(z)


def test_the_estimators_put_back_a_datastore_object() -> None:
    torch.manual_seed(0)
    model = _Enqueues()
    model(torch.randn(3, 3))
    keys = model.store.keys.clone()
    x = torch.randn(10, 3)
    input_effects(model, x)
    unit_effects(model, x, "enc")
    assert model.store.ptr == 3
    assert torch.equal(model.store.keys, keys)


class _Rows(Dataset):
    def __init__(self) -> None:
        self.x = torch.zeros(100, 3)

    def __len__(self) -> int:
        return 100

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.x[i]


def test_a_dataset_is_no_datastore() -> None:
    model = _Enqueues()
    model.data = _Rows()
    assert [name for name, _ in helper_objects(model)] == ["store"]
