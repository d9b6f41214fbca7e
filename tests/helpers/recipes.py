"""Running a docs page's recipe as printed: the code block after ``<!-- recipe: <name> -->``, with substitutions
that make it fast (each must occur exactly once, so a changed page fails loudly), executed in a fresh namespace."""

from __future__ import annotations

import re
import warnings
from collections.abc import Iterable
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"


def recipe_code(name: str, substitutions: Iterable[tuple[str, str]] = (), page: str = "recipes.md") -> str:
    """The code block of recipe ``name`` on ``page``, each ``(old, new)`` of ``substitutions`` replaced."""
    found = re.search(rf"<!-- recipe: {re.escape(name)} -->\s*```python\n(.*?)```", (DOCS / page).read_text(), re.S)
    assert found is not None, f"{page} holds no recipe {name!r}"
    code = found.group(1)
    for old, new in substitutions:
        assert code.count(old) == 1, f"the page no longer holds {old!r} exactly once: update the substitution"
        code = code.replace(old, new)
    return code


def run_code(code: str, label: str, *, quiet: bool = True, namespace: dict | None = None) -> dict:
    """Execute ``code`` (named ``label`` in tracebacks) in ``namespace`` (a fresh one by default) and return it;
    ``quiet``: with warnings ignored (a recipe's expected notes)."""
    ns: dict = {} if namespace is None else namespace
    with warnings.catch_warnings():
        if quiet:
            warnings.simplefilter("ignore")
        exec(compile(code, f"<{label}>", "exec"), ns)  # noqa: S102 - the docs' own example
    return ns
