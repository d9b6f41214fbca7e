"""What the causal graph's multiple-testing correction runs over, as the docstrings say it (docsuser6 trial).

Since 13ae6c6 the correction runs over the edge tests of every unit with a path (``meta["tests"]``), not over
the nodes' edges (the candidates, ``meta["candidates"]``); CausalGraphAudit's ``correction`` argument and the
graph module's docstring still said "over the candidate edges", a family that corrects nothing since the nodes
are chosen by a test on the same samples. Hand case: ten units read by a sum, unit 0 at t = 2.6 over 20
samples (one-sided p = 0.0088), the nine others of mean 0 (p = 0.5): BH over the ten tests gives unit 0
p_adj = 10 p / 1 = 0.088, over the one candidate edge it would be 0.0088. causal_graph's docstring also took an
edge's share of the strongest candidate into its target; it is of the strongest path from any unit.
"""

import math

import pytest
import torch
from torch import nn

import lightning_causal.causal.structure.graph as graph_module
from lightning_causal.audits import CausalGraphAudit, Probe
from lightning_causal.causal.structure.significance import p_values


def _probe() -> torch.Tensor:
    n, units = 20, 10
    x = torch.randn(n, units, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x = (x - x.mean(0)) / x.std(0)
    x[:, 0] += 2.6 / math.sqrt(n)
    return x


def _model() -> nn.Module:
    model = nn.Sequential(nn.Identity(), nn.Linear(10, 1, bias=False)).double()
    with torch.no_grad():
        model[1].weight.fill_(1.0)
    return model


def test_the_correction_runs_over_every_units_tests_as_documented():
    r = CausalGraphAudit(["0"], top_k=None, min_share=0.0, alpha=0.1, correction="bh", ablation="zero",
                         stability_resamples=0).run(_model(), Probe(_probe()))
    graph = r.graphs["causal_graph"]
    assert graph["meta"]["tests"] == 10 and graph["meta"]["candidates"] == 1
    p = float(p_values(torch.tensor([2.6], dtype=torch.float64), "greater", df=19))
    (edge,) = r.tables["edges"]
    assert edge["p_value"] == pytest.approx(p, rel=1e-9)
    assert edge["p_adjusted"] == pytest.approx(10 * p, rel=1e-9)  # the family of 10, not the 1 candidate
    doc = " ".join(CausalGraphAudit.__doc__.split())
    assert "correction over the candidate edges" not in doc and "every unit of the source layers with a path" in doc
    module_doc = " ".join(graph_module.__doc__.split())
    assert "correction over the candidate edges" not in module_doc and "every unit with a path" in module_doc
    # an edge's share is of the strongest path into its target from any unit (_block's ``strongest``), not only
    # from the candidates (the nodes' edges): the function's docstring said "of the strongest candidate"
    function_doc = " ".join(graph_module.causal_graph.__doc__.split())
    assert "strongest candidate" not in function_doc and "from any unit of the source layer, a node or not" in function_doc
