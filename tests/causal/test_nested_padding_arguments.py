"""A padding mask nested in a forward argument (``forward(x, meta)`` with ``meta.attention_mask`` or
``meta["lengths"]``) marks padding as a top-level ``attention_mask``/``lengths`` does: padded positions are not
intervened on (one mechanism: padding_arguments reads the same names in named tuples' fields and mappings' values)."""

import collections

import pytest
import torch

from lightning_causal.causal import input_effects
from lightning_causal.causal.engine.ablation import padding_arguments

Meta = collections.namedtuple("Meta", ["attention_mask", "tag"])
Text = collections.namedtuple("Text", ["ids", "attention_mask"])

X = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
MASK = torch.tensor([[1, 1, 0], [1, 0, 0]])
# f(x) = sum_t x_t reads the padded positions too: only their recognition as padding keeps them from being set to 0,
# so the effect of a real position is x_t - 0 and that of a padded one exactly 0
EXPECTED = torch.tensor([[1.0, 2.0, 0.0], [4.0, 0.0, 0.0]])


class Sum(torch.nn.Module):
    def forward(self, x, attention_mask=None, lengths=None, meta=None):
        return x.sum(1, keepdim=True)


@pytest.mark.parametrize("args", [
    {"attention_mask": MASK},  # the top-level mask: the reference
    (None, None, Meta(MASK, "a")),  # a named tuple's field, positional
    {"meta": Meta(MASK, "a")},
    {"meta": {"attention_mask": MASK}},  # a mapping's value
    {"meta": {"inner": {"lengths": torch.tensor([2, 1])}}},  # lengths, two mappings deep
], ids=["top-level", "namedtuple-positional", "namedtuple-keyword", "mapping", "nested-lengths"])
def test_nested_padding_gives_the_top_level_effects(args):
    assert torch.equal(input_effects(Sum(), X, target=0, additional_forward_args=args), EXPECTED)


def test_a_nested_mask_of_nested_ids_does_not_pad_the_explained_table():
    # the mask describes meta.ids (integer ids of its shape), not the float table x beside them: as at top level
    ids = torch.ones(2, 3, dtype=torch.long)
    nested = input_effects(Sum(), X, target=0, additional_forward_args={"meta": Text(ids, MASK)})
    top = input_effects(Sum(), X, target=0, additional_forward_args={"meta": ids, "attention_mask": MASK})
    assert torch.equal(nested, X) and torch.equal(top, X)


def test_an_argument_so_named_comes_before_a_nested_one():
    top, inner = torch.tensor([2, 1]), torch.tensor([1, 1])
    assert padding_arguments(None, {"lengths": top, "meta": {"lengths": inner}})["lengths"] is top
    assert padding_arguments(None, {"meta": [{"lengths": inner}]}) == {"meta": [{"lengths": inner}]}  # no list items


def test_a_nested_square_mask_is_no_adjacency():
    # a probe of as many sequences as positions: the mask is [N, N]; nested in meta it is padding too, no graph
    from lightning_causal.causal.engine.forward_args import ForwardArgs
    from lightning_causal.causal.engine.linked_samples import linked_arguments

    mask = torch.ones(4, 4, dtype=torch.long)
    assert linked_arguments(ForwardArgs({"meta": {"attention_mask": mask}}, 4)) == []
    assert linked_arguments(ForwardArgs({"meta": {"adjacency": mask}}, 4))  # the same tensor under another name: flagged
