"""An ordinal head that ends in nn.Sigmoid (outputs P(rank > k), trained with nn.BCELoss) beside rank labels: the
warnings of per-level outputs (the audits' level_outputs, the repair term's _warn_levels, f3418829) named
``torch.sigmoid(out).sum(1, keepdim=True)`` as the expected rank, the sigmoid of a probability (in [0.5, 0.73]: the
effects of this file's head 4.4 times too small, 0.145 against 0.636 for x0). They now say that its outputs are
sigmoids already and name ``out.sum(1, keepdim=True)``; raw cumulative logits get the words of before."""

import re
import warnings

import pytest
import torch
from torch import nn

from lightning_causal import AttributeFlip, CounterfactualFairnessTerm
from lightning_causal.audits import InputEffectAudit
from lightning_causal.audits.base import Probe

SAID = r"its outputs are sigmoids already .*`output=lambda out: out\.sum\(1, keepdim=True\)`"


class Coral(nn.Module):
    """Cumulative logits ``s(x) + b_k`` (``sigmoid=True``: their sigmoids, P(rank > k)) of the score ``2 x0 + 1.5 x2``."""

    def __init__(self, sigmoid: bool) -> None:
        super().__init__()
        self.score = nn.Linear(3, 1, bias=False)
        with torch.no_grad():
            self.score.weight.copy_(torch.tensor([[2.0, 0.0, 1.5]]))
        self.b = nn.Parameter(torch.tensor([1.0, 0.0, -1.0]))
        self.end = nn.Sigmoid() if sigmoid else nn.Identity()
        self.loss = nn.BCELoss() if sigmoid else nn.BCEWithLogitsLoss()  # each output its own sigmoid decision

    def forward(self, x):
        return self.end(self.score(x) + self.b)


def _batch():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, generator=g)
    x[:, 2] = (x[:, 2] > 0).float()
    return x, torch.bucketize(2 * x[:, 0] + 1.5 * x[:, 2], torch.tensor([-1.0, 0.0, 1.0]))


def _said(run) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run()
    return [str(w.message) for w in caught if "cumulative logits" in str(w.message)]


@pytest.mark.parametrize("sigmoid", [True, False])
def test_the_ways_out_name_the_sigmoids_of_a_head_that_ends_in_one(sigmoid):
    x, ranks = _batch()
    model = Coral(sigmoid).eval()
    for run in (lambda: InputEffectAudit().run(model, Probe(x, ranks)),
                lambda: CounterfactualFairnessTerm(AttributeFlip(2), distance="logit").loss(model, x, ranks)):
        said = _said(run)
        assert said, "the per-level outputs are warned about"
        assert all(bool(re.search(SAID, text)) == sigmoid for text in said)


def test_the_named_expected_rank_of_the_sigmoids_is_the_expected_rank():
    x, _ = _batch()
    with torch.no_grad():
        probabilities = Coral(True)(x)
        by_hand = torch.sigmoid(Coral(False)(x)).sum(1, keepdim=True)  # sum_k P(rank > k) of the logits
    assert torch.allclose(probabilities.sum(1, keepdim=True), by_hand, atol=1e-6)
