"""docs/your_model.md (c9742055) tells a VAE audited on its latent mean to say ``self.hparams.task = "regression"``, after
which ``CaptumBaseline``'s softmax curves over the latent coordinates are warned of. They were only where the probe held
no labels or float labels: a VAE of digits whose probe is read from its ``(x, y)`` batches holds the integer class
labels, and nothing warned (review of c9742055)."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal import CaptumBaseline
from lightning_causal.audits import CompareSettings, Probe

X = torch.randn(12, 6, generator=torch.Generator().manual_seed(1))
DIGITS = torch.randint(0, 10, (12,), generator=torch.Generator().manual_seed(2))


class VAE(nn.Module):
    def __init__(self, declare: bool = True) -> None:
        super().__init__()
        self.enc = nn.Linear(6, 4)
        self.dec = nn.Linear(2, 6)
        if declare:
            self.hparams = {"task": "regression"}

    def forward(self, x: torch.Tensor):
        mu, logvar = self.enc(x).chunk(2, dim=1)
        return self.dec(mu + torch.randn_like(mu) * (0.5 * logvar).exp()), mu, logvar


def _softmax_warnings(model: nn.Module, labels, **options) -> list[str]:
    torch.manual_seed(0)
    audit = CaptumBaseline(methods=["Saliency"], output=lambda out: out[1], target=0, **options)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audit.run(model.eval(), Probe(X, labels))
    return [str(w.message) for w in caught if "explains the softmax" in str(w.message)]


@pytest.mark.parametrize("labels", [None, DIGITS], ids=["no labels", "digit labels"])
def test_the_declared_vae_s_softmax_curves_are_warned_of_whatever_the_probe_s_labels(labels):
    said = _softmax_warnings(VAE(), labels)
    assert len(said) == 1 and "the model says it is a regression" in said[0]
    assert _softmax_warnings(VAE(), labels, settings=CompareSettings(score="raw")) == []


def test_a_model_that_says_nothing_with_class_labels_is_not_warned_of():
    assert _softmax_warnings(VAE(declare=False), DIGITS) == []
