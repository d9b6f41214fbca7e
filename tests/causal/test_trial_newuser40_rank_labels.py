"""Ranks 0..K-1 of an ordinal head of K - 1 cumulative logits (CORAL) hold one class more than the outputs: the
refusal of those labels named only 'labels numbered from 1'; it now names the ordinal head and its way out."""

import pytest
import torch

from lightning_causal.causal.engine.checks import check_class_labels


def test_one_rank_more_than_the_outputs_names_the_ordinal_head():
    with pytest.raises(ValueError, match=r"(?s)5 ranks of an ordinal head's 4 cumulative logits.*sigmoid\(out\)\.sum"):
        check_class_labels("labels", torch.tensor([0, 2, 4, 1]), 4)


def test_labels_numbered_from_one_do_not_name_it():
    with pytest.raises(ValueError, match=r"numbered from 1\)") as info:
        check_class_labels("labels", torch.tensor([1, 2, 4]), 4)
    assert "ordinal" not in str(info.value)


def test_the_ordinal_hint_names_the_rank_classes_for_the_audits_that_read_classes():
    """The hint named only the expected rank with the labels left out, which CounterfactualAudit (it needs labels)
    and FairnessAudit cannot take: for them the K rank classes' log-probabilities, which the ranks 0..K-1 index."""
    with pytest.raises(ValueError, match=r"(?s)audits that read classes.*the 5 rank classes' log-probabilities"):
        check_class_labels("labels", torch.tensor([0, 2, 4, 1]), 4)


def test_the_ordinal_hint_names_corns_expected_rank():
    """CORN's logits are conditional (rank > k given rank > k - 1), so its expected rank sums the cumulative products
    of their sigmoids; the hint named CORAL's sum of sigmoids only, which c4b8dba mended in the level warnings' ways
    out and docs/your_model.md but not here. Conditional probabilities 0.8, 0.5, 0.25: P(rank > k) = 0.8, 0.4, 0.1,
    the expected rank 1.3 (CORAL's formula gives 1.55)."""
    import re

    with pytest.raises(ValueError) as info:
        check_class_labels("labels", torch.tensor([0, 2, 3, 1]), 3)
    named = re.search(r"CORN.*?`output=(lambda out: [^`]+)`", str(info.value))
    assert named is not None
    out = torch.logit(torch.tensor([[0.8, 0.5, 0.25]]))
    assert torch.allclose(eval(named.group(1))(out), torch.tensor([[1.3]]))
