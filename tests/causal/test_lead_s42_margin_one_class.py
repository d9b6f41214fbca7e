"""A margin classifier's probe that holds one class only (labels all -1 beside 2 logits) was told that -1 is
cross_entropy's ignore_index of a padded position (final read B F3: the margin rule asked for both -1 and +1); it gets
the margin classifier's words now, with the padding reading beside them (all -1 may be either), while -100 padding
keeps the padding words."""

import pytest
import torch

from lightning_causal.causal.engine.checks import check_class_labels


def test_a_one_class_margin_probe_gets_the_margin_words():
    with pytest.raises(ValueError, match=r"got \[-1\] among them \(labels -1/\+1, a margin classifier's") as caught:
        check_class_labels("labels", torch.tensor([-1, -1, -1, -1]), 2)
    # final read C F4: all -1 may also be padding marked ignore_index=-1, where (y + 1) // 2 would make it class 0
    assert "ignore_index=-1" in str(caught.value) and "or none" in str(caught.value)
    with pytest.raises(ValueError) as both:  # both signs: a margin classifier's only
        check_class_labels("labels", torch.tensor([-1, 1, -1]), 2)
    assert "ignore_index" not in str(both.value)


def test_padding_labels_keep_the_padding_words():
    with pytest.raises(ValueError, match=r"got \[-100\] among them \(a negative label such as -100, cross_entropy's "
                                         r"ignore_index"):
        check_class_labels("labels", torch.tensor([-100, 1, 0, -100]), 2)
    with pytest.raises(ValueError, match=r"ignore_index"):  # -1 beside 3 classes: no margin classifier's labels
        check_class_labels("labels", torch.tensor([-1, 0, 2]), 3)
