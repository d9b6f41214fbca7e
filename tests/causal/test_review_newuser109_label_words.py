"""check_class_labels' words for negative labels (review of newuser109, fa5a9931): -1/+1 labels are a margin
classifier's, not padding; a padding label beside a class the model lacks names both."""

import pytest
import torch

from lightning_causal.causal.engine.checks import check_class_labels


def test_minus_one_plus_one_labels_are_named_as_a_margin_classifiers():
    with pytest.raises(ValueError, match=r"got \[-1\] among them \(labels -1/\+1, a margin classifier's, are no classes: "
                                         r"give \(y \+ 1\) // 2, classes 0 and 1\)") as caught:
        check_class_labels("labels", torch.tensor([-1, 1, 1, -1]), 2)
    assert "ignore_index" not in str(caught.value)


def test_padding_beside_a_class_beyond_names_both():
    with pytest.raises(ValueError, match=r"got \[-100, 5\] among them \(a negative label such as -100, cross_entropy's "
                                         r"ignore_index.*; and labels beyond the classes, e\.g\. labels numbered from 1\)"):
        check_class_labels("labels", torch.tensor([-100, 5, 1]), 2)
