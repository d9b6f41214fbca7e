"""A graph neural network called on the nodes of one graph, ``model(x [num_nodes, F], edge_index)``,
with the graph passed as a forward argument: its rows are nodes, not independent samples (a node's
output reads its neighbours' rows). input_effects and average_causal_effect ran such a model on rows
of their choosing: with ``max_batch_size`` at least the number of nodes the passes ran and every
effect was wrong, silently (the intervened copies of the nodes got no neighbours, or the first
copy's); otherwise the model failed deep inside on an index out of range, and a dense adjacency
``[N, N]`` was gathered by row as a per-sample tensor. They are now refused before any intervened
pass, naming the argument and the way that works (the graph as the sample); the unit estimators'
failures name it too, and so does the row-count error of a graph classifier's ``[num_graphs, C]``."""

import pytest
import torch

from lightning_causal.causal import average_causal_effect, causal_graph, input_effects, unit_effects
from tests.helpers.gnn import GCN, DenseGCN, GraphClassifier, small_graphs, two_block_graph


def _dense(edge_index, n):
    a = torch.zeros(n, n, dtype=torch.float64)
    a[edge_index[0], edge_index[1]] = 1.0
    a += torch.eye(n, dtype=torch.float64)
    return a / a.sum(1, keepdim=True)


def _node_brute_force(model, x, args, target):
    """f_t(x)[i] - f_t(x with feature f of node i := 0)[i]: one pass of the whole graph per (node, feature)."""
    with torch.no_grad():
        base = model(x, *args)[:, target]
        out = torch.zeros(x.shape, dtype=torch.float64)
        for i in range(x.shape[0]):
            for f in range(x.shape[1]):
                xi = x.clone()
                xi[i, f] = 0.0
                out[i, f] = base[i] - model(xi, *args)[i, target]
    return out


@pytest.mark.parametrize("graph", ["edge_index", "dense"])
@pytest.mark.parametrize("max_batch_size", [None, "nodes", "six graphs"])
def test_input_effects_on_the_nodes_of_one_graph_are_refused_naming_the_graph(graph, max_batch_size):
    torch.manual_seed(0)
    x, edge_index = two_block_graph()
    n = x.shape[0]
    model = (GCN() if graph == "edge_index" else DenseGCN()).double().eval()
    arg = edge_index if graph == "edge_index" else _dense(edge_index, n)
    rows = {None: None, "nodes": n, "six graphs": 6 * n}[max_batch_size]
    # the numbers the batched rows would have to give: they differ from what the passes computed before
    assert _node_brute_force(model, x, (arg,), 1).abs().max() > 0.01
    with pytest.raises(ValueError, match=r"compute each sample's output from that sample's rows alone.*"
                                         r"forward argument 0.*Graph neural networks"):
        input_effects(model, x, target=1, additional_forward_args=(arg,), max_batch_size=rows)


def test_average_causal_effect_on_the_nodes_of_one_graph_is_refused():
    x, edge_index = two_block_graph()
    model = GCN().double().eval()
    with pytest.raises(ValueError, match=r"values in \[0, 16\).*Graph neural networks"):
        average_causal_effect(model, x, values=torch.tensor([0.0, 1.0]), target=1,
                              additional_forward_args=(edge_index,), max_batch_size=1000)


def test_the_unit_estimators_refuse_the_nodes_of_one_graph_naming_the_graph():
    """Refused from a pass of every node in reverse order, before any pass of fewer rows (a cut graph's
    index error, a device-side assert on a GPU): tests/causal/test_review3_linked_unit_estimators.py."""
    x, edge_index = two_block_graph()
    model = GCN().double().eval()
    with pytest.raises(ValueError, match=r"reverse order.*values in \[0, 16\).*Graph neural networks"):
        unit_effects(model, x, "conv1", unit_dim=-1, target=1, additional_forward_args=(edge_index,))
    with pytest.raises(ValueError, match=r"reverse order.*Graph neural networks"):
        causal_graph(model, x, ["conv1"], unit_dim=-1, target=1, additional_forward_args=(edge_index,))


def test_a_graph_classifier_on_its_nodes_names_the_graph_not_a_sequence_reshape():
    x, edge_index, batch = small_graphs()
    model = GraphClassifier().double().eval()
    with pytest.raises(ValueError, match=r"one row per input row .* but got shape \(6, 2\); forward arguments link the "
                                         r"input rows.*Graph neural networks"):
        input_effects(model, x, target=1, additional_forward_args=(edge_index, batch))


def test_independent_samples_with_an_index_argument_still_run():
    """An integer argument in [0, N) that does not link the rows (a per-model lookup of classes) costs one
    2-row check and changes no number."""

    class Lookup(torch.nn.Module):
        def forward(self, x, order):
            return x[:, order] * torch.tensor([1.0, 2.0, 3.0], dtype=x.dtype)

    x = torch.randn(5, 3, dtype=torch.float64)
    order = torch.tensor([2, 0, 1])
    effects = input_effects(Lookup(), x, target=0, additional_forward_args=(order,))
    expected = torch.zeros(5, 3, dtype=torch.float64)
    expected[:, 2] = x[:, 2]  # output 0 reads column 2, weight 1
    torch.testing.assert_close(effects, expected, rtol=0, atol=1e-15)


def test_captum_attribution_on_the_nodes_of_one_graph_is_refused_before_captum_expands_them():
    """Captum expands the inputs per integration step and every tensor argument with them: the graph's
    edge_index became [2 * steps, E] and the model failed on 'too many values to unpack'."""
    from lightning_causal.baselines import attribute

    x, edge_index = two_block_graph(n_per=3)
    with pytest.raises(ValueError, match=r"Captum's IntegratedGradients runs rows.*Graph neural networks"):
        attribute(GCN().double().eval(), x, "IntegratedGradients", target=1, additional_forward_args=(edge_index,),
                  max_batch_size=1000)


class _GraphInside(torch.nn.Module):
    """The graph kept by the model (a normalised adjacency buffer), forward(x [num_nodes, F]) only."""

    def __init__(self, adj) -> None:
        super().__init__()
        self.gcn = DenseGCN().double()
        self.register_buffer("adj", adj)

    def forward(self, x):
        return self.gcn(x, self.adj)


@pytest.mark.parametrize("max_batch_size", [None, "nodes"])
def test_a_graph_held_inside_the_model_is_refused_too(max_batch_size):
    """No forward argument names the graph: with max_batch_size = num_nodes the chunks of 16 rows ran
    through the 16-node adjacency and every effect was wrong (0.12 off for effects up to 0.13), silently."""
    torch.manual_seed(0)
    x, edge_index = two_block_graph()
    model = _GraphInside(_dense(edge_index, 16)).eval()
    with pytest.raises(ValueError, match=r"probe samples \[0, 1\] run alone failed.*mat1 and mat2.*Graph neural networks"):
        input_effects(model, x, target=1, max_batch_size=None if max_batch_size is None else 16)


def test_a_shared_position_index_is_no_graph_in_a_failing_pass():
    """The note of a failed pass names [2, E] edge lists past the pass's rows, not any shared integer tensor
    (a ``position_ids [1, T]`` beside token ids): an embedding's own error keeps its message."""
    from lightning_causal.causal.engine.forward import ForwardArgs
    from lightning_causal.causal.engine.linked_samples import linked_arguments, pass_error_note

    positions = torch.arange(12)[None]
    assert pass_error_note(ForwardArgs((positions,), num_samples=8), 4) is None
    assert linked_arguments(ForwardArgs({"position_ids": torch.arange(6)[None]}, num_samples=8)) == []
    edges = torch.tensor([[0, 5, 9], [5, 9, 0]])
    assert linked_arguments(ForwardArgs((edges,), num_samples=8), 4) == [
        "the positional forward argument 0 (integer, shape [2, 3], values in [0, 10))"]
