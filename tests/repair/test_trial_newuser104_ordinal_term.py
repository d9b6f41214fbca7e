"""CounterfactualFairnessTerm on an ordinal head (CORAL: ``K - 1`` cumulative logits ``s(x) + b_k``, trained with BCE
on ``rank > k``). The audits warn of such per-level logits (:func:`~lightning_causal.audits.label_task.level_outputs`);
the term compared them in silence: ``distance='logit'`` centres them, and a score shared by every level moves them
alike, so its penalty is exactly 0 whatever the flip does; ``abs_prob`` compares their softmax, no probability of a
rank (5 epochs at weight 5 took the expected rank's mean change under the flip from 0.459 to 0.434 only; through the
expected rank with ``distance='logit'`` to 0.008, /tmp/newuser104/repair.py)."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal import AttributeFlip, CounterfactualFairnessTerm

THRESHOLDS = torch.tensor([-1.5, -0.5, 0.5, 1.5])  # 5 ranks of the score


class Coral(nn.Module):
    """Cumulative logits ``s(x) + b_k``, one weight vector shared by the 4 levels; the sensitive column 2 moves s."""

    def __init__(self) -> None:
        super().__init__()
        self.score = nn.Linear(3, 1, bias=False)
        with torch.no_grad():
            self.score.weight.copy_(torch.tensor([[1.5, 0.7, 0.8]]))
        self.loss = nn.BCEWithLogitsLoss()  # trained on the levels rank > k: the model says each output is a sigmoid

    def forward(self, x):
        return self.score(x) - THRESHOLDS


def _batch():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(64, 3, generator=g)
    x[:, 2] = (x[:, 2] > 0).float()
    ranks = torch.bucketize(1.5 * x[:, 0] + 0.7 * x[:, 1] + 0.8 * x[:, 2], THRESHOLDS)
    return x, ranks


def expected_rank(out):
    return torch.sigmoid(out).sum(1, keepdim=True)


@pytest.mark.parametrize("distance", ["logit", "abs_prob", "sym_kl"])
def test_the_term_warns_of_cumulative_logits_beside_ranks(distance):
    x, ranks = _batch()
    term = CounterfactualFairnessTerm(AttributeFlip(2), distance=distance)
    with pytest.warns(UserWarning, match=r"(?s)cumulative logits.*sigmoid\(out\)\.sum\(1, keepdim=True\)"):
        value = term.loss(Coral(), x, ranks)
    if distance == "logit":  # why: the centred cumulative logits are b_k - mean(b), the same with and without the flip
        assert float(value.detach()) == pytest.approx(0.0, abs=1e-6)


def test_the_named_way_penalises_the_change_of_the_expected_rank_and_says_nothing():
    x, ranks = _batch()
    model = Coral()
    term = CounterfactualFairnessTerm(AttributeFlip(2), distance="logit", output=expected_rank)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = term.loss(model, x, ranks)
    x_cf = x.clone()
    x_cf[:, 2] = 1 - x_cf[:, 2]
    by_hand = (expected_rank(model(x)) - expected_rank(model(x_cf))).abs().mean()
    assert float(value.detach()) == pytest.approx(float(by_hand.detach()), rel=1e-6)
    assert float(value.detach()) > 0.1


def test_no_warning_for_binary_labels_or_a_model_that_says_it_is_multiclass():
    x, ranks = _batch()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        CounterfactualFairnessTerm(AttributeFlip(2)).loss(Coral(), x, (ranks > 2).long())  # one label's 0/1 decision
        multiclass = Coral()
        multiclass.loss = nn.CrossEntropyLoss()  # 4 classes of one decision: ranks 0..3 are its classes
        CounterfactualFairnessTerm(AttributeFlip(2)).loss(multiclass, x, ranks.clamp(max=3))


def test_a_head_chosen_by_key_is_named_in_the_lambdas():
    class Heads(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.coral = Coral()
            self.hparams = {"task": {"cls": "multiclass", "ordinal": "multilabel"}}

        def forward(self, x):
            return {"cls": torch.zeros(len(x), 2), "ordinal": self.coral(x)}

    x, ranks = _batch()
    with pytest.warns(UserWarning, match=r"head `output='ordinal'` is `out\['ordinal'\]`"):
        CounterfactualFairnessTerm(AttributeFlip(2), output="ordinal").loss(Heads(), x, ranks)
