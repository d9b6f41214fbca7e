"""The callback's dry run runs an audit on 2 probe samples before training; SobolAudit's copula
warnings read the samples (a correlation from too few samples, a one-hot block), so on those 2 they
fired for every probe: 'GaussianCopula: the correlation of 30 varying columns estimated from 2
samples is singular', before training, on a probe of 114 samples. They must speak of the probe."""

import warnings

import torch
from torch import nn

from lightning_causal.audits import Probe, SobolAudit


def _model(d: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(d, 8), nn.Tanh(), nn.Linear(8, 2))


def _dry_run_warnings(audit: SobolAudit, model: nn.Module, probe: Probe) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audit.validate(model, probe)
        audit.dry_run(model, probe)
    return [str(w.message) for w in caught]


def test_the_dry_run_of_a_well_sampled_probe_does_not_warn_of_a_singular_copula():
    x = torch.randn(64, 5, generator=torch.Generator().manual_seed(1))  # 64 samples of 5 columns: R is fine
    messages = _dry_run_warnings(SobolAudit(n=64, sampler="copula"), _model(5), Probe(x))
    assert not [m for m in messages if "singular" in m], messages


def test_the_dry_run_still_warns_of_a_probe_too_small_for_its_columns():
    x = torch.randn(6, 10, generator=torch.Generator().manual_seed(1))  # 6 samples, 10 columns: singular
    messages = _dry_run_warnings(SobolAudit(n=64, sampler="copula"), _model(10), Probe(x))
    assert [m for m in messages if "singular" in m and "from 6 samples" in m], messages


def test_the_dry_run_judges_one_hot_blocks_on_the_whole_probe():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(32, 4, generator=g)
    x[:, 2:] = torch.randint(0, 2, (32, 2), generator=g).float()  # two independent binary columns, no block
    x[0, 2:], x[1, 2:] = torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0])  # the first 2 rows look one-hot
    messages = _dry_run_warnings(SobolAudit(n=64, sampler="copula"), _model(4), Probe(x))
    assert not [m for m in messages if "one-hot" in m], messages
    x[:, 3] = 1.0 - x[:, 2]  # now a real block
    messages = _dry_run_warnings(SobolAudit(n=64, sampler="copula"), _model(4), Probe(x))
    assert [m for m in messages if "one-hot block [2, 3]" in m], messages
