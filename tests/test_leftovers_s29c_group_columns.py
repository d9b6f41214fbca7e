"""Every audit's table names an input group alike: ``group`` its index (an int), ``feature`` its name where the audit
has ``feature_names`` (audits.group_regions.group_key). Before: SobolAudit's ``indices`` (SobolResult.to_rows) held the
name, or the index as a string ('0'), in ``group`` and no ``feature``, while InputEffectAudit's ``top_groups`` held the
int index in ``group`` and the name in ``feature``: merging the two tables on either column matched nothing."""

import torch
from torch import nn

from lightning_causal.audits import InputEffectAudit, SobolAudit
from lightning_causal.audits.base import AuditResult, Probe
from lightning_causal.reporting import TensorBoardRenderer
from lightning_causal.reporting.json_report import load_report, write_report

NAMES = ["age", "income", "hours"]


def _model() -> nn.Module:
    model = nn.Linear(3, 2)
    with torch.no_grad():  # class 1 reads hours most, then age; income not at all
        model.weight.copy_(torch.tensor([[0.0, 0.0, 0.0], [1.0, 0.0, 3.0]]))
        model.bias.zero_()
    return model


def _tables(names, tmp_path):
    x = torch.randn(64, 3, generator=torch.Generator().manual_seed(0))
    probe = Probe(x)
    results = [InputEffectAudit(target=1, feature_names=names).run(_model(), probe),
               SobolAudit(n=256, target=1, n_bootstrap=8, feature_names=names).run(_model(), probe)]
    report = load_report(write_report(tmp_path, 0, "epoch_end", results))["audits"]  # as a program reads them
    return report["input_effect"]["tables"]["top_groups"], report["sobol"]["tables"]["indices"], results


def test_named_tables_merge_on_group_and_on_feature(tmp_path):
    effects, indices, _ = _tables(NAMES, tmp_path)
    assert [(row["feature"], row["group"]) for row in indices] == [("hours", 2), ("age", 0), ("income", 1)]
    assert [(row["feature"], row["group"]) for row in effects] == [("hours", 2), ("age", 0), ("income", 1)]
    for key in ("group", "feature"):
        merged = {a[key]: (a["mean_abs_effect"], b["ST"]) for a in effects for b in indices if a[key] == b[key]}
        assert list(merged) == [row[key] for row in effects]  # every row found its partner
    assert list(indices[0])[:3] == ["feature", "group", "S"]


def test_unnamed_tables_hold_the_index_only(tmp_path):
    effects, indices, _ = _tables(None, tmp_path)
    assert [row["group"] for row in indices] == [2, 0, 1] == [row["group"] for row in effects]
    assert not any("feature" in row for row in indices + effects)


def test_the_interval_bars_are_labelled_by_the_feature_names(tmp_path):
    _, _, results = _tables(NAMES, tmp_path)
    figure = TensorBoardRenderer().figures(results[1:], None)["causal/sobol/intervals/indices"]
    assert [t.get_text() for t in figure.axes[0].get_yticklabels()] == ["hours", "age", "income"]
    assert figure.axes[0].get_ylabel() == "feature"
    again = AuditResult.from_dict(results[1].to_dict())  # a report's entry draws the same
    figure = TensorBoardRenderer().figures([again], None)["causal/sobol/intervals/indices"]
    assert [t.get_text() for t in figure.axes[0].get_yticklabels()] == ["hours", "age", "income"]
