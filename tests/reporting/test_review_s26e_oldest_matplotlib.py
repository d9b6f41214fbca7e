"""pyproject.toml allows matplotlib 3.7, and a3101a5 put matplotlib's private calls behind public API: heatmap_row's
example read its title with ``Figure.get_suptitle``, new in matplotlib 3.8 (its What's new), so the example failed
with AttributeError on 3.7. The package's code and examples name none of the Figure getters added in 3.8."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NEW_IN_3_8 = ("get_suptitle", "get_supxlabel", "get_supylabel")  # Figure's, matplotlib 3.8.0 What's new
CALLED = re.compile(r"\.(" + "|".join(NEW_IN_3_8) + r")\(")


def test_the_oldest_matplotlib_allowed_is_3_7():
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    deps = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert "matplotlib>=3.7" in deps  # the API below is checked against it


def test_the_package_names_no_figure_getter_added_in_matplotlib_3_8():
    found = [f"{path.relative_to(ROOT)}:{n}" for path in sorted((ROOT / "lightning_causal").rglob("*.py"))
             for n, line in enumerate(path.read_text().splitlines(), 1)
             if CALLED.search(line)]
    assert found == []
