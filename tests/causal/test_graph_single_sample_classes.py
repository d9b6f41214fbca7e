"""A probe in which every explained class has one sample gives a causal graph without nodes (the per-class
paired t-test needs two samples): it now says so instead of returning the empty graph silently."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal import causal_graph


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 3)).double().eval()


def test_one_sample_per_explained_class_warns_and_the_graph_is_empty():
    model = _model()
    x = torch.randn(3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with pytest.warns(UserWarning, match=r"Each of the 3 explained classes has one sample of the probe of 3: the node test is a paired t-test"):
        graph = causal_graph(model, x, ["1", "3"], target=torch.tensor([0, 1, 2]))
    assert graph.nodes == ["output:0", "output:1", "output:2"] and graph.edges == []  # no unit node, no edge


def test_one_explained_class_for_all_samples_does_not_warn_and_finds_nodes():
    model = _model()
    x = torch.randn(40, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        graph = causal_graph(model, x, ["1", "3"], target=0)
    assert any(not n.startswith("output") for n in graph.nodes)


def test_the_audits_two_sample_dry_run_does_not_warn_for_the_whole_probe():
    """The set-up run on 2 probe samples of two explained classes would warn, though the probe has many per class."""
    from lightning_causal.audits import CausalGraphAudit
    from lightning_causal.audits.base import Probe

    model = _model()
    x = torch.randn(40, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():  # two predicted classes over the probe: class 0 where the last hidden layer's sum is above its median
        total = model[:4](x).sum(1)
        model[4].weight.zero_()
        model[4].weight[0] = 1.0
        model[4].bias.copy_(torch.tensor([-float(total.median()), 0.0, -9.0]))
    pred = model(x).argmax(1)
    assert pred.unique().numel() == 2 and int(pred.bincount().min()) > 2
    first = [int((pred == c).nonzero()[0]) for c in pred.unique()[:2]]  # two samples of two predicted classes first
    order = first + [i for i in range(40) if i not in first]
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        warnings.filterwarnings("ignore", message="(?!Each of the)")  # only this test's warning is an error
        CausalGraphAudit(["1", "3"]).dry_run(model, Probe(x[order]))
