"""Review of f701a268: ``CounterfactualFairnessTerm.loss`` called directly with a weight passed whole whose first dimension
equals the batch's rows gathers it by row, and the model failed with torch's bare shape error ("mat1 and mat2 shapes
cannot be multiplied (4x2 and 4x2)"), which names neither the forward argument nor the way out, ``mark_whole``. The
error now names the gathered floating-point tensors' places and shapes and the call that marks them whole; the places
it names are the ones ``mark_whole`` takes (the marked call gives the loss of the weight passed whole)."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn

from lightning_causal.causal import AttributeFlip
from lightning_causal.causal.engine.forward_args import mark_whole
from lightning_causal.repair.fairness import CounterfactualFairnessTerm


class _Weighted(nn.Module):
    """``x @ w``, ``mask`` (integer, one entry per row) multiplying the rows' logits."""

    def forward(self, x: torch.Tensor, mask: torch.Tensor | None = None, w: torch.Tensor | None = None) -> torch.Tensor:
        out = x @ w
        return out if mask is None else out * mask[:, None]


W = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
X = torch.tensor([[0.0, 1.0], [1.0, 2.0]])


def test_the_shape_error_names_the_gathered_weight_and_mark_whole():
    term = CounterfactualFairnessTerm(AttributeFlip(0))
    mask = torch.ones(2, dtype=torch.long)
    args = {"mask": mask, "w": W}
    with pytest.raises(RuntimeError) as caught:
        term.loss(_Weighted(), X, None, additional_forward_args=args)
    text = str(caught.value)
    assert "4x2 and 4x2" in text  # the model's own error kept
    assert "at places [1] (shapes [[2, 2]]" in text  # the weight, not the integer mask (place 0)
    assert "additional_forward_args=mark_whole(additional_forward_args, [1])" in text
    # the places said are mark_whole's: the marked call runs, and gives the loss of the weight passed whole
    marked = term.loss(_Weighted(), X, None, additional_forward_args=mark_whole(args, [1]))
    s = torch.sigmoid  # by hand: logits x @ w = [0, 1], [2, 2]; flipped [2, 1], [0, 2]
    expected = ((s(torch.tensor(1.0)) - s(torch.tensor(-1.0))) + (s(torch.tensor(2.0)) - s(torch.tensor(0.0)))) / 2
    torch.testing.assert_close(marked, expected)


class _Failing(nn.Module):
    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        raise RuntimeError("the model's own failure")


def test_no_note_where_no_floating_point_argument_was_gathered():
    term = CounterfactualFairnessTerm(AttributeFlip(0))
    with pytest.raises(RuntimeError, match=re.escape("the model's own failure") + "$"):
        term.loss(_Failing(), X, None, additional_forward_args=(torch.ones(2, dtype=torch.long),))
