"""docs/recipes.md 'In-context tabular learners' (newuser103's trial): one episode's queries as the samples with the
context passed whole (48 queries beside 48 context rows), and the context rows and labels as causes with a query and
its own copy of the context as the sample, each equal to a hand loop of interventions on the model as trained."""

from __future__ import annotations

import torch

from tests.helpers.recipes import recipe_code, run_code


def test_the_recipe_gives_the_hand_loops():
    ns = run_code(recipe_code("in-context", [("range(400)", "range(3)")]), "in-context")
    model, x_q, x_ctx, y_ctx, t = ns["model"], ns["x_q"], ns["x_ctx"], ns["y_ctx"], ns["predicted"][:, None]
    assert ns["by_feature"].shape == (48, 4) and ns["by_row"].shape == (48, 48) and ns["by_label"].shape == (48, 48)
    with torch.no_grad():
        clean = model(x_q, x_ctx, y_ctx).gather(1, t)[:, 0]
        for j in range(4):
            cut = x_q.clone()
            cut[:, j] = 0
            torch.testing.assert_close(ns["by_feature"][:, j], clean - model(cut, x_ctx, y_ctx).gather(1, t)[:, 0])
        for k in (0, 17, 47):
            row = x_ctx.clone()
            row[k] = x_ctx.mean(0)
            torch.testing.assert_close(ns["by_row"][:, k], clean - model(x_q, row, y_ctx).gather(1, t)[:, 0])
            label = y_ctx.clone()
            label[k] = 0
            torch.testing.assert_close(ns["by_label"][:, k], clean - model(x_q, x_ctx, label).gather(1, t)[:, 0])
    torch.testing.assert_close(ns["audited"].maps["effect"], ns["by_feature"])
