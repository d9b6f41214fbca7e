"""newuser37: a classifier head grown between audits (class-incremental learning: 5 -> 10 classes).

The drift of a vector compares entry i of two audits; where the vector's length changed (``importance/head``: 5 units
at the audit before the head grew, 10 after it) there is no drift, and the drift series paused without a word in the
report or on the text card. The audit now notes which vector has no drift, and why.
"""

import torch
from torch import nn

from lightning_causal import LayerMapAudit, Probe, UnitImportanceAudit, audit_model
from tests.helpers.models import HeadNet, grown_head


def test_a_vector_whose_length_changed_with_the_head_has_no_drift_and_a_note_saying_why():
    torch.manual_seed(0)
    probe = Probe(torch.randn(8, 4))
    audit = UnitImportanceAudit(["body.0", "head"])
    net = HeadNet(5)
    before = audit_model(net, [audit], probe)
    after = audit_model(grown_head(net, 10), [audit], probe, previous=before)[0]
    assert "drift/importance/head/spearman" not in after.scalars  # 5 units before, 10 now: nothing to compare
    assert "drift/importance/body.0/spearman" in after.scalars  # the unchanged layer's drift goes on
    notes = [n for n in after.meta.get("notes", []) if "importance/head" in n]
    assert notes == ["no drift of importance/head at this audit: 5 entries at the previous audit, 10 now, so entry i is not one "
                     "unit, class or layer in both (the model, or the layers the audit covers, changed between them); it resumes at the next audit"]
    assert not any("body.0" in n for n in after.meta.get("notes", []))


def _chain() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 3))


def test_a_layer_map_of_other_layers_in_the_same_number_has_no_drift_of_layer_response():
    # layer_response holds one entry per mapped layer: 2 layers before and after, but ["0", "4"] are not ["0", "2"]
    # (a layer replaced under another name, a default layer left out as dead and another back); compared before
    probe = Probe(torch.randn(8, 4))
    net = _chain()
    before = audit_model(net, [LayerMapAudit(layers=["0", "2"])], probe)
    same = audit_model(net, [LayerMapAudit(layers=["0", "2"])], probe, previous=before)[0]
    assert same.scalars["drift/layer_response/shift"] == 0.0  # the same layers: compared
    other = audit_model(net, [LayerMapAudit(layers=["0", "4"])], probe, previous=before)[0]
    assert not [k for k in other.scalars if k.startswith("drift/layer_response/")]
    assert other.meta["changed_entries"] == {"layer_response": ["0", "4"]}
    assert any(n.startswith("no drift of layer_response at this audit: its entries are other ones") for n in other.meta["notes"])
