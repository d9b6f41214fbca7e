"""FairnessAudit's multi-class note names per-k lambdas on the model's whole output; where the audit's own `output=`
is set (a Softmax head read through `output=lambda out: out.log()`) it says to compose them with it, since read on the
probabilities they are no log-odds (final_read_A 4: DPD 0.334 against 0.396 of P(rank > k) > 0.5)."""

import torch
from torch import nn

from lightning_causal.audits import FairnessAudit, Probe
from lightning_causal.causal import AttributeFlip

CUTS = torch.tensor([-1.5, -0.5, 0.5, 1.5])


class RankProbabilities(nn.Module):
    """The 5 rank classes' probabilities of a cumulative-logit model (a head ending in a Softmax)."""

    def forward(self, x):
        cum = torch.sigmoid(CUTS - (1.5 * x[:, :1] + 2.0 * x[:, 2:3]))
        return torch.cat([cum[:, :1], cum[:, 1:] - cum[:, :-1], 1 - cum[:, -1:]], 1)


def _probe():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(200, 3, generator=g)
    x[:, 2] = (torch.rand(200, generator=g) > 0.5).float()
    return Probe(x, torch.bucketize(1.5 * x[:, 0] + 2.0 * x[:, 2], CUTS))


def _rates_note(result):
    return next(n for n in result.meta["notes"] if n.startswith("positive decision = class 1"))


def test_the_note_composes_its_lambdas_with_the_audits_own_output():
    note = _rates_note(FairnessAudit(AttributeFlip(2), output=lambda out: out.log()).run(RankProbabilities(), _probe()))
    assert "compose them with it, `output=lambda out, k=k: f(yours(out))`" in note
    assert "your own `output=` applied" in note
    # composed with the user's output, the note's rank-above-k lambda is the log-odds of P(rank > k)
    k, out = 2, RankProbabilities()(_probe().first)
    f = lambda o, k=k: o[:, k + 1:].logsumexp(1, keepdim=True) - o[:, :k + 1].logsumexp(1, keepdim=True)  # noqa: E731
    p = out[:, k + 1:].sum(1, keepdim=True)
    torch.testing.assert_close(f(out.log()), (p / (1 - p)).log(), atol=1e-5, rtol=1e-5)


class LogProbabilities(nn.Module):
    def forward(self, x):
        return RankProbabilities()(x).log()


def test_no_composition_words_without_an_output_of_the_users():
    note = _rates_note(FairnessAudit(AttributeFlip(2)).run(LogProbabilities(), _probe()))
    assert "f(yours(out))" not in note
