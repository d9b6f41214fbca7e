"""Figures of ``TensorBoardRenderer.figures()`` saved by the user (carried fault): the renderer gathered matplotlib's
missing-glyph warnings into one while it built them (newuser32), but ``fig.savefig(...)`` drew them again outside it,
and matplotlib warned once per character at every save (5 lines for 5 characters, 10 with ``bbox_inches="tight"``)."""

from __future__ import annotations

import io
import pickle
import warnings

import pytest

from lightning_causal.audits import AuditResult
from lightning_causal.reporting import glyphs
from lightning_causal.reporting.glyphs import GlyphsGatheredFigure
from lightning_causal.reporting.tensorboard import TensorBoardRenderer

NAMES = ["北京", "上海", "age", "鯛"]  # DejaVu Sans has none of the 4 Chinese characters


@pytest.fixture(autouse=True)
def _fresh(monkeypatch):
    monkeypatch.setattr(glyphs, "_SHOWN", set())


def _figures():
    rows = [{"group": n, "S": 0.1 * k, "S_ci": [0.0, 0.2 * k]} for k, n in enumerate(NAMES, 1)]
    with warnings.catch_warnings(record=True) as built:
        warnings.simplefilter("always")
        figs = TensorBoardRenderer().figures([AuditResult("demo", tables={"indices": rows}, meta={"feature_names": NAMES})])
    return figs, built


@pytest.mark.parametrize("save", [{}, {"bbox_inches": "tight"}, {"format": "svg"}, {"format": "pdf"}])
def test_saving_the_figures_warns_of_no_glyph_already_named(save):
    figs, built = _figures()
    assert [str(w.message).split(" of the names")[0] for w in built] == [
        "Matplotlib's font (DejaVu Sans) has no glyph for 北 京 上 海 鯛"]
    with warnings.catch_warnings(record=True) as saved:
        warnings.simplefilter("always")
        for fig in figs.values():
            fig.savefig(io.BytesIO(), **save)
    assert saved == []


def test_the_figures_stay_figures_that_pickle_and_name_new_glyphs_once():
    figs, _ = _figures()
    fig, = figs.values()
    assert isinstance(fig, GlyphsGatheredFigure)
    assert isinstance(pickle.loads(pickle.dumps(fig)), GlyphsGatheredFigure)
    fig.axes[0].set_title("鮪")  # a character not named before: one gathered warning, not matplotlib's
    with warnings.catch_warnings(record=True) as saved:
        warnings.simplefilter("always")
        fig.savefig(io.BytesIO())
        fig.savefig(io.BytesIO())
    assert [str(w.message).split(" of the names")[0] for w in saved] == [
        "Matplotlib's font (DejaVu Sans) has no glyph for 鮪"]
