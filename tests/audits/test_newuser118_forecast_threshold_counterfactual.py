"""CounterfactualAudit's refusal of a forecast's real-valued labels names the way to ask "which change of the inputs
brings horizon k's forecast above t": two classes by `output=`, `towards="runner_up"` (newuser118's forecaster trial),
and that way answers with the lag that drives the forecast."""

import pytest
import torch
from torch import nn

from lightning_causal.audits import CounterfactualAudit, Probe

L, K, H = 8, 2, 3


class _Linear(nn.Module):
    """Horizon 0 reads covariate 0 at lag 3 (weight 0.8) and covariate 1 at lag 1 (weight 0.2)."""

    def forward(self, x):  # [N, L, K] -> [N, H]
        h0 = 0.8 * x[:, L - 3, 0] + 0.2 * x[:, L - 1, 1]
        return torch.stack([h0, h0, h0], 1)


def _probe():
    x = torch.randn(6, L, K, generator=torch.Generator().manual_seed(0))
    return Probe(x, torch.randn(6, H, generator=torch.Generator().manual_seed(1)))


def test_refusal_names_the_threshold_classes():
    with pytest.raises(ValueError, match="a regression has no class") as info:
        CounterfactualAudit(max_samples=4).validate(_Linear(), _probe())
    assert 'towards="runner_up", output=lambda out: torch.stack([t - out[:, k], out[:, k] - t], 1)' in str(info.value)


def test_the_named_way_finds_the_driving_lag():
    t = 1.0
    audit = CounterfactualAudit(towards="runner_up", max_samples=6, output=lambda out: torch.stack([t - out[:, 0], out[:, 0] - t], 1))
    result = audit.run(_Linear(), _probe())
    rows = result.tables["counterfactuals"]
    assert result.scalars["success_rate"] == 1.0
    for row in rows:  # the L1-cheapest change is on the larger weight: covariate 0 at lag 3, element (L - 3) * K + 0
        assert row["changed_elements"] == [(L - 3) * K]
