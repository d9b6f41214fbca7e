"""Review of 0c8b05de: largest_k put a score of +inf below the dtype's largest finite value.

0c8b05de sorts NaN last by ``nan_to_num(nan=-inf)``, whose default also replaces +inf by the dtype's largest finite
value (float16: 65504) and -inf by the lowest: a float16 model's mean |effect| of 65504 (a logit at float16's limit)
tied with the inf of an overflowing group and came first by its lower index, where the docstring says +inf first.
"""

import math

import pytest
import torch

from lightning_causal.causal.engine.ranking import largest_k


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_inf_comes_before_the_largest_finite_value_and_nan_after_the_lowest(dtype):
    big = torch.finfo(dtype).max
    scores = torch.tensor([big, math.inf, 1.0, -big, math.nan, -math.inf], dtype=dtype)
    values, indices = largest_k(scores)
    assert indices.tolist() == [1, 0, 2, 3, 4, 5]  # NaN and -inf equal keys last, by lower index
    assert values[:4].tolist() == [math.inf, big, 1.0, -big] and values[4].isnan() and values[5] == -math.inf
    assert largest_k(scores, 1)[1].tolist() == [1]
