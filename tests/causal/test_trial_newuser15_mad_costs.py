"""The MAD-cost recipe of docs/recipes.md (newuser15 trial), run as the page prints it: with scale=mad,
the counterfactual buys the change from the column cheapest in MADs, not in raw units. Hand-computed:
approved when 0.05 income + 10 savings_rate > 5, x = (60, 0.1) is 1 short; MADs 20 and 0.05; raw L1 takes
0.1 of savings rate (vs 20 of income), in MADs one MAD of income (1.0 of score) beats two of savings rate."""

import re
from pathlib import Path

import torch

RECIPES = (Path(__file__).resolve().parents[2] / "docs" / "recipes.md").read_text()


def test_mad_recipe_moves_the_change_to_the_column_cheapest_in_mads() -> None:
    (code,) = [b for b in re.findall(r"```python\n(.*?)```", RECIPES, re.S) if "scale=mad" in b]
    ns: dict = {}
    exec(compile(code, "<recipes: MAD costs>", "exec"), ns)  # noqa: S102 - the docs' own example
    model, x, raw, cf = (ns[k] for k in ("model", "x", "raw", "cf"))
    change = cf.delta
    torch.testing.assert_close(ns["mad"], torch.tensor([20.0, 0.05]))
    torch.testing.assert_close(raw.delta, torch.tensor([[0.0, 0.1]]), rtol=0, atol=2e-4)
    torch.testing.assert_close(change, torch.tensor([[20.0, 0.0]]), rtol=0, atol=0.05)
    assert change[0, 1] == 0
    assert cf.success.all() and model(x + change).argmax(1).item() == 1
    page = " ".join(RECIPES.split())
    assert f"`cf.delta` is `[{change[0, 0].item():.2f}, 0]`" in page
