"""Validation sweep (newuser20): the rank statistics fed a user's usual mistakes.

A NaN in a row was ranked as the largest score and gave a number (spearman 0.596, kendall 0.577,
top-1 overlap 0.0 for rows equal but for the NaN); a list or a 1-D tensor failed inside torch
(AttributeError, IndexError), and kendall(max_batch_size=0) ran."""

import pytest
import torch

from lightning_causal.causal.engine.ranking import (
    average_ranks,
    kendall,
    rank_positions,
    spearman,
    topk_overlap,
)

NAN = float("nan")


@pytest.mark.parametrize("statistic", [spearman, kendall, lambda a, b: topk_overlap(a, b, 1)])
def test_a_row_holding_a_nan_gives_nan_and_leaves_the_other_rows(statistic):
    a = torch.tensor([[1.0, NAN, 3.0], [1.0, 2.0, 3.0]])
    b = torch.tensor([[1.0, 2.0, 3.0], [1.0, 2.0, 3.0]])
    out = statistic(a, b)
    assert out[0].isnan() and out[1] == 1.0
    out = statistic(b, a)
    assert out[0].isnan() and out[1] == 1.0


def test_a_nan_at_an_invalid_group_is_ignored():
    a = torch.tensor([[1.0, NAN, 3.0]])
    b = torch.tensor([[1.0, 9.0, 3.0]])
    valid = torch.tensor([[True, False, True]])
    assert spearman(a, b, valid).item() == 1.0
    assert kendall(a, b, valid=valid).item() == 1.0
    assert topk_overlap(a, b, 1, valid).item() == 1.0
    assert average_ranks(a, valid)[0, 2].item() == 2.0


@pytest.mark.parametrize("call, error, message", [
    (lambda: average_ranks(torch.tensor([[1.0, NAN]])), ValueError, r"`a` to hold no NaN .*rows \[0\]"),
    (lambda: rank_positions(torch.tensor([[1.0, 2.0], [NAN, 0.0]])), ValueError, r"`scores` to hold no NaN .*rows \[1\]"),
    (lambda: average_ranks(torch.tensor([1.0, 2.0])), ValueError, r"`a` to be a tensor \[N, G\].*got \[2\]; .*a\[None\]"),
    (lambda: rank_positions(torch.tensor([1.0, 2.0])), ValueError, r"`scores` to be a tensor \[N, G\].*scores\[None\]"),
    (lambda: spearman([[1.0, 2.0]], torch.ones(1, 2)), TypeError, r"`a` to be a tensor \[N, G\] but got list"),
    (lambda: kendall(torch.ones(1, 2), torch.ones(1, 2).numpy()), TypeError, r"`b` to be a tensor \[N, G\] but got ndarray"),
    (lambda: topk_overlap([[1.0, 2.0]], [[1.0, 2.0]], 1), TypeError, r"`a` to be a tensor"),
    (lambda: rank_positions([[1.0, 2.0]]), TypeError, r"`scores` to be a tensor \[N, G\] but got list"),
    (lambda: kendall(torch.ones(2, 3), torch.ones(2, 3), max_batch_size=0), ValueError, r"`max_batch_size` to be None or a positive int but got 0"),
    (lambda: kendall(torch.ones(2, 3), torch.ones(2, 3), max_batch_size=2.0), ValueError, r"`max_batch_size` .* got 2.0"),
])
def test_wrong_input_is_refused_naming_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()
