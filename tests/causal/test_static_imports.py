"""The causal core must stay pure PyTorch."""

import ast
from pathlib import Path

import lightning_causal.causal as core

FORBIDDEN = ("lightning", "pytorch_lightning", "captum", "tensorboard", "matplotlib", "torchmetrics")


def _imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_causal_core_imports_no_framework():
    files = list(Path(core.__file__).parent.rglob("*.py"))
    assert len(files) >= 5
    offenders = {
        str(f): sorted(n for n in _imports(f) if n.split(".")[0] in FORBIDDEN and not n.startswith("lightning_causal"))
        for f in files
    }
    offenders = {k: v for k, v in offenders.items() if v}
    assert not offenders, offenders


def _run(code: str) -> str:
    import subprocess
    import sys

    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()


def test_importing_the_core_loads_no_framework():
    """`import lightning_causal.causal` (and the top-level package) loads no Lightning, Captum,
    TensorBoard, torchmetrics or matplotlib: names load lazily."""
    out = _run(
        "import sys, lightning_causal, lightning_causal.causal\n"
        f"print(sorted({{m.split('.')[0] for m in sys.modules}} & set({FORBIDDEN!r})))"
    )
    assert out == "[]"


def test_top_level_names_load_on_first_use():
    out = _run(
        "import sys, lightning_causal\n"
        "before = 'lightning' in sys.modules\n"
        "cb = lightning_causal.CausalAuditCallback\n"
        "print(before, 'lightning' in sys.modules, cb.__name__, sorted(lightning_causal.__all__) == sorted(dir(lightning_causal)))"
    )
    assert out == "False True CausalAuditCallback True"


def test_importing_reporting_does_not_switch_the_matplotlib_backend():
    out = _run(
        "import matplotlib\n"
        "matplotlib.use('svg')\n"
        "import lightning_causal.reporting, lightning_causal.callbacks\n"
        "print(matplotlib.get_backend())"
    )
    assert out == "svg"
