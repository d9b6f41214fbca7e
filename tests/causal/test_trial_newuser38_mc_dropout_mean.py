"""MC dropout kept on in eval mode: the user wants the effects on the predictive mean over dropout
draws. The common-noise warning names how to get them in a fit (whose audits all start from seed 0,
so averaging calls over seeds is not open there): a forward that averages ``K`` draws. With dropout
before a linear head the predictive mean is the dropout-free model, and the effects of such a forward
approach that model's as ``K`` grows, while a feature the model ignores gets exactly 0 at any ``K``."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal.causal import input_effects


class MCDropout(nn.Module):
    def __init__(self, draws: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Linear(6, 32), nn.ReLU())
        self.head = nn.Linear(32, 3)
        with torch.no_grad():
            self.body[0].weight[:, 5] = 0  # feature 5 is ignored
        self.draws = draws

    def forward(self, x):
        h = self.body(x)
        if not self.draws:  # the dropout-free model: the predictive mean of dropout before a linear head
            return self.head(h)
        return torch.stack([self.head(F.dropout(h, 0.3, training=True)) for _ in range(self.draws)]).mean(0)


X = torch.randn(16, 6, generator=torch.Generator().manual_seed(1))


def test_the_noise_warning_names_the_forward_that_averages_draws():
    with pytest.warns(UserWarning, match=r"MC-dropout predictive mean.*in a fit .*average K draws"):
        input_effects(MCDropout(1), X, target=0)


@pytest.mark.filterwarnings("ignore:The model draws random numbers")
def test_the_effects_of_a_forward_averaging_draws_approach_the_predictive_mean():
    exact = input_effects(MCDropout(0), X, target=0)
    torch.manual_seed(0)
    one = input_effects(MCDropout(1), X, target=0)
    torch.manual_seed(0)
    many = input_effects(MCDropout(256), X, target=0)
    assert one[:, 5].abs().max() == 0 and many[:, 5].abs().max() == 0  # common noise: the ignored feature is 0
    assert (many - exact).abs().max() < 0.25 * (one - exact).abs().max()  # the error falls as 1/sqrt(K): 1/16
