"""The declared dependency floors hold (pyproject.toml: torch>=2.3, lightning>=2.5, captum>=0.8, ...): the library
names no API newer than the floors outside ``lightning_causal/_compat.py``, the shims there resolve to the right
classes and behaviour, and each floor is a version that has what the package uses.

Found by running the suite in a virtual environment of the floors (torch 2.2.2, then 2.3.1; lightning 2.4.0, then
2.5.0; captum 0.7.0, then 0.8.0; numpy 1.24.4, matplotlib 3.7.5, tensorboard 2.14.1, tqdm 4.58.0, fsspec 2022.5.0):
``torch.OutOfMemoryError`` exists from torch 2.5 only, so on older torch any exception that reached
``is_out_of_memory`` or an ``except torch.OutOfMemoryError`` became an AttributeError; and more (the tests below).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest
import torch

import lightning_causal
from lightning_causal._compat import (
    OutOfMemoryError,
    _is_autocast_enabled_before_2_4,
    is_autocast_enabled,
)
from lightning_causal.causal.engine.batching import is_out_of_memory

PACKAGE = Path(lightning_causal.__file__).parent

#: name -> the first version that has it; the library spells it through lightning_causal._compat instead.
NEWER_THAN_FLOORS = {"torch.OutOfMemoryError": "torch 2.5"}
#: functions whose arguments are newer than the floors: called with any, they fail on the floor.
ARGUMENTS_NEWER_THAN_FLOORS = {"torch.is_autocast_enabled": "a device type: torch 2.4"}


def _dotted(node: ast.AST) -> str | None:
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return ".".join([node.id, *reversed(parts)]) if isinstance(node, ast.Name) else None


def _uses(source: str) -> set[str]:
    """The dotted names in ``source``'s code and in its doctest examples (``>>>`` / ``...`` lines)."""
    names = {_dotted(n) for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Attribute)}
    examples = "\n".join(m.group(1).split("#")[0] for m in re.finditer(r"^\s*(?:>>>|\.\.\.) ?(.*)$", source, re.M))
    names |= {m.group(0) for m in re.finditer(r"\b[A-Za-z_]\w*(?:\.\w+)+", examples)}
    called = {_dotted(n.func) for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Call) and (n.args or n.keywords)}
    called |= {m.group(1) for m in re.finditer(r"\b([A-Za-z_]\w*(?:\.\w+)+)\(\s*[^)\s]", examples)}
    return names | {f"{name}(...)" for name in called & ARGUMENTS_NEWER_THAN_FLOORS.keys()}


def test_the_library_names_no_api_newer_than_its_floors():
    newer = {**NEWER_THAN_FLOORS, **{f"{name}(...)": v for name, v in ARGUMENTS_NEWER_THAN_FLOORS.items()}}
    found = [f"{path.relative_to(PACKAGE.parent)}: {name} (from {newer[name]})"
             for path in sorted(PACKAGE.rglob("*.py")) if path.name != "_compat.py"
             for name in sorted(_uses(path.read_text()) & newer.keys())]
    assert not found, "use lightning_causal._compat instead of:\n" + "\n".join(found)


def test_the_scan_sees_code_and_doctest_examples():
    assert _uses("isinstance(e, torch.OutOfMemoryError)") >= {"torch.OutOfMemoryError"}
    assert "torch.OutOfMemoryError" in _uses('def f():\n    """\n    >>> raise torch.OutOfMemoryError("x")\n    """\n')
    assert "torch.is_autocast_enabled(...)" in _uses("torch.is_autocast_enabled(x.device.type)")
    assert "torch.is_autocast_enabled(...)" not in _uses("torch.is_autocast_enabled() or torch.is_autocast_cpu_enabled()")
    assert "torch.OutOfMemoryError" not in _uses('"""Prose may name torch.OutOfMemoryError.\n>>> 1  # a comment too: torch.OutOfMemoryError"""')


def test_out_of_memory_error_is_torchs_class_on_every_supported_version():
    # torch >= 2.5: the device-generic torch.OutOfMemoryError, which torch.cuda.OutOfMemoryError aliases;
    # torch 2.2 - 2.4: torch.cuda.OutOfMemoryError, what a CUDA allocation failure raises there.
    assert OutOfMemoryError is getattr(torch, "OutOfMemoryError", torch.cuda.OutOfMemoryError)
    assert issubclass(torch.cuda.OutOfMemoryError, OutOfMemoryError) and issubclass(OutOfMemoryError, RuntimeError)
    assert is_out_of_memory(torch.cuda.OutOfMemoryError("CUDA error"))  # by its type: the message does not say it
    assert not is_out_of_memory(ValueError("out of memory"))


def test_autocast_is_told_per_device_type_on_every_supported_version():
    for enabled in (is_autocast_enabled, _is_autocast_enabled_before_2_4):  # the torch >= 2.4 path and the older one
        assert not enabled("cpu") and not enabled("cuda")
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert enabled("cpu") and not enabled("cuda")
        assert not enabled("cpu")


def test_before_torch_2_5_the_audit_blocks_switch_the_transformer_fast_path_off(monkeypatch):
    # torch 2.3 - 2.4 take nn.TransformerEncoderLayer's fused fast path with hooks on its submodules (their hooks
    # never fire); every audit, intervene and capture block runs under force_eager, which switches it off there.
    from torch.backends import mha

    import lightning_causal._compat as compat
    from lightning_causal.causal.engine.eager import force_eager

    monkeypatch.setattr(compat, "_TORCH", (2, 4))
    assert mha.get_fastpath_enabled()
    with force_eager():
        assert not mha.get_fastpath_enabled()
        with force_eager():
            assert not mha.get_fastpath_enabled()
        assert not mha.get_fastpath_enabled()
    assert mha.get_fastpath_enabled()
    try:
        with force_eager():
            raise KeyError("in the block")
    except KeyError:
        pass
    assert mha.get_fastpath_enabled()
    monkeypatch.setattr(compat, "_TORCH", (2, 5))
    with force_eager():
        assert mha.get_fastpath_enabled()  # torch >= 2.5 leaves the fast path where hooks are attached by itself


def test_hooks_on_a_transformer_layers_submodules_fire_in_the_block():
    layer = torch.nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, batch_first=True).eval()
    seen = []
    for module in (layer.self_attn, layer.linear1):
        module.register_forward_hook(lambda m, a, out: seen.append(type(m).__name__))
    from lightning_causal._compat import module_hooks_fire

    with torch.no_grad(), module_hooks_fire():
        layer(torch.randn(3, 5, 8))
    assert seen == ["MultiheadAttention", "Linear"]


def test_before_torch_2_5_reading_a_sites_facts_switches_the_transformer_fast_path_off(monkeypatch):
    from torch.backends import mha

    import lightning_causal._compat as compat
    from lightning_causal.causal.engine.unit_sites import inspect_site

    monkeypatch.setattr(compat, "_TORCH", (2, 4))
    model, x, during = torch.nn.Sequential(torch.nn.Linear(8, 6)), torch.rand(2, 8), []
    facts = inspect_site(model, "0", lambda: (during.append(mha.get_fastpath_enabled()), model(x)))
    assert during == [False] and mha.get_fastpath_enabled() and facts.shape == (2, 6)


def test_an_exported_models_batch_guard_of_torch_2_3_names_the_way_out_too():
    # torch 2.3's ExportedProgram.module() refuses another batch size with a RuntimeError of its own wording
    # (torch 2.13: AssertionError "Guard failed: x.size()[0] == 2"); the hint followed the newer one only.
    import pytest

    from lightning_causal.causal import input_effects

    class Exported(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin = torch.nn.Linear(3, 2)

        def forward(self, x):
            if x.shape[0] != 2:
                raise RuntimeError(f"Expected input at *args[0].shape[0] to be equal to 2, but got {x.shape[0]}")
            return self.lin(x)

    with pytest.raises(RuntimeError, match=r"but got \d+\. The model was exported .*Dim\('batch'\)"):
        input_effects(Exported(), torch.rand(7, 3), target=0)


#: dependency -> (the lowest version the package runs on, what of it the package uses, where)
FLOOR_NEEDS = {
    "torch": ((2, 3), "from torch.backends import mha", "_compat.py"),  # mha.set_fastpath_enabled: module_hooks_fire on 2.3 - 2.4
    "lightning": ((2, 5), "restarted_on_train_batch_end", "callbacks/_trainer_facts.py"),  # the fit loop's restart stage
}


def test_the_declared_floors_are_the_versions_that_have_what_the_package_uses():
    tomllib = __import__("pytest").importorskip("tomllib")  # Python 3.11+
    from packaging.requirements import Requirement

    declared = {}
    for line in tomllib.loads((PACKAGE.parent / "pyproject.toml").read_text())["project"]["dependencies"]:
        requirement = Requirement(line)
        for spec in requirement.specifier:
            if spec.operator == ">=":
                declared[requirement.name] = tuple(int(p) for p in spec.version.split(".")[:2])
    for name, (needed, used, where) in FLOOR_NEEDS.items():
        assert used in (PACKAGE / where).read_text(), f"{where} no longer uses {used}: update FLOOR_NEEDS"
        assert declared[name] >= needed, f"pyproject.toml declares {name}>={declared[name]} but {where} needs {used} ({needed})"


def test_a_missing_glyph_names_the_font_also_where_matplotlibs_warning_does_not(monkeypatch):
    # matplotlib 3.7 warns "Glyph 39899 (...) missing from current font."; newer ones name the font, and so did the
    # audits' warning only there ("Matplotlib's font (sans-serif)" on 3.7: the generic family, not the font).
    import warnings

    import pytest
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    from lightning_causal.reporting import glyphs

    with warnings.catch_warnings(record=True) as seen:  # matplotlib's own word for the font it draws with
        warnings.simplefilter("always")
        figure = Figure()
        figure.text(0, 0, "\u9bdb")
        FigureCanvasAgg(figure).draw()
    named = {m.group(2) for m in (glyphs._GLYPH.match(str(w.message)) for w in seen) if m and m.group(2)}
    if not named:
        pytest.skip("this matplotlib's warning does not name the font (< 3.8): no reference")
    monkeypatch.setattr(glyphs, "_SHOWN", set())
    with pytest.warns(UserWarning, match=r"Matplotlib's font \((.+)\) has no glyph") as caught, glyphs.glyphs_gathered():
        warnings.warn("Glyph 39899 (\\N{CJK UNIFIED IDEOGRAPH-9BDB}) missing from current font.", UserWarning, stacklevel=1)
    said = [str(w.message) for w in caught if "has no glyph" in str(w.message)]
    assert said and said[0].startswith(f"Matplotlib's font ({named.pop()}) has no glyph")


def test_before_torch_2_4_autocast_is_read_for_the_device_type_asked(monkeypatch):
    """Torch 2.3's per-device functions: an XPU's autocast dtype was answered with CUDA's (`torch.get_autocast_gpu_dtype`,
    float16 where the XPU computes in bfloat16) and its autocast taken for off (`torch.is_autocast_xpu_enabled` lives
    in `torch.xpu` there); a device type without autocast before torch 2.5 (mps) got CUDA's dtype too."""
    import lightning_causal._compat as compat

    monkeypatch.setattr(compat, "_TORCH", (2, 3))
    monkeypatch.setattr(torch.xpu, "get_autocast_xpu_dtype", lambda: torch.bfloat16, raising=False)
    monkeypatch.setattr(torch.xpu, "is_autocast_xpu_enabled", lambda: True, raising=False)
    assert compat.autocast_dtype("xpu") == torch.bfloat16 and compat.is_autocast_enabled("xpu")
    assert compat.autocast_dtype("cuda") == torch.get_autocast_gpu_dtype()
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert compat.autocast_dtype("cpu") == torch.bfloat16 and compat.is_autocast_enabled("cpu")
    with pytest.raises(RuntimeError, match="autocast knows no device type 'mps'"):
        compat.autocast_dtype("mps")
    assert not compat.is_autocast_enabled("mps")
