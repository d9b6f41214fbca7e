"""sensitivity() on a bfloat16 or float16 probe: the perturbed rows keep the probe's dtype (its float32
draws promoted them, and a half-precision model refused them: CaptumBaseline's reference_metrics)."""

import pytest
import torch
from torch import nn

from lightning_causal.audits import CaptumBaseline, CompareSettings
from lightning_causal.audits.base import Probe
from lightning_causal.baselines import sensitivity

X = torch.rand(6, 5, generator=torch.Generator().manual_seed(1))


def _model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(5, 8), nn.Tanh(), nn.Linear(8, 2)).eval()


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_sensitivity_of_a_half_precision_probe_matches_float32(dtype):
    def explain(model, want):
        def fn(x, target):
            assert x.dtype == want  # the rows reach the explanation in the probe's dtype
            return (model(x).gather(1, target.view(-1, 1)) * x).float()  # a gradient-free explanation [M, 5]
        return fn

    ref = sensitivity(explain(_model(), torch.float32), X, torch.ones(6, dtype=torch.long), 0.05, n_perturb_samples=4)
    got = sensitivity(explain(_model().to(dtype), dtype), X.to(dtype), torch.ones(6, dtype=torch.long), 0.05, n_perturb_samples=4)
    assert bool(torch.isfinite(got).all())
    assert torch.allclose(got.double(), ref.double(), atol=0.05)  # the same draws, rounded to the probe's dtype


def test_captum_baseline_reference_metrics_on_a_bf16_model():
    probe = Probe(X.bfloat16(), torch.zeros(6, dtype=torch.long))
    audit = CaptumBaseline(("Saliency",), settings=CompareSettings(reference_metrics=True, n_perturb_samples=2))
    result = audit.run(_model().bfloat16(), probe)
    assert "sensitivity_max" in result.scalars and not result.non_finite()
