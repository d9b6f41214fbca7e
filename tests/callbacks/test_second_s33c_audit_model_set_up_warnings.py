"""Review of 3aaaac71 / 08371ff2 (second look): FairnessAudit warns at set-up (``validate``) where it would compare the
softmax of a Gaussian policy's action means (``continuous_distribution_read``), and CounterfactualAudit where its
outputs are per-level logits; but ``audit_model`` ran every audit's set-up inside its dry runs with every warning
ignored ("left to the full runs, which give them again"), and the full runs do not run ``validate``: through
``audit_model`` those warnings were never shown. The dry run's own run on 2 samples stays quiet; the set-up's warnings,
which read the whole probe, are shown as ``CausalAuditCallback`` shows them."""

import warnings

import torch
from torch import nn
from torch.distributions import Normal

from lightning_causal.audits import FairnessAudit, InputEffectAudit, Probe
from lightning_causal.callbacks.posthoc import audit_model
from lightning_causal.causal import AttributeFlip


class GaussianPolicy(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.trunk = nn.Linear(5, 2)

    def forward(self, x: torch.Tensor) -> Normal:
        return Normal(self.trunk(x), 0.5)


def _probe() -> Probe:
    x = torch.randn(16, 5, generator=torch.Generator().manual_seed(0))
    x[:, 4] = (x[:, 4] > 0).float()  # the flipped attribute
    return Probe(x)


def _said(audit) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audit_model(GaussianPolicy(), audit, _probe(), probe_size=16)
    return [str(w.message) for w in caught]


def test_audit_model_shows_fairness_audits_set_up_warning_on_a_gaussian_policy() -> None:
    said = _said(FairnessAudit(AttributeFlip(4), output="mean"))
    # the set-up's only: the full run checks a model its validate has not (`audit.run` by hand, newuser80), once
    # validated it says it no second time (leftovers_s37a)
    assert sum("FairnessAudit compares class probabilities" in m and "the Normal's mean" in m for m in said) == 1, said


def test_the_dry_runs_own_warnings_stay_left_to_the_full_run() -> None:
    """InputEffectAudit warns in its run (the predicted class of a continuous action's means): once, from the full run,
    not again from the dry run of 2 samples."""
    said = _said(InputEffectAudit(output="mean", ace_values=None))
    assert sum("the Normal's mean" in m for m in said) == 1, said
