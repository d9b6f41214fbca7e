"""A repair term checks its outputs are logits on its first call and once more on its first batch of 4 rows or more
(fewer rows tell no evidential head from logits), never at every step of a fine-tune in batches of 2 or 3: the check
reduces the batch and reads the answer on the host, a synchronisation per step on a GPU (final read C of d7e527a9)."""

from __future__ import annotations

import torch

import lightning_causal.repair.base as base
from lightning_causal.repair.base import RepairTerm


class _Term(RepairTerm):
    def loss(self, model, x, y):
        return self.checked_logits(model(x)).sum()


def _calls(monkeypatch, rows: list[int]) -> int:
    calls = []
    real = base.check_logits
    monkeypatch.setattr(base, "check_logits", lambda outputs, caller: calls.append(outputs.shape[0]) or real(outputs, caller))
    term, model = _Term(), torch.nn.Linear(3, 4)
    for n in rows:
        term.loss(model, torch.randn(n, 3), None)
    return calls


def test_batches_of_two_are_checked_once_not_every_step(monkeypatch):
    assert _calls(monkeypatch, [2] * 20) == [2]


def test_the_first_batch_of_four_rows_is_still_checked_then_none(monkeypatch):
    assert _calls(monkeypatch, [2, 3, 2, 8, 2, 8, 16]) == [2, 8]


def test_a_first_batch_of_four_rows_is_the_only_check(monkeypatch):
    assert _calls(monkeypatch, [4, 2, 8]) == [4]
