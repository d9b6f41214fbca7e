"""Dense-output trial: repair terms on a multi-label classifier (``BCEWithLogitsLoss``, multi-hot
labels ``[N, K]``).

``CounterfactualFairnessTerm`` compared the softmax over the K label logits (``distance='logit'``:
their centred logits) silently: a flip that raises every label's logit alike (every label more
likely for one group) got the penalty 0. ``BackdoorSuppressionTerm`` failed inside its
cross-entropy with torch's "The size of tensor a (3) must match the size of tensor b (128)".
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal import BackdoorSuppressionTerm, CounterfactualFairnessTerm
from lightning_causal.causal import Trigger
from tests.helpers.dense_outputs import flip_first_column, multi_label_linear, warnings_said


@pytest.mark.parametrize("distance", ["abs_prob", "sym_kl", "logit"])
def test_the_softmax_penalty_of_a_multi_label_model_is_blind_to_a_shared_shift_and_warns(distance):
    model, x, labels = multi_label_linear()
    term = CounterfactualFairnessTerm(flip_first_column, sensitive=0, distance=distance)
    value, said = warnings_said(lambda: term.loss(model, x, labels))
    assert float(value.detach()) == pytest.approx(0.0, abs=1e-12)  # what the warning is about: every logit moved by 2, penalty 0
    hits = [m for m in said if "multi-hot [16, 3]" in m]
    assert hits and "out[:, [k]]" in hits[0] and "blind to a flip" in hits[0]


def test_one_term_per_label_gives_each_labels_sigmoid_distance():
    """The way out of the warning: label k's own term compares sigmoid(z_k) with sigmoid(z_k ± 2)."""
    model, x, labels = multi_label_linear()
    with torch.no_grad():
        z, z_cf = model(x), model(flip_first_column(x))
    for k in range(3):
        term = CounterfactualFairnessTerm(flip_first_column, sensitive=0, output=lambda out, k=k: out[:, [k]], name=f"fair_label{k}")
        value, said = warnings_said(lambda term=term: term.loss(model, x, labels))
        assert not [m for m in said if "multi-hot" in m]
        expected = (torch.sigmoid(z[:, k]) - torch.sigmoid(z_cf[:, k])).abs().mean()
        torch.testing.assert_close(value.double(), expected, rtol=1e-6, atol=1e-9)
        assert float(expected) > 0.1


def test_one_hot_labels_of_a_softmax_classifier_are_not_warned_about():
    model, x, _ = multi_label_linear()
    one_hot = nn.functional.one_hot(torch.arange(16) % 3, 3).double()
    _, said = warnings_said(lambda: CounterfactualFairnessTerm(flip_first_column, sensitive=0).loss(model, x, one_hot))
    assert not [m for m in said if "multi-hot" in m]


def test_backdoor_suppression_names_multi_hot_labels():
    model, x, labels = multi_label_linear()
    term = BackdoorSuppressionTerm(trigger=Trigger(torch.tensor([0.0, 0.0, 0.0, 1.0]), 3.0, target=1))
    term.setup(model)
    with pytest.raises(ValueError, match=r"one class index per sample of the batch, y \[16\], but got \[16, 3\] \(multi-hot"):
        term.loss(model, x, labels)
    term.loss(model, x, labels[:, 1].long())  # class indices: runs
