"""Leftovers of session 28 (item 1): a ``StudentT`` whose ``df`` the model computes has no mean where ``df <= 1``
(torch gives NaN there). ``output="mean"`` was refused only when every row of one model call had ``df <= 1``: with
``input_effects(..., max_batch_size=1)`` the model was refused, with the default batch the same model gave NaN effects
without a word. The refusal now reads each row: any row whose moment is undefined while the tensors it is built from
are finite is refused, naming the rows, whatever the chunking; a diverged model's NaN rows still pass."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.distributions import StudentT

from lightning_causal.causal import input_effects

X = torch.tensor([[1.0, 2.0, -1.0], [-1.0, 0.5, 2.0], [0.5, -1.0, 1.0], [2.0, 1.0, 0.5]], dtype=torch.float64)
W = torch.tensor([0.5, -2.0, 1.0], dtype=torch.float64)


class Student(nn.Module):
    """``StudentT(df(x), w . x, 1)``: ``df = 2.5`` where ``x_0 > 0`` else ``0.5`` (``"mixed"``), or ``2.5`` always."""

    def __init__(self, df: str) -> None:
        super().__init__()
        self.df = df
        self.w = nn.Parameter(W.clone())

    def forward(self, x):
        df = (x[:, 0] > 0).to(x.dtype) * 2 + 0.5 if self.df == "mixed" else torch.full_like(x[:, 0], 2.5)
        return StudentT(df, x @ self.w, torch.ones_like(df))


@pytest.mark.parametrize("chunk", [{}, {"max_batch_size": 1}])
def test_a_row_without_a_mean_is_refused_whatever_the_chunking(chunk):
    # before: with the default batch the effects came back, sample 1 (df = 0.5) NaN; max_batch_size=1 refused
    with pytest.raises(ValueError, match=r"StudentT but its `mean` is NaN in rows \[1\] of the 4 .*df <= 1.*`output='loc'`"):
        input_effects(Student("mixed"), X, output="mean", **chunk)


def test_a_student_t_with_a_mean_in_every_row_is_explained_by_its_location():
    got = input_effects(Student("fixed"), X, output="mean")
    torch.testing.assert_close(got, X * W, rtol=0, atol=1e-12)  # mean = loc = w . x: effects w_j x_j
