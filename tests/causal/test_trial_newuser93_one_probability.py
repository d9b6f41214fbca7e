"""A binary classifier that returns its probability as its one output (a head ending in ``torch.sigmoid``, a Laplace
last layer's probit-approximated predictive ``sigmoid(f / sqrt(1 + pi/8 var))``) had it read as a logit by the
fairness measures: the sigmoid of a probability lies in [0.5, 0.73], so ``FairnessAudit`` reported every sample decided
positive (``positive_rate`` 1.0 in both groups where the model's decisions were 0.25 and 0.64), ``cf_flip_rate`` 0 and a
``cf_gap`` squeezed about fourfold, without a word. One output of at least 8 rows, every entry in [0, 1] and on both
sides of 0.5 (read as logits: every sample positive; as probabilities: both decisions) is warned of wherever a sigmoid
is applied to it, naming ``output=lambda out: out.float().logit(eps=1e-6)``, which gives the probabilities back exactly."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal import AttributeFlip, CounterfactualFairnessTerm, FairnessAudit
from lightning_causal.audits import Probe
from lightning_causal.causal import counterfactual_fairness_gap
from lightning_causal.causal.engine.state import check_one_logit

WARNED = r"lies in \[0, 1\] on both sides of 0\.5.*`output=lambda out: out.float\(\).logit\(eps=1e-6\)`"


class SigmoidHead(nn.Module):
    """p = sigmoid(2 x0 + 1.5 x3 - 1): column 3 is the sensitive 0/1 attribute."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 1)
        with torch.no_grad():
            self.lin.weight.copy_(torch.tensor([[2.0, 0.0, 0.0, 1.5]]))
            self.lin.bias.fill_(-1.0)

    def forward(self, x):
        return torch.sigmoid(self.lin(x))


def _data(n: int = 64):
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 4, generator=g)
    x[:, 3] = (torch.arange(n) % 2).float()
    return x, (x[:, 0] > 0).float()


def test_fairness_audit_of_a_probability_warns_and_the_named_fix_gives_the_decisions():
    model, (x, y) = SigmoidHead(), _data()
    with pytest.warns(UserWarning, match=WARNED):
        FairnessAudit(AttributeFlip(3), sensitive=3).run(model, Probe(x, y))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = FairnessAudit(AttributeFlip(3), sensitive=3, output=lambda out: out.logit(eps=1e-6)).run(model, Probe(x, y))
    with torch.no_grad():
        p = model(x)[:, 0]
        x_cf = x.clone()
        x_cf[:, 3] = 1 - x_cf[:, 3]
        p_cf = model(x_cf)[:, 0]
    for v in (0, 1):
        rate = float((p[x[:, 3] == v] > 0.5).float().mean())
        assert 0.05 < rate < 0.95  # both decisions in each group: a rate of 1.0 is the bug
        assert r.scalars[f"positive_rate/group_{v}"] == pytest.approx(rate)
    assert r.scalars["cf_gap"] == pytest.approx(float((p - p_cf).abs().mean()), abs=1e-5)
    assert r.scalars["cf_flip_rate"] == pytest.approx(float(((p > 0.5) != (p_cf > 0.5)).float().mean()))


def test_counterfactual_fairness_gap_of_a_probability_warns_once():
    model, (x, _) = SigmoidHead(), _data()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        counterfactual_fairness_gap(model, x, AttributeFlip(3), max_batch_size=8)  # several passes: one warning
    said = [w for w in seen if "on both sides of 0.5" in str(w.message)]
    assert len(said) == 1 and "the counterfactual fairness measures" in str(said[0].message)


def test_the_repair_term_warns_where_it_applies_a_sigmoid_only():
    model, (x, y) = SigmoidHead(), _data()
    with pytest.warns(UserWarning, match=WARNED):
        CounterfactualFairnessTerm(AttributeFlip(3)).loss(model, x, y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the logits' pairing compares the outputs themselves: no sigmoid
        CounterfactualFairnessTerm(AttributeFlip(3), distance="logit").loss(model, x, y)


def test_logits_and_one_sided_or_few_rows_are_not_warned_of():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_one_logit(torch.linspace(-3, 3, 16).unsqueeze(1), "it")  # logits of both signs
        check_one_logit(torch.linspace(0.6, 0.9, 16), "it")  # all above 0.5: both readings decide alike
        check_one_logit(torch.tensor([[0.2], [0.8], [0.3], [0.7]]), "it")  # four rows say nothing
        check_one_logit(torch.rand(16, 2), "it")  # two outputs: check_logits' case
    with pytest.warns(UserWarning, match=WARNED):
        check_one_logit(torch.linspace(0.05, 0.95, 16), "it")
