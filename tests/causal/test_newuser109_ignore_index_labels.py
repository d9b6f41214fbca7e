"""Per-sample labels read from a node-level task, `y[:, j]` of node labels `[B, Nmax]` padded with -100 (cross_entropy's
ignore_index), were refused as 'labels numbered from 1': the refusal names the ignore index and the way out (newuser109)."""

import pytest
import torch

from lightning_causal.causal.engine.checks import check_class_labels


def test_a_padding_label_is_named_as_the_ignore_index():
    with pytest.raises(ValueError, match=r"got \[-100\] among them \(a negative label such as -100, cross_entropy's "
                                         r"ignore_index, marks a position without a target \(a padded node or token\)") as caught:
        check_class_labels("labels", torch.tensor([0, 1, -100, 1]), 2)
    assert "numbered from 1" not in str(caught.value)
    assert "leave the labels out (None)" in str(caught.value)


def test_a_label_beyond_the_classes_keeps_its_words():
    with pytest.raises(ValueError, match=r"got \[3\] among them \(e\.g\. labels numbered from 1\)"):
        check_class_labels("labels", torch.tensor([1, 2, 3]), 3)
