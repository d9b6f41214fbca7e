"""The core API in a notebook (newuser11 trial): a user with a small ResNet and no Trainer found no page saying how
to see the results (tables as DataFrames, figures, the text card) without TensorBoard. recipes.md now has one,
"In a notebook: tables and figures without TensorBoard"; this runs it as printed (with fewer samples) and checks
what it says: the estimators leave the model as they found it, tables are DataFrames, the figures are matplotlib
Figures of the numbers given, and the writer stand-in receives every picture the callback would log."""

from __future__ import annotations

import re
from pathlib import Path

import torch
from matplotlib.figure import Figure

RECIPES = (Path(__file__).resolve().parents[2] / "docs" / "recipes.md").read_text()
FEWER = ("torch.randn(16, 3, 16, 16), torch.randint(0, 3, (16,))", "torch.randn(4, 3, 16, 16), torch.randint(0, 3, (4,))")


def test_the_notebook_recipe_runs_and_gives_tables_figures_and_images(capsys):
    code = re.search(r"<!-- recipe: notebook -->\s*```python\n(.*?)```", RECIPES, re.S).group(1)
    assert code.count(FEWER[0]) == 1
    ns: dict = {}
    exec(compile(code.replace(*FEWER), "<notebook recipe>", "exec"), ns)  # noqa: S102 - the docs' own example
    model, x = ns["model"], ns["x"]
    assert not model.training and ns["effects"].shape == (4, 16) and ns["filters"].shape == (4, 8)
    # the estimators left the model as they found it: the same outputs, BatchNorm statistics untouched
    bn = model.layers[0].b2
    assert bn.num_batches_tracked.item() == 0 and torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean))
    # one DataFrame row per edge of the audit's graph
    assert len(ns["edges"]) == ns["results"][2].scalars["n_edges"] > 0
    assert {"source", "target"} <= set(ns["edges"].columns)
    # the bar figure draws the values given, in the order of their size
    fig = ns["bar_figure"](ns["filters"].abs().mean(0), "layers.0.c2", value_label="mean |effect|")
    assert isinstance(fig, Figure)
    heights = [p.get_height() for p in fig.axes[0].patches]  # vertical bars, the largest first
    expected = sorted(ns["filters"].abs().mean(0).tolist(), reverse=True)
    torch.testing.assert_close(torch.tensor(heights, dtype=torch.float64), torch.tensor(expected, dtype=torch.float64))
    assert isinstance(ns["graph_figure"](ns["graph"].to_dict()), Figure)
    assert isinstance(ns["layer_map_figure"](ns["layer_map"].to_dict()), Figure)
    # the stand-in writer got the maps of the probe's samples, the unit bars and the graph, as RGB arrays
    images = ns["writer"].images
    assert {"causal/input_effect/maps/sample_0", "causal/unit_importance/bars/importance/layers.0.c2",
            "causal/causal_graph/graphs/causal_graph"} <= set(images)
    assert all(a.ndim == 3 and a.shape[-1] == 3 and a.dtype.name == "uint8" for a in images.values())
    assert capsys.readouterr().out.startswith("### Causal audit, epoch 0")
    assert torch.equal(model(x), model(x))
