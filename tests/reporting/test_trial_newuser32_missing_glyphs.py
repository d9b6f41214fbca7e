"""Names matplotlib's font cannot draw (newuser32 trial: class and feature names in Chinese, an emoji) flooded the
console: matplotlib warns ``Glyph 21271 (...) missing from font(s) DejaVu Sans.`` for each character at each
layout and draw of each figure, again after every change of the warning filters, 21 lines for 3 characters in one
audit epoch of a tabular fit and as many at the next. The renderer gathers them into one warning per character not
named before in the process, which says the figures draw boxes, where the names stay whole and how to add a font."""

import warnings

import matplotlib
import pytest
import torch

from lightning_causal.audits import AuditResult
from lightning_causal.reporting import glyphs
from lightning_causal.reporting.tensorboard import TensorBoardRenderer


class _Images:
    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def _results(names: list[str]) -> list[AuditResult]:  # bars of unit importance and Sobol'-like intervals, named
    rows = [{"group": n, "S": 0.1 * k, "S_ci": [0.0, 0.2 * k]} for k, n in enumerate(names, 1)]
    return [AuditResult("demo", vectors={"importance/fc": torch.arange(4.0)}, tables={"indices": rows},
                        meta={"feature_names": names})]


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    monkeypatch.setattr(glyphs, "_SHOWN", set())


def _render(names: list[str], times: int = 2) -> list[warnings.WarningMessage]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")  # as a console shows them: once per place and message
        for epoch in range(times):
            TensorBoardRenderer().render(_Images(), epoch, _results(names), None)
            with warnings.catch_warnings():  # what the callback does between audits: the record of shown ones is gone
                warnings.simplefilter("ignore")
    return caught


def test_missing_glyphs_are_one_warning_naming_the_characters_and_the_way_out() -> None:
    caught = _render(["北京 temperature", "🌡 temp", "café"])
    assert not [w for w in caught if "missing from font" in str(w.message)]
    [w] = caught
    assert str(w.message).startswith("Matplotlib's font (DejaVu Sans) has no glyph for 北 京 🌡 of the names")
    assert "the JSON report and the text card hold their characters" in str(w.message)
    assert "matplotlib.rcParams['font.family'] = ['DejaVu Sans', 'Noto Sans CJK JP']" in str(w.message)
    assert w.filename == __file__  # the user's line, not matplotlib's or the package's


def test_names_the_font_has_warn_nothing_and_other_warnings_pass_through() -> None:
    assert _render(["café", "Ωmega ß", "a/b"]) == []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with glyphs.glyphs_gathered():
            warnings.warn("something else", RuntimeWarning, stacklevel=1)
    assert [(str(w.message), w.category) for w in caught] == [("something else", RuntimeWarning)]


def test_the_wording_of_older_matplotlib_is_gathered_too() -> None:
    # review of 8337cf8: matplotlib 3.7 and 3.8 (pyproject allows >= 3.7) say "missing from current font.", naming
    # no font; those warnings passed through, one per character and place, as before the change
    old = "Glyph 21271 (\\N{CJK UNIFIED IDEOGRAPH-5317}) missing from current font."
    with warnings.catch_warnings(record=True) as caught, matplotlib.rc_context({"font.family": ["DejaVu Sans"]}):
        warnings.simplefilter("always")
        with glyphs.glyphs_gathered():
            for _ in range(3):
                warnings.warn(old, UserWarning, stacklevel=1)
    [w] = caught
    assert str(w.message).startswith("Matplotlib's font (DejaVu Sans) has no glyph for 北 of the names")
    assert "matplotlib.rcParams['font.family'] = ['DejaVu Sans', 'Noto Sans CJK JP']" in str(w.message)
