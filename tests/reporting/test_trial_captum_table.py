"""The causal-vs-Captum text table of the TensorBoard summary (trial: captum)."""

from lightning_causal.audits.base import AuditResult
from lightning_causal.reporting.summary import markdown_summary


def test_comparison_table_keeps_the_causal_row_with_many_methods():
    # CaptumBaseline puts the causal reference last; with 6+ methods the table cut at 6 rows dropped it,
    # so the methods' AUCs and stability were shown without the causal values they are read against.
    methods = [{"method": f"M{i}", "spearman": 0.1 * i, "deletion_auc": 0.2} for i in range(7)]
    causal = {"method": "causal", "spearman": "-", "deletion_auc": 0.123}
    r = AuditResult("captum_baseline", tables={"comparison": methods + [causal]}, meta={"seconds": 1.0})
    md = markdown_summary(1, [r])
    assert "| causal | - | 0.123 |" in md
    assert "| M0 |" in md and "(2 more rows in the JSON report)" in md
