"""FairnessAudit checked what its outputs are (`_check_reading`: a continuous distribution's moments, per-level logits,
an embedding) in `validate` and again in `run`, so `audit_model` (validate, then the full run) said a Gaussian policy's
warning twice. `run` now checks only a model its `validate` did not check: one check, one warning, and `run` by hand
(or on another model) still checks."""

import warnings

from lightning_causal.audits import FairnessAudit
from lightning_causal.callbacks.posthoc import audit_model
from lightning_causal.causal import AttributeFlip
from tests.callbacks.test_second_s33c_audit_model_set_up_warnings import (
    GaussianPolicy as _GaussianPolicy,
)
from tests.callbacks.test_second_s33c_audit_model_set_up_warnings import _probe


def _gaussian_warnings(call) -> int:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        call()
    return sum("the Normal's mean, a continuous distribution" in str(w.message) for w in caught)


def test_audit_model_says_the_gaussian_warning_once():
    audit = FairnessAudit(AttributeFlip(4), output="mean")
    assert _gaussian_warnings(lambda: audit_model(_GaussianPolicy(), audit, _probe(), probe_size=16)) == 1


def test_validate_then_run_checks_once_and_run_checks_another_model():
    audit, model, other = FairnessAudit(AttributeFlip(4), output="mean"), _GaussianPolicy(), _GaussianPolicy()
    assert _gaussian_warnings(lambda: (audit.validate(model, _probe()), audit.run(model, _probe()))) == 1
    assert _gaussian_warnings(lambda: audit.run(other, _probe())) == 1  # not validated: run checks it
    assert _gaussian_warnings(lambda: FairnessAudit(AttributeFlip(4), output="mean").run(model, _probe())) == 1
