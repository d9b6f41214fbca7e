"""newuser82 trial: docs/your_model.md's neural ODE recipe runs as printed, its unit effects (a unit of the ODE
function set at every one of its 16 RK4 stages) equal hooked passes by hand (the block asserts it), and the causal
graph on z(1), a module that runs once, has the nodes the page states."""

from __future__ import annotations

import re
from pathlib import Path

PAGE = Path(__file__).resolve().parents[1] / "docs" / "your_model.md"


def test_the_neural_ode_recipe_runs_and_prints_what_the_page_says(capsys) -> None:
    code = re.search(r"<!-- neural ode -->\s*```python\n(.*?)```", PAGE.read_text(), re.S).group(1)
    ns: dict = {"__name__": "neural_ode_recipe"}
    exec(compile(code, "<your_model.md neural ode>", "exec"), ns)  # noqa: S102 - the docs' own example
    printed = capsys.readouterr().out.splitlines()
    assert printed == ["16", "['z1:0', 'z1:1', 'z1:2', 'z1:3']"]
    assert ns["info"].calls == 16 and ns["effects"].shape == (64, 16)
