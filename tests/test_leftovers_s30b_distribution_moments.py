"""A callable ``output=`` whose value is NaN or infinite beside a distribution with a moment torch leaves undefined
(a ``Cauchy``'s mean, NaN; its variance and stddev, infinite) was refused as reading that moment wherever the
positions of its non-finite entries matched the moment's: a diverged ``Normal``'s mean (its weight NaN) read beside a
finite ``Cauchy`` was refused naming the Cauchy at ``out['c']``, though the package reports a diverged model's NaN
effects; the log of a negative score beside a Cauchy was refused as the Cauchy's mean; a Cauchy's ``stddev`` or
``variance`` was named ``mean``, and a second Cauchy's mean the first's. The moment named is now the one the callable
read: called again with that moment made finite, the rows are finite."""

from __future__ import annotations

import re

import pytest
import torch
from torch import nn
from torch.distributions import Cauchy, Normal

from lightning_causal.causal import input_effects
from lightning_causal.causal.engine.output_selection import select_output

X = torch.tensor([[1.0, 2.0], [-1.0, 0.5], [0.5, -1.0]], dtype=torch.float64)
V = torch.tensor([2.0, -1.0], dtype=torch.float64)


class Held(nn.Module):
    """Returns ``{"n": Normal(x . w, 1), "c": Cauchy(x . v, 1), "b": Cauchy(-x . v, 1), "score": -(|x . v| + 1)}``;
    ``w`` NaN in its first entry (a diverged weight)."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([float("nan"), 1.0], dtype=torch.float64))
        self.v = nn.Parameter(V.clone())

    def forward(self, x: torch.Tensor) -> dict:
        loc, c = x @ self.w, x @ self.v
        one = torch.ones_like(c)
        return {"n": Normal(loc, one, validate_args=False), "c": Cauchy(c, one), "b": Cauchy(-c, one), "score": -(c.abs() + 1)}


def test_a_diverged_normals_mean_beside_a_cauchy_gives_nan_effects() -> None:
    got = input_effects(Held(), X, output=lambda out: out["n"].mean)  # before: refused, "the Cauchy at out['c']"
    assert got.shape == (3, 2) and bool(got.isnan().all())


def test_a_nan_of_the_callables_own_beside_a_cauchy_gives_nan_effects() -> None:
    got = input_effects(Held(), X, output=lambda out: out["score"].log())  # before: refused as the Cauchy's mean
    assert got.shape == (3, 2) and bool(got.isnan().all())


@pytest.mark.parametrize(("read", "moment"), [("out['c'].mean", "mean"), ("out['c'].stddev", "stddev"),
                                              ("out['c'].variance", "variance"), ("2 * out['b'].mean[:, None]", "mean")])
def test_the_moment_the_callable_read_is_named_with_its_distribution(read: str, moment: str) -> None:
    at = "out['b']" if "'b'" in read else "out['c']"
    with pytest.raises(ValueError, match=rf"the Cauchy at {re.escape(at)} but it returned .* where the Cauchy's `{moment}` is undefined"):
        select_output(Held()(X), eval(f"lambda out: {read}"))  # before: `mean` for each, out['c'] for b's
