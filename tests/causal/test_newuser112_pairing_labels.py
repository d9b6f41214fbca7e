"""A CLIP-like model's InfoNCE labels, arange(B) (row i paired with caption i), given as the probe's labels (newuser112's
trial: /tmp/newuser112/t8.py, t9.py) were refused beside a zero-shot classifier's 10 classes, or a pair's own score
read as one binary logit, as 'e.g. labels numbered from 1'. The refusal now names them as the rows' own indices,
a contrastive loss's pairing, no classes, and the way out."""

import pytest
import torch
from torch import nn

from lightning_causal import FairnessAudit
from lightning_causal.audits.base import Probe
from lightning_causal.causal import AttributeFlip
from lightning_causal.causal.engine.checks import check_class_labels

PAIRING = "each row's own index, are an in-batch contrastive loss's (InfoNCE's labels = arange(B)"


def test_row_indices_beside_fewer_classes_are_named_as_pairing():
    with pytest.raises(ValueError, match="labels 0 to 11 in order, " + PAIRING.replace("(", r"\(").replace(")", r"\)")):
        check_class_labels("labels", torch.arange(12), 10)
    with pytest.raises(ValueError, match="numbered from 1") as err:  # classes beyond the outputs, not in order
        check_class_labels("labels", torch.tensor([3, 1, 2, 0]), 3)
    assert PAIRING not in str(err.value)
    check_class_labels("labels", torch.arange(10), 10)  # as many classes as rows: classes (retrieval among 10 candidates)


def test_fairness_audit_of_a_pair_score_names_pairing_labels():
    torch.manual_seed(0)
    x = torch.rand(16, 3)
    x[:, 0] = (x[:, 0] > 0.5).float()
    with pytest.raises(ValueError, match="labels 0 to 15 in order") as err:
        FairnessAudit(AttributeFlip(0)).run(nn.Linear(3, 1), Probe(x, torch.arange(16)))  # a pair's score: one output
    assert "leave them out (None)" in str(err.value)


def test_classes_beside_one_score_are_named():
    """A pair's own score (one output, read as a binary logit) beside the digits' labels was refused as 'the model
    returns 2 logits ... e.g. labels numbered from 1' (/tmp/newuser112/t10.py): neither is what happened."""
    torch.manual_seed(0)
    x = torch.rand(16, 3)
    x[:, 0] = (x[:, 0] > 0.5).float()
    digits = torch.tensor([3, 0, 7, 1, 9, 2, 0, 5, 1, 8, 4, 6, 2, 0, 1, 3])
    with pytest.raises(ValueError) as err:
        FairnessAudit(AttributeFlip(0)).run(nn.Linear(3, 1), Probe(x, digits))
    text = str(err.value)
    assert "classes 0 to 1 (the model returns one output, read as a binary logit) but got [2, 3, 4, 5, 6, 7]" in text
    assert "labels of more classes beside one output" in text and "numbered from 1" not in text
    with pytest.raises(ValueError, match=r"0 to 2 \(the model returns 3 logits\).*numbered from 1"):
        check_class_labels("labels", torch.tensor([1, 2, 3]), 3, outputs=torch.zeros(3, 3))  # several outputs: as before
