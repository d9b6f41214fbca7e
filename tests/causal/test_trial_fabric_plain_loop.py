"""The core in a hand-written PyTorch training loop: estimators called in the middle of a step, between
``loss.backward()`` and ``optimizer.step()`` (docs/recipes.md, 'Without Trainer'), leave the loop
bit-identical to the same seeded loop without them: gradients (the same tensors, same values), the
``training`` flags, BatchNorm statistics, ``requires_grad`` and the global RNG streams, gradient-based
estimators (ATP screen, counterfactual search, Neural Cleanse) included."""

from __future__ import annotations

import random
import warnings

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal.causal import (
    EmpiricalMarginals,
    Trigger,
    causal_graph,
    class_probability,
    counterfactual_explanation,
    input_effects,
    neural_cleanse,
    sobol_indices,
    suspect_units,
    unit_effects,
)

X = torch.randn(128, 4, generator=torch.Generator().manual_seed(5))
Y = (X[:, 0] - X[:, 1] > 0).long()
TRIGGER = Trigger(torch.tensor([0.0, 0.0, 0.0, 1.0]), torch.tensor([0.0, 0.0, 0.0, 3.0]), target=1)
CALLS = {
    "unit_effects": lambda m, x: unit_effects(m, x, "4"),
    "unit_effects_atp": lambda m, x: unit_effects(m, x, "4", method="atp"),
    "input_effects": lambda m, x: input_effects(m, x),
    "causal_graph": lambda m, x: causal_graph(m, x, ["2", "5"]),
    "sobol": lambda m, x: sobol_indices(class_probability(m, 1), EmpiricalMarginals(x), n=64),
    "counterfactual": lambda m, x: counterfactual_explanation(m, x[:4], 1),
    "neural_cleanse": lambda m, x: neural_cleanse(m, x, 2, steps=5),
    "suspect_units": lambda m, x: suspect_units(m, x, TRIGGER, "5"),
}


def _loop(call: str | None) -> tuple[list[torch.Tensor], tuple]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 16), nn.BatchNorm1d(16), nn.ReLU(), nn.Dropout(0.3), nn.Linear(16, 8),
                          nn.ReLU(), nn.Linear(8, 2))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(3):
        rows = torch.randint(0, 128, (32,))
        loss = F.cross_entropy(model(X[rows]), Y[rows])
        optimizer.zero_grad()
        loss.backward()
        if call is not None:
            grads = [p.grad for p in model.parameters()]
            values = [g.clone() for g in grads]
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                CALLS[call](model, X[:48])
            assert all(p.grad is g and torch.equal(g, v) for p, g, v in zip(model.parameters(), grads, values))
            assert all(m.training for m in model.modules()) and all(p.requires_grad for p in model.parameters())
        optimizer.step()
    state = [t.detach().clone() for t in (*model.parameters(), *model.buffers())]
    return state, (torch.rand(2), float(np.random.rand()), random.random())


@pytest.mark.parametrize("call", sorted(CALLS))
def test_an_estimator_between_backward_and_step_leaves_the_loop_bit_identical(call):
    random.seed(0)
    np.random.seed(0)
    plain = _loop(None)
    random.seed(0)
    np.random.seed(0)
    audited = _loop(call)
    assert all(torch.equal(a, b) for a, b in zip(plain[0], audited[0]))
    assert torch.equal(plain[1][0], audited[1][0]) and plain[1][1:] == audited[1][1:]
