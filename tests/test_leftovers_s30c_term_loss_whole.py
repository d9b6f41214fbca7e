"""leftovers_s30c: ``CounterfactualFairnessTerm.loss`` called directly gathers by row a weight passed whole whose first
dimension equals the batch's rows (no earlier batch tells it the weight is whole), and its docstring did not say the way
out, which docs/your_model.md gave (d2253cab): ``mark_whole((w,), [0])``. The docstring (with an example) and
docs/methods.md, where a user calling the term reads, now say it."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from torch import nn

from lightning_causal.causal import AttributeFlip
from lightning_causal.causal.engine.forward_args import mark_whole
from lightning_causal.repair.fairness import CounterfactualFairnessTerm

WAY_OUT = "mark_whole((w,), [0])"


class _Weighted(nn.Module):
    """``x @ w``: a model run with a weight passed beside the rows."""

    def forward(self, x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
        return x @ w


def test_the_way_out_is_said_where_a_user_calling_the_term_reads():
    doc = " ".join(CounterfactualFairnessTerm.loss.__doc__.split())
    assert WAY_OUT in doc and "gathered by row too" in doc  # before: "gathered by row; None: none." only
    methods = " ".join((Path(__file__).parents[1] / "docs" / "methods.md").read_text().split())
    assert f"additional_forward_args={WAY_OUT}" in methods


def test_a_weight_of_as_many_rows_as_the_batch_is_gathered_unless_marked():
    w, x = torch.tensor([[2.0, 0.0], [0.0, 1.0]]), torch.tensor([[0.0, 1.0], [1.0, 2.0]])
    term = CounterfactualFairnessTerm(AttributeFlip(0))
    marked = term.loss(_Weighted(), x, None, additional_forward_args=mark_whole((w,), [0]))
    # by hand: logits x @ w = [0, 1], [2, 2]; flipped [2, 1], [0, 2]; |Δσ(z1 - z0)| = σ(1) - σ(-1), σ(2) - σ(0)
    s = torch.sigmoid
    expected = ((s(torch.tensor(1.0)) - s(torch.tensor(-1.0))) + (s(torch.tensor(2.0)) - s(torch.tensor(0.0)))) / 2
    torch.testing.assert_close(marked, expected)
    with pytest.raises(RuntimeError, match="4x2 and 4x2"):  # unmarked: w's rows follow the 4 rows of x and x_cf
        term.loss(_Weighted(), x, None, additional_forward_args=(w,))
