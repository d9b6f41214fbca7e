"""``check_logits``' warning of evidential (Dirichlet) outputs named a line of the package, not the user's: it warned
with ``stacklevel=2``, the frame of its caller, which is always the package's own (``samplers.py`` under
``SobolAudit``, ``baselines/metrics.py`` under the perturbation curves), so the warning showed that line and a
filter by the user's module (``warnings.filterwarnings(module=...)``) missed it. It points past the package now, as
the package's other warnings do (``outside_package``)."""

from __future__ import annotations

import warnings

import torch

from lightning_causal.audits import FairnessAudit, Probe, SobolAudit
from lightning_causal.baselines.metrics import perturbation_curve
from tests.causal.test_polish_s24_evidential_once import _Evidential


def _evidential(caught) -> list[warnings.WarningMessage]:  # noqa: ANN001
    return [w for w in caught if "evidential (Dirichlet)" in str(w.message)]


def test_the_evidential_warning_names_the_users_line():
    torch.manual_seed(0)
    x = torch.randn(32, 4)
    x[:, 0] = (x[:, 0] > 0).float()
    probe = Probe(x, torch.zeros(32, dtype=torch.long))
    calls = {
        "sobol": lambda: SobolAudit(n=64, n_bootstrap=10).run(_Evidential(), probe),
        "fairness": lambda: FairnessAudit(lambda v: torch.cat([1 - v[:, :1], v[:, 1:]], 1)).run(_Evidential(), probe),
        "curve": lambda: perturbation_curve(_Evidential(), x, torch.arange(4).repeat(32, 1), torch.rand(32, 4), steps=2),
    }
    for name, call in calls.items():
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            call()  # this file's line: the lambda above, called here
        said = _evidential(caught)
        assert len(said) == 1, name
        assert said[0].filename == __file__, (name, said[0].filename)  # before: samplers.py, fairness.py, metrics.py


def test_a_filter_by_the_users_module_silences_it():
    torch.manual_seed(0)
    probe = Probe(torch.randn(32, 4), torch.zeros(32, dtype=torch.long))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", message=".*evidential", module=__name__)
        SobolAudit(n=64, n_bootstrap=10).run(_Evidential(), probe)
    assert _evidential(caught) == []
