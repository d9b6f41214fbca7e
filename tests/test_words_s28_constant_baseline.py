"""A tensor baseline whose elements are all one value (torch.zeros(D)) is that value on the figures."""

from __future__ import annotations

import torch
from torch import nn

from lightning_causal import InputEffectAudit
from lightning_causal.audits import Probe
from lightning_causal.audits.input_effects import baseline_text
from tests.test_trial_docsuser7_figure_words import _figures


def test_a_tensor_of_one_value_is_named_as_that_value(monkeypatch):
    model = nn.Linear(3, 1, bias=False).double()  # f = w . x: δ_g = w_g (x_g − b_g)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[2.0, -1.0, 0.5]], dtype=torch.float64))
    x = torch.tensor([[1.0, 3.0, 0.5], [0.0, 1.0, 2.5]], dtype=torch.float64)
    b = torch.full((3,), 0.25, dtype=torch.float64)
    r = InputEffectAudit(baseline=b, ace_values=None).run(model, Probe(x))
    assert torch.allclose(r.maps["effect"].double(), model.weight.detach() * (x - 0.25))  # [[1.5, -2.75, 0.125], ...]
    assert r.meta["baseline"] == "0.25"
    title = " ".join(_figures(monkeypatch, [r], x)["causal/input_effect/maps/top_features"]._suptitle.get_text().split())
    assert title.endswith("against each feature set to 0.25"), title
    assert baseline_text(torch.full((2, 4), 103), True) == "id 103" and baseline_text(torch.zeros(0)) is None
    assert baseline_text(torch.tensor([0.0, float("nan")])) is None and baseline_text(torch.tensor([1.0, 2.0])) is None
