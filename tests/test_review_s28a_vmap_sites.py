"""Review of 1c65fb9c: a site that a model's forward runs under ``torch.func.vmap`` (per-sample forces
``-vmap(jacrev(energy))(x)``) was refused by unit_effects and intervene naming vmap and the way out, but the audits'
set-up (UnitImportanceAudit through audit_model or the callback: ``check_rows_at_sites``) told of "fewer rows than
the batch ... an expert of a mixture", whose way out (name where the experts' outputs are combined) does not apply.
"""

import pytest
import torch
from torch import nn
from torch.func import jacrev, vmap

from lightning_causal.audits import UnitImportanceAudit
from lightning_causal.callbacks.posthoc import audit_model
from lightning_causal.causal.engine.unit_sites import check_rows_at_sites

_WORDS = r"'energy.1' to run on the batch of samples, but it runs inside torch.func.vmap.*shape \[6\].*torch.func.grad"


class _PerSampleForces(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.energy = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return -vmap(jacrev(lambda xi: self.energy(xi).squeeze(-1)))(x)


def test_the_rows_check_names_vmap_and_the_way_out():
    torch.manual_seed(0)
    model, x = _PerSampleForces().eval(), torch.randn(5, 3)
    with pytest.raises(ValueError, match=_WORDS):
        check_rows_at_sites(model, ["energy.1"], lambda: model(x), 5)


def test_unit_importance_on_a_site_under_vmap_is_refused_naming_vmap():
    torch.manual_seed(0)
    model, x = _PerSampleForces().eval(), torch.randn(8, 3)
    with pytest.raises(ValueError, match=_WORDS):
        audit_model(model, [UnitImportanceAudit(["energy.1"])], x)
