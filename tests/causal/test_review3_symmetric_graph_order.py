"""e234e2b refuses the nodes of one graph from a pass of every row in reverse order, before any pass
of fewer rows (which, on a GPU, indexes rows it does not hold: a device-side assert). An undirected
path graph is its own mirror image (node i and node n - 1 - i have mirrored neighbourhoods), so the
reversed pass gave the reversed outputs, the check passed, and the next pass of 2 rows cut the graph.
A fixed shuffle of the rows now runs where the reversed order passes."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from lightning_causal.causal import input_effects, unit_effects
from tests.helpers.linked_nodes import NodeMLP


def _path(n: int) -> Tensor:
    """An undirected path 0 - 1 - ... - n-1, both directions of each edge."""
    a = torch.arange(n - 1)
    return torch.cat([torch.stack([a, a + 1]), torch.stack([a + 1, a])], 1)


@pytest.mark.parametrize("estimator", ["input_effects", "unit_effects"])
def test_the_nodes_of_a_mirror_symmetric_graph_are_refused_before_any_smaller_pass(estimator: str) -> None:
    n = 10
    model, x, edges = NodeMLP().eval(), torch.randn(n, 3, generator=torch.Generator().manual_seed(1)), _path(n)
    with torch.no_grad():  # the premise: reversing the rows reverses the outputs
        flip = torch.arange(n - 1, -1, -1)
        torch.testing.assert_close(model(x[flip], edges), model(x, edges)[flip])
    model.rows_seen.clear()
    with pytest.raises(ValueError, match=r"shuffled order gave other outputs.*Graph neural networks"):
        if estimator == "input_effects":
            input_effects(model, x, target=0, additional_forward_args=(edges,))
        else:
            unit_effects(model, x, "hidden", target=0, additional_forward_args=(edges,))
    assert min(model.rows_seen) == n  # no pass held fewer rows than the graph's nodes
