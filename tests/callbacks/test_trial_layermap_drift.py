"""Drift across audits (the layermap trial): two callbacks with audits of one name; vectors without a ranking."""

from __future__ import annotations

import warnings

import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from lightning_causal import CausalAuditCallback, InputEffectAudit, LayerMapAudit
from tests.helpers.lightning import quick_trainer, small_module, synthetic_loaders


def test_two_callbacks_with_an_audit_of_one_name_are_refused_before_training(tmp_path):
    # both would log causal/layer_map/... at epoch 1 (one series with two values per step), and each drift
    # would compare with its own previous audit: epoch 0 for the dense callback, none for the sparse one
    dense = CausalAuditCallback([LayerMapAudit(), InputEffectAudit(ace_values=None)], probe_size=8, report_dir=tmp_path / "a")
    sparse = CausalAuditCallback([LayerMapAudit()], probe_size=8, every_n_epochs=2, report_dir=tmp_path / "b")
    with pytest.raises(MisconfigurationException, match=r"distinct names but \['layer_map'\].*`name=`"):
        quick_trainer(callbacks=[dense, sparse], max_epochs=2, default_root_dir=tmp_path).fit(small_module(), *synthetic_loaders())
    assert dense.audited_epochs == [] and sparse.audited_epochs == []


def test_two_callbacks_with_audits_of_distinct_names_run(tmp_path):
    dense = CausalAuditCallback([LayerMapAudit()], probe_size=8, report_dir=tmp_path / "a")
    sparse = CausalAuditCallback([LayerMapAudit(name="layer_map_sparse")], probe_size=8, every_n_epochs=2,
                                 report_dir=tmp_path / "b")
    quick_trainer(callbacks=[dense, sparse], max_epochs=2, default_root_dir=tmp_path).fit(small_module(), *synthetic_loaders())
    assert dense.audited_epochs == [0, 1] and sparse.audited_epochs == [1]
    assert "drift/layer_response/spearman" in dense.last_results["layer_map"].scalars
    assert not any("drift" in k for k in sparse.last_results["layer_map_sparse"].scalars)  # its first audit: no base


def test_topk_jaccard_drift_is_left_out_for_a_vector_without_a_ranking():
    # before: a zero importance vector (all units dead) against arange(8) gave 0.67, against it reversed 0.25:
    # whichever entries torch.topk returned among equal values
    from lightning_causal.audits.drift import vector_drift

    zero, up = torch.zeros(8), torch.arange(8.0)
    for prev, cur in ((zero, up), (zero, up.flip(0)), (up, zero), (torch.tensor([1.0, -1.0, 1.0, -1.0]), torch.arange(4.0))):
        out = vector_drift({"v": prev}, {"v": cur})
        assert "drift/v/topk_jaccard" not in out and "drift/v/shift" in out
    assert vector_drift({"v": up}, {"v": up.flip(0)})["drift/v/topk_jaccard"] == pytest.approx(0.25)  # {3..7} vs {0..4}


def test_a_topk_drift_monitor_skips_the_audit_of_a_constant_vector_with_a_warning(tmp_path):
    from tests.callbacks.test_trial_monitor import Seen, _fit

    stop = Seen("causal/ranked/drift/imp/topk_jaccard", mode="max", patience=3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        _fit(tmp_path, [[1.0, 2.0, 3.0], [1.0, 1.0, 1.0], [3.0, 2.0, 1.0]], stop, max_epochs=6)
    assert stop.seen == []  # audit 1: no drift yet; audits 2 and 3: a constant vector on one side
    assert sum("left out this top-k drift" in str(w.message) for w in caught) == 2


def test_drift_of_a_vector_holding_nan_is_nan_not_a_ranking_with_nan_first():
    # before: spearman([1, 2, 3, 4], [4, 3, nan, 1]) = -0.415 and topk_jaccard 0.5 (NaN ranked as the largest
    # entry), so a monitor with check_finite=True went on after the model diverged; scipy says NaN
    from lightning_causal.audits.drift import spearman, topk_jaccard, vector_drift

    a, b = torch.tensor([1.0, 2.0, 3.0, 4.0]), torch.tensor([4.0, 3.0, float("nan"), 1.0])
    assert spearman(a, b) != spearman(a, b) and topk_jaccard(a, b, 2) != topk_jaccard(a, b, 2)
    out = vector_drift({"v": a}, {"v": b})
    assert set(out) == {"drift/v/spearman", "drift/v/topk_jaccard", "drift/v/shift"}
    assert all(v != v for v in out.values())
    assert spearman(a, torch.tensor([4.0, 3.0, float("inf"), 1.0])) == pytest.approx(-0.4)  # infinity still ranks
