"""A function of the user's around a model that draws noise from a generator it holds (``lambda x: model(x.float())``,
``self.gen = torch.Generator()``, the form the docs give for a ``func`` of one's own): the Sobol' check that rows spread
over the first chunk, each run alone, give their chunk's values refused it as depending on the batch (5 of 6 seeds),
where a99c6647 analysed it: no watch sees that generator (the analysis cannot read the model out of the function, so
it is not registered) and the coins of the row alone differ from the chunk's. The check now tells such noise by two
passes of the same spread rows, before a refusal; a branch on a batch statistic gives the same values twice and is
still refused."""

import pytest
import torch

from lightning_causal.causal import EmpiricalMarginals, sobol_indices
from lightning_causal.causal.sensitivity.pick_freeze import check_func_independent
from tests.test_review_s30d_own_generator_sobol import (
    Coin,  # x0 + x1 plus a coin per row from its own generator
)


@pytest.mark.parametrize("seed", range(4))
def test_a_user_function_around_a_model_drawing_from_its_own_generator_is_analysed(seed):
    model = Coin(seed)
    data = torch.randn(50, 3, generator=torch.Generator().manual_seed(seed))
    result = sobol_indices(lambda x: model(x.float()), EmpiricalMarginals(data), n=64, seed=seed, n_bootstrap=0)
    assert torch.isfinite(result.first).all()


def test_the_check_passes_the_coin_and_refuses_a_branch_on_the_batch_mean_in_a_user_function():
    a = torch.linspace(-1, 1, 64, dtype=torch.float64).reshape(32, 2)
    a[:, 0] = a[:, 0].abs() + 1  # the chunk's mean of x0 positive; rows 10 and 20 negated: the other branch alone
    a[[10, 20], 0] *= -1
    coin = Coin(0)
    check_func_independent(lambda x: coin(x), a, coin(a), 32, None, None, "sobol_indices")  # noise: not judged

    def batch_exit(x):
        return x[:, 0] if x[:, 0].mean() > 0 else 2 + x[:, 1]

    with pytest.raises(ValueError, match=r"drawn row \d+ run alone gives another value"):
        check_func_independent(batch_exit, a, batch_exit(a), 32, None, None, "sobol_indices")
