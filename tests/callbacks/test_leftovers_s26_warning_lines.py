"""Two warnings of the callbacks named a line of the package, not the user's, so a filter by the user's module
(``warnings.filterwarnings(module=...)``) missed them: the hooks an audit leaves behind (``hooks_removed``, at
``stacklevel=3``: the ``with`` line in ``callbacks/_one_audit.py``, from ``audit_model`` and from a fit alike) and an
audit's failure in a process other than rank 0 (``stacklevel=2``: the callback's own caller). Both point past the
package (and Lightning) now, as the package's other warnings do (``outside_package``). And a warning the callback or
``audit_model`` records during an audit and shows again after it (``_warnings.show_again``) took the path of its file
for its module, so no filter by the user's module matched it: it takes the module's name now."""

from __future__ import annotations

import types
import warnings

import torch

from lightning_causal.callbacks import _audit_run, audit_model
from tests.callbacks.test_trial_newuser17_custom_audit import WeightNorm, _fit, _LeavesHook, _Linear


class _KeepsHook(WeightNorm):
    """Registers a forward hook and returns without removing it."""

    def dry_run(self, model, probe):
        return None

    def run(self, model, probe, *, max_batch_size=None):
        model.fc.register_forward_hook(lambda m, i, o: 2 * o)
        return super().run(model, probe)


def _said(caught, text: str) -> list[warnings.WarningMessage]:  # noqa: ANN001
    return [w for w in caught if text in str(w.message)]


def test_the_hooks_warning_names_the_users_line_from_audit_model():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audit_model(_Linear(), [_KeepsHook(0)], torch.randn(8, 3), probe_size=4)
    said = _said(caught, "left 1 forward hook on 'fc' after its run")
    assert len(said) == 1
    assert said[0].filename == __file__  # before: lightning_causal/callbacks/_one_audit.py


def test_the_hooks_warning_names_the_users_fit_line(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _fit(tmp_path, [_LeavesHook(0)], on_error="warn")
    said = _said(caught, "after its run")
    assert said
    fit_file = _fit.__code__.co_filename  # the helper's trainer.fit(...) line: the user's line of a fit
    assert {w.filename for w in said} == {fit_file}  # before: _one_audit.py
    with warnings.catch_warnings(record=True) as caught:  # the callback shows it again after its audit: by module too
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", message=".*after its run", module=_fit.__module__)
        _fit(tmp_path / "filtered", [_LeavesHook(0)], on_error="warn")
    assert _said(caught, "after its run") == []  # before: shown (the module taken for its path, not its name)


def test_a_filter_by_the_users_module_silences_the_hooks_warning_of_audit_model():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", message=".*after its run", module=__name__)
        audit_model(_Linear(), [_KeepsHook(0)], torch.randn(8, 3), probe_size=4)
    assert _said(caught, "after its run") == []


def test_a_failure_in_another_process_is_said_at_the_users_fit_line(tmp_path, monkeypatch):
    # this process plays rank 1 of 2 where the callback asks (the row sharing itself stays a single process's)
    monkeypatch.setattr(_audit_run, "current_shard", lambda: types.SimpleNamespace(rank=1, world_size=2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _fit(tmp_path, [_LeavesHook(0)], on_error="warn")
    said = _said(caught, "in process 1: RuntimeError('lost my handle')")
    assert len(said) == 2
    assert {w.filename for w in said} == {_fit.__code__.co_filename}  # before: lightning_causal/callbacks/_audit_run.py
