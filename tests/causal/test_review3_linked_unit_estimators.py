"""unit_effects, causal_graph and layer_causal_map on the nodes of one graph (``model(x, edge_index)``):
their first passes held fewer rows than the graph has nodes (unit_effects' 1-row site check, the noise
check's 8 rows, the prefix cache's trial pair), which index rows the pass does not hold. On CPU that is
an IndexError; on a GPU a device-side assert that ends the process's CUDA use (e234e2b refused such a
model before any smaller pass in input_effects only). They now run check_linked_samples first: refused
from passes of every row, with the graph hint; a graph over each sample's features still runs."""

from __future__ import annotations

import pytest
import torch
from torch import Tensor

from lightning_causal.causal import causal_graph, layer_causal_map, unit_effects
from tests.helpers.linked_nodes import FeatureMLP, NodeMLP


def _graph(n: int = 12) -> tuple[Tensor, Tensor]:
    edge_index = torch.stack([torch.arange(n), (torch.arange(n) + 5) % n])
    return torch.randn(n, 3, generator=torch.Generator().manual_seed(1)), edge_index


@pytest.mark.parametrize("estimator", ["unit_effects", "causal_graph", "layer_causal_map"])
def test_the_nodes_of_one_graph_are_refused_before_any_pass_of_fewer_rows(estimator: str) -> None:
    x, edge_index = _graph()
    model = NodeMLP().eval()
    run = {"unit_effects": lambda: unit_effects(model, x, "hidden", target=0, additional_forward_args=(edge_index,)),
           "causal_graph": lambda: causal_graph(model, x, ["hidden"], target=0, additional_forward_args=(edge_index,)),
           "layer_causal_map": lambda: layer_causal_map(model, x, layers=["hidden"], target=0,
                                                        additional_forward_args=(edge_index,))}[estimator]
    with pytest.raises(ValueError, match=r"reverse order.*edge_index|reverse order.*Graph neural networks"):
        run()
    assert min(model.rows_seen) == x.shape[0]  # no pass held fewer rows than the graph's nodes


def test_a_graph_over_each_sample_s_features_still_gets_its_unit_effects() -> None:
    edge_index = torch.tensor([[0, 1, 2, 3], [1, 2, 3, 4]])
    model = FeatureMLP().double().eval()
    x = torch.randn(6, 5, generator=torch.Generator().manual_seed(2), dtype=torch.float64)
    effects = unit_effects(model, x, "hidden", target=1, additional_forward_args=(edge_index,))
    h = {}
    handle = model.hidden.register_forward_hook(lambda _m, _i, o: h.setdefault("h", o))
    with torch.no_grad():
        base = model(x, edge_index)[:, 1]
    handle.remove()
    by_hand = []
    for u in range(4):  # do(h_u := 0) on the hidden layer's output, by a plain hook
        def zero(_m, _i, o, u=u):
            o = o.clone()
            o[:, u] = 0.0
            return o
        handle = model.hidden.register_forward_hook(zero)
        with torch.no_grad():
            by_hand.append(base - model(x, edge_index)[:, 1])
        handle.remove()
    torch.testing.assert_close(effects, torch.stack(by_hand, 1), atol=1e-12, rtol=0)
