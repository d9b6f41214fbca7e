"""docs/recipes.md, "A tabular transformer: feature tokens and codes in one float table", runs as printed: the tokens
ranked by name, and the category codes of the float table left out of the stability noise (named in the note)."""

import re
import warnings
from pathlib import Path

import torch

from lightning_causal.causal.effects.input_effects import interventional_expectations

RECIPES = Path(__file__).resolve().parents[1] / "docs" / "recipes.md"


def test_the_tabular_transformer_recipe_runs_as_printed(capsys):
    blocks = [b for b in re.findall(r"```python\n(.*?)```", RECIPES.read_text(), re.S) if "class FTTransformer" in b]
    assert len(blocks) == 1
    ns: dict = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # CaptumBaseline's warning of the codes' zero gradients, said on the page
        exec(compile(blocks[0], "<docs snippet>", "exec"), ns)  # noqa: S102 - the docs' own example
    names, note = eval(capsys.readouterr().out.strip().rsplit("] ", 1)[0] + "]"), ns["captum"].meta["notes"][-1]  # noqa: S307
    assert set(names) <= {"[CLS]", "age", "hours", "sex", "race"} and len(names) == 3
    assert note.startswith("stability leaves column 2, column 3 as they are")
    _, grid = interventional_expectations(ns["model"], ns["x"], torch.arange(4)[None], num_values=4)
    assert bool((grid[2:] == grid[2:].round()).all())  # the ACE curve sets the codes to codes
