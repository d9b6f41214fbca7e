"""60c4e56d made the Sobol' analyses run 16 drawn rows each alone after the evaluation, refusing a row whose value
moves unless the model drew from a global generator meanwhile (noise, not the batch). A model that draws from a
generator it holds (``self.gen = torch.Generator()``, which audit_mode registers for every other estimator's noise
checks) was not seen drawing there: its coin flipped between the chunk and the row alone, so nearly every analysis of
it was refused as depending on the batch (20 of 20 seeds, against 3 of 20 with the two-row check alone). The check's
passes now run with the model's own generators registered (seen as noise, and put back)."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import EmpiricalMarginals, sobol_indices
from lightning_causal.causal.sensitivity.pick_freeze import check_func_independent


class Coin(nn.Module):
    """``x0 + x1`` plus a fair coin (0 or 1) per row, drawn from the model's own generator."""

    def __init__(self, seed: int) -> None:
        super().__init__()
        self.gen = torch.Generator().manual_seed(seed)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 0] + x[:, 1] + (torch.rand(x.shape[0], generator=self.gen, dtype=x.dtype) < 0.5).to(x.dtype)


class BatchCentred(nn.Module):
    """The first column centred over the batch (its value depends on the other rows), with a generator it never uses."""

    def __init__(self) -> None:
        super().__init__()
        self.gen = torch.Generator().manual_seed(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, 0] - x[:, 0].mean()


@pytest.mark.parametrize("seed", range(4))
def test_a_model_drawing_from_its_own_generator_is_not_refused_as_batch_dependent(seed):
    data = torch.randn(50, 3, generator=torch.Generator().manual_seed(seed))
    result = sobol_indices(Coin(seed), EmpiricalMarginals(data), n=64, seed=seed, n_bootstrap=0)
    assert torch.isfinite(result.first).all()


def test_the_check_leaves_the_model_s_generator_as_it_found_it():
    model = Coin(0)
    a = torch.rand(32, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    y_a = model(a)  # the values as the evaluation drew them
    state = model.gen.get_state()
    check_func_independent(model, a, y_a, 32, None, model, "sobol_indices")
    assert torch.equal(model.gen.get_state(), state)


def test_a_batch_dependent_model_holding_a_generator_is_still_refused():
    model = BatchCentred()
    a = torch.linspace(0, 1, 16, dtype=torch.float64).reshape(8, 2)
    with pytest.raises(ValueError, match="Expected the model to treat samples independently"):
        check_func_independent(model, a, torch.cat([model(a[:4]), model(a[4:])]), 4, None, model, "sobol_indices")
