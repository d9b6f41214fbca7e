"""Dense-output trial: CounterfactualFairnessTerm on a regression of several outputs ``[N, D]``.

The docs sent a regression to ``distance="logit"``, "|f(x) − f(x_cf)| of the output itself"; with
several outputs that distance compares them centred (counterfactual logit pairing), so a flip that
moved both regressed quantities by 3 got the penalty 0, silently, and the probability distances'
warning recommended that same ``distance="logit"``. Both now warn with the way out (one term per
output), whose penalty is the hand-computed |Δ f_k| = 3.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal import CounterfactualFairnessTerm
from tests.helpers.dense_outputs import flip_first_column, warnings_said


def _regression():
    """f_k(x) = 3 x_0 + w_k · x[1:]: the sensitive column 0 moves both outputs by 3."""
    model = nn.Linear(3, 2).double()
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[3.0, 1.0, -2.0], [3.0, 0.5, 4.0]], dtype=torch.float64))
        model.bias.zero_()
    x = torch.randn(12, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    x[:, 0] = (torch.arange(12) % 2).double()
    return model, x, (model(x) + 0.37).detach()  # real-valued labels [12, 2]


def test_logit_distance_on_several_outputs_is_centred_and_warns():
    model, x, y = _regression()
    value, said = warnings_said(lambda: CounterfactualFairnessTerm(flip_first_column, sensitive=0, distance="logit").loss(model, x, y))
    assert float(value.detach()) == pytest.approx(0.0, abs=1e-12)  # both outputs moved by 3: centred, no change
    hits = [m for m in said if "moves every output alike gets penalty 0" in m]
    assert hits and "one term per output, `output=lambda out: out[:, [k]]`" in hits[0]


def test_one_term_per_output_penalises_each_outputs_change():
    model, x, y = _regression()
    for k in range(2):
        term = CounterfactualFairnessTerm(flip_first_column, sensitive=0, distance="logit", output=lambda out, k=k: out[:, [k]])
        value, said = warnings_said(lambda term=term: term.loss(model, x, y))
        assert float(value.detach()) == pytest.approx(3.0, rel=1e-12)
        assert not [m for m in said if "penalty 0" in m or "regression" in m]


def test_the_probability_distances_send_several_outputs_to_one_term_each():
    model, x, y = _regression()
    _, said = warnings_said(lambda: CounterfactualFairnessTerm(flip_first_column, sensitive=0).loss(model, x, y))
    assert any("saturates" in m and "one term per output" in m for m in said), said
    one = nn.Linear(3, 1).double()
    _, said = warnings_said(lambda: CounterfactualFairnessTerm(flip_first_column, sensitive=0).loss(one, x, y[:, :1]))
    assert any("distance='logit' to penalise |f(x) − f(x_cf)| of the output itself" in m for m in said), said
