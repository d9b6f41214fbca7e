"""Two audit callbacks on one trainer (the layermap trial): audits of one name would log one series."""

from __future__ import annotations

import pytest
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
