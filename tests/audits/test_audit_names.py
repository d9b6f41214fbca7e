"""feature_names= and class_names= on the audits that explain inputs or classes: checked against
the probe and the model, used in tags, tables and the meta the figures read."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal import (
    AttributeFlip,
    BackdoorAudit,
    CaptumBaseline,
    FairnessAudit,
    InputEffectAudit,
    Probe,
    SobolAudit,
)
from tests.helpers.lightning import tiny_cnn

FEATURES = ["age", "hours/week", "sex", "income"]


def _tabular():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3))
    x = torch.rand(16, 4, generator=torch.Generator().manual_seed(1))
    x[:, 2] = (x[:, 2] > 0.5).float()
    return model, Probe(x)


@pytest.mark.parametrize("make", [
    lambda **k: InputEffectAudit(ace_values=None, **k),
    lambda **k: CaptumBaseline(("Saliency",), **k),
    lambda **k: SobolAudit(n=32, n_bootstrap=4, **k),
])
def test_names_reach_the_meta_and_are_checked(make):
    model, probe = _tabular()
    r = make(feature_names=FEATURES, class_names=["low", "mid", "high"]).run(model, probe)
    assert r.meta["feature_names"] == FEATURES and r.meta["class_names"] == ["low", "mid", "high"]
    with pytest.raises(ValueError, match=r"`feature_names` to hold one name per .*\(4\) but got 3"):
        make(feature_names=FEATURES[:3]).validate(model, probe)
    with pytest.raises(TypeError, match="`class_names` to be None or a sequence of strings"):
        make(class_names="low mid high")


def test_targets_name_the_explained_class_and_short_class_names_fail():
    model, probe = _tabular()
    r = InputEffectAudit(ace_values=None, feature_names=FEATURES).run(model, probe)
    assert r.meta["targets"] == model(probe.first).argmax(1).tolist()
    assert r.meta["feature_groups"] == [0, 1, 2, 3] and r.tables["top_groups"][0]["feature"] in FEATURES
    r_fixed = CaptumBaseline(("Saliency",), target=2).run(model, probe)
    assert r_fixed.meta["targets"] == [2] * 16
    with pytest.raises(ValueError, match="`class_names` to name class 2 but it holds 2 names"):
        InputEffectAudit(ace_values=None, target=2, class_names=["a", "b"]).run(model, probe)


def test_sobol_tags_and_table_use_tag_safe_names():
    model, probe = _tabular()
    r = SobolAudit(n=64, n_bootstrap=4, top_k=4, feature_names=FEATURES, class_names=["low", "mid", "high"]).run(model, probe)
    assert {k.split("/", 1)[1] for k in r.scalars if k.startswith("S/")} == {"age", "hours_week", "sex", "income"}
    assert {row["feature"]: row["group"] for row in r.tables["indices"]} == {name: g for g, name in enumerate(FEATURES)}
    assert r.meta["target_name"] == ["low", "mid", "high"][r.meta["target"]]


def test_backdoor_class_names_in_tags_tables_and_image_labels():
    torch.manual_seed(0)
    model = tiny_cnn()
    names = [f"digit {k}" for k in range(10)]
    r = BackdoorAudit(steps=2, max_samples=8, class_names=names).run(model, Probe(torch.rand(8, 1, 8, 8)))
    assert {k for k in r.scalars if k.startswith("anomaly_index/")} == {f"anomaly_index/digit_{k}" for k in range(10)}
    assert r.meta["image_labels"]["reversed_masks"] == names and r.meta["class_names"] == names
    assert all(row["name"] == names[row["class"]] for row in r.tables["flagged_classes"])
    unnamed = BackdoorAudit(steps=2, max_samples=8).run(model, Probe(torch.rand(8, 1, 8, 8)))
    assert "anomaly_index/class_3" in unnamed.scalars


def test_fairness_names_the_sensitive_column():
    model, probe = _tabular()
    r = FairnessAudit(AttributeFlip(2), 2, feature_names=FEATURES).run(model, probe)
    assert r.meta["sensitive"] == "sex" and r.meta["feature_names"] == FEATURES
    with pytest.raises(ValueError, match=r"one name per column \(4\) but got 2"):
        FairnessAudit(AttributeFlip(2), 2, feature_names=["a", "b"]).validate(model, probe)
