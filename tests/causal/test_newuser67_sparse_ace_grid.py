"""A sparse observation feature (a cue shown at one step of a sequence, a flag set in a few states) has
5%-95% quantiles of one value although it varies over the probe: its ACE grid was flat, so its ACE, and
InputEffectAudit's ace_range, read 0 for the feature with the largest effect (found by newuser67 on a GRU
policy whose goal cue is shown at the first step only). The grid now spans such a group's observed range."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits import InputEffectAudit, Probe
from lightning_causal.causal import (
    ConstantGroupsWarning,
    average_causal_effect,
    interventional_expectations,
)


def _model() -> nn.Module:
    model = nn.Linear(3, 1, bias=False)
    model.weight.data.copy_(torch.tensor([[3.0, 1.0, -2.0]]))  # f = 3 x0 + x1 - 2 x2
    return model


def _sparse_probe(n: int = 100) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(n, 3, generator=g)
    x[:, 0] = 0.0
    x[:4, 0] = 1.0  # a flag set in 4% of the states: its 5%-95% quantiles are all 0
    x[:, 2] = 0.5  # truly constant
    return x


@pytest.mark.parametrize("num_values", [2, 4, 8])
def test_sparse_group_grid_spans_its_range(num_values: int) -> None:
    x = _sparse_probe()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        mu, values = interventional_expectations(_model(), x, torch.tensor([[0, 1, 2]]), num_values=num_values, target=0)
    assert float(values[0].min()) == 0.0 and float(values[0].max()) == 1.0  # the flag's two states, both set
    ace = average_causal_effect(_model(), x, torch.tensor([[0, 1, 2]]), num_values=num_values, target=0)
    assert float(ace[0].max() - ace[0].min()) == pytest.approx(3.0, abs=1e-5)  # the weight of x0 times its range 0..1
    # the constant group keeps its flat grid and the warning, which names it alone (not the sparse one)
    assert torch.equal(values[2], torch.full_like(values[2], 0.5))
    flagged = [str(w.message) for w in caught if issubclass(w.category, ConstantGroupsWarning)]
    assert len(flagged) == 1 and "2 (= 0.5)" in flagged[0] and "0 (= 0)" not in flagged[0]


def test_varied_groups_keep_their_5_to_95_quantiles() -> None:
    x = _sparse_probe()
    _, values = interventional_expectations(_model(), x, torch.tensor([[0, 1, 2]]), num_values=4, target=0)
    expected = torch.quantile(x[:, 1], torch.linspace(0.05, 0.95, 4))
    torch.testing.assert_close(values[1], expected)


def test_input_effect_audit_ace_range_of_a_sparse_flag() -> None:
    x = _sparse_probe()
    result = InputEffectAudit(target=0, ace_samples=None).run(_model(), Probe(x))
    ace_range = result.vectors["ace_range"]
    assert float(ace_range[0]) == pytest.approx(3.0, abs=1e-5)
    assert float(ace_range[2]) == 0.0
