"""leftovers_s31b: a module's later call in a forward pass that returns fewer rows than its first (a block repeated on
the rows not yet halted) was told and worded in three places, each its own way: ``capture``'s warning ("the last call's
rows are not the pass's samples (a module called again on some rows only: ..."), the unit estimators' refusal ("fewer
rows than the pass: a module called again on some of its rows only (... the rows that have not halted yet ...") and
the layer map's note ("its first returning all 2 (a module called again on the rows still running only: ...").
``intervention_hooks.fewer_rows`` tells it and ``fewer_rows_cause`` and ``FEWER_ROWS_FIX`` word it for all three."""

from __future__ import annotations

import warnings

import pytest
import torch

from lightning_causal.causal import capture, layer_causal_map, unit_effects
from lightning_causal.causal.engine.intervention_hooks import (
    FEWER_ROWS_FIX,
    RepeatedCallsWarning,
    fewer_rows,
    fewer_rows_cause,
)
from tests.test_trial_newuser57_halting_rows import HaltingRows, X


def test_the_rows_compared() -> None:
    assert [fewer_rows(r, f) for r, f in [(3, 4), (0, 4), (4, 4), (5, 4), (None, 4), (3, None)]] == [
        True, True, False, False, False, False]


def test_capture_the_unit_estimators_and_the_layer_map_say_the_same_words() -> None:
    model = HaltingRows()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with capture(model, ["block"]):
            model(X)
    said = [str(w.message) for w in seen if issubclass(w.category, RepeatedCallsWarning)]
    assert any(f"its call 2 returned {fewer_rows_cause(3, 4)}; capture {FEWER_ROWS_FIX}" in s for s in said), said
    with pytest.raises(ValueError) as estimator:
        unit_effects(HaltingRows(), X, "block", unit_dim=-1, target=0)
    assert ": " + fewer_rows_cause(9, 12) in str(estimator.value) and f"({FEWER_ROWS_FIX})" in str(estimator.value)
    with pytest.raises(ValueError) as layer_map:
        layer_causal_map(HaltingRows(), X[:2], torch.arange(3), ["block", "head"])
    assert f"at the last of its 2 calls per pass, {fewer_rows_cause(1, 2)}; name {FEWER_ROWS_FIX}" in str(layer_map.value)
