"""Fixtures of the causal-core tests."""

from __future__ import annotations

import pytest

from lightning_causal.causal.engine.linear_update import LinearReaders


@pytest.fixture
def updates(monkeypatch):
    """Counts the suffix rows answered by the prefix cache's linear update (``updates["rows"]``)."""
    counted = {"rows": 0}
    original = LinearReaders._update

    def counting(self, module, h, rows, columns):
        counted["rows"] += h.shape[0]
        return original(self, module, h, rows, columns)

    monkeypatch.setattr(LinearReaders, "_update", counting)
    return counted
