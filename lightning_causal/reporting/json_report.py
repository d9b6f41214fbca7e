"""JSON reports: one file per audit epoch; read back with :func:`load_report` (no unpickling)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from lightning_causal.audits.base import SCHEMA_VERSION, AuditResult

__all__ = ["write_report", "load_report", "report_path"]


def report_path(report_dir: str | os.PathLike, epoch: int, stage: str) -> Path:
    suffix = "" if stage == "epoch_end" else f"_{stage}"
    return Path(report_dir) / f"epoch_{epoch:04d}{suffix}.json"


def write_report(
    report_dir: str | os.PathLike, epoch: int, stage: str, results: list[AuditResult], extra: dict | None = None
) -> Path:
    """Write ``{"schema_version", "epoch", "stage", "audits": {name: result}}``; return the path."""
    path = report_path(report_dir, epoch, stage)
    path.parent.mkdir(parents=True, exist_ok=True)
    doc: dict[str, Any] = {
        "schema_version": SCHEMA_VERSION,
        "epoch": epoch,
        "stage": stage,
        "audits": {r.audit: r.to_dict() for r in results},
        **(extra or {}),
    }
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(doc, indent=1, allow_nan=False))
    tmp.replace(path)
    return path


def load_report(path: str | os.PathLike) -> dict[str, Any]:
    """Read a report written by :class:`~lightning_causal.callbacks.CausalAuditCallback`.

    Raises:
        ValueError: if the file is not a lightning_causal report or has an unknown schema version.
    """
    doc = json.loads(Path(path).read_text())
    if not isinstance(doc, dict) or "audits" not in doc:
        raise ValueError(f"Expected a lightning_causal audit report in {str(path)!r} but found no 'audits' key")
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise ValueError(
            f"Expected report schema_version {SCHEMA_VERSION} but got {doc.get('schema_version')!r} in {str(path)!r}"
        )
    return doc
