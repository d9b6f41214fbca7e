"""leftovers_s30a: under ``audit_model``, an audit whose own warning says why its values are NaN was said twice.

CaptumBaseline on a float16 model whose logits overflow warns "causal's scores hold NaN in samples [...]" and keeps the
same words as a note; ``audit_model``'s warning of non-finite values then repeated every note, so the user read the
sentence twice. A note that a warning of the audit's run already said is now left out of that warning, which says
"the audit's warning above says why"; notes no warning said stay in it. The callback's warning, shown at every audit
epoch while the audit's own warnings are shown once per fit, keeps every note.
"""

import warnings

import torch

from lightning_causal import CaptumBaseline
from lightning_causal.audits import AuditResult
from lightning_causal.callbacks import audit_model
from tests.callbacks.test_trial_newuser17_custom_audit import WeightNorm, _fit, _Linear
from tests.test_trial_newuser55_nan_scores import _overflowing

SAID, UNSAID = "the weights of row 0 are NaN on purpose", "a note no warning said"


class _Explains(WeightNorm):
    """A NaN vector, a note its own warning says and one that no warning says."""

    def dry_run(self, model, probe):
        return None

    def run(self, model, probe, *, max_batch_size=None):
        warnings.warn(f"Explains {self.name!r}: {SAID}", UserWarning, stacklevel=2)
        return AuditResult(self.name, vectors={"w": torch.tensor([float("nan"), 1.0])}, meta={"notes": [SAID, UNSAID]})


def _messages(caught) -> list[str]:  # noqa: ANN001
    return [str(w.message) for w in caught]


def test_captum_baselines_nan_scores_are_said_once_under_audit_model():
    model, x = _overflowing()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        (result,) = audit_model(model, [CaptumBaseline(("Saliency",), target=1)], x, probe_size=64)
    said = [m for m in _messages(caught) if "scores hold NaN in samples" in m]
    assert len(said) == 1 and said[0].startswith("CaptumBaseline 'captum_baseline': causal's scores")  # before: 2
    assert ("Audit 'captum_baseline' produced NaN or infinite values in ['mean_abs/causal', 'causal']; the audit's warning "
            "above says why") in _messages(caught)
    assert any("scores hold NaN in samples" in note for note in result.meta["notes"])  # the card and the report keep it


def test_only_the_notes_a_warning_said_are_left_out():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audit_model(_Linear(), [_Explains(0, name="explains")], torch.randn(8, 3), probe_size=4)
    assert [m for m in _messages(caught) if "produced NaN" in m] == [
        f"Audit 'explains' produced NaN or infinite values in ['w']; {UNSAID}; the audit's warning above says why"]


def test_the_callbacks_warning_keeps_every_note(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _fit(tmp_path, [_Explains(0, name="explains")])
    said = [m for m in _messages(caught) if "produced NaN" in m]
    assert said[0] == f"Causal audit 'explains' at epoch 0 produced NaN or infinite values in ['w']; {SAID}; {UNSAID}"
    assert len(said) == 2 and said[1].endswith(f"; {SAID}; {UNSAID}")  # at epoch 1 its drift scalars too
