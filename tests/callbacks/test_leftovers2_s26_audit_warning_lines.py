"""The callback's warnings of an audit that failed (``on_error="warn"``) and of an audit whose result holds NaN or
infinite values (and, later mended too, of a JSON report not written) named a line of the package (``callbacks/_audit_run.py``): they went through Lightning's
``rank_zero_warn`` at its default ``stacklevel``, which names its caller's line, so a filter by the user's module
(``warnings.filterwarnings(module=...)``) missed them. They name the user's ``trainer.fit`` line now, as the package's
other warnings do (``outside_package``). ``audit_model`` raises an audit's failure and warns of NaN at its caller's
line (``posthoc.py``), checked here too."""

from __future__ import annotations

import warnings

import torch

from lightning_causal.callbacks import audit_model
from tests.callbacks.test_trial_newuser17_custom_audit import WeightNorm, _fit, _Linear


class _Fails(WeightNorm):
    def dry_run(self, model, probe):
        return None

    def run(self, model, probe, *, max_batch_size=None):
        raise RuntimeError("no weights today")


class _NaN(WeightNorm):
    def dry_run(self, model, probe):
        return None

    def run(self, model, probe, *, max_batch_size=None):
        result = super().run(model, probe)
        result.vectors["w"] = torch.tensor([float("nan"), 1.0, 2.0])
        return result


def _said(caught, text: str) -> list[warnings.WarningMessage]:  # noqa: ANN001
    return [w for w in caught if text in str(w.message)]


def test_a_failed_audit_is_said_at_the_users_fit_line_and_filtered_by_its_module(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _fit(tmp_path, [_Fails(0, name="fails")], on_error="warn")
    said = _said(caught, "Causal audit 'fails' failed at epoch")
    assert len(said) == 2  # one per epoch
    assert {w.filename for w in said} == {_fit.__code__.co_filename}  # before: lightning_causal/callbacks/_audit_run.py
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", message="Causal audit 'fails' failed", module=_fit.__module__)
        _fit(tmp_path / "filtered", [_Fails(0, name="fails")], on_error="warn")
    assert _said(caught, "Causal audit 'fails' failed") == []


def test_an_audits_nan_values_are_said_at_the_users_fit_line(tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _fit(tmp_path, [_NaN(0, name="nan")])
    said = _said(caught, "Causal audit 'nan' at epoch 0 produced NaN or infinite values in ['w']")
    assert len(said) == 1
    assert said[0].filename == _fit.__code__.co_filename  # before: lightning_causal/callbacks/_audit_run.py


def test_audit_model_says_nan_values_at_its_callers_line():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audit_model(_Linear(), [_NaN(0, name="nan")], torch.randn(8, 3), probe_size=4)
    said = _said(caught, "Audit 'nan' produced NaN or infinite values in ['w']")
    assert len(said) == 1
    assert said[0].filename == __file__


def test_a_report_not_written_is_said_at_the_users_fit_line(tmp_path, monkeypatch):
    from lightning_causal.callbacks import _audit_run

    def full_disk(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(_audit_run, "write_report", full_disk)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _fit(tmp_path, [WeightNorm(0, name="w")], on_error="warn")
    said = _said(caught, "could not be written to `report_dir`")
    assert len(said) == 2 and "training continues and the epoch is recorded as failed" in str(said[0].message)
    assert {w.filename for w in said} == {_fit.__code__.co_filename}  # before: lightning_causal/callbacks/_audit_run.py
