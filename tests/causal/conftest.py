"""Fixtures of the causal-core tests."""

from __future__ import annotations

import sys

import pytest

from lightning_causal.causal.engine.batching import rows_alone
from lightning_causal.causal.engine.linear_update import LinearReaders


@pytest.fixture
def updates(monkeypatch):
    """Counts the suffix rows answered by the prefix cache's linear update (``updates["rows"]``), but for the
    stacked-rows check's rows run alone besides their chunk (``rows_alone``, one row a pass; the update's trial of two
    rows that the first of them sets off is counted)."""
    counted = {"rows": 0}
    original = LinearReaders._update

    def counting(self, module, h, rows, columns, **kw):
        counted["rows"] += 0 if rows_alone() and h.shape[0] == 1 else h.shape[0]
        return original(self, module, h, rows, columns, **kw)

    monkeypatch.setattr(LinearReaders, "_update", counting)
    return counted


class RefuseDynamo:
    """A meta path finder that records (``tried``) and refuses every import of ``torch._dynamo``."""

    def __init__(self) -> None:
        self.tried: list[str] = []

    def find_spec(self, name, path=None, target=None):
        if name == "torch._dynamo" or name.startswith("torch._dynamo."):
            self.tried.append(name)
            raise ImportError(f"{name} refused by the test")
        return None


@pytest.fixture
def no_dynamo(monkeypatch):
    """``torch._dynamo`` hidden from ``sys.modules``, every import of it recorded (``.tried``) and refused."""
    for name in [n for n in sys.modules if n == "torch._dynamo" or n.startswith("torch._dynamo.")]:
        monkeypatch.delitem(sys.modules, name)
    finder = RefuseDynamo()
    monkeypatch.setattr(sys, "meta_path", [finder, *sys.meta_path])
    return finder
