"""``min_group_size=`` of the group differences: groups of fewer rows are left out of the max and min over groups
(with a warning naming them), so that a group of 2 rows among many intersections does not set the gap."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from lightning_causal.causal import demographic_parity_difference, equalized_odds_difference

# groups 0 and 1 of 4 rows, group 2 of 2 rows
PREDS = torch.tensor([1, 1, 0, 0, 1, 0, 0, 0, 1, 1])
LABELS = torch.tensor([1, 0, 1, 0, 1, 1, 0, 0, 0, 0])
GROUPS = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1, 2, 2])


def test_the_default_compares_every_group_quietly():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        # positive rates 2/4, 1/4, 2/2: 1 − 1/4
        assert demographic_parity_difference(PREDS, GROUPS) == 0.75
        # TPR 1/2, 1/2, undefined (no positive label in group 2); FPR 1/2, 0/2, 2/2: the FPR spread 1
        assert equalized_odds_difference(PREDS, LABELS, GROUPS) == 1.0


def test_a_group_of_fewer_rows_is_left_out_with_a_warning_naming_it():
    with pytest.warns(UserWarning, match=r"demographic_parity_difference leaves out the group\(s\) 2 \(2 rows\): fewer than "
                                         r"min_group_size=3 rows; the max and min are over the other 2 group\(s\)$"):
        assert demographic_parity_difference(PREDS, GROUPS, min_group_size=3) == 0.25  # 2/4 − 1/4
    with pytest.warns(UserWarning, match=r"equalized_odds_difference leaves out the group\(s\) 2 \(2 rows\)"):
        assert equalized_odds_difference(PREDS, LABELS, GROUPS, min_group_size=3) == 0.5  # FPR 1/2 − 0/2; TPR spread 0
    with warnings.catch_warnings():  # every group as large: nothing left out, nothing said
        warnings.simplefilter("error")
        assert demographic_parity_difference(PREDS, GROUPS, min_group_size=2) == 0.75


def test_fewer_than_two_groups_left_give_nan():
    with pytest.warns(UserWarning, match=r"the other 0 group\(s\) \(fewer than two: NaN\)"):
        assert math.isnan(demographic_parity_difference(PREDS, GROUPS, min_group_size=5))


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, "3", None])
def test_min_group_size_is_validated(bad):
    with pytest.raises(ValueError, match=r"Expected argument `min_group_size` to be a positive int but got"):
        demographic_parity_difference(PREDS, GROUPS, min_group_size=bad)
    with pytest.raises(ValueError, match=r"`min_group_size`"):
        equalized_odds_difference(PREDS, LABELS, GROUPS, min_group_size=bad)
