"""TensorBoard's "Ignore outliers in chart scaling" hides two-point custom-scalar series (carried fault). With it on
(its default, kept per browser), TensorBoard's line chart (vz_line_chart2's linear scale, ``extentOfValues``) takes
the y range of the values within their 5% and 95% quantiles (d3.quantile, interpolated): of two values a < b none
lies within [a + 0.05(b - a), a + 0.95(b - a)], so the range falls back to [0, 1], and two audits of a metric
outside it draw no point. Nothing in the written data can stop it: the layout proto has no field for the y range
(checked here on the layout as written, so that a TensorBoard that adds one fails this test and gets used), and the
margin charts that would carry more values per point take exact tags, not the patterns that merge runs' charts.
docs/recipes.md says what to untick."""

from __future__ import annotations

from pathlib import Path

from tensorboard.backend.event_processing.event_accumulator import EventAccumulator
from tensorboard.plugins.custom_scalar import layout_pb2, metadata
from torch.utils.tensorboard import SummaryWriter

from lightning_causal.reporting.layout import custom_layout

ROOT = Path(__file__).resolve().parents[2]


def test_the_written_layout_has_no_field_for_the_y_range_and_the_docs_say_what_to_untick(tmp_path):
    layout = custom_layout(["causal/backdoor/anomaly_index/class_3", "causal/backdoor/anomaly_index/class_5"])
    with SummaryWriter(str(tmp_path)) as writer:
        writer.add_custom_scalars(layout)
    events = EventAccumulator(str(tmp_path), size_guidance={"tensors": 0})
    events.Reload()
    [event] = events.Tensors(metadata.CONFIG_SUMMARY_TAG)
    written = layout_pb2.Layout.FromString(event.tensor_proto.string_val[0])
    [chart] = [c for cat in written.category for c in cat.chart]
    assert chart.WhichOneof("content") == "multiline" and len(chart.multiline.tag) == 1  # one pattern, both classes
    fields = {m.DESCRIPTOR.name: sorted(f.name for f in m.DESCRIPTOR.fields)
              for m in (layout_pb2.Layout, layout_pb2.Category, layout_pb2.Chart, layout_pb2.MultilineChartContent,
                        layout_pb2.MarginChartContent)}
    assert fields == {"Layout": ["category", "version"], "Category": ["chart", "closed", "title"],
                      "Chart": ["margin", "multiline", "title"], "MultilineChartContent": ["tag"],
                      "MarginChartContent": ["series"]}  # nothing of scaling or outliers to write
    recipes = (ROOT / "docs" / "recipes.md").read_text()
    assert 'Untick "Ignore outliers in chart scaling"' in recipes and "custom-scalars tab" in recipes
