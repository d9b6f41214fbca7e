"""A CORAL head that holds no loss (its loss given to the repair module) is read as per-level logits where its ranks
reach one beyond its outputs (final_read_A 1), and the ordinal hint of a Sigmoid-ending head names `out.sum(1)`, not
`torch.sigmoid(out).sum(1)` (final_read_A 2)."""

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal import (
    AttributeFlip,
    CausalRepairModule,
    CounterfactualFairnessTerm,
    input_effects,
)
from lightning_causal.audits import CounterfactualAudit, InputEffectAudit, Probe
from lightning_causal.audits.label_task import level_outputs
from lightning_causal.causal.engine.checks import check_class_labels

CUTS = torch.tensor([-1.5, -0.5, 0.5, 1.5])


class Coral(nn.Module):
    """s(x) - b_k: 4 cumulative logits of 5 ranks; holds no loss (nothing said of its task)."""

    def __init__(self, sigmoid: bool = False):
        super().__init__()
        self.score, self.sigmoid = nn.Linear(3, 1, bias=False), sigmoid
        with torch.no_grad():
            self.score.weight.copy_(torch.tensor([[1.5, 0.7, 0.8]]))

    def forward(self, x):
        out = self.score(x) - CUTS
        return torch.sigmoid(out) if self.sigmoid else out


def _data():
    x = torch.randn(64, 3, generator=torch.Generator().manual_seed(0))
    x[:, 2] = (x[:, 2] > 0).float()
    return x, torch.bucketize(1.5 * x[:, 0] + 0.7 * x[:, 1] + 0.8 * x[:, 2], CUTS)


def _levels(out, y):
    return F.binary_cross_entropy_with_logits(out, (y[:, None] > torch.arange(4)).float())


@pytest.mark.parametrize("distance", ["logit", "abs_prob"])
def test_term_on_a_coral_head_without_a_loss_warns(distance):
    x, ranks = _data()
    assert int(ranks.min()) == 0 and int(ranks.max()) == 4
    module = CausalRepairModule(Coral(), [CounterfactualFairnessTerm(AttributeFlip(2), distance=distance)], task_loss=_levels)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        module.training_step((x, ranks), 0)
    said = [str(w.message) for w in caught if "CounterfactualFairnessTerm" in str(w.message)]
    assert len(said) == 1 and "says nothing of its task" in said[0] and "0 to 4, one more than its 4 outputs" in said[0]
    assert "torch.sigmoid(out).sum(1, keepdim=True)" in said[0]  # the term's penalty is ~0: the expected rank named


def test_no_per_level_reading_of_a_plain_classifier():
    x, ranks = _data()
    classes = ranks.clamp(max=3)  # 4 classes of 4 outputs: a plain classifier's labels
    assert level_outputs(classes, Coral()(x).detach(), Coral()) is None
    term = CounterfactualFairnessTerm(AttributeFlip(2), distance="logit")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        term.loss(Coral(), x, classes)
    assert not [w for w in caught if "one class per sample" in str(w.message)]


def test_input_effect_audit_warns_of_a_coral_head_without_a_loss():
    x, ranks = _data()
    with pytest.warns(UserWarning, match="says nothing of its task .* one more than its 4 outputs"):
        InputEffectAudit().run(Coral(), Probe(x, ranks))


@pytest.mark.filterwarnings("ignore:CounterfactualAudit explains")
def test_ordinal_hint_of_a_sigmoid_head_names_the_outputs_sum():
    x, ranks = _data()
    with pytest.raises(ValueError) as raised:
        input_effects(Coral(sigmoid=True), x, target=4)
    assert "output=lambda out: out.sum(1, keepdim=True)" in str(raised.value)
    assert "torch.sigmoid(out)" not in str(raised.value)
    with pytest.raises(ValueError) as raised:
        CounterfactualAudit().run(Coral(sigmoid=True), Probe(x, ranks))
    assert "output=lambda out: out.sum(1, keepdim=True)" in str(raised.value)
    assert "torch.sigmoid(out)" not in str(raised.value)
    with pytest.raises(ValueError) as raised:  # cumulative logits: the sigmoid named, as before
        check_class_labels("labels", ranks, 4, outputs=Coral()(x).detach())
    assert "output=lambda out: torch.sigmoid(out).sum(1, keepdim=True)" in str(raised.value)
    # following the hint explains the expected rank itself: sum_k P(rank > k)
    effects = input_effects(Coral(sigmoid=True), x, output=lambda out: out.sum(1, keepdim=True))
    by_hand = input_effects(Coral(), x, output=lambda out: torch.sigmoid(out).sum(1, keepdim=True))
    torch.testing.assert_close(effects.effects if hasattr(effects, "effects") else effects,
                               by_hand.effects if hasattr(by_hand, "effects") else by_hand)


def test_a_plain_classifiers_target_one_beyond_leads_with_a_class_numbered_from_1():
    plain = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 10))
    with pytest.raises(ValueError) as raised:
        input_effects(plain, _data()[0], target=10)
    said = str(raised.value)
    assert "(the model returns 10 outputs; e.g. a class numbered from 1; or 11 ranks of an ordinal head's" in said
