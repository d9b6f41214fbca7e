"""docs/architecture.md stays true to the package: every module has its place on the page, every file the page
names in a package's section is in that package, and the packages import only the layers below them."""

import ast
import re
from pathlib import Path

import lightning_causal

PACKAGE = Path(lightning_causal.__file__).parent
PAGE = (PACKAGE.parent / "docs" / "architecture.md").read_text()


def _sections() -> dict[str, str]:
    """The page's sections by the package their heading names (``## Audits (`lightning_causal/audits/`)``)."""
    out = {}
    for part in PAGE.split("\n## ")[1:]:
        heading = part.splitlines()[0]
        if m := re.search(r"`lightning_causal/(\w+)/`", heading):
            out[m.group(1)] = part
    return out


def test_every_module_is_named_in_its_packages_section():
    sections = _sections()
    assert {"causal", "audits", "callbacks", "baselines", "repair", "reporting"} <= set(sections)
    missing = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = path.relative_to(PACKAGE)
        if path.name == "__init__.py":
            continue
        if len(rel.parts) == 1 or rel.parts[0] == "datasets":  # top-level modules and the demo data: anywhere on the page
            named = path.name in PAGE if len(rel.parts) == 1 else "datasets/" in PAGE
        else:  # causal/engine/forward.py as engine/forward.py in the core's section, audits/sobol.py as sobol.py in its own
            named = re.search(r"(?<![\w/])" + re.escape("/".join(rel.parts[1:])), sections[rel.parts[0]]) is not None
        if not named:
            missing.append(str(rel))
    assert not missing, f"modules without their place on docs/architecture.md: {missing}"


def test_every_file_a_packages_section_names_is_in_that_package():
    wrong = []
    for package, text in _sections().items():
        for line in text.splitlines():
            row = re.findall(r"`([\w/]+\.py)`", line.split(" | ")[0]) if line.startswith("| `") else []
            for name in set(re.findall(r"`([\w/]+\.py)`", line)):
                if "/" not in name and any(r.endswith("/" + name) for r in row):  # the core's table: `dag.py` in scm's row
                    name = next(r for r in row if r.endswith("/" + name))
                # a bare name is its package's; 'audits/group_regions.py' another package's; 'tests/...' the repository's
                exists = any((base / name).exists() for base in (PACKAGE / package, PACKAGE, PACKAGE.parent))
                if not exists:
                    wrong.append(f"{package}: {name}")
    assert not wrong, f"files named on docs/architecture.md that are not where its section says: {sorted(wrong)}"


# the layers, lowest first: a package may import its own layer's modules and those of the layers below
LAYERS = {"causal": 0, "baselines": 1, "audits": 2, "reporting": 3, "callbacks": 4, "repair": 4}


def _imported_packages(path: Path) -> set[str]:
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module == "lightning_causal":  # from lightning_causal import audits
            names |= {f"lightning_causal.{a.name}" for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
        elif isinstance(node, ast.ImportFrom):  # relative: the package holds none; one would hide its layer
            raise AssertionError(f"{path}: a relative import (from {'.' * node.level}{node.module or ''} import ...)")
    return {n.split(".")[1] for n in names if n.startswith("lightning_causal.")}


def test_packages_import_only_the_layers_below_them():
    """The page's layer rule: causal <- baselines <- audits <- reporting <- callbacks, repair (neither of which
    imports the other; both read data through the top-level modules)."""
    offenders = []
    for package, level in LAYERS.items():
        for path in sorted((PACKAGE / package).rglob("*.py")):
            for other in _imported_packages(path):
                if other in LAYERS and other != package and LAYERS[other] >= level:
                    offenders.append(f"{path.relative_to(PACKAGE)} imports lightning_causal.{other}")
    assert not offenders, offenders
