"""Trial (core): causal graphs checked against hand-written interventions."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal import causal_graph, graph_faithfulness


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 5), nn.ReLU(), nn.Linear(5, 3)).double()


def test_faithfulness_of_a_graph_run_for_classes_it_does_not_explain_warns():
    # a graph built for target=0, then graph_faithfulness without target: the samples predicted as
    # 1 or 2 reach no output node, run as the empty circuit, and F came back 0.0 without a word
    net, x = _net(), torch.randn(20, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    predicted = net(x).argmax(1)
    assert set(predicted.tolist()) - {0}
    g = causal_graph(net, x, ["1", "3"], target=0)
    with pytest.warns(UserWarning, match=r"no output node in the graph \(it explains \[0\]\).*`target=`"):
        graph_faithfulness(net, x, g)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        same = graph_faithfulness(net, x, g, target=0)
    assert same["logit_graph"] == pytest.approx(g.meta["logit_graph"], abs=1e-12)
