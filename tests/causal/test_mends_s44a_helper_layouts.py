"""A user's helper object holding a model's state in other layouts than a tensor attribute (final read A44): a store
that creates its queue at its first call (``self.queue = None`` until then), one that keeps its batches in a list or
its queue in a dict, were not put back after the audits' passes (training went on from the audit's rows); one object
several modules hold was copied once per module (12 x 96 MiB for a KV cache of 12 layers); a ``LightningDataModule`` of
the user's held by the model was copied as a helper at every audit (its whole data set)."""

from __future__ import annotations

import lightning.pytorch as pl
import pytest
import torch
from torch import nn

from lightning_causal.callbacks._no_trace import no_trace
from lightning_causal.causal import input_effects
from lightning_causal.causal.engine.kept_attributes import helper_objects, keep_attributes


class _Lazy:  # created at the first call
    def __init__(self) -> None:
        self.queue, self.ptr = None, 0

    def put(self, z: torch.Tensor) -> None:
        if self.queue is None:
            self.queue = torch.zeros(8, 4)
        rows = (self.ptr + torch.arange(len(z))) % 8
        self.queue[rows], self.ptr = z, (self.ptr + len(z)) % 8


class _Listed:  # the last 2 batches, in a list reassigned
    def __init__(self) -> None:
        self.items: list[torch.Tensor] = []

    def put(self, z: torch.Tensor) -> None:
        self.items = (self.items + [z])[-2:]


class _Appended(_Listed):  # the same, appended to in place
    def put(self, z: torch.Tensor) -> None:
        self.items.append(z)


class _Dicted:  # a queue held in a dict, written in place
    def __init__(self) -> None:
        self.bank, self.ptr = {"q": torch.zeros(8, 4)}, 0

    def put(self, z: torch.Tensor) -> None:
        rows = (self.ptr + torch.arange(len(z))) % 8
        self.bank["q"][rows], self.ptr = z, (self.ptr + len(z)) % 8


class _Model(nn.Module):
    def __init__(self, store: object) -> None:
        super().__init__()
        self.enc, self.store = nn.Linear(3, 4), store

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.enc(x)
        with torch.no_grad():  # written at every call, eval mode too
            self.store.put(z.detach())
        return z


def _state(store: object) -> dict[str, object]:
    return {k: (v.clone() if isinstance(v, torch.Tensor) else [t.clone() for t in v] if isinstance(v, list)
                else {a: t.clone() for a, t in v.items()} if isinstance(v, dict) else v) for k, v in vars(store).items()}


def _same(a: dict[str, object], b: dict[str, object]) -> bool:
    def eq(x: object, y: object) -> bool:
        if isinstance(x, torch.Tensor) or isinstance(y, torch.Tensor):
            return isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor) and torch.equal(x, y)
        if isinstance(x, list):
            return isinstance(y, list) and len(x) == len(y) and all(map(eq, x, y))
        if isinstance(x, dict):
            return isinstance(y, dict) and x.keys() == y.keys() and all(eq(x[k], y[k]) for k in x)
        return x == y
    return a.keys() == b.keys() and all(eq(a[k], b[k]) for k in a)


@pytest.mark.parametrize("kind", [_Lazy, _Listed, _Appended, _Dicted])
@pytest.mark.parametrize("called_before", [False, True])
def test_the_audits_leave_a_helper_object_as_it_was(kind: type, called_before: bool) -> None:
    torch.manual_seed(0)
    model = _Model(kind())
    if called_before:
        model(torch.randn(3, 3))
    before = _state(model.store)
    with no_trace(model):
        input_effects(model, torch.randn(6, 3))
        model(torch.randn(5, 3))
    assert _same(_state(model.store), before), (vars(model.store), before)


def test_a_helper_object_several_modules_hold_is_copied_once() -> None:
    class Cache:
        def __init__(self) -> None:
            self.k, self.pos = torch.zeros(64, 64), 0

    cache = Cache()
    model = nn.Sequential(*(nn.Linear(4, 4) for _ in range(6)))
    for layer in model:
        layer.cache = cache
    assert [name for name, _ in helper_objects(model)] == ["0.cache"]
    kept = keep_attributes(model, numbers=True, helpers=True)
    assert sum(1 for t, *_ in kept.copies if t is cache.k) == 1
    cache.k += 1
    cache.pos = 3
    kept.restore()
    assert cache.pos == 0 and not cache.k.any()


def test_a_data_module_held_by_the_model_is_no_helper() -> None:
    class DM(pl.LightningDataModule):
        def __init__(self) -> None:
            super().__init__()
            self.x = torch.randn(1000, 4)

    class Tokenizer:  # data of no tensor: not copied at every audit
        def __init__(self) -> None:
            self.vocab, self.pad_token_id = {f"w{i}": i for i in range(100)}, 0

    class Stats:
        def __init__(self) -> None:
            self.mean = torch.zeros(4)

    model = nn.Linear(4, 2)
    model.dm, model.tok, model.stats = DM(), Tokenizer(), Stats()
    assert [name for name, _ in helper_objects(model)] == ["stats"]
    kept = keep_attributes(model, numbers=True, helpers=True)
    assert all(t is not model.dm.x for t, *_ in kept.copies)


def test_a_bank_in_a_helper_objects_dict_is_named_by_its_path() -> None:
    from lightning_causal.repair.carried_state import memory_rows_written

    model = _Model(_Dicted())
    kept = keep_attributes(model, reassigned_buffers=True, values=True, helpers=True)
    model(torch.randn(3, 3))
    assert memory_rows_written(kept, model) == (("store.bank['q']", (8, 4)),)
    assert ("store.ptr" not in [n for n, *_ in kept.changes(model)])
    assert [n for n, *_ in kept.changes(model)] == ["store.bank['q']"]
