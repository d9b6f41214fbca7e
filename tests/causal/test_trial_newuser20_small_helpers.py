"""Validation sweep (newuser20): shapley_weights and linear_cka fed a user's usual mistakes.

shapley_weights(0) answered an empty [1, 0] matrix, -1 failed inside arange, 2.0 with
'rshift_cpu not implemented for Float', True with a bool subtraction error, 40 with an 8 TB
allocation; linear_cka of integer codes failed inside mean(), of lists with AttributeError."""

import pytest
import torch

from lightning_causal.causal.sensitivity import shapley_weights
from lightning_causal.causal.structure import linear_cka


def test_by_hand():
    w = shapley_weights(1)
    assert w.tolist() == [[-1.0], [1.0]]  # one player: v({0}) - v({})
    x = torch.tensor([[0, 1], [1, 0], [2, 2], [3, 1]])
    assert linear_cka(x, x) == pytest.approx(1.0)
    assert linear_cka(x, 2 * x.double()) == pytest.approx(1.0)


@pytest.mark.parametrize("call, error, message", [
    (lambda: shapley_weights(0), ValueError, r"`d` to be an int in \[1, 20\] but got 0"),
    (lambda: shapley_weights(-1), ValueError, r"`d` .* got -1"),
    (lambda: shapley_weights(2.0), ValueError, r"`d` .* got 2.0"),
    (lambda: shapley_weights(True), ValueError, r"`d` .* got True"),
    (lambda: shapley_weights(40), ValueError, r"`d` to be an int in \[1, 20\] but got 40"),
    (lambda: linear_cka([[1.0, 2.0]], torch.ones(1, 2)), TypeError, r"`x` to be a tensor \[N, P\] but got list"),
    (lambda: linear_cka(torch.ones(1, 2), torch.ones(1, 2).numpy()), TypeError, r"`y` to be a tensor \[N, P\] but got ndarray"),
])
def test_wrong_input_is_refused_naming_the_argument(call, error, message):
    with pytest.raises(error, match=message):
        call()
