import pytest
import torch

from lightning_causal.baselines.attribution_graph import attribution_graph
from lightning_causal.causal.structure.graph import causal_graph
from lightning_causal.causal.structure.graph_data import CausalGraph
from tests.helpers.models import DigitsCNN, all_hook_counts, seeded
from tests.helpers.planted import Planted, planted_inputs


def _pair_counts(g: CausalGraph) -> dict:
    counts: dict = {}
    for s, t, _ in g.edges:
        key = (s.rsplit(":", 1)[0], t.rsplit(":", 1)[0])
        counts[key] = counts.get(key, 0) + 1
    return counts


def test_on_a_linear_network_conductance_finds_the_causal_graph():
    """Linear, zero baseline: the conductance of a unit is its contribution h_i * w (up to Captum's
    quadrature, which leaves out the ends of the path: about 1 % here), so the attribution graph of
    the planted network has the causal graph's nodes and edges."""
    model, x = Planted(leak=0.01), planted_inputs()
    g = causal_graph(model, x, ["a", "b"])
    a = attribution_graph(model, x, g)
    assert sorted(a.nodes) == sorted(g.nodes) and a.edge_set() == g.edge_set() == Planted.STRONG
    assert a.node_stats["b:2"]["effect"] == pytest.approx(g.node_stats["b:2"]["effect"], rel=0.02)
    assert max(abs(w) for *_, w in a.edges) == pytest.approx(1.0)


def test_matches_the_reference_sizes_and_leaves_no_trace():
    model = seeded(DigitsCNN(channels=(6, 8), hidden=16), 3).train()
    x = torch.rand(12, 1, 8, 8, generator=torch.Generator().manual_seed(1))
    g = causal_graph(model, x, ["conv1", "conv2"], top_k=3, alpha=1.0, min_share=0.0)
    state = torch.get_rng_state()
    a = attribution_graph(model, x, g, n_steps=4)
    assert torch.equal(state, torch.get_rng_state()) and model.training and all_hook_counts(model) == 0
    assert all(p.grad is None for p in model.parameters())
    for layer in ("conv1", "conv2", "output"):
        assert sum(n.startswith(layer + ":") for n in a.nodes) == sum(n.startswith(layer + ":") for n in g.nodes)
    assert _pair_counts(a) == _pair_counts(g)
    assert all(s in a.nodes and t in a.nodes for s, t, _ in a.edges)
