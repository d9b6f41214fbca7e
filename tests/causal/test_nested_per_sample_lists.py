"""One integer per sample held in a list is refused also inside a named tuple or a mapping argument: only tensors
travel with their rows, so every pass would get all N values beside other rows (silently the wrong samples')."""

import collections

import pytest
import torch

from lightning_causal.causal import input_effects
from lightning_causal.causal.engine.forward_args import ForwardArgs

Meta = collections.namedtuple("Meta", ["lengths", "name"])


@pytest.mark.parametrize(("args", "place"), [
    ((Meta([3, 1, 2, 4], "a"),), r"the positional forward argument 0's field 'lengths'"),
    ({"meta": {"lengths": [3, 1, 2, 4]}}, r"the forward argument 'meta'\['lengths'\]"),
])
def test_a_nested_list_of_one_integer_per_sample_is_refused_by_its_place(args, place):
    with pytest.raises(ValueError, match=place + r" to be a tensor but got a list of 4 integers"):
        ForwardArgs(args, num_samples=4)


def test_nested_tensors_and_lists_of_pairs_are_taken():
    ForwardArgs((Meta(torch.tensor([3, 1, 2, 4]), "a"),), num_samples=4)
    ForwardArgs(([[1, 2], [3, 4], [5, 6], [7, 8]],), num_samples=4)  # a list's items are not looked into


def test_an_estimator_names_the_field():
    model = torch.nn.Linear(3, 2)

    class WithMeta(torch.nn.Module):
        def forward(self, x, meta):
            return model(x)

    with pytest.raises(ValueError, match="field 'lengths'"):
        input_effects(WithMeta(), torch.randn(4, 3), target=0, additional_forward_args=(Meta([3, 1, 2, 4], "a"),))
