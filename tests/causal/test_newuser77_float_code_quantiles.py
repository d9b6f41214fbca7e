"""ACE quantiles of a category code kept in a float column and cast inside the model (``nn.Embedding(x[:, j].long())``,
an FT-Transformer fed one float table): observed codes, as for an integer input, never a linear interpolation between
two codes (4.25 between codes 4 and 5 ran as code 4 and was reported as 4.25)."""

import torch
from torch import nn

from lightning_causal import InputEffectAudit, Probe
from lightning_causal.causal import average_causal_effect
from lightning_causal.causal.effects.input_effects import interventional_expectations


class CensusNet(nn.Module):  # two numeric columns, then two codes (5 and 3 levels) in the same float tensor
    def __init__(self):
        super().__init__()
        self.marital, self.sex = nn.Embedding(5, 3), nn.Embedding(3, 3)
        self.head = nn.Sequential(nn.Linear(8, 8), nn.Tanh(), nn.Linear(8, 2))

    def forward(self, x):
        return self.head(torch.cat([x[:, :2], self.marital(x[:, 2].long()), self.sex(x[:, 3].long())], 1))


def census(n=101):
    g = torch.Generator().manual_seed(0)
    # codes skewed so that the 5%-95% quantiles fall between two codes (linear interpolation)
    marital = torch.tensor([0] * 10 + [2] * 18 + [3] * 30 + [4] * 43)[:n].float()  # 5%-95%: 0, 2.5 (!), 3, 4, 4
    sex = (torch.rand(n, generator=g) < 0.6).float()
    return torch.cat([torch.randn(n, 2, generator=g), marital[:, None], sex[:, None]], 1)


def by_hand(model, x, col, value):  # set, rerun, average
    x2 = x.clone()
    x2[:, col] = value
    with torch.no_grad():
        return model(x2)[:, 1].mean()


def test_code_quantiles_are_observed_codes_and_the_curve_is_theirs():
    torch.manual_seed(0)
    model, x = CensusNet().eval(), census()[torch.randperm(101, generator=torch.Generator().manual_seed(1))]
    mu, grid = interventional_expectations(model, x, torch.arange(4)[None], "quantiles", target=1, num_values=5)
    assert bool((grid[2:] == grid[2:].round()).all()), grid  # codes: whole, observed values
    assert set(grid[2].tolist()) <= {0.0, 2.0, 3.0, 4.0}
    assert not bool((grid[:2] == grid[:2].round()).all())  # numeric columns keep their linear quantiles
    for k, v in enumerate(grid[2].tolist()):  # each point of the curve is the code it reports
        assert torch.allclose(mu[2, k], by_hand(model, x, 2, v), atol=1e-6)
    ace = average_causal_effect(model, x, torch.arange(4)[None], target=1, num_values=5)
    assert torch.allclose(ace[2], mu[2] - mu[2].mean(), atol=1e-6)


def test_input_effect_audit_ace_range_is_that_of_observed_codes():
    torch.manual_seed(0)
    model, x = CensusNet().eval(), census()[torch.randperm(101, generator=torch.Generator().manual_seed(1))]
    result = InputEffectAudit(ace_values=5, ace_samples=None, target=1).run(model, Probe(x))
    codes = torch.quantile(x[:, 2], torch.linspace(0.05, 0.95, 5), interpolation="nearest")
    curve = torch.stack([by_hand(model, x, 2, float(v)) for v in codes])
    assert abs(result.vectors["ace_range"][2].item() - float(curve.max() - curve.min())) < 1e-5
