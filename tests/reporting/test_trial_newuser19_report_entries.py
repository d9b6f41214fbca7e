"""write_report keeps every result it is given (trial newuser19: reports written by hand, as the Fabric recipe does).

The report files its results by audit name, so two results of one name (two ``UnitImportanceAudit`` on different
layers, both named ``unit_importance`` unless given ``name=``) left one entry: the other was silently dropped. And
``extra`` entries replaced the report's own ``epoch``, ``stage``, ``schema_version`` or ``audits`` without a word.
Both are refused now, naming what clashed.
"""

import json

import pytest

from lightning_causal.audits import AuditResult
from lightning_causal.reporting.json_report import load_report, write_report


def test_two_results_of_one_name_are_refused_not_merged(tmp_path):
    first, second = AuditResult("unit_importance", scalars={"a": 1.0}), AuditResult("unit_importance", scalars={"b": 2.0})
    with pytest.raises(ValueError, match=r"`results`.*'unit_importance'.*name="):
        write_report(tmp_path, 0, "epoch_end", [first, second])
    assert list(tmp_path.iterdir()) == []  # nothing half-written


def test_extra_entries_cannot_replace_the_reports_own(tmp_path):
    with pytest.raises(ValueError, match=r"`extra`.*\['epoch'\]"):
        write_report(tmp_path, 3, "epoch_end", [AuditResult("demo")], extra={"epoch": 7, "run": "a"})
    path = write_report(tmp_path, 3, "epoch_end", [AuditResult("demo", scalars={"x": 1.0})], extra={"run": "a"})
    doc = load_report(path)
    assert (doc["epoch"], doc["run"], doc["audits"]["demo"]["scalars"]) == (3, "a", {"x": 1.0})
    assert json.loads(path.read_text())["schema_version"] == 1


def test_a_file_that_is_no_json_is_named_in_the_error(tmp_path):
    # json's own error ("Expecting value: line 1 column 1 (char 0)") named neither the file nor what was expected
    path = tmp_path / "epoch_0000.json"
    path.write_text("epoch 0: all fine\n")
    with pytest.raises(ValueError, match=r"`path` .*epoch_0000\.json.* no JSON: .*line 1 column 1"):
        load_report(path)
