"""The causal recourse recipe of docs/recipes.md (newuser15 trial), run as the page prints it: the
counterfactual search in an additive-noise SCM's noise space propagates an intervention on a cause to its
effects (Karimi et al. 2021), where the search on the features changes them independently. Hand-computed:
approved when income - 2 debt + edu > 1, debt = 0.25 income + u; from (2, 1.5, 0) income alone must rise
by 4 through the SCM (total effect 0.5) and by 2 if debt stayed (which in the SCM is no recourse)."""

import re
from pathlib import Path

import torch

RECIPES = (Path(__file__).resolve().parents[2] / "docs" / "recipes.md").read_text()


def test_causal_recourse_recipe_moves_the_effects_as_the_page_says() -> None:
    (code,) = [b for b in re.findall(r"```python\n(.*?)```", RECIPES, re.S) if "class ThroughSCM" in b]
    ns: dict = {}
    exec(compile(code, "<recipes: causal recourse>", "exec"), ns)  # noqa: S102 - the docs' own example
    model, scm, x, naive, r, x_cf = (ns[k] for k in ("model", "scm", "x", "naive", "r", "x_cf"))
    torch.testing.assert_close(naive.delta, torch.tensor([[2.0, 0.0, 0.0]]), rtol=0, atol=0.01)
    assert model(scm.counterfactual(x, {"income": naive.counterfactuals[:, 0]})).argmax(1).item() == 0
    assert r.success.all()
    torch.testing.assert_close(x_cf, torch.tensor([[6.0, 2.5, 0.0]]), rtol=0, atol=0.01)
    torch.testing.assert_close(x_cf, scm.counterfactual(x, {"income": x_cf[:, 0]}))
    assert model(x_cf).argmax(1).item() == 1
    page = " ".join(RECIPES.split())
    assert f"`naive.delta` `[{naive.delta[0, 0].item():.3f}, 0, 0]`" in page
    assert f"`x_cf` `[{x_cf[0, 0].item():.3f}, {x_cf[0, 1].item():.3f}, 0]`" in page
