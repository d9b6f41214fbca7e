"""The public API's type hints as users' tools read them (the package ships ``py.typed``).

- ``typing.get_type_hints`` resolves every public callable and class ``__init__`` (LightningCLI and
  jsonargparse call it; a name imported only under ``TYPE_CHECKING`` made it raise ``NameError``:
  ``AdditiveNoiseSCM.flip`` and ``SCMFlip.__init__``).
- The lazily exporting packages re-export, for type checkers, exactly the names of their run-time
  ``__all__``, each as ``from m import X as X``: a ``__all__`` computed by ``sorted(...)`` is invisible to
  mypy, so under ``--strict`` (no implicit re-export) every ``from lightning_causal import
  CausalAuditCallback`` was an error, and the top level's ``from lightning_causal.causal import *``
  showed type checkers names (``column_mask``, ``neural_cleanse``) that fail to import at run time.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import typing
from pathlib import Path

import pytest

import lightning_causal

PUBLIC = [
    "lightning_causal",
    "lightning_causal.causal",
    "lightning_causal.audits",
    "lightning_causal.repair",
    "lightning_causal.reporting",
    "lightning_causal.baselines",
    "lightning_causal.callbacks",
]


def _callables(module_name: str) -> list[tuple[str, object]]:
    module = importlib.import_module(module_name)
    out: list[tuple[str, object]] = []
    for name in module.__all__:
        obj = getattr(module, name)
        if inspect.isclass(obj):
            out.append((f"{name}.__init__", obj.__init__))
            out += [(f"{name}.{a}", v) for a, v in vars(obj).items() if not a.startswith("_") and inspect.isfunction(v)]
        elif callable(obj):
            out.append((name, obj))
    return out


CALLABLES = {m: _callables(m) for m in PUBLIC}  # at collection: the imports (Lightning, Captum) are no test's time


@pytest.mark.parametrize("module_name", PUBLIC)
def test_get_type_hints_resolves_every_public_callable(module_name):
    assert len(CALLABLES[module_name]) >= 5
    failed = {}
    for label, func in CALLABLES[module_name]:
        try:
            typing.get_type_hints(func)
        except Exception as err:  # noqa: BLE001 - every failure is reported by name
            failed[label] = repr(err)
    assert failed == {}


def _static_exports(init: Path) -> list[tuple[str, str | None]]:
    """``(name, asname)`` of every import in the module's ``if TYPE_CHECKING:`` block."""
    tree = ast.parse(init.read_text())
    out = []
    for node in tree.body:
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            for stmt in node.body:
                assert isinstance(stmt, ast.ImportFrom)
                out += [(a.name, a.asname) for a in stmt.names]
    return out


@pytest.mark.parametrize("module_name", ["lightning_causal", "lightning_causal.audits"])
def test_lazy_packages_re_export_their_all_explicitly_for_type_checkers(module_name):
    module = importlib.import_module(module_name)
    exports = _static_exports(Path(module.__file__))
    assert [e for e in exports if e[0] == "*" or e[1] != e[0]] == []  # each `X as X`, no star import
    assert sorted(name for name, _ in exports) == sorted(module.__all__)


def test_each_static_re_export_imports_at_run_time():
    for name in lightning_causal.__all__:
        assert getattr(lightning_causal, name) is not None
