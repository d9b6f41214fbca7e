"""The reporting functions read ``results`` once, in order: their hints say ``Sequence[AuditResult]``, so a
tuple of results type-checks (mypy --strict flagged ``write_report(..., (result,))``, ``markdown_summary``
and ``TensorBoardRenderer.render``/``figures``: "expected list[AuditResult]"), and a tuple gives what the
same list gives."""

from __future__ import annotations

import json
import typing
from collections.abc import Sequence

import torch

from lightning_causal.audits import AuditResult
from lightning_causal.reporting import TensorBoardRenderer, markdown_summary, write_report

RESULTS = [AuditResult("a", scalars={"x": 1.5}, vectors={"v": torch.tensor([1.0, 2.0])}), AuditResult("b", scalars={"y": -2.0})]


def test_results_hints_are_sequences():
    for func in (write_report, markdown_summary, TensorBoardRenderer.render, TensorBoardRenderer.figures):
        assert typing.get_type_hints(func)["results"] == Sequence[AuditResult], func.__qualname__


def test_a_tuple_of_results_reports_as_the_list(tmp_path):
    as_list = json.loads(write_report(tmp_path / "l", 3, "epoch_end", RESULTS).read_text())
    as_tuple = json.loads(write_report(tmp_path / "t", 3, "epoch_end", tuple(RESULTS)).read_text())
    assert as_tuple["audits"] == as_list["audits"] and sorted(as_list["audits"]) == ["a", "b"]
    assert markdown_summary(3, tuple(RESULTS)) == markdown_summary(3, RESULTS)
    assert TensorBoardRenderer().figures(tuple(RESULTS)).keys() == TensorBoardRenderer().figures(RESULTS).keys()
