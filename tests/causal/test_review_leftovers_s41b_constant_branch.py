"""A branch on a batch statistic whose branch alone returns a constant (an early exit's zeros where the batch's mean
of x0 is not above 0) gave probe samples 0 and n - 1, both with x0 < 0, one output alone: 4602a1d3's probe check read that
as a statistic over the batch erased by a batch of one and said one sample at a time is no way out, where it is the
way out (a sample alone gets its own branch). The check now runs samples 0, n // 2 and n - 1 alone: sample n // 2
(x0 > 0) takes the other branch, and the refusal keeps its per-sample advice; a standardisation over the batch is
still named as one (every sample alone gives its constant)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.audits import InputEffectAudit, Probe
from lightning_causal.causal.engine.sample_independence import PER_SAMPLE_FIX

NO_WAY_OUT = "is no way out"  # sample_independence.OWN_STATISTICS_FIX's words


class _EarlyExit(nn.Module):
    def __init__(self, standardise: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc, self.standardise = nn.Linear(4, 2), standardise

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.standardise:
            return self.fc((x - x.mean(0)) / (x.std(0, unbiased=False) + 1e-5))
        return self.fc(x) if bool(x[:, 0].mean() > 0) else torch.zeros(x.shape[0], 2)


def _x() -> torch.Tensor:  # samples 0, 1 and 7 below 0 in x0, the others above: the batch's mean above 0
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(1))
    x[:, 0] = x[:, 0].abs() + 0.5
    x[[0, 1, 7], 0] = -0.3  # samples 0 and 1 alone, the check's first batch, take the early exit: refused there
    return x


@pytest.mark.parametrize("standardise", [False, True])
def test_one_sample_at_a_time_is_refused_as_a_way_out_only_where_every_sample_alone_is_one_value(standardise):
    with pytest.raises(ValueError, match="treat samples independently") as err:
        InputEffectAudit(target=1).run(_EarlyExit(standardise), Probe(_x()))
    message = str(err.value)
    assert (NO_WAY_OUT in message) is standardise
    assert (PER_SAMPLE_FIX in message) is not standardise
