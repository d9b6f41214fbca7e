"""AuditResult.from_dict (trial newuser19: comparing two runs' results in Python).

``AuditResult.to_dict`` had no inverse: a report read back was a dict, so the library's own readers of results
(``vector_drift`` to compare two runs' vectors, ``markdown_summary``, the figures) could not take it. ``from_dict``
rebuilds the result; ``to_dict(from_dict(d)) == d`` for every built-in audit (images aside: the report keeps only
their shapes), through strict JSON and through ``load_report``.
"""

import json
import math

import pytest
import torch
from torch import nn

from lightning_causal.audits import (
    AuditResult,
    BackdoorAudit,
    CaptumBaseline,
    CausalGraphAudit,
    CounterfactualAudit,
    FairnessAudit,
    InputEffectAudit,
    LayerMapAudit,
    Probe,
    SobolAudit,
    UnitImportanceAudit,
)
from lightning_causal.audits.drift import vector_drift
from lightning_causal.causal.backdoor import Trigger
from lightning_causal.causal.structure.counterfactuals import CounterfactualSettings
from lightning_causal.datasets import make_synthetic_fairness
from lightning_causal.reporting.json_report import load_report, write_report


def _without_images(d):
    return {k: v for k, v in d.items() if k != "images"}


def _tabular():
    torch.manual_seed(0)
    data = make_synthetic_fairness(n=48, seed=0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2)).eval()
    return data, model, Probe(data.x, data.y), {"feature_names": data.columns, "class_names": ["no", "yes"]}


def _image():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(32, 3)).eval()
    mask = torch.zeros(1, 4, 4)
    mask[:, -1:, -1:] = 1
    return model, Probe(torch.rand(12, 1, 4, 4), torch.arange(12) % 3), Trigger(mask, 1.0, target=2)


AUDITS = {  # every built-in audit kind, each run on a small model
    "input_effect": lambda d, m, p, names: InputEffectAudit(**names).run(m, p),
    "unit_importance": lambda d, m, p, names: UnitImportanceAudit(["1"], top_k=3).run(m, p),
    "captum_baseline": lambda d, m, p, names: CaptumBaseline(("Saliency",), **names).run(m, p),
    "fairness": lambda d, m, p, names: FairnessAudit(d.scm, d.sensitive, layers=["1"], feature_names=d.columns).run(m, p),
    "sobol": lambda d, m, p, names: SobolAudit(n=32, **names).run(m, p),
    "causal_graph": lambda d, m, p, names: CausalGraphAudit(["1"], top_k=3).run(m, p),
    "layer_map": lambda d, m, p, names: LayerMapAudit().run(m, p),
    "counterfactual": lambda d, m, p, names: CounterfactualAudit(
        max_samples=2, settings=CounterfactualSettings(steps=30)).run(m, p),
    "backdoor": lambda d, m, p, names: BackdoorAudit(steps=5, class_names=names["class_names"]).run(m, p),
}


def _check_round_trip(r, tmp_path):
    written = json.loads(json.dumps(r.to_dict(), allow_nan=False))
    back = AuditResult.from_dict(written)
    assert _without_images(back.to_dict()) == _without_images(r.to_dict())
    assert back.images == {} and back.scalars == pytest.approx(r.scalars, nan_ok=True)
    for k, v in r.vectors.items():  # every value kept exactly (float64 holds every float32)
        assert back.vectors[k].dtype == torch.float64 and torch.equal(back.vectors[k], v.double()), k
    for k, v in r.maps.items():
        assert torch.equal(back.maps[k], v.double()), k
    doc = load_report(write_report(tmp_path, 0, "epoch_end", [r]))
    assert _without_images(AuditResult.from_dict(doc["audits"][r.audit]).to_dict()) == _without_images(r.to_dict())


@pytest.mark.parametrize("audit", sorted(AUDITS))
def test_every_built_in_result_round_trips_through_json_and_through_a_report(audit, tmp_path):
    r = AUDITS[audit](*_tabular())
    assert r.audit == audit and (r.vectors or r.tables)
    _check_round_trip(r, tmp_path)


def test_a_known_trigger_result_round_trips_its_images_aside(tmp_path):
    model, probe, trigger = _image()
    r = BackdoorAudit(trigger, layers=["1"]).run(model, probe)
    assert set(r.images) == {"trigger", "triggered_inputs"} and "asr" in r.scalars
    _check_round_trip(r, tmp_path)


def test_two_runs_compared_with_vector_drift_and_non_finite_values_come_back():
    nan = AuditResult("demo", scalars={"gap": math.nan}, vectors={"v": torch.tensor([3.0, 2.0, 1.0, math.inf])})
    back = AuditResult.from_dict(json.loads(json.dumps(nan.to_dict())))
    assert math.isnan(back.scalars["gap"]) and back.vectors["v"].tolist() == [3.0, 2.0, 1.0, math.inf]
    run_a = AuditResult.from_dict(AuditResult("e", vectors={"v": torch.tensor([3.0, 2.0, 1.0])}).to_dict())
    run_b = AuditResult.from_dict(AuditResult("e", vectors={"v": torch.tensor([1.0, 2.0, 3.0])}).to_dict())
    assert vector_drift(run_a.vectors, run_b.vectors)["drift/v/spearman"] == pytest.approx(-1.0)


def test_from_dict_refuses_what_is_no_result():
    with pytest.raises(ValueError, match="`data`.*'audit'"):
        AuditResult.from_dict({"scalars": {}})
    with pytest.raises(ValueError, match="schema_version 1 but got 2"):
        AuditResult.from_dict({"audit": "a", "schema_version": 2})
