"""What a user who installs the wheel gets: the metadata in pyproject.toml matches what the package
imports, the extras that error messages name exist, and the README says how to install without make.

Found by installing the wheel in a fresh virtual environment (newuser25): the package imported
``tqdm`` (with ``delay=``, new in tqdm 4.58) and ``typing_extensions`` without declaring them,
and the classifiers called it a pytest plugin.
"""

from __future__ import annotations

import ast
import functools
import re
import sys
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name
from packaging.version import Version

tomllib = pytest.importorskip("tomllib")  # Python 3.11+

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "lightning_causal"
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
DEPENDENCIES = {canonicalize_name(Requirement(r).name): Requirement(r) for r in PROJECT["dependencies"]}
EXTRAS = {name: {canonicalize_name(Requirement(r).name) for r in reqs}
          for name, reqs in PROJECT["optional-dependencies"].items()}


_installed = functools.cache(packages_distributions)  # scans every installed distribution: once


def _distribution(module: str) -> str:
    """The distribution that installs top-level ``module`` (``sklearn`` -> ``scikit-learn``)."""
    names = _installed().get(module, [module])
    return canonicalize_name(sorted(names)[0])


def _imports(tree: ast.AST) -> list[tuple[str, bool]]:
    """Every absolute import's top-level module, with whether a ``try`` catching ImportError (or
    a broader exception) guards it: those are the optional ones."""
    found: list[tuple[str, bool]] = []

    def catches_import_error(handler: ast.ExceptHandler) -> bool:
        names = {n.id for n in ast.walk(handler.type) if isinstance(n, ast.Name)} if handler.type else {"*"}
        return bool(names & {"*", "ImportError", "ModuleNotFoundError", "Exception", "BaseException"})

    def visit(node: ast.AST, guarded: bool) -> None:
        if isinstance(node, ast.Import):
            found.extend((a.name.split(".")[0], guarded) for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.module.split(".")[0], guarded))
        if isinstance(node, ast.Try):
            inner = guarded or any(catches_import_error(h) for h in node.handlers)
            for child in node.body:
                visit(child, inner)
            for child in [*node.handlers, *node.orelse, *node.finalbody]:
                visit(child, guarded)
            return
        for child in ast.iter_child_nodes(node):
            visit(child, guarded)

    visit(tree, False)
    return found


@functools.cache
def _third_party_imports() -> dict[str, dict[str, set[str]]]:
    """``{"required" | "optional": {distribution: {file, ...}}}`` over the package's sources."""
    out: dict[str, dict[str, set[str]]] = {"required": {}, "optional": {}}
    for path in sorted(PACKAGE.rglob("*.py")):
        for module, guarded in _imports(ast.parse(path.read_text())):
            if module in sys.stdlib_module_names or module == "lightning_causal":
                continue
            kind = "optional" if guarded else "required"
            out[kind].setdefault(_distribution(module), set()).add(str(path.relative_to(ROOT)))
    return out


def test_every_module_the_package_imports_unguarded_is_a_declared_dependency():
    required = _third_party_imports()["required"]
    assert {"torch", "lightning", "matplotlib"} <= set(required)  # the scan sees the package's imports
    undeclared = {dist: sorted(files) for dist, files in required.items() if dist not in DEPENDENCIES}
    assert not undeclared, f"imported without a guard but not in [project] dependencies: {undeclared}"


def test_every_optional_import_is_installable_without_the_dev_extra():
    """An import guarded by ``try`` is a dependency, a transitive one (torch requires networkx)
    or one of a user-facing extra (``examples``, ``text``), never one of ``dev`` alone."""
    from importlib.metadata import requires

    transitive = {canonicalize_name(Requirement(r).name) for dist in DEPENDENCIES
                  for r in (requires(dist) or []) if Requirement(r).marker is None}
    user_extras = set().union(*(reqs for name, reqs in EXTRAS.items() if name != "dev"))
    optional = _third_party_imports()["optional"]
    assert {"scikit-learn", "transformers"} <= set(optional)
    missing = sorted(d for d in optional if d not in DEPENDENCIES and d not in transitive and d not in user_extras)
    assert not missing, f"optional imports a user can only get with the dev extra: {missing}"


def test_the_extras_that_error_messages_name_exist_and_hold_the_module():
    named = {}
    for path in PACKAGE.rglob("*.py"):
        for extra in re.findall(r"lightning_causal\[(\w+)\]", path.read_text()):
            named.setdefault(extra, set()).add(path.name)
    assert "examples" in named  # load_digits_tensors' message
    for extra in named:
        assert extra in EXTRAS and extra != "dev", (extra, named[extra])
    assert "scikit-learn" in EXTRAS["examples"] and "transformers" in EXTRAS["text"]


def test_the_declared_tqdm_honours_the_progress_bar_delay():
    """The audit's bar passes ``delay=`` (tqdm 4.58); tqdm 4.57 raises TqdmKeyError on it."""
    assert "delay=" in (PACKAGE / "callbacks" / "_audit_run.py").read_text()
    assert not DEPENDENCIES["tqdm"].specifier.contains(Version("4.57.0"))
    assert DEPENDENCIES["tqdm"].specifier.contains(Version("4.58.0"))
    assert not DEPENDENCIES["typing-extensions"].specifier.contains(Version("4.3.0"))  # `override` is 4.4


def test_the_classifiers_claim_no_pytest_plugin():
    """``Framework :: Pytest`` lists a package among pytest plugins; this one registers none."""
    plugins = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"].get("entry-points", {}).get("pytest11")
    assert plugins or "Framework :: Pytest" not in PROJECT["classifiers"]


def test_the_readme_says_how_to_install_without_make():
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Installing the package alone", 1)[1].split("\n## ", 1)[0]
    assert "pip install ." in section
    for extra in EXTRAS:
        if extra != "dev":
            assert f'pip install ".[{extra}]"' in section, extra
    assert "examples/" in section and "library only" in section  # the wheel holds no examples


def test_the_license_is_an_spdx_expression_that_the_declared_setuptools_reads():
    """``license = {text = ...}`` is deprecated (setuptools warns on every build that builds stop
    working after 2027-02-18); the SPDX string needs setuptools 77."""
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert PROJECT["license"] == "Apache-2.0"
    setuptools = next(Requirement(r) for r in config["build-system"]["requires"] if r.startswith("setuptools"))
    assert not setuptools.specifier.contains(Version("76.1"))


def test_the_license_text_ships_with_the_metadata():
    """The metadata said Apache-2.0 but the repository held no LICENSE (newuser25 trial): the text is in LICENSE
    and pyproject names it (``license-files``), so the wheel carries it."""
    text = (ROOT / "LICENSE").read_text()
    assert text.lstrip().startswith("Apache License") and "Version 2.0, January 2004" in text
    assert PROJECT["license-files"] == ["LICENSE"]
