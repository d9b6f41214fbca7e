"""The default name of an audit of one's own: its class name in snake case, less ``Audit``."""

from __future__ import annotations

import pytest

from lightning_causal.audits import Audit, AuditResult


def _audit_class(class_name: str) -> type[Audit]:
    def run(self, model, probe, *, max_batch_size=None):
        return AuditResult(self.name)

    return type(class_name, (Audit,), {"run": run})


@pytest.mark.parametrize(("class_name", "name"), [
    ("LogitLensAudit", "logit_lens"),
    ("SHAPAudit", "shap"),  # before: "s_h_a_p", tags causal/s_h_a_p/...
    ("MyCAVAudit", "my_cav"),  # before: "my_c_a_v"
    ("_PrivateAudit", "private"),  # before: "__private"
    ("PreAuditCheckAudit", "pre_audit_check"),  # before: "pre_check" (every "_audit" removed, not the suffix only)
    ("GradXInput", "grad_x_input"),
])
def test_default_names(class_name, name):
    assert _audit_class(class_name)().name == name


@pytest.mark.parametrize(("class_name", "name"), [
    ("EqualOddsTerm", "equal_odds"),
    ("MMDTerm", "mmd"),  # before: "m_m_d"
    ("CounterfactualFairnessTerm", "counterfactual_fairness"),
])
def test_default_names_of_repair_terms(class_name, name):
    import torch

    from lightning_causal.repair import RepairTerm

    term = type(class_name, (RepairTerm,), {"loss": lambda self, model, x, y: torch.zeros(())})()
    assert term.name == name
