"""A model that standardises over its batch (``x.std(0, unbiased=False) + 1e-5``) gives each sample alone a constant:
a probe of 2 samples is refused as a larger one is (not left to the intervened rows' check, whose advice,
``max_batch_size=1``, returned the constant's effects), and no refusal advises one sample at a time for it."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.audits import InputEffectAudit, Probe
from lightning_causal.causal.engine.sample_independence import OWN_STATISTICS_FIX, PER_SAMPLE_FIX
from lightning_causal.causal.engine.stacked_rows import BATCH_STATISTICS_CAUSE, StackedRowsError


class _Standardised(nn.Module):  # a standardisation over the samples, an epsilon beside the std: no NaN alone
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc((x - x.mean(0)) / (x.std(0, unbiased=False) + 1e-5))


def _x(n: int) -> torch.Tensor:
    return torch.randn(n, 4, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("max_batch_size", [None, 1])
@pytest.mark.parametrize("n", [2, 8])
def test_a_probe_of_two_samples_is_refused_as_a_larger_one_without_the_way_out_of_one_row(n, max_batch_size):
    with pytest.raises(ValueError, match="treat samples independently") as err:
        InputEffectAudit().run(_Standardised(), Probe(_x(n)), max_batch_size=max_batch_size)
    message = str(err.value)
    assert OWN_STATISTICS_FIX in message and PER_SAMPLE_FIX not in message
    assert not isinstance(err.value, StackedRowsError)


def test_rows_alone_of_one_value_name_the_batch_statistic_not_one_row_per_pass():
    with pytest.raises(StackedRowsError) as err:  # a probe of one sample: its check cannot tell; the intervened rows can
        InputEffectAudit().run(_Standardised(), Probe(_x(1)))
    assert BATCH_STATISTICS_CAUSE in str(err.value)
    assert "where the estimator takes it" not in str(err.value)


class _PerSample(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(4, 3)

    def forward(self, x):
        return self.fc((x - x.mean(1, keepdim=True)) / (x.std(1, keepdim=True) + 1e-5))


def test_a_model_standardising_each_sample_is_audited_on_two_samples():
    x = _x(2)
    result = InputEffectAudit().run(_PerSample(), Probe(x))
    assert result.vectors["mean_abs_effect"].shape == (4,)
    assert bool((result.vectors["mean_abs_effect"] > 0).all())
