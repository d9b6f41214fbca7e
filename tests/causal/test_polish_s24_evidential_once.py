"""The evidential (Dirichlet) warning of check_logits is said once per audit / estimator, not once per pass."""

import warnings

import torch
from torch import nn

from lightning_causal.audits import SobolAudit
from lightning_causal.audits.base import Probe
from lightning_causal.causal.engine.state import audit_mode, check_logits

CONCENTRATIONS = torch.tensor([[10.0, 1.0, 1.0], [1.0, 6.0, 1.0], [1.0, 1.0, 3.0], [4.0, 1.0, 1.2]])


class _Evidential(nn.Module):
    """Concentrations alpha = evidence + 1, the evidence all in class 0."""

    def __init__(self) -> None:
        super().__init__()
        self.fc = nn.Linear(4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return nn.functional.softplus(self.fc(x)) * torch.tensor([5.0, 0.0, 0.0]) + 1


def _evidential_warnings(caught) -> int:
    return sum("evidential (Dirichlet)" in str(w.message) for w in caught)


def test_check_logits_warns_once_per_block_and_at_every_call_outside_one():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with audit_mode(nn.Linear(1, 1)):
            for _ in range(3):
                check_logits(CONCENTRATIONS, "it")
            check_logits(CONCENTRATIONS, "another caller")  # another caller's softmax: said for it too
    assert _evidential_warnings(caught) == 2
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(3):
            check_logits(CONCENTRATIONS, "it")
    assert _evidential_warnings(caught) == 3  # no block: each call is its own


def test_sobol_audit_of_an_evidential_model_warns_once_not_per_pass():
    torch.manual_seed(0)
    x = torch.randn(64, 4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # 512 * (groups + 2) rows in passes of 64: 49 passes, each warned before
        SobolAudit(n=512, n_bootstrap=10).run(_Evidential(), Probe(x, torch.zeros(64, dtype=torch.long)), max_batch_size=64)
    assert _evidential_warnings(caught) == 1


def test_fairness_audit_and_perturbation_curve_of_an_evidential_model_warn_once():
    from lightning_causal.audits import FairnessAudit
    from lightning_causal.baselines.metrics import perturbation_curve

    torch.manual_seed(0)
    x = torch.randn(32, 4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        # 4 steps of 32 rows in passes of 8: 20 warnings before
        perturbation_curve(_Evidential(), x, torch.arange(4).repeat(32, 1), torch.rand(32, 4), steps=4, max_batch_size=8)
    assert _evidential_warnings(caught) == 1
    x[:, 0] = (x[:, 0] > 0).float()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        FairnessAudit(lambda v: torch.cat([1 - v[:, :1], v[:, 1:]], 1)).run(
            _Evidential(), Probe(x, torch.zeros(32, dtype=torch.long)), max_batch_size=8)  # 8 warnings before
    assert _evidential_warnings(caught) == 1
