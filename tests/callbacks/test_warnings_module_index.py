"""Recorded warnings are shown again under their module's name without a scan of every loaded module each time."""

import os
import sys
import types

from lightning_causal.callbacks import _warnings
from lightning_causal.callbacks._warnings import _module_of


class _CountedFile(types.ModuleType):
    """A module whose ``__file__`` counts its reads."""

    reads = 0

    @property
    def __file__(self):  # noqa: D105
        type(self).reads += 1
        return "/nowhere/counted_module.py"


def test_the_module_of_a_file_is_looked_up_without_reading_every_module_again(monkeypatch):
    """Each look-up read ``__file__`` of every module in ``sys.modules`` (3 ms with a test session's 3,800 modules):
    an audit whose passes recorded many warnings stalled one process of a sharded audit past its peers' collective
    timeout (tests/callbacks/test_callback_ddp.py failed under ``-n 2`` with BrokenBarrierError; a thread dump showed
    it in ``_module_of``). The index is built once and again only when a module was imported since."""
    monkeypatch.setitem(sys.modules, "counted_module", _CountedFile("counted_module"))
    monkeypatch.setattr(_warnings, "_BY_FILE", {}, raising=False)  # a fresh index (the suite's earlier look-ups built one)
    monkeypatch.setattr(_warnings, "_INDEXED", [frozenset()], raising=False)
    _CountedFile.reads = 0
    names = [_module_of(os.__file__) for _ in range(5)]
    assert names == ["os"] * 5
    assert _CountedFile.reads == 1
    assert _module_of("/nowhere/counted_module.py") == "counted_module"
    assert _CountedFile.reads == 1


def test_a_module_imported_after_the_index_was_built_is_found(monkeypatch):
    _module_of(os.__file__)
    late = types.ModuleType("late_module")
    late.__file__ = "/nowhere/late_module.py"
    monkeypatch.setitem(sys.modules, "late_module", late)
    assert _module_of("/nowhere/late_module.py") == "late_module"
    assert _module_of("/nowhere/never_imported.py") is None
