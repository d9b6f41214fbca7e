"""Render :class:`~lightning_causal.audits.base.AuditResult` objects into TensorBoard.

Scalars reach every logger through ``pl_module.log_dict`` (see :func:`scalar_tags`); this module
adds the rich content to a ``SummaryWriter``: histograms of vectors
(``causal/<audit>/histograms/<vector>``, never the tag of a scalar: TensorBoard files a tag under
one plugin only), heatmap grids of attribution
maps (one figure per probe sample), raw images, bar figures of unit importance, bar figures with
confidence intervals of tables whose rows hold ``m`` and ``m_ci`` (Sobol' indices), graph and curve
figures, a markdown summary per audit epoch, and a custom-scalars layout that puts each causal
metric beside its Captum counterpart.
"""

from __future__ import annotations

import re
from typing import Any

import torch
from torch import Tensor

from lightning_causal.audits.base import AuditResult
from lightning_causal.reporting.figures import (
    bar_figure,
    curves_figure,
    heatmap_row,
    interval_bar_figure,
    interval_metrics,
)

__all__ = ["scalar_tags", "TensorBoardRenderer", "markdown_summary"]

_PASSTHROUGH = ("compare/", "captum/", "causal/")


def scalar_tags(result: AuditResult) -> dict[str, float]:
    """TensorBoard/logger tags of a result's scalars: ``causal/<audit>/<metric>``; metrics already
    named ``compare/...``, ``captum/...`` or ``causal/...`` keep their name."""
    out = {}
    for key, value in result.scalars.items():
        tag = key if key.startswith(_PASSTHROUGH) else f"causal/{result.audit}/{key}"
        out[tag] = float(value)
    return out


def _fmt(v: Any) -> str:
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def markdown_summary(epoch: int, results: list[AuditResult], max_rows: int = 10) -> str:
    """A markdown summary of one audit epoch: key scalars and the head of every table."""
    lines = [f"## Causal audit, epoch {epoch}", ""]
    for r in results:
        lines += [f"### {r.audit} ({r.meta.get('seconds', float('nan')):.2f} s)", ""]
        scalars = scalar_tags(r)
        if scalars:
            lines += ["| metric | value |", "|---|---|"] + [f"| {k} | {_fmt(v)} |" for k, v in scalars.items()] + [""]
        for name, rows in r.tables.items():
            if not rows:
                continue
            cols = list(rows[0])
            lines += [f"**{name}**", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
            lines += ["| " + " | ".join(_fmt(row.get(c, "")) for c in cols) + " |" for row in rows[:max_rows]]
            lines.append("")
        for note in r.meta.get("notes", []):
            lines.append(f"- {note}")
    return "\n".join(lines)


def _custom_layout(tags: list[str]) -> dict:
    """Charts: each ``compare/<method>/<metric>`` beside the causal counterpart, one per metric,
    plus one chart per audit holding its scalars."""
    layout: dict[str, dict[str, list]] = {}
    metrics = sorted({t.split("/")[-1] for t in tags if t.startswith(("compare/", "captum/"))})
    if metrics:
        layout["causal vs captum"] = {
            m: ["Multiline", [rf"^(compare|captum)/[^/]+/{re.escape(m)}$", rf"^causal/.*/{re.escape(m)}$"]]
            for m in metrics
        }
    audits = sorted({t.split("/")[1] for t in tags if t.startswith("causal/") and t.count("/") >= 2})
    if audits:
        layout["causal audits"] = {a: ["Multiline", [rf"^causal/{re.escape(a)}/(?!drift/).*"]] for a in audits}
        layout["causal drift"] = {a: ["Multiline", [rf"^causal/{re.escape(a)}/drift/.*spearman"]] for a in audits}
    return layout


class TensorBoardRenderer:
    """Writes results to a ``SummaryWriter`` (``TensorBoardLogger.experiment``).

    Args:
        max_samples: probe samples drawn as heatmap grids per audit.
        bar_top: bars per unit-importance figure.
    """

    def __init__(self, max_samples: int = 4, bar_top: int = 32) -> None:
        self.max_samples, self.bar_top = max_samples, bar_top
        self._layout_tags: set[str] = set()

    def render(self, writer: Any, epoch: int, results: list[AuditResult], probe_inputs: Tensor | None) -> None:
        for r in results:
            base = f"causal/{r.audit}"
            for name, vec in r.vectors.items():
                if torch.isfinite(vec).all() and vec.numel() > 0:  # own namespace: a tag holds one kind of data
                    writer.add_histogram(f"{base}/histograms/{name}", vec.detach().float().cpu(), epoch)
                if name.startswith("importance/"):
                    self._figure(writer, f"{base}/bars/{name}", bar_figure(vec, f"{r.audit} {name}", self.bar_top), epoch)
            self._maps(writer, base, r, probe_inputs, epoch)
            for name, img in r.images.items():
                writer.add_images(f"{base}/images/{name}", _unit_range(img), epoch, dataformats="NCHW")
            for name, graph in r.graphs.items():
                fig = _graph_figure(graph)
                if fig is not None:
                    self._figure(writer, f"{base}/graphs/{name}", fig, epoch)
            for name, curve in r.curves.items():
                self._figure(writer, f"{base}/curves/{name}", curves_figure(curve, f"{r.audit} {name}"), epoch)
            for name, rows in r.tables.items():
                if interval_metrics(rows):  # estimates with confidence intervals, e.g. Sobol' S/ST
                    fig = interval_bar_figure(rows, f"{r.audit} {name}", top=self.bar_top)
                    self._figure(writer, f"{base}/intervals/{name}", fig, epoch)
        writer.add_text("causal/summary", markdown_summary(epoch, results), epoch)
        tags = {t for r in results for t in scalar_tags(r)}
        if not tags <= self._layout_tags:
            self._layout_tags |= tags
            writer.add_custom_scalars(_custom_layout(sorted(self._layout_tags)))
        writer.flush()

    @staticmethod
    def _figure(writer: Any, tag: str, fig: Any, epoch: int) -> None:
        writer.add_figure(tag, fig, epoch, close=True)

    def _maps(self, writer: Any, base: str, r: AuditResult, probe_inputs: Tensor | None, epoch: int) -> None:
        maps = {k: v for k, v in r.maps.items() if v.dim() in (3, 4)}
        if not maps or probe_inputs is None or probe_inputs.dim() not in (3, 4):
            return
        n = min(self.max_samples, probe_inputs.shape[0], *(m.shape[0] for m in maps.values()))
        vmax = {k: float(v[:n].detach().abs().max()) or 1.0 for k, v in maps.items()}  # shared per column
        for i in range(n):
            fig = heatmap_row(probe_inputs[i], {k: v[i] for k, v in maps.items()}, vmax)
            self._figure(writer, f"{base}/maps/sample_{i}", fig, epoch)


def _unit_range(img: Tensor) -> Tensor:
    img = img.detach().float().cpu()
    if img.dim() == 3:
        img = img.unsqueeze(0)
    lo, hi = img.amin(dim=(1, 2, 3), keepdim=True), img.amax(dim=(1, 2, 3), keepdim=True)
    return (img - lo) / (hi - lo).clamp_min(1e-12)


def _graph_figure(graph: dict) -> Any:
    try:
        from lightning_causal.reporting import graph_figures
    except ImportError:
        return None
    kind = graph.get("kind")
    if kind == "layer_map" and hasattr(graph_figures, "layer_map_figure"):
        return graph_figures.layer_map_figure(graph)
    if hasattr(graph_figures, "graph_figure") and "edges" in graph:
        return graph_figures.graph_figure(graph)
    return None
