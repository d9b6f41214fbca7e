"""Review of 702b1084: the fix that the warning of a probability read as one logit named,
``output=lambda out: out.logit(eps=1e-6)``, gave ``inf`` for a half-precision model's saturated probabilities (in float16
and bfloat16 ``1 - 1e-6`` rounds to 1, and a bfloat16 sigmoid rounds every probability above 0.998 to 1), on which
``CounterfactualFairnessTerm``'s ``sym_kl`` distance was NaN (its default ``abs_prob`` stayed finite). The warning names the fix in float32 now,
``out.float().logit(eps=1e-6)``; the fix it names is taken from its message and run here."""

from __future__ import annotations

import re
import warnings

import pytest
import torch
from torch import nn

from lightning_causal import AttributeFlip, CounterfactualFairnessTerm, FairnessAudit
from lightning_causal.audits import Probe


class SigmoidHead(nn.Module):
    """p = sigmoid(6 x0 + 2 x2 - 1), column 2 the 0/1 attribute: a few probabilities above 0.998."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 1)
        with torch.no_grad():
            self.lin.weight.copy_(torch.tensor([[6.0, 0.0, 2.0]]))
            self.lin.bias.fill_(-1.0)

    def forward(self, x):
        return torch.sigmoid(self.lin(x))


def _data(dtype: torch.dtype):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(128, 3, generator=g)
    x[:, 2] = (torch.rand(128, generator=g) < 0.5).float()
    return x.to(dtype), (x[:, 0] > 0).long()


def _named_fix(model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        CounterfactualFairnessTerm(AttributeFlip(2)).loss(model, x, y)
    said = [str(w.message) for w in seen if "on both sides of 0.5" in str(w.message)]
    assert len(said) == 1
    return eval(re.search(r"`output=(lambda out: [^`]+)`", said[0]).group(1))  # the fix, as the message words it


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_the_named_fix_keeps_a_half_precision_models_repair_term_finite(dtype):
    x, y = _data(dtype)
    model = SigmoidHead().to(dtype)
    with torch.no_grad():
        assert bool((model(x) == 1).any())  # saturated rows: where out.logit(eps=1e-6) is inf in this dtype
    fix = _named_fix(model, x, y)
    for distance in ("sym_kl", "abs_prob", "logit"):
        loss = CounterfactualFairnessTerm(AttributeFlip(2), distance=distance, output=fix).loss(model, x, y)
        assert bool(torch.isfinite(loss)), distance


def test_the_named_fix_gives_the_audit_the_probabilities_back_in_half_precision():
    x, y = _data(torch.bfloat16)
    model = SigmoidHead().to(torch.bfloat16).eval()
    fix = _named_fix(model, x, y)
    r = FairnessAudit(AttributeFlip(2), sensitive=2, output=fix).run(model, Probe(x, y))
    with torch.no_grad():
        p = model(x)[:, 0].float()
        x_cf = x.clone()
        x_cf[:, 2] = 1 - x_cf[:, 2]
        p_cf = model(x_cf)[:, 0].float()
    assert r.scalars["cf_gap"] == pytest.approx(float((p - p_cf).abs().mean()), abs=1e-3)
    for v in (0, 1):
        assert r.scalars[f"positive_rate/group_{v}"] == pytest.approx(float((p[x[:, 2].float() == v] > 0.5).float().mean()))
