"""Validation sweep (newuser20): the feature-group helpers fed a user's usual mistakes.

aggregate_to_groups(num_groups=1) for a mask of two groups failed inside scatter_add ('index 1
is out of bounds'); broadcast_groups of fewer scores than groups or of other rows failed inside
gather or view, of a 1-D vector with IndexError;
num_groups of a float mask answered 1 and of an empty one failed inside max(); element_mask(4)
and element_mask((-3,)) failed inside torch."""

import pytest
import torch

from lightning_causal.causal.engine.groups import (
    aggregate_to_groups,
    broadcast_groups,
    element_mask,
    num_groups,
)

MASK = torch.tensor([0, 0, 1, 1])


def test_the_helpers_by_hand():
    a = torch.tensor([[1.0, 2.0, 3.0, 4.0]])
    assert aggregate_to_groups(a, MASK).tolist() == [[3.0, 7.0]]
    assert aggregate_to_groups(a, MASK, num_groups=3).tolist() == [[3.0, 7.0, 0.0]]  # a last group absent from the mask
    assert broadcast_groups(torch.tensor([[5.0, 7.0]]), MASK, (1, 4)).tolist() == [[5.0, 5.0, 7.0, 7.0]]
    assert num_groups((MASK, MASK + 2)) == 4
    assert element_mask(torch.Size([2, 2])).tolist() == [[[0, 1], [2, 3]]]


@pytest.mark.parametrize("call, error, message", [
    (lambda: aggregate_to_groups(torch.ones(2, 4), MASK, num_groups=1), ValueError, r"`num_groups` to be an int >= 2 but got 1"),
    (lambda: aggregate_to_groups(torch.ones(2, 4), MASK, num_groups=0), ValueError, r"`num_groups` .* got 0"),
    (lambda: aggregate_to_groups(torch.ones(2, 4), MASK, num_groups=2.0), ValueError, r"`num_groups` .* got 2.0"),
    (lambda: aggregate_to_groups([[1.0, 1.0, 1.0, 1.0]], MASK), TypeError, r"`attributions` to be a tensor \[N, ...\] but got list"),
    (lambda: broadcast_groups(torch.ones(2, 1), MASK, (2, 4)), ValueError, r"`values` to be group scores \[2, G >= 2\] .*got \[2, 1\]"),
    (lambda: broadcast_groups(torch.ones(2), MASK, (2, 4)), ValueError, r"`values` to be group scores .*got \[2\]"),
    (lambda: broadcast_groups(torch.ones(3, 2), MASK, (2, 4)), ValueError, r"`values` to be group scores \[2, .*got \[3, 2\]"),
    (lambda: num_groups(MASK.float()), TypeError, r"`feature_mask` to hold integer group ids but got dtype torch.float32"),
    (lambda: num_groups(torch.zeros(0, dtype=torch.long)), ValueError, r"`feature_mask` to hold group ids but got an empty tensor"),
    (lambda: element_mask(4), TypeError, r"`shape` to be one sample's shape, a sequence of non-negative ints, but got 4"),
    (lambda: element_mask((-3,)), ValueError, r"`shape` .* got \(-3,\)"),
])
def test_wrong_input_is_refused_naming_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()
