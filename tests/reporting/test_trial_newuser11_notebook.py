"""The core API in a notebook (newuser11 trial): a user with a small ResNet and no Trainer found no page saying how
to see the results (tables as DataFrames, figures, the text card) without TensorBoard. recipes.md now has one,
"In a notebook: tables and figures without TensorBoard"; this runs it as printed (with fewer samples) and checks
what it says: the estimators leave the model as they found it, tables are DataFrames, the figures are matplotlib
Figures of the numbers given, and ``TensorBoardRenderer.figures`` gives every picture the callback would log, as
Figures (first a stand-in writer of the user's own, which the recipe needed until the renderer returned them)."""

from __future__ import annotations

import torch
from matplotlib.figure import Figure

from tests.helpers.recipes import recipe_code, run_code

FEWER = ("torch.randn(16, 3, 16, 16), torch.randint(0, 3, (16,))", "torch.randn(4, 3, 16, 16), torch.randint(0, 3, (4,))")


def test_the_notebook_recipe_runs_and_gives_tables_figures_and_images(capsys):
    ns = run_code(recipe_code("notebook", (FEWER,)), "notebook recipe", quiet=False)
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
    # the maps of the probe's samples, the unit bars and the graph, as Figures by their TensorBoard tags
    figures = ns["figures"]
    assert {"causal/input_effect/maps/sample_0", "causal/unit_importance/bars/importance/layers.0.c2",
            "causal/causal_graph/graphs/causal_graph"} <= set(figures)
    assert all(isinstance(f, Figure) for f in figures.values())
    # the same pictures as render() logs to a writer: each figure drawn is the image TensorBoard gets
    from lightning_causal.reporting.tensorboard import figure_image

    class Images:
        def __init__(self):
            self.images = {}

        def add_image(self, tag, image, step, dataformats="HWC"):
            self.images[tag] = image

        def __getattr__(self, name):
            return lambda *args, **kwargs: None

    writer = Images()
    ns["TensorBoardRenderer"]().render(writer, 0, ns["results"], x, probe_labels=ns["y"])
    assert set(writer.images) == set(figures)
    for tag, fig in figures.items():
        assert (figure_image(fig) == writer.images[tag]).all(), tag
    assert capsys.readouterr().out.startswith("### Causal audit, epoch 0")
    assert torch.equal(model(x), model(x))
