"""leftovers_s30c: under ``audit_model``, the warning of NaN values pointed to an audit's warning the user had hidden.

``finish_result`` leaves out of its warning the notes an audit's own warning said and writes "the audit's warning above
says why" instead. The audit's warnings were recorded as said even where a filter of the user's
(``warnings.filterwarnings("ignore", ...)``) hid them, so the note appeared nowhere in the console and "above" held
nothing. Only warnings shown (now, or before under an action that shows them once) count as said.
"""

import warnings

import torch

from lightning_causal.callbacks import audit_model
from lightning_causal.callbacks._warnings import show_again
from tests.callbacks.test_trial_newuser17_custom_audit import _Linear
from tests.test_leftovers_s30a_warned_once import SAID, UNSAID, _Explains


def _nan_warnings(caught) -> list[str]:  # noqa: ANN001
    return [str(w.message) for w in caught if "produced NaN" in str(w.message)]


def test_a_hidden_warnings_note_stays_in_the_nan_warning():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", message="Explains")  # the user hides the audit's own warning
        audit_model(_Linear(), [_Explains(0, name="explains")], torch.randn(8, 3), probe_size=4)
    assert not [w for w in caught if str(w.message).startswith("Explains")]  # the premise: hidden
    assert _nan_warnings(caught) == [f"Audit 'explains' produced NaN or infinite values in ['w']; {SAID}; {UNSAID}"]


def test_a_shown_warnings_note_is_still_left_out():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", message="an unrelated warning")
        audit_model(_Linear(), [_Explains(0, name="explains")], torch.randn(8, 3), probe_size=4)
    assert _nan_warnings(caught) == [
        f"Audit 'explains' produced NaN or infinite values in ['w']; {UNSAID}; the audit's warning above says why"]


def test_show_again_says_whether_the_console_holds_the_warning():
    w = warnings.WarningMessage(UserWarning("once only"), UserWarning, __file__, 7)
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("once")
        assert show_again(w) and show_again(w)  # shown, then shown before
        warnings.filterwarnings("ignore", message="once")
        assert not show_again(w)
    assert [str(s.message) for s in shown] == ["once only"]
