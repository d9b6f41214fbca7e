"""Every public function and intervention has a runnable example in its docstring, and pytest runs
those examples (``--doctest-modules`` over ``lightning_causal``): the examples are the first code a
user of the pure-PyTorch API copies."""

from __future__ import annotations

import doctest
import inspect
import re
from pathlib import Path

import pytest

import lightning_causal
import lightning_causal.causal
from lightning_causal.causal import Intervention

ROOT = Path(__file__).resolve().parents[1]


def _public() -> dict[str, object]:
    names = {n: getattr(lightning_causal, n) for n in lightning_causal.__all__}
    names.update({n: getattr(lightning_causal.causal, n) for n in lightning_causal.causal.__all__})
    return {n: obj for n, obj in names.items()
            if inspect.isfunction(obj) or inspect.isclass(obj) and issubclass(obj, Intervention) and obj is not Intervention}


def _examples(obj: object, name: str) -> list[doctest.Example]:
    return [e for t in doctest.DocTestFinder(recurse=False).find(obj, name) for e in t.examples]


def test_every_public_function_and_intervention_has_an_example():
    # Resample, interventional_expectations, column_mask and load_report had none
    missing = sorted(name for name, obj in _public().items() if not _examples(obj, name))
    assert not missing, missing


def test_pytest_runs_the_docstring_examples_of_the_package():
    config = (ROOT / "pyproject.toml").read_text().split("[tool.pytest.ini_options]")[1].split("\n[")[0]
    assert re.search(r'^addopts = ".*--doctest-modules', config, re.M)
    assert re.search(r'^testpaths = \[.*"lightning_causal"', config, re.M)


@pytest.mark.parametrize("name", ["Resample", "interventional_expectations", "column_mask"])
def test_new_examples_print_what_they_claim(name):
    obj = _public()[name]
    finder, runner = doctest.DocTestFinder(recurse=False), doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for test in finder.find(obj, name, globs=dict(vars(inspect.getmodule(obj)))):
        runner.run(test)
    assert runner.summarize(verbose=False).failed == 0
