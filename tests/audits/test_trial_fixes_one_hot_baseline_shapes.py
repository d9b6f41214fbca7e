"""warn_one_hot_interventions read the baseline with torch.as_tensor(...).expand(x.shape) and stayed
silent where that failed, e.g. a tuple of one baseline (one per input, which input_effects takes):
a one-hot block set to no category was then scored without a word. The baseline is now read as the
engine reads it, whatever its shape, and a per-sample baseline is checked row by row."""

import warnings

import torch
from torch import nn

from lightning_causal.audits import InputEffectAudit
from lightning_causal.audits.base import Probe
from lightning_causal.audits.input_effects import warn_one_hot_interventions

N = 32
MASK = torch.tensor([[0, 0, 0, 1, 2]])  # columns 0-2: one categorical feature, one group


def _probe() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    code = torch.randint(0, 3, (N,), generator=g)
    return torch.cat([nn.functional.one_hot(code, 3).float(), torch.randn(N, 2, generator=g)], 1)


def _said(baseline) -> list[str]:
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        warn_one_hot_interventions("audit", _probe(), MASK, baseline, None)
    return [str(m.message) for m in w if "one-hot block" in str(m.message)]


def test_a_block_set_to_no_category_warns_whatever_the_baselines_shape():
    for baseline in (0.0, torch.zeros(5), torch.zeros(1, 5), torch.zeros(N, 5), (torch.zeros(5),), (0.0,)):
        said = _said(baseline)
        assert len(said) == 1 and "sets it to the baseline [0.0, 0.0, 0.0], no one-hot row" in said[0], baseline


def test_a_one_hot_baseline_is_quiet_and_a_per_sample_one_is_checked_row_by_row():
    ref = torch.tensor([1.0, 0.0, 0.0, 0.0, 0.0])
    for baseline in (ref, ref[None], ref.expand(N, 5).clone(), (ref,)):
        assert _said(baseline) == []
    rows = ref.expand(N, 5).clone()
    rows[7, :3] = torch.tensor([0.0, 1.0, 1.0])  # one sample's reference holds two categories
    said = _said(rows)
    assert len(said) == 1 and "the baseline [0.0, 1.0, 1.0]" in said[0]


def test_the_audit_warns_with_a_tuple_baseline():
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        InputEffectAudit(feature_mask=MASK, baseline=(torch.zeros(5),), ace_values=None).run(nn.Linear(5, 2), Probe(_probe()))
    assert any("columns [0, 1, 2] are a one-hot block" in str(m.message) for m in w)
