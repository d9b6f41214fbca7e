"""docs/methods.md's SobolAudit paragraph says what a run reports, checked on runs of the audit (docs trial,
docsuser5: the Sobol'/ICC page followed literally). The tabular recipe's JSON report held maps ``total``/``first``
of the 4-column table and a patch run's table held ``rows``/``cols`` columns, where the page named maps for images
only and the table's columns as (group, S, S_ci, ST, ST_ci)."""

from __future__ import annotations

import re
from pathlib import Path

import torch
from torch import nn

from lightning_causal import Probe, SobolAudit

PAGE = Path(__file__).resolve().parents[1] / "docs" / "methods.md"


def _paragraph() -> str:
    text = PAGE.read_text()
    start = text.index('`SobolAudit(n=1024, feature_mask=None, patch_size=None, target=None, sampler="empirical")`')
    return re.sub(r"\s+", " ", text[start:text.index("## Intrinsic causal contributions", start)])


def test_a_table_run_reports_what_the_page_says():
    torch.manual_seed(0)
    r = SobolAudit(n=256, feature_names=["a", "b", "c"]).run(nn.Linear(3, 2), Probe(torch.randn(64, 3)))
    assert {"S/a", "ST/a", "sum_S", "output_variance"} <= set(r.scalars)
    rows = r.tables["indices"]
    assert list(rows[0]) == ["feature", "group", "S", "S_ci", "ST", "ST_ci"] and rows[0]["feature"] == ["a", "b", "c"][rows[0]["group"]]
    assert "a table (`feature`, the group's name where `feature_names` are given, and `group`, its index" in _paragraph()
    assert [row["ST"] for row in rows] == sorted((row["ST"] for row in rows), reverse=True)
    assert r.maps["total"].shape == (1, 3) and torch.equal(r.maps["total"][0], r.vectors["total"])
    assert "float tables `[N, D]`" in _paragraph()  # the page names the table's maps


def test_a_patch_run_reports_where_each_group_lies_as_the_page_says():
    torch.manual_seed(0)
    cnn = nn.Sequential(nn.Flatten(), nn.Linear(64, 3))
    r = SobolAudit(n=256, patch_size=4, top_k=1).run(cnn, Probe(torch.randn(32, 1, 8, 8)))
    assert {"rows", "cols"} <= set(r.tables["indices"][0])
    assert any(re.fullmatch(r"S/\d+_rows_\d+-\d+_cols_\d+-\d+", k) for k in r.scalars)
    assert r.maps["total"].shape == (1, 1, 8, 8)
    assert "`rows`, `cols` of an image patch" in _paragraph()
