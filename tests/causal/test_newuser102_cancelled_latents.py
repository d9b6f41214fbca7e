"""A sparse autoencoder spliced with its error term computed from the latents it sets, ``rec + (h - rec).detach()``,
returns ``h`` whatever the latents hold: every exact effect of a latent is float rounding (1e-7 of logits near 10),
and unit_effects / UnitImportanceAudit ranked that noise without a word. They now warn, naming the layer and the
error term; the splice with the error from the clean latents (before the site) gives effects that are not rounding,
without the warning; a layer whose effects are all exactly 0 (ReLUs off) is not this case."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits import Probe, UnitImportanceAudit
from lightning_causal.causal import unit_effects


class Splice(nn.Module):
    """h = layer(x); z = relu(enc(h)) through the site "latents"; the output dec(z) plus the error term."""

    def __init__(self, cancelling: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.layer, self.enc, self.dec = nn.Linear(6, 8), nn.Linear(8, 16), nn.Linear(16, 8)
        self.latents, self.head, self.cancelling = nn.Identity(), nn.Linear(8, 3), cancelling
        with torch.no_grad():
            self.head.weight.mul_(20)  # logits near 10: rounding error of ~1e-6

    def forward(self, x):
        h = self.layer(x)
        z = torch.relu(self.enc(h))
        if self.cancelling:  # the error from the latents the intervention set: dec(z') + h - dec(z') = h
            z = self.latents(z)
            rec = self.dec(z)
            return self.head(rec + (h - rec).detach())
        error = h - self.dec(z)  # the error from the clean latents, before the site
        return self.head(self.dec(self.latents(z)) + error)


X = torch.randn(32, 6, generator=torch.Generator().manual_seed(1))


def test_cancelling_error_term_warns():
    with pytest.warns(UserWarning, match=r"Every unit of 'latents' changes the explained output only by float rounding"):
        effects = unit_effects(Splice(cancelling=True).eval(), X, "latents")
    assert 0 < float(effects.abs().max()) < 1e-4  # rounding: the ranking the warning is about


def test_the_audit_warns_too():
    with pytest.warns(UserWarning, match="sparse autoencoder's error term"):
        UnitImportanceAudit(["latents"]).run(Splice(cancelling=True).eval(), Probe(X, torch.zeros(32, dtype=torch.long)))


def test_clean_error_term_does_not_warn():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        effects = unit_effects(Splice(cancelling=False).eval(), X, "latents")
    assert float(effects.abs().max()) > 1e-2


def test_all_exact_zeros_do_not_warn():
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2)).eval()
    with torch.no_grad():
        model[0].bias.fill_(-100.0)  # every ReLU off: each effect exactly 0
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        effects = unit_effects(model, torch.randn(8, 4), "1")
    assert bool((effects == 0).all())
