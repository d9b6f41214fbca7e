"""Validation sweep (newuser20): an audit built with a NaN baseline was accepted and refused only
at its first run (in a fit: after the first epoch's training); it is refused when built, as a
baseline of the wrong type already was."""

import pytest
import torch

from lightning_causal import CaptumBaseline, InputEffectAudit, LayerMapAudit


@pytest.mark.parametrize("audit", [InputEffectAudit, CaptumBaseline, LayerMapAudit])
@pytest.mark.parametrize("baseline", [float("nan"), float("inf"), torch.tensor([0.0, float("nan")]), (0.0, float("nan"))])
def test_a_non_finite_baseline_is_refused_when_the_audit_is_built(audit, baseline):
    with pytest.raises(ValueError, match=r"Expected argument `baseline` to be finite but got"):
        audit(baseline=baseline)


def test_finite_and_integer_baselines_are_kept():
    assert InputEffectAudit(baseline=torch.tensor([0, 3])).baseline.tolist() == [0, 3]
    assert InputEffectAudit(baseline=(0.5, 2)).baseline == (0.5, 2)
