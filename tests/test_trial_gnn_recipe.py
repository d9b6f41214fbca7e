"""docs/recipes.md, 'Graph neural networks', runs as printed, and its numbers are what the page says
they are: passes of the whole graph per intervention (float32, to 1e-5) (node 7's class-1 logit
with a feature of every node, or of one node, set to 0; a hidden channel set to 0 at every node)."""

import re
from pathlib import Path

import torch

RECIPES = (Path(__file__).parent.parent / "docs" / "recipes.md").read_text()


def _blocks():
    blocks = re.findall(r"```python\n(.*?)```", RECIPES, re.S)
    start = next(i for i, b in enumerate(blocks) if "class GraphAsSample" in b)
    return blocks[start], blocks[start + 1]


def test_the_graph_recipe_runs_and_equals_full_graph_passes():
    one_graph, padded = _blocks()
    ns: dict = {}
    exec(compile(one_graph, "<recipes.md: graphs>", "exec"), ns)  # noqa: S102 - the docs' own example
    exec(compile(padded, "<recipes.md: padded graphs>", "exec"), ns)  # noqa: S102
    model, x, edge_index, node = ns["model"], ns["x"], ns["edge_index"], ns["node"]
    with torch.no_grad():
        base = model(x, edge_index)[node, 1]
        every = torch.stack([base - model(x.index_fill(1, torch.tensor([k]), 0.0), edge_index)[node, 1] for k in range(4)])
        one = torch.zeros(30, 4)
        for j in range(30):
            for k in range(4):
                xj = x.clone()
                xj[j, k] = 0.0
                one[j, k] = base - model(xj, edge_index)[node, 1]
        from tests.helpers.gnn import propagate
        h = model.lin1(propagate(x, edge_index)).relu()
        channels = torch.stack([base - model.lin2(propagate(h.index_fill(1, torch.tensor([u]), 0.0), edge_index))[node, 1]
                                for u in range(8)])
    torch.testing.assert_close(ns["effects"][0], every, rtol=0, atol=1e-5)
    torch.testing.assert_close(ns["by_node"], one, rtol=0, atol=1e-5)
    torch.testing.assert_close(ns["channels"][0], channels, rtol=0, atol=1e-5)
    hops = (one.abs().sum(1) > 0).nonzero().flatten()
    assert node in hops.tolist() and 1 < len(hops) < 30  # node 7 and the nodes within two hops, not the whole graph
    assert callable(ns["PaddedGraphs"])
