"""A recommender whose user tower reads a gender id as an input of its own, ``forward(gender, user_id, ...)`` with
``gender`` ``[N]`` (newuser61 trial): ``FairnessAudit`` explaining it stopped with ``IndexError: tuple index out of
range`` (in the callback: "Audit 'fairness' is misconfigured: tuple index out of range"), and
``counterfactual_fairness_gap`` and ``CounterfactualFairnessTerm`` said they expected ``[N, ...]`` of a tensor that is
``[N]``. They now say that the id needs a column, ``[:, None]``, and how the model reads it; that way gives the gap
and group rates computed by hand."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal import CounterfactualFairnessTerm, FairnessAudit, Probe
from lightning_causal.causal import AttributeFlip, counterfactual_fairness_gap


class UserScore(nn.Module):
    """A score per (user, item): a gender id embedding beside a user id embedding, one logit."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.gender, self.user = nn.Embedding(2, 3), nn.Embedding(20, 3)
        self.head = nn.Linear(6, 1)

    def forward(self, gender, user_id):  # gender [N] of 0/1
        return self.head(torch.cat([self.gender(gender), self.user(user_id)], 1)).squeeze(1)


class Column(nn.Module):
    """The way the message gives: the id as a column [N, 1], read as gender[:, 0]."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, g, *rest):
        return self.model(g[:, 0], *rest)


def _data():
    g = torch.Generator().manual_seed(1)
    return torch.randint(0, 2, (32,), generator=g), torch.randint(0, 20, (32,), generator=g), torch.randint(0, 2, (32,), generator=g)


def test_the_gap_of_an_id_input_says_it_needs_a_column():
    gender, user, _ = _data()
    with pytest.raises(ValueError, match=r"one value per sample.*x\[:, None\], \[N, 1\]"):
        counterfactual_fairness_gap(UserScore().eval(), gender, lambda g: 1 - g, additional_forward_args=(user,))


def test_fairness_audit_of_an_id_input_says_it_needs_a_column_and_the_way_gives_the_hand_values():
    model, (gender, user, y) = UserScore().eval(), _data()
    with pytest.raises(ValueError, match=r"one value per sample.*inputs\[:, None\]"):  # IndexError before
        FairnessAudit(lambda g: 1 - g).run(model, Probe(gender, y, additional_forward_args=(user,)))
    result = FairnessAudit(AttributeFlip(0)).run(Column(model), Probe(gender[:, None], y, additional_forward_args=(user,)))
    with torch.no_grad():
        p, p_flip = torch.sigmoid(model(gender, user)), torch.sigmoid(model(1 - gender, user))
    assert result.scalars["cf_gap"] == pytest.approx((p - p_flip).abs().mean().item(), abs=1e-6)
    for g in (0, 1):
        assert result.scalars[f"positive_rate/group_{g}"] == pytest.approx((p[gender == g] > 0.5).float().mean().item())


def test_the_repair_term_of_an_id_input_says_it_needs_a_column():
    gender, user, y = _data()
    term = CounterfactualFairnessTerm(lambda g: 1 - g)
    with pytest.raises(ValueError, match=r"one value per sample.*x\[:, None\]"):
        term.loss(UserScore(), gender, y, additional_forward_args=(user,))
