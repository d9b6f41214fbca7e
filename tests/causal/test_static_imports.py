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
