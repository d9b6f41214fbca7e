"""InputEffectAudit and UnitImportanceAudit on a model whose output is not finite on a few probe samples.

A float16 model whose logit passes 65504 on some samples (newuser55's: class 1's logit 3e4 (tanh x_0 + 2 tanh x_1))
has effects inf or inf - inf = NaN there, so mean_abs_effect, the importances and the top shares are NaN, and the
report and the warning of non-finite values named the scalars only, not which samples made them (the figure says
"N of M scores are not finite"): nothing pointed at the overflowing samples or the way out.
"""

import warnings

import torch

from lightning_causal import InputEffectAudit, UnitImportanceAudit
from lightning_causal.audits import Probe
from lightning_causal.callbacks.posthoc import audit_model
from lightning_causal.causal import input_effects
from tests.test_trial_newuser55_nan_scores import _overflowing


def _quiet(audit, model, x):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return audit.run(model, Probe(x))


def test_the_samples_of_non_finite_effects_are_named():
    model, x = _overflowing()
    rows = (~input_effects(model, x, target=1).isfinite()).any(1).nonzero().flatten().tolist()
    assert rows == (~model(x)[:, 1].isfinite()).nonzero().flatten().tolist()  # the overflowing samples
    notes = _quiet(InputEffectAudit(target=1, ace_values=None), model, x).meta["notes"]
    assert [n for n in notes if n.startswith(f"the effects are not finite in samples {rows[:8]} ... of 64")]
    # setting a unit of layer 0 to 0 brings the logit under 3e4 (2 tanh x_1 or tanh x_0): the unit effects are not
    # finite where the clean logit is not
    notes = _quiet(UnitImportanceAudit(layers=["0"], target=1), model, x).meta["notes"]
    assert [n for n in notes if n.startswith(f"the unit effects of layer '0' are not finite in samples {rows[:8]} ... of 64")]
    assert all("copy.deepcopy(model).float()" in n for n in notes if "not finite in samples" in n)


def test_the_warning_of_non_finite_values_names_them_once():
    model, x = _overflowing()
    with warnings.catch_warnings(record=True) as got:
        warnings.simplefilter("always")
        audit_model(model, [InputEffectAudit(target=1, ace_values=None)], x)
    said = [str(w.message) for w in got if "not finite in samples" in str(w.message)]
    assert len(said) == 1 and "produced NaN or infinite values" in said[0]


def test_finite_effects_give_no_note():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2)).eval()
    x = torch.randn(16, 4)
    for audit in (InputEffectAudit(ace_values=None), UnitImportanceAudit(layers=["0"])):
        assert not [n for n in _quiet(audit, model, x).meta.get("notes", []) if "not finite" in n]
