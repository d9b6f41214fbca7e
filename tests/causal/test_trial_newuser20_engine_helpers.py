"""Validation sweep (newuser20): public engine helpers and the markdown summary fed wrong input.

gather_target of 2 class indices for 6 rows answered 2 values (the first rows') without a word;
map_rows(rows=0) failed with range()'s 'arg 3 must not be zero'; markdown_summary of one
AuditResult (not a list) failed with "'AuditResult' object is not iterable", of dicts with
"'dict' object has no attribute 'meta'"."""

from collections import UserList

import pytest
import torch

from lightning_causal.audits.base import AuditResult
from lightning_causal.causal.engine import gather_target, map_rows
from lightning_causal.reporting import markdown_summary

OUT = torch.arange(18.0).view(6, 3)


def test_the_helpers_by_hand():
    assert gather_target(OUT, torch.tensor([0, 1, 2, 0, 1, 2])).tolist() == [0.0, 4.0, 8.0, 9.0, 13.0, 17.0]
    assert map_rows(5, 2, lambda idx: idx * 10, torch.device("cpu")).tolist() == [0, 10, 20, 30, 40]
    assert "**ie**" in markdown_summary(1, [AuditResult("ie", scalars={"x": 1.0})])
    # any sequence, as the hint Sequence[AuditResult] says (a UserList was refused)
    assert markdown_summary(1, UserList([AuditResult("ie", scalars={"x": 1.0})])) == markdown_summary(1, [AuditResult("ie", scalars={"x": 1.0})])


@pytest.mark.parametrize("call, error, message", [
    (lambda: gather_target(OUT, torch.tensor([0, 1])), ValueError, r"`target_idx` to hold one class index per row of `outputs` \(6\) but got \[2\]"),
    (lambda: map_rows(5, 0, lambda idx: idx, torch.device("cpu")), ValueError, r"`rows` to be a positive int but got 0"),
    (lambda: map_rows(5, 2.0, lambda idx: idx, torch.device("cpu")), ValueError, r"`rows` .* got 2.0"),
    (lambda: markdown_summary(1, AuditResult("ie")), TypeError, r"`results` to be a sequence of AuditResult .* but got AuditResult"),
    (lambda: markdown_summary(1, [{"audit": "ie"}]), TypeError, r"`results` to be a sequence of AuditResult .* but got list of \['dict'\]"),
])
def test_wrong_input_is_refused_naming_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()


def test_scalar_tags_and_group_mask_name_a_wrong_argument():
    """scalar_tags of a report's dict failed with "'dict' object has no attribute 'meta'"; group_mask of
    a list with "'list' object has no attribute 'shape'"."""
    from lightning_causal.causal.engine import group_mask
    from lightning_causal.reporting import scalar_tags

    with pytest.raises(TypeError, match=r"`result` to be an AuditResult .* but got dict"):
        scalar_tags({"audit": "ie", "scalars": {"x": 1.0}})
    with pytest.raises(TypeError, match=r"`inputs` to be a tensor \[N, ...\] but got list"):
        group_mask([[1.0, 2.0]])
    assert scalar_tags(AuditResult("ie", scalars={"x": 1.0})) == {"causal/ie/x": 1.0}


def test_replace_units_names_a_wrong_dimension_or_row_count():
    """replace_units(unit_dim=5) of a 2-D h wrapped to dimension 1 silently (4 of a 3-D h too); one unit for
    6 rows failed with "shape '[6, 8]' is invalid for input of size 8"."""
    from lightning_causal.causal.engine import replace_units

    h = torch.zeros(2, 4)
    assert replace_units(h, torch.tensor([1, 3]), torch.tensor(5.0)).tolist() == [[0, 5, 0, 0], [0, 0, 0, 5]]
    with pytest.raises(ValueError, match=r"`unit_dim` to be a dimension of `h` \[2, 4\] \(-2 to 1\) but got 5"):
        replace_units(h, torch.tensor([1, 3]), torch.tensor(5.0), unit_dim=5)
    with pytest.raises(ValueError, match=r"`units` to hold one unit per row of `h` \(2\) but got \[1\]"):
        replace_units(h, torch.tensor([1]), torch.tensor(5.0))
