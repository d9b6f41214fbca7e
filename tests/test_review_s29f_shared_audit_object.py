"""One audit object listed in two audit callbacks (newuser53 trial of reused objects): the refusal said to pass `name=` to
the audits of one callback, which on the one object renames it in both callbacks and is refused again; it now says to
build a second audit object. Two objects of one name keep the old way out."""

from __future__ import annotations

import pytest
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from lightning_causal import CausalAuditCallback, InputEffectAudit, LayerMapAudit
from tests.helpers.lightning import quick_trainer, small_module, synthetic_loaders


def _refusal(tmp_path, dense_audits, sparse_audits) -> str:
    dense = CausalAuditCallback(dense_audits, probe_size=8, report_dir=tmp_path / "a")
    sparse = CausalAuditCallback(sparse_audits, probe_size=8, every_n_epochs=2, report_dir=tmp_path / "b")
    with pytest.raises(MisconfigurationException) as info:
        quick_trainer(callbacks=[dense, sparse], max_epochs=1, default_root_dir=tmp_path).fit(small_module(), *synthetic_loaders())
    assert dense.audited_epochs == [] and sparse.audited_epochs == []
    return str(info.value)


def test_one_audit_object_in_two_callbacks_is_told_to_build_a_second_object(tmp_path):
    shared = LayerMapAudit()
    words = _refusal(tmp_path, [shared, InputEffectAudit(ace_values=None)], [shared])
    assert "distinct names but ['layer_map'] are in more than one" in words
    # before: "pass `name=` to the audits of one callback", which renames the one object in both
    assert ("['layer_map'] is one audit object listed in both: build a second audit object for the other callback, with "
            "a `name=` of its own (e.g. `LayerMapAudit(..., name='layer_map_2')`)") in words


def test_two_objects_of_one_name_keep_the_name_way_out(tmp_path):
    words = _refusal(tmp_path, [LayerMapAudit(), InputEffectAudit(ace_values=None)], [LayerMapAudit()])
    assert words.endswith("pass `name=` to the audits of one callback to tell them apart")
    assert "second audit object" not in words
