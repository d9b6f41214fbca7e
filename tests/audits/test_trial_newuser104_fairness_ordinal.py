"""FairnessAudit on an outcome of more than two classes (a grade of 5 ordered ranks) reads its group rates as one
binary decision, class 1 against the others (its docstring says so); the report and the text card did not: a planted
shift of the score by the sensitive column moved the ranks' spread between the groups while
``demographic_parity_difference`` (the share predicted rank 1) stayed 0.003 (/tmp/newuser104/recipe.py, a trained
CORAL model's rank classes; on this file's planted cumulative-link model, 0.000 beside 0.395 for the decision "rank
above 2"). A note now says which decision the rates read and names the binary outputs that read the
decision one means (class k against the rest; a rank above k)."""

import pytest
import torch
from torch import nn

from lightning_causal.audits import FairnessAudit
from lightning_causal.audits.base import Probe
from lightning_causal.causal import AttributeFlip

THRESHOLDS = torch.tensor([-1.5, -0.5, 0.5, 1.5])  # P(rank <= k) = sigmoid(t_k - s): a cumulative-link model of 5 ranks


class CumulativeLink(nn.Module):
    """The rank classes' log-probabilities [N, 5] of the score s = 1.5 x0 + 2.0 x2 (x2 the sensitive 0/1 column)."""

    def forward(self, x):
        s = 1.5 * x[:, :1] + 2.0 * x[:, 2:3]
        cum = torch.sigmoid(THRESHOLDS - s)
        p = torch.cat([cum[:, :1], cum[:, 1:] - cum[:, :-1], 1 - cum[:, -1:]], 1)
        return p.clamp_min(1e-12).log()


def _probe(n: int = 400) -> Probe:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, generator=g)
    x[:, 2] = (torch.rand(n, generator=g) > 0.5).float()
    ranks = torch.bucketize(1.5 * x[:, 0] + 2.0 * x[:, 2] + 0.3 * torch.randn(n, generator=g), THRESHOLDS)
    return Probe(x, ranks)


def _rates(result):
    return {row["value"]: row["positive_rate"] for row in result.tables["groups"]}


def test_the_rates_of_several_classes_say_they_read_class_1_against_the_others():
    model, probe = CumulativeLink().eval(), _probe()
    result = FairnessAudit(AttributeFlip(2)).run(model, probe)
    assert sum("positive decision = class 1 of 5 classes" in note for note in result.meta.get("notes", [])) == 1
    notes = " ".join(result.meta.get("notes", []))
    assert "(y > k).long()" in notes
    with torch.no_grad():
        pred = model(probe.first).argmax(1)
    sex = probe.first[:, 2]
    by_hand = {v: float((pred[sex == v] == 1).float().mean()) for v in (0.0, 1.0)}  # the share predicted rank 1
    assert _rates(result) == pytest.approx(by_hand)


def test_the_named_way_reads_a_rank_above_k_and_says_nothing_of_class_1():
    model, probe, k = CumulativeLink().eval(), _probe(), 2
    above = Probe(probe.first, (probe.labels > k).long())
    audit = FairnessAudit(AttributeFlip(2), output=lambda out: out[:, k + 1:].logsumexp(1, keepdim=True)
                          - out[:, :k + 1].logsumexp(1, keepdim=True))
    result = audit.run(model, above)
    assert not any("positive decision = class 1" in note for note in result.meta.get("notes", []))
    x, sex = probe.first, probe.first[:, 2]
    decided = 1.5 * x[:, 0] + 2.0 * x[:, 2] > THRESHOLDS[k]  # P(rank > k) > 0.5 where s > t_k
    by_hand = {v: float(decided[sex == v].float().mean()) for v in (0.0, 1.0)}
    assert _rates(result) == pytest.approx(by_hand)
    assert by_hand[1.0] - by_hand[0.0] > 0.2  # the planted shift the class-1 share hid


def test_two_classes_get_no_such_note():
    model = nn.Sequential(nn.Linear(3, 2))
    probe = _probe()
    result = FairnessAudit(AttributeFlip(2)).run(model, Probe(probe.first, (probe.labels > 2).long()))
    assert not any("positive decision = class 1" in note for note in result.meta.get("notes", []))


def test_the_group_figure_names_the_positive_class():
    from lightning_causal.reporting.tensorboard import _interval_figure

    model, probe = CumulativeLink().eval(), _probe()
    result = FairnessAudit(AttributeFlip(2)).run(model, probe)
    assert result.meta["positive_decision"] == "class 1 of 5"
    figure = _interval_figure(result, "groups", result.tables["groups"])
    assert figure.axes[0].get_xlabel() == "share of positive decisions (class 1 of 5)"
    binary = FairnessAudit(AttributeFlip(2)).run(nn.Linear(3, 2), Probe(probe.first, (probe.labels > 2).long()))
    assert "positive_decision" not in binary.meta
    assert _interval_figure(binary, "groups", binary.tables["groups"]).axes[0].get_xlabel() == "share of positive decisions"
