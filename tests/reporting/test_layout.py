"""The custom-scalars layout against a list of tags: family patterns that catch only their metric, no
drift tag in a causal-vs-Captum chart, no empty chart, one metric per chart, the same chart in every run."""

from __future__ import annotations

import re

from lightning_causal.reporting.layout import custom_layout
from tests.helpers.writers import RecordingWriter

TAGS = [
    "causal/audit_seconds",
    # CaptumBaseline: causal's own faithfulness, each method's, agreement, drift of its vectors
    "causal/captum_baseline/deletion_auc", "causal/captum_baseline/insertion_auc", "causal/captum_baseline/stability",
    "compare/IntegratedGradients/deletion_auc", "compare/Saliency/deletion_auc",
    "compare/IntegratedGradients/insertion_auc", "compare/Saliency/insertion_auc",
    "compare/IntegratedGradients/spearman", "compare/Saliency/spearman", "compare/LayerConductance-conv2/spearman",
    "compare/Saliency/stability", "compare/Saliency/infidelity", "causal/captum_baseline/infidelity",
    *[f"causal/captum_baseline/drift/mean_abs/{m}/spearman" for m in ("causal", "Saliency", "IntegratedGradients")],
    *[f"causal/input_effect/drift/mean_abs_effect/{m}" for m in ("spearman", "topk_jaccard", "shift")],
    # per-item and per-layer series, plain metrics of different scales
    "causal/input_effect/mean_abs_effect", "causal/input_effect/top5_share",
    "causal/unit_importance/model.conv1/top1_importance", "causal/unit_importance/model.conv2/top1_importance",
    "causal/unit_importance/model.conv1/top5_share",
    "causal/backdoor/anomaly_index/class_0", "causal/backdoor/anomaly_index/class_1", "causal/backdoor/flagged_count",
    "causal/sobol/S/age", "causal/sobol/S/hours_week", "causal/sobol/ST/age", "causal/sobol/sum_S",
    "causal/fairness/positive_rate/group_0", "causal/fairness/positive_rate/group_1", "causal/fairness/cf_gap",
    "causal/causal_graph/n_edges", "causal/causal_graph/faithfulness",
]


def _charts(layout):
    return {(cat, title): spec[1] for cat, charts in layout.items() for title, spec in charts.items()}


def _matches(patterns):
    return sorted(t for t in TAGS if any(re.match(p, t) for p in patterns))


def test_every_series_matches_a_tag_and_every_tag_but_the_time_is_shown():
    charts = _charts(custom_layout(TAGS, items={"age", "hours_week"}))
    for key, patterns in charts.items():
        assert patterns, key
        for p in patterns:
            assert [t for t in TAGS if re.match(p, t)], (key, p)  # no empty series, so no empty chart
    shown = {t for patterns in charts.values() for t in _matches(patterns)}
    assert shown == set(TAGS) - {"causal/audit_seconds"}


def test_runs_that_logged_other_items_layers_and_methods_write_the_same_charts():
    """TensorBoard merges the layouts of the runs in a log directory and drops only identical charts:
    with one exact regex per tag, two runs whose backdoor audit flagged other classes (or whose unit
    audit covered other layers, or whose baseline ran other Captum methods) showed each chart twice."""
    other = [t.replace("class_1", "class_7").replace("model.conv2", "model.fc1").replace("Saliency", "DeepLift")
             .replace("hours_week", "sex") for t in TAGS if "IntegratedGradients" not in t]
    a = _charts(custom_layout(TAGS, items={"age", "hours_week"}))
    b = _charts(custom_layout(other, items={"age", "sex"}))
    shared = set(a) & set(b)
    assert {("causal: backdoor", "anomaly_index"), ("causal: unit_importance", "top1_importance"), ("causal: sobol", "S"),
            ("causal vs captum", "spearman"), ("causal drift", "captum_baseline: spearman")} <= shared
    for key in shared:
        assert a[key] == b[key], key
    both = sorted(set(TAGS) | set(other))  # in the merged view each chart still holds its metric only
    for (cat, title), patterns in a.items():
        tags = [t for t in both if any(re.match(p, t) for p in patterns)]
        if cat.startswith("causal: "):
            assert all(t.split("/", 2)[2] == title or t.split("/", 2)[2].startswith(f"{title}/")
                       or t.endswith(f"/{title}") for t in tags), (title, tags)
            assert not any("/drift/" in t for t in tags)


def test_causal_vs_captum_charts_hold_one_metric_and_no_drift():
    charts = _charts(custom_layout(TAGS))
    compare = {title: _matches(p) for (cat, title), p in charts.items() if cat == "causal vs captum"}
    assert set(compare) == {"deletion_auc", "insertion_auc", "spearman", "stability", "infidelity"}
    assert compare["spearman"] == ["compare/IntegratedGradients/spearman", "compare/LayerConductance-conv2/spearman",
                                   "compare/Saliency/spearman"]  # 3 series, no drift/.../spearman
    assert compare["deletion_auc"] == ["causal/captum_baseline/deletion_auc", "compare/IntegratedGradients/deletion_auc",
                                       "compare/Saliency/deletion_auc"]
    for title, tags in compare.items():
        assert all(t.rsplit("/", 1)[1] == title for t in tags) and not any("drift" in t for t in tags)


def test_audit_charts_group_items_and_layers_never_metrics():
    charts = {key: _matches(p) for key, p in _charts(custom_layout(TAGS, items={"age", "hours_week"})).items()}
    assert charts[("causal: unit_importance", "top1_importance")] == [
        "causal/unit_importance/model.conv1/top1_importance", "causal/unit_importance/model.conv2/top1_importance"]
    assert charts[("causal: unit_importance", "top5_share")] == ["causal/unit_importance/model.conv1/top5_share"]
    assert charts[("causal: backdoor", "anomaly_index")] == ["causal/backdoor/anomaly_index/class_0", "causal/backdoor/anomaly_index/class_1"]
    assert charts[("causal: backdoor", "flagged_count")] == ["causal/backdoor/flagged_count"]
    assert charts[("causal: sobol", "S")] == ["causal/sobol/S/age", "causal/sobol/S/hours_week"]
    assert charts[("causal: fairness", "positive_rate")] == ["causal/fairness/positive_rate/group_0", "causal/fairness/positive_rate/group_1"]
    assert charts[("causal: causal_graph", "n_edges")] == ["causal/causal_graph/n_edges"]  # not beside faithfulness
    assert charts[("causal drift", "input_effect: spearman")] == ["causal/input_effect/drift/mean_abs_effect/spearman"]
    assert len(charts[("causal drift", "captum_baseline: spearman")]) == 3
    for (cat, title), tags in charts.items():  # one metric per chart: the title, per item or per layer
        if cat.startswith("causal: "):
            paths = [t.split("/", 2)[2] for t in tags]
            assert all(p == title or p.startswith(f"{title}/") or p.endswith(f"/{title}") for p in paths), (title, tags)


def test_two_audit_callbacks_on_one_run_share_one_layout_and_keep_their_cards():
    """TensorBoard reads the last layout of a run: it must hold the charts of every callback."""
    from lightning_causal.audits.base import AuditResult
    from lightning_causal.reporting.tensorboard import TensorBoardRenderer

    writer = RecordingWriter()
    every, sparse = TensorBoardRenderer(), TensorBoardRenderer()
    for step in (3, 7):
        every.render(writer, step, [AuditResult("ie", scalars={"mean_abs_effect": 1.0})], None, step=step)
        sparse.render(writer, step, [AuditResult("sobol", scalars={"sum_S": 1.0})], None, step=step)
    assert {"causal: ie", "causal: sobol"} <= set(writer.layouts[-1])
    assert writer.texts == [("causal/summary", 3), ("causal/summary_2", 3), ("causal/summary", 7), ("causal/summary_2", 7)]


def test_the_group_tags_are_items_as_they_are_written():
    """``meta["group_tags"]`` holds tags already (``tag_safe`` of the groups' names): the renderer takes them as they are.
    Made tags a second time, a group named ``""`` (tag ``_``) became the item ``underscore`` and its rate a chart ``_``
    of its own, beside the other groups' ``positive_rate``."""
    from lightning_causal.audits import AuditResult
    from lightning_causal.reporting.tensorboard import TensorBoardRenderer

    writer = RecordingWriter()
    result = AuditResult("fairness", scalars={"positive_rate/_": 0.25, "positive_rate/a": 0.5, "cf_gap": 0.1},
                         meta={"group_tags": ["_", "a"]})
    TensorBoardRenderer().render(writer, 0, [result], None, step=0)
    assert writer.layouts[-1]["causal: fairness"] == {
        "cf_gap": ["Multiline", ["^causal/fairness/cf_gap$"]],
        "positive_rate": ["Multiline", ["^causal/fairness/positive_rate/[^/]+$"]],
    }
