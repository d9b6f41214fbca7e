"""The causal graph's title says what its effects are on: a regression's output, not "the explained class's score"."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal import CausalGraphAudit
from lightning_causal.audits import Probe
from lightning_causal.reporting.graph_figures import graph_figure


def _model(outputs: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, outputs))


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize(("outputs", "labels", "target", "on"), [
    (2, "real", None, "the explained output"),  # a 2-output regression: each sample's largest output (warned)
    (2, "real", 1, "output 1"),
    (1, "real", None, "the output"),
    (3, "class", None, "the explained class's score"),
    (3, "class", 2, "class 2's score"),
    (3, "multi", 0, "label 0's logit"),
])
def test_the_graph_title_names_what_is_explained(outputs, labels, target, on):
    x = torch.linspace(-1, 1, 48).reshape(16, 3)
    y = {"real": x[:, :outputs] * 2.0, "class": torch.arange(16) % 3,
         "multi": (torch.arange(48).reshape(16, 3) % 2).float()}[labels]
    r = CausalGraphAudit(["1"], target=target).run(_model(outputs), Probe(x, y))
    title = graph_figure(r.graphs["causal_graph"]).axes[0].get_title()
    assert title.split("\n")[1] == f"effects of do(unit := 0) on {on}", title


def test_a_fixed_class_is_named_by_its_class_name_where_the_audit_has_them():
    x = torch.linspace(-1, 1, 48).reshape(16, 3)
    r = CausalGraphAudit(["1"], target=2, class_names=["ant", "bee", "cat"]).run(_model(3), Probe(x, torch.arange(16) % 3))
    title = graph_figure(r.graphs["causal_graph"]).axes[0].get_title()
    assert title.split("\n")[1] == "effects of do(unit := 0) on class 2 (cat)'s score", title
