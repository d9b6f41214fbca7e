"""leftovers_s30d: ``sobol_indices``, ``SobolAudit`` and ``intrinsic_causal_contributions`` ran their evaluation passes
under ``rng_preserved`` alone, not in ``audit_mode`` as the other estimators: a ``torch.Generator`` the model holds
(``self.gen``, drawn from in ``forward``) was left moved after the analysis, so the noise the training drew next was not
the noise it would have drawn (found by this session's reviewers, at a99c6647 too). They now run in ``audit_mode`` of
the model ``func`` runs (``pick_freeze.model_kept``), which puts the model's generators back."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal import SobolAudit
from lightning_causal.audits import Probe
from lightning_causal.causal import (
    AdditiveNoiseSCM,
    UniformCube,
    intrinsic_causal_contributions,
    sobol_indices,
)
from lightning_causal.causal.sensitivity.samplers import class_probability


class OwnNoise(nn.Module):
    """A linear model that adds noise drawn from a generator it holds (``self.gen``), in eval mode too."""

    def __init__(self, outputs: int = 3) -> None:
        super().__init__()
        self.fc = nn.Linear(3, outputs)
        self.gen = torch.Generator().manual_seed(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x + 0.01 * torch.randn(x.shape, generator=self.gen, dtype=x.dtype))


def _scm() -> AdditiveNoiseSCM:
    scm = AdditiveNoiseSCM(["a", "b", "c"], {})
    scm.fit(torch.randn(64, 3, generator=torch.Generator().manual_seed(2)))
    return scm


ANALYSES = {
    "sobol_indices(module)": lambda m: sobol_indices(m, UniformCube(3), n=32, n_bootstrap=0),
    "sobol_indices(class_probability)": lambda m: sobol_indices(class_probability(m, 1), UniformCube(3), n=32, n_bootstrap=0),
    "SobolAudit": lambda m: SobolAudit(n=32, n_bootstrap=0, target=1).run(m, Probe(torch.randn(16, 3))),
    "intrinsic_causal_contributions": lambda m: intrinsic_causal_contributions(m, _scm(), n=32, target=1, shapley=False,
                                                                               n_bootstrap=0),
}


@pytest.mark.parametrize("name", list(ANALYSES))
def test_the_generator_the_model_holds_is_put_back(name: str) -> None:
    torch.manual_seed(0)
    model = OwnNoise(outputs=1 if name == "sobol_indices(module)" else 3)
    state = model.gen.get_state().clone()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the noise it draws is said; not what is tested here
        ANALYSES[name](model)
    assert torch.equal(model.gen.get_state(), state)  # before: moved by the analysis' passes (all four)


def test_the_noise_of_the_generator_the_model_holds_is_seen() -> None:
    # inside audit_mode the noise check watches the model's own generator: its draws are said, and common random
    # numbers seed it (before: its passes were outside the block that registers it, and nothing was said)
    with pytest.warns(UserWarning, match="random"):
        sobol_indices(OwnNoise(outputs=1), UniformCube(3), n=32, n_bootstrap=0)
