"""Review of 8368df38: ``same_outputs`` stopped NaN from hiding a difference, but an infinity still hid any: its
scale, ``1 + max |b|``, was infinite wherever the outputs held one (a class masked with ``-inf``), so every finite
difference beside it passed as rounding, and a number against an infinity, or ``inf`` against ``-inf``, passed too.
A model that masks a class and depends on its batch was run, its effects mixing the rows of each pass."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects
from lightning_causal.causal.engine.sample_independence import same_outputs

INF = float("inf")


def test_an_infinity_hides_no_difference():
    assert same_outputs(torch.tensor([-INF, 1.0]), torch.tensor([-INF, 5.0])) == (4.0, False)  # was (4.0, True)
    assert same_outputs(torch.tensor([2.0, 1.0]), torch.tensor([INF, 1.0])) == (INF, False)  # was (inf, True)
    assert same_outputs(torch.tensor([INF, 1.0]), torch.tensor([-INF, 1.0])) == (INF, False)
    assert same_outputs(torch.tensor([-INF, 1.0]), torch.tensor([-INF, 1.0100])) == pytest.approx((0.01, True))  # 1% of 2.01
    assert same_outputs(torch.tensor([INF, -INF]), torch.tensor([INF, -INF])) == (0.0, True)


class Masked(nn.Module):
    """Class 2 ruled out with -inf for every sample; ``centred``: the inputs less the batch's mean (batch-coupled)."""

    def __init__(self, centred: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin, self.centred = nn.Linear(4, 3), centred

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.lin(x - x.mean(0) if self.centred else x)
        return out.masked_fill(torch.tensor([False, False, True]), -INF)


def test_a_masked_model_that_depends_on_its_batch_is_refused():
    x = torch.rand(8, 4) * 4
    with pytest.raises(ValueError, match="Expected the model to treat samples independently"):
        input_effects(Masked(centred=True).eval(), x, torch.arange(4), target=0)


def test_a_masked_model_of_independent_rows_runs_and_equals_a_hand_loop():
    x, model = torch.rand(8, 4) * 4, Masked(centred=False).eval()
    effects = input_effects(model, x, torch.arange(4), target=1)
    with torch.no_grad():
        for j in range(4):
            zeroed = x.clone()
            zeroed[:, j] = 0
            torch.testing.assert_close(effects[:, j], model(x)[:, 1] - model(zeroed)[:, 1])
