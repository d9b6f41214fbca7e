"""Leftovers of session 38: SobolAudit told a model with one output that ends in a sigmoid to pass
``output=lambda out: out.logit()``, whose logit of a saturated probability (exactly 0 or 1 in float32) is infinite: the
advice taken gave a non-finite output. It names ``out.float().logit(eps=1e-6)`` now, which these tests run."""

from __future__ import annotations

import math
import re
import warnings

import torch
from torch import nn

from lightning_causal import SobolAudit
from lightning_causal.audits import Probe


def test_the_advice_for_a_sigmoid_model_runs_on_saturated_probabilities():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 1), nn.Sigmoid())
    with torch.no_grad():
        model[0].weight.fill_(40.0)  # |logit| above 17 on most rows: float32 probabilities of exactly 0 or 1
    x = torch.randn(64, 4, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        p = model(x)
    assert bool((p == 1).any()) and bool((p == 0).any())
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        SobolAudit(n=64, n_bootstrap=0).run(model, Probe(x))
    (said,) = [str(w.message) for w in seen if "ends in a sigmoid already" in str(w.message)]
    code = re.search(r"`output=(lambda out: [^`]*)`", said).group(1)
    assert torch.isfinite(eval(code)(p)).all()
    result = SobolAudit(n=64, n_bootstrap=0, output=eval(code), probability=False).run(model, Probe(x))
    assert all(math.isfinite(v) for v in result.scalars.values())
