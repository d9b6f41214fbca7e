"""3aaaac71 let integer class labels exempt every distribution read from the continuous-distribution warnings (a
heteroscedastic classifier's Normal over its logits is no continuous action), so a VAE encoder whose posterior mean is
audited beside the digit labels of its probe was silent in every audit: with ``target=None`` each sample explained at
its largest latent coordinate, a mix of coordinates. The labels exempt a distribution now only where it has a
coordinate for each of their classes; a posterior over 2 latent coordinates beside digits 0-9 is no classifier's."""

from __future__ import annotations

import warnings

import torch
from torch import nn
from torch.distributions import Normal

from lightning_causal.audits import InputEffectAudit, Probe, UnitImportanceAudit


class _Encoder(nn.Module):
    def __init__(self, width: int) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body, self.mu, self.spread = nn.Linear(6, 8), nn.Linear(8, width), nn.Linear(8, width)

    def forward(self, x: torch.Tensor) -> Normal:
        h = torch.tanh(self.body(x))
        return Normal(self.mu(h), nn.functional.softplus(self.spread(h)) + 0.1)


def _probe(classes: int) -> Probe:
    gen = torch.Generator().manual_seed(1)
    return Probe(torch.randn(20, 6, generator=gen), torch.arange(20) % classes)


def _said(model: nn.Module, probe: Probe) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        InputEffectAudit(output=lambda out: out.mean, ace_values=None).run(model, probe)
        UnitImportanceAudit(["body"], output=lambda out: out.mean).run(model, probe)
    return [str(w.message) for w in caught if "continuous distribution" in str(w.message)]


def test_a_vae_posterior_beside_digit_labels_is_warned_about() -> None:
    said = _said(_Encoder(2), _probe(10))
    assert len(said) == 2
    assert all("the Normal's mean" in s and "a VAE encoder's posterior" in s for s in said)


def test_a_heteroscedastic_classifier_with_a_coordinate_per_class_stays_silent() -> None:
    assert _said(_Encoder(10), _probe(10)) == []
    assert _said(_Encoder(1), _probe(2)) == []  # one logit for labels 0 and 1


def test_counterfactual_audit_refuses_the_posterior_and_names_it() -> None:
    import pytest

    from lightning_causal.audits import CounterfactualAudit

    with pytest.raises(ValueError, match="a VAE encoder's posterior"):
        CounterfactualAudit(output=lambda out: out.mean).validate(_Encoder(2), _probe(10))
