"""A helper object's tensors (:func:`helper_objects`) were copied whole at every save of the model's state, whatever
their size (a ``torch_ema``-style shadow list of 16.5 MB: ~24 ms a copy, several an audit). Now the helper objects'
copies stop at ``KEPT_HELPER_BYTES`` in all: an object past it is not copied, its tensors' versions are still noted
(``changes`` names a write), and ``restore`` warns once per object that a pass wrote into it in place, naming it, its
size and the way out: a registered buffer, or a write in training mode only (task leftovers_s45a)."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.callbacks._no_trace import no_trace
from lightning_causal.causal import input_effects
from lightning_causal.causal.engine import kept_attributes
from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.kept_attributes import keep_attributes
from lightning_causal.causal.engine.state import audit_mode


class _Cache:
    def __init__(self, n: int) -> None:
        self.table, self.n = torch.zeros(n), 0


class _Net(nn.Module):
    """Writes 1 into entries 0..3 of its table at every call: in eval mode too (``"always"``), in training mode only
    (``"training"``), or into a registered buffer (``"buffer"``); ``"never"`` holds the table and never writes it (an
    EMA of the weights, updated after the optimizer's step)."""

    def __init__(self, how: str, n: int = 32) -> None:
        super().__init__()
        self.lin, self.how = nn.Linear(4, 2), how
        if how == "buffer":
            self.register_buffer("table", torch.zeros(n))
        else:
            self.cache = _Cache(n)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.how == "always" or self.how == "training" and self.training:
            self.cache.table[:4] += 1.0
        elif self.how == "buffer":
            self.table[:4] += 1.0
        return self.lin(x)


@pytest.fixture
def small_budget(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(kept_attributes, "KEPT_HELPER_BYTES", 100)  # a table of 32 float32: 128 bytes, past it


def _warnings(fn) -> list[str]:  # noqa: ANN001
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fn()
    return [str(w.message) for w in caught if "helper object" in str(w.message)]


def test_an_object_past_the_budget_written_by_the_passes_is_put_back_and_one_seen_unwritten_is_not_copied(
        small_budget: None) -> None:
    model = _Net("always").eval()
    x = torch.randn(3, 4)

    def audits() -> None:
        for _ in range(2):
            with audit_mode(model):
                Forward(model)(x)

    assert _warnings(audits) == []  # copied until seen unwritten (mends_s45c): the passes' writes put back
    assert model.cache.table.abs().sum().item() == 0.0
    read_only = _Net("never").eval()
    with audit_mode(read_only):
        Forward(read_only)(x)  # seen unwritten: not copied from now on
    read_only.how = "always"
    kept = keep_attributes(read_only, helpers=True)
    assert [c is None for *_, c in kept.copies] == [True]  # versions noted, no copy
    read_only(x)
    assert kept.changed(read_only) == [("cache.table", (32,))]  # a write is still seen
    found = _warnings(kept.restore)
    assert len(found) == 1 and "'cache' (_Cache) holds 0.000128 MB of tensors" in found[0]
    assert "register_buffer" in found[0] and "if self.training:" in found[0]
    assert read_only.cache.table[:5].tolist() == [1.0, 1.0, 1.0, 1.0, 0.0]  # the pass's write stays (warned)


def test_within_the_budget_the_object_is_put_back() -> None:
    model = _Net("always").eval()
    with audit_mode(model):
        model(torch.randn(3, 4))
    assert model.cache.table.abs().sum().item() == 0.0


def test_the_budget_counts_every_helper_object_in_turn(small_budget: None) -> None:
    model = _Net("always", n=16)  # 64 bytes: within 100
    model.lin.cache = _Cache(16)  # 64 more: past what is left (36)
    kept = keep_attributes(model, helpers=True)
    assert [name for name, *_ in kept.past_budget] == ["lin.cache"]


@pytest.mark.parametrize("how", ["training", "buffer", "never"])
def test_the_ways_out_leave_the_table_as_it_was_and_warn_of_nothing(small_budget: None, how: str) -> None:
    model = _Net(how).train()

    def audit() -> None:
        with no_trace(model):
            input_effects(model, torch.randn(8, 4))

    assert _warnings(audit) == []
    table = model.table if how == "buffer" else model.cache.table
    assert table.abs().sum().item() == 0.0
    assert model.training


class _Store:
    def __init__(self) -> None:
        self.keys, self.ptr = torch.zeros(32, 4), 0


class _StoreKNN(nn.Module):
    """A head beside a kNN memory its training-mode forward writes by rows (FIFO) into an object of its own."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.head, self.store = nn.Linear(4, 2), _Store()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.head(x) + (x @ self.store.keys.T).amax(1, keepdim=True)
        if self.training:
            with torch.no_grad():
                self.store.keys[(self.store.ptr + torch.arange(len(x))) % 32] = x
                self.store.ptr = (self.store.ptr + len(x)) % 32
        return out.log_softmax(1)


@pytest.mark.filterwarnings("ignore:.*self.log.*:UserWarning")
def test_a_repair_step_puts_a_bank_past_the_audits_budget_back(small_budget: None) -> None:
    """The repair module's keeps copy whatever the size (``helper_bytes=math.inf``): its terms' passes run in training
    mode, so the audits' way out (``if self.training:``) cannot keep their rows out of the bank (review of
    leftovers_s45a: with the audits' cap the terms' flipped rows stayed in the store, warned)."""
    from lightning_causal import CausalRepairModule
    from lightning_causal.causal import AttributeFlip
    from lightning_causal.repair import CounterfactualFairnessTerm

    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 4, generator=g)
    x[:, 0] = (x[:, 0] > 0).float()
    model = _StoreKNN()
    module = CausalRepairModule(model, [CounterfactualFairnessTerm(AttributeFlip(0), 0, weight=1.0)])
    found = _warnings(lambda: module.training_step((x, torch.arange(8) % 2), 0))
    assert module._carried == (("store.keys", (32, 4)),)  # a bank: unfused
    assert found == []
    assert torch.equal(model.store.keys[:8], x)  # the task's rows, written by its pass
    assert model.store.keys[8:].abs().sum().item() == 0.0  # none of the terms' flipped rows
    assert model.store.ptr == 8  # its number put back as before
