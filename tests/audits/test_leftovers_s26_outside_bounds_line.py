"""``CounterfactualAudit``'s warning of explained probe samples outside ``bounds`` named a line of the package
(``stacklevel=2``: ``audits/counterfactual.py``, the audit's own ``run``), not the user's, so a filter by the user's
module missed it. It points past the package now (``outside_package``), from ``run`` and from ``audit_model``."""

from __future__ import annotations

import warnings

import torch

from lightning_causal.audits import CounterfactualAudit, Probe
from lightning_causal.callbacks import audit_model


def _case():
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 2)
    x = torch.randn(16, 3) * 3  # most rows outside [-1, 1]
    audit = CounterfactualAudit(bounds=(torch.full((3,), -1.0), torch.full((3,), 1.0)), max_samples=4)
    return model, Probe(x, torch.randint(0, 2, (16,))), audit


def _outside(caught) -> list[warnings.WarningMessage]:  # noqa: ANN001
    return [w for w in caught if "outside `bounds`" in str(w.message)]


def test_the_outside_bounds_warning_names_the_users_line():
    model, probe, audit = _case()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audit.run(model, probe)
    said = _outside(caught)
    assert len(said) == 1 and said[0].filename == __file__  # before: lightning_causal/audits/counterfactual.py
    model, probe, audit = _case()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audit_model(model, [audit], probe, probe_size=16)
    said = _outside(caught)
    assert said and {w.filename for w in said} == {__file__}


def test_a_filter_by_the_users_module_silences_it():
    model, probe, audit = _case()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", message=".*outside `bounds`", module=__name__)
        audit.run(model, probe)
    assert _outside(caught) == []
