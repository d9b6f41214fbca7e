"""AuditResult -> TensorBoard and JSON reports."""

from lightning_causal.reporting.json_report import load_report, write_report
from lightning_causal.reporting.tensorboard import (
    TensorBoardRenderer,
    markdown_summary,
    scalar_tags,
)

__all__ = ["TensorBoardRenderer", "load_report", "markdown_summary", "scalar_tags", "write_report"]
