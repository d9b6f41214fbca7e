"""Render :class:`~lightning_causal.audits.base.AuditResult` objects into TensorBoard.

Scalars reach every logger through the callback (see :func:`scalar_tags`); this module adds the
rich content to a ``SummaryWriter``, every item of one audit epoch at the same ``step``:

- histograms of vectors (``causal/<audit>/histograms/<vector>``, never the tag of a scalar:
  TensorBoard files a tag under one plugin only);
- the cards of a Captum method (its map, its histogram, the drift of its vector) filed under
  ``compare/<method>``, after the causal one in TensorBoard's order (:mod:`~lightning_causal.reporting.card_tags`);
- attribution maps by kind of data (:mod:`~lightning_causal.reporting.figure_kinds`: heatmaps for
  images, lines with the effect overlaid for 1-D sequences, bars of the top features for tabular
  data, text strips for tokens) under ``causal/<audit>/maps/...``;
- images (reversed triggers, ...) upscaled in labelled grids (``causal/<audit>/images/...``;
  counterfactuals as rows input / counterfactual / difference, a column per sample), bars of unit
  importance (``bars/...``; a screen's first-order estimates hatched), bars with confidence intervals of tables
  whose rows hold ``m`` and ``m_ci`` (Sobol' indices, ``intervals/...``), graph figures
  (``graphs/...``) and curves with axis labels (``curves/...``);
- a compact markdown summary per audit epoch (``causal/summary``) and the custom-scalars layout
  (:mod:`~lightning_causal.reporting.layout`).

Figures are drawn on matplotlib's Agg canvas and written as images: no pyplot state.
"""

from __future__ import annotations

import math
import os
import warnings
import weakref
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from matplotlib.backend_bases import FigureCanvasBase
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from torch import Tensor

from lightning_causal.audits.base import AuditResult
from lightning_causal.audits.group_regions import region_text
from lightning_causal.audits.options import tag_safe
from lightning_causal.causal.engine.checks import check_int
from lightning_causal.causal.engine.layer_calls import calls_counted
from lightning_causal.causal.engine.user_frame import outside_package
from lightning_causal.reporting.card_tags import filed, method_names
from lightning_causal.reporting.chart_figures import (
    bar_figure,
    curves_figure,
    interval_bar_figure,
    interval_metrics,
)
from lightning_causal.reporting.comparison import curves_figure as comparison_curves
from lightning_causal.reporting.counterfactual_figures import counterfactual_figure
from lightning_causal.reporting.figure_kinds import (
    KINDS,
    FigureKind,
    MapData,
    ambiguous_frames,
    ambiguous_sequence,
    explained_quantity,
    infer_kind,
    map_figures,
    sequence_layout,
    skip_reason,
)
from lightning_causal.reporting.figure_style import short_labels
from lightning_causal.reporting.glyphs import GlyphsGatheredFigure, glyphs_gathered
from lightning_causal.reporting.graph_figures import graph_figure
from lightning_causal.reporting.image_figures import ImageOrigin, check_origin, image_grid_figure
from lightning_causal.reporting.layer_map_figures import layer_map_figure
from lightning_causal.reporting.layout import custom_layout
from lightning_causal.reporting.map_data import check_marks
from lightning_causal.reporting.summary import check_model_name, check_stage, markdown_summary

__all__ = ["scalar_tags", "TensorBoardRenderer", "markdown_summary", "figure_image"]

_PASSTHROUGH = ("compare/", "causal/")
#: the most characters of an interval row's label naming where its input group lies ("195 (rows 208–223, cols 208–223)"
#: of a 224x224 image): whole, about a third of the figure's width at 9 points
_REGION_CHARS = 34
_CURVE_AXES = {
    # I_c = (med - v_c) / (1.4826 MAD) of the masks' L1 norms: robust standard deviations, not MADs (a class 10 MADs
    # below the median reads 6.74); positive: a mask smaller than the median
    "anomaly_index": ("class", "anomaly index of the mask's L1 norm\n(σ = 1.4826·MAD; > 0: below the median)"),
    "flag_score": ("class", "flag score (flagged at or below the line)"),
}


def scalar_tags(result: AuditResult) -> dict[str, float]:
    """TensorBoard/logger tags of a result's scalars: ``causal/<audit>/<metric>``; metrics already
    named ``compare/...`` (``CaptumBaseline``'s methods, after ``causal/`` in TensorBoard's order) or ``causal/...``
    keep their name. A segment naming one of
    the result's Captum methods (``meta["methods"]``: the drift of ``mean_abs/<method>``) is filed
    under ``compare/``, so that its card follows the causal one in TensorBoard
    (:mod:`~lightning_causal.reporting.card_tags`).

    Args:
        result: an audit's result.

    Examples:
        >>> scalar_tags(AuditResult("ie", scalars={"x": 1.0, "compare/IG/spearman": 0.5}))
        {'causal/ie/x': 1.0, 'compare/IG/spearman': 0.5}
        >>> list(scalar_tags(AuditResult("cb", scalars={"drift/mean_abs/IG/spearman": 0.9}, meta={"methods": ["IG"]})))
        ['causal/cb/drift/mean_abs/compare/IG/spearman']
    """
    if not isinstance(result, AuditResult):  # a dict of a JSON report: its 'scalars' are tags already
        raise TypeError(f"Expected argument `result` to be an AuditResult (audit.run's result; AuditResult.from_dict reads "
                        f"a report's entry) but got {type(result).__name__}")
    out = {}
    methods = method_names(result.meta)
    for key, value in result.scalars.items():
        tag = key if key.startswith(_PASSTHROUGH) else f"causal/{result.audit}/{filed(key, methods)}"
        out[tag] = float(value)
    return out


@dataclass
class _WriterState:
    """What every renderer writing to one ``SummaryWriter`` shares: the scalar tags and item names
    of the custom-scalars layout (one layout per run, covering every audit callback) and the
    renderers, whose order numbers their text cards."""

    tags: set[str] = field(default_factory=set)
    items: set[str] = field(default_factory=set)
    renderers: list[int] = field(default_factory=list)


_WRITERS: weakref.WeakKeyDictionary[Any, _WriterState] = weakref.WeakKeyDictionary()
#: per renderer, the figures its writer's path keeps from one audit to the next, by tag (the counterfactual grid's:
#: ``counterfactual_figure(kept=)``; an audit's image rows': ``map_figures(kept=)``; stores of
#: :mod:`~lightning_causal.reporting.kept_figures`, keyed by matplotlib's style too); outside the renderer, so that a
#: copy or pickle of it (a callback's) holds none
_KEPT: weakref.WeakKeyDictionary[Any, dict[str, dict]] = weakref.WeakKeyDictionary()


class _Prefixed:
    """``writer`` with ``prefix`` put before the tag of every ``add_*`` call that writes one (histograms, images, the
    text card, scalars): what ``TensorBoardLogger(prefix="p")`` puts before the scalars it logs, so that two fits of
    other prefixes in one directory keep their figures apart, as they do their scalars. Everything else is
    ``writer``'s (``add_custom_scalars``, whose patterns carry the prefix already, ``flush``, ``log_dir``)."""

    _TAGGED = frozenset({"add_histogram", "add_image", "add_text", "add_scalar", "add_figure"})

    def __init__(self, writer: Any, prefix: str) -> None:
        self._writer, self._prefix = writer, prefix

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._writer, name)
        if name not in self._TAGGED:
            return attr
        return lambda tag, *args, **kwargs: attr(self._prefix + tag, *args, **kwargs)


def _tagged(writer: Any, prefix: str) -> Any:
    """``writer``, or :class:`_Prefixed` around it where ``prefix`` is not empty."""
    return _Prefixed(writer, prefix) if prefix else writer


def _shared(writer: Any) -> _WriterState:
    try:
        return _WRITERS.setdefault(writer, _WriterState())
    except TypeError:  # an object without weak references: its own state
        return _WriterState()


class _FigureKeeper:
    """A stand-in writer for :meth:`TensorBoardRenderer.figures`: keeps the figures by tag and writes nothing else."""

    def __init__(self) -> None:
        self.figures: dict[str, Figure] = {}

    def __getattr__(self, name: str) -> Any:  # add_histogram, add_text, add_custom_scalars, flush: nothing to keep
        if name.startswith("__"):
            raise AttributeError(name)
        return lambda *args, **kwargs: None


def figure_image(fig: Figure) -> np.ndarray:
    """The figure drawn on matplotlib's Agg canvas, as an ``[H, W, 3]`` uint8 array. A figure drawn here before keeps
    its canvas, whose renderer (cleared at each draw) holds the sizes of the texts it measured: a figure drawn again
    with other data (the heatmap rows of the writer's path, ``heatmap_row(reuse=True)``) measures only its new texts
    (a new canvas per draw measured every tick label, title and note again; the same pixels). A figure on a canvas of
    another kind (a pyplot figure's window, ``QtAgg``, ``TkAgg``) is drawn on an Agg canvas of its own and stays on its
    window's, also where the draw fails.

    Args:
        fig: a matplotlib ``Figure``.

    Examples:
        >>> fig = Figure(figsize=(2, 1), dpi=50)
        >>> figure_image(fig).shape
        (50, 100, 3)
        >>> canvas = fig.canvas
        >>> _ = figure_image(fig)
        >>> fig.canvas is canvas
        True
    """
    # the exact class: a GUI canvas (a subclass) is the user's window's, not ours to draw on
    before = fig.canvas
    canvas = before if type(before) is FigureCanvasAgg else FigureCanvasAgg(fig)  # a new canvas takes the figure's place
    try:
        canvas.draw()
    finally:  # also where the draw fails (a text that matplotlib cannot parse): the window keeps its figure
        if type(before) not in (FigureCanvasAgg, FigureCanvasBase):  # a pyplot figure's window: the figure goes back to it
            fig.set_canvas(before)
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()


class TensorBoardRenderer:
    """Writes results to a ``SummaryWriter`` (``TensorBoardLogger.experiment``).

    Args:
        max_samples: probe samples drawn per audit (image, sequence and token maps; counterfactuals).
        bar_top: bars per unit-importance figure (Sobol' figures show the 8 largest groups).
        figure_kind: the kind of data of the attribution maps (one of
            :data:`~lightning_causal.reporting.figure_kinds.KINDS`: ``"frames"``, ``"image"``, ``"points"``, ``"sequence"``,
            ``"sequence_features_last"``, ``"tabular"``, ``"tokens"``); ``None`` infers it from the
            probe's shape (:func:`~lightning_causal.reporting.figure_kinds.infer_kind`). Maps of
            inputs the kind cannot draw are left out with a warning, once per renderer and reason.
            A sequence kind also draws ``[N, T]`` inputs as one channel over time: the Sobol' maps
            and the counterfactuals of such a probe (tabular data has neither figure; its Sobol'
            indices are drawn as bars with intervals).
        image_origin: where row 0 of an image is drawn under the ``"image"`` kind (given or inferred) and the
            ``"frames"`` kind (each frame of a video): ``"upper"``
            (default) at the top, as a photograph; ``"lower"`` at the bottom, as audio tools draw a spectrogram
            ``[N, 1, F, T]`` (its lowest frequency below). It applies alike to the input and map panels of the
            maps, the counterfactuals and the grids of input-space images (reversed triggers) of every audit; the
            text card and the report keep the data's row indices (``rows 10–14`` of a spectrogram: frequency bins 10 to 14).

    Attributes:
        card: the number of this renderer's text card on its run, from 0 (``causal/summary``; 1:
            ``causal/summary_2``, ...); ``None`` (default): in the order renderers first write to the
            writer. :class:`~lightning_causal.callbacks.CausalAuditCallback` sets its position among the
            Trainer's audit callbacks, so that a fit whose ``TensorBoardLogger`` served an earlier fit (a
            sweep reusing one logger) writes its card to ``causal/summary``, not ``causal/summary_2``.

    Examples:
        >>> import torch
        >>> from lightning_causal.audits import AuditResult
        >>> class Recorder:  # records what a SummaryWriter is asked to write
        ...     def __init__(self):
        ...         self.calls = []
        ...     def __getattr__(self, method):
        ...         return lambda *args, **kwargs: self.calls.append((method, args[0] if args else None))
        >>> writer = Recorder()
        >>> result = AuditResult("toy", scalars={"effect": 0.5}, vectors={"importance/fc": torch.tensor([1.0, 0.0])})
        >>> TensorBoardRenderer().render(writer, 0, [result], None, figures=False)
        >>> [tag for method, tag in writer.calls if method in ("add_histogram", "add_text")]
        ['causal/toy/histograms/importance/fc', 'causal/summary']
    """

    def __init__(self, max_samples: int = 4, bar_top: int = 16, figure_kind: FigureKind | None = None,
                 image_origin: ImageOrigin = "upper") -> None:
        if figure_kind is not None and figure_kind not in KINDS:
            raise ValueError(f"Expected argument `figure_kind` to be None or one of {KINDS} but got {figure_kind!r}")
        self.image_origin = check_origin(image_origin)
        check_int("max_samples", max_samples, minimum=1)  # 0 drew empty figures, -1 (a slice [:-1]) all samples but the last
        check_int("bar_top", bar_top, minimum=1)
        self.max_samples, self.bar_top, self.figure_kind = max_samples, bar_top, figure_kind
        self.card: int | None = None
        self._skipped: set[str] = set()  # reasons already warned about

    def reset(self) -> None:
        """Forget the warnings given (maps that cannot be drawn): a new fit warns of them again; and the figures kept
        to be drawn again."""
        self._skipped.clear()
        _KEPT.pop(self, None)

    def render(
        self, writer: Any, epoch: int, results: Sequence[AuditResult], probe_inputs: Tensor | None, *,
        step: int | None = None, probe_labels: Tensor | None = None, report: str | os.PathLike | None = None,
        figures: bool = True, scalar_prefix: str = "", stage: str = "epoch_end", model: str | None = None,
        probe_unobserved: Tensor | None = None, probe_times: Tensor | None = None, precision: dict[str, Any] | None = None,
    ) -> None:
        """Write everything of one audit epoch at ``step`` (default ``epoch``); the text card names
        the epoch, the step and the JSON ``report``, and says an audit at the end of fit (``stage``).

        Args:
            writer: a ``SummaryWriter`` (or anything with its ``add_*`` methods).
            epoch: the audited epoch.
            results: the audits' results of that epoch.
            probe_inputs: the probe's (first) input, which the maps are drawn over; ``None``: no map
                figures.
            step: as above.
            probe_labels: the probe's labels, for the maps' titles; ``None``: none.
            report: the JSON report's path, as above (named by its file name where it lies in the writer's ``log_dir``,
                else by this path); ``None``: not named.
            figures: draw the figures and images (maps, bars, graphs, curves, intervals); ``False``: the histograms,
                the text card and the layout only (``CausalAuditCallback(figures_every_n_audits=)``).
            scalar_prefix: what the logger of the scalars puts before their tags (``TensorBoardLogger(prefix="p")``:
                ``"p-"``): put before every tag written here too (``p-causal/<audit>/histograms/...``, the figures, the
                text card ``p-causal/summary``), so that fits of other prefixes logging to one directory keep them
                apart as they do their scalars, and in the custom-scalars layout's patterns, to find the scalars.
            stage: when the audit ran, as the report's (``"epoch_end"``; ``"fit_end"``: the callback's audit at the end of
                fit, which the text card says: :func:`~lightning_causal.reporting.summary.markdown_summary`).
            model: the network explained, its name as the JSON report's ``"model"`` gives it (a ``str``, not the
                module), named on the text card; ``None``: not named.
            probe_unobserved: booleans broadcastable to ``probe_inputs``, ``True`` at the entries the model is told to
                ignore (an observation mask's 0, padded steps or points): the sequence maps hatch them, the point maps
                leave those points out (:func:`~lightning_causal.reporting.map_data.probe_marks` reads them from the
                probe's forward arguments, as the callback does); ``None``: every entry drawn as measured.
            probe_times: each step's time stamp ``[N, T]``, the sequence maps' time axis; ``None``: the steps' indices.
            precision: the JSON report's ``"precision"`` entry (the dtype the audits computed in), said on the text
                card; ``None``: not said.

        Raises:
            ValueError: ``stage`` is not ``"epoch_end"`` nor ``"fit_end"`` (before anything is written).
            TypeError: ``model`` is not ``None`` nor a ``str`` (before anything is written); ``probe_unobserved``
                or ``probe_times`` of another kind or shape (:func:`~lightning_causal.reporting.map_data.check_marks`:
                a ``ValueError`` for a shape).
        """
        check_stage(stage)
        check_model_name(model)
        probe_unobserved, probe_times = check_marks(probe_inputs, probe_unobserved, probe_times)
        step = epoch if step is None else step
        out = _tagged(writer, scalar_prefix)
        for r in results:
            methods = method_names(r.meta)
            for name, vec in r.vectors.items():
                if torch.isfinite(vec).all() and vec.numel() > 0:  # own namespace: a tag holds one kind of data
                    out.add_histogram(f"causal/{r.audit}/histograms/{filed(name, methods)}", vec.detach().float().cpu(), step)
        if figures:
            self.render_figures(writer, results, probe_inputs, step=step, probe_labels=probe_labels, scalar_prefix=scalar_prefix,
                                probe_unobserved=probe_unobserved, probe_times=probe_times)
        shared = _shared(writer)
        if self.card is None and id(self) not in shared.renderers:
            shared.renderers.append(id(self))
        order = shared.renderers.index(id(self)) if self.card is None else self.card  # a second audit callback: its own card
        report_name = _report_name(report, writer)
        tag = "causal/summary" if order == 0 else f"causal/summary_{order + 1}"
        out.add_text(tag, markdown_summary(epoch, results, step=step, report=report_name, stage=stage, model=model,
                                           precision=precision), step)
        self._layout(writer, results, shared, scalar_prefix)
        writer.flush()

    def render_figures(
        self, writer: Any, results: Sequence[AuditResult], probe_inputs: Tensor | None, *, step: int,
        probe_labels: Tensor | None = None, scalar_prefix: str = "", probe_unobserved: Tensor | None = None,
        probe_times: Tensor | None = None,
    ) -> None:
        """Write the figures and images of :meth:`render` only (maps, unit-importance bars, graphs, curves,
        intervals, the results' images) at ``step``: what :meth:`render` leaves out with ``figures=False``,
        drawn later for the same audit (the callback's last audit of a fit, under ``figures_every_n_audits``).

        Args:
            writer: a ``SummaryWriter`` (or anything with its ``add_*`` methods).
            results: the audits' results.
            probe_inputs: the probe's (first) input the maps are drawn over; ``None``: no map figures.
            step: the step to write at (the audit's).
            probe_labels: the probe's labels, for the maps' titles.
            scalar_prefix: put before every tag, as :meth:`render`'s.
            probe_unobserved: the entries the model ignores, as :meth:`render`'s.
            probe_times: each step's time stamp, as :meth:`render`'s.
        """
        marks = check_marks(probe_inputs, probe_unobserved, probe_times)
        with glyphs_gathered():  # names matplotlib's font cannot draw: one warning, not one per character and figure
            self._draw_figures(_tagged(writer, scalar_prefix), results, probe_inputs, step, probe_labels, marks)
        writer.flush()

    def _draw_figures(self, writer: Any, results: Sequence[AuditResult], probe_inputs: Tensor | None, step: int,
                      probe_labels: Tensor | None, marks: tuple[Tensor | None, Tensor | None] = (None, None)) -> None:
        for r in results:
            base = f"causal/{r.audit}"
            for name, vec in r.vectors.items():
                if name.startswith("importance/"):
                    layer = name.split("/", 1)[1]
                    kind = r.meta.get(f"unit_kind/{layer}", "unit")  # "head", "neuron" (sequence layers), else "unit"
                    calls = r.meta.get(f"calls/{layer}")  # a layer run several times per pass: set at every call
                    said = f"\nset at each call: {calls_counted(calls)}" if isinstance(calls, int) and calls > 1 else ""
                    unreached = r.meta.get(f"unreached/{layer}")  # samples it changes nothing of (an exit taken before it)
                    said += f"\n0 for the {unreached} samples it does not reach" if unreached else ""
                    fig = bar_figure(vec, f"{r.audit}: {layer}{said}", self.bar_top, r.meta.get(f"unit_names/{layer}"),
                                     value_label=_unit_value_label(r.meta, kind),
                                     item_label=kind, estimated=_estimated(r, layer, vec.numel()))
                    self._figure(writer, f"{base}/bars/{name}", fig, step)
            self._maps(writer, base, r, probe_inputs, probe_labels, step, marks)
            self._images(writer, base, r, step, probe_inputs)
            for name, graph in r.graphs.items():
                fig = _graph_figure(graph)
                if fig is not None:
                    self._figure(writer, f"{base}/graphs/{name}", fig, step)
            for name, curve in r.curves.items():
                self._figure(writer, f"{base}/curves/{name}", _curve_figure(r, name, curve), step)
            for name, rows in r.tables.items():
                if interval_metrics(rows):  # estimates with confidence intervals, e.g. Sobol' S/ST
                    self._figure(writer, f"{base}/intervals/{name}", _interval_figure(r, name, rows), step)

    def figures(self, results: Sequence[AuditResult], probe_inputs: Tensor | None = None, *,
                probe_labels: Tensor | None = None, probe_unobserved: Tensor | None = None,
                probe_times: Tensor | None = None) -> dict[str, Figure]:
        """The figures :meth:`render` would log for ``results``, as matplotlib figures (``Figure``) by their tags
        (``"causal/input_effect/maps/sample_0"``), with no writer: in a notebook, ``display(fig)`` or
        ``fig.savefig(path)``; each a :class:`~lightning_causal.reporting.glyphs.GlyphsGatheredFigure`, whose drawing
        and saving gather matplotlib's missing-glyph warnings (names in a script its font lacks) into the one warning
        given when it was built, not one per character at every save. Histograms, scalars and the text card are not figures
        (:func:`~lightning_causal.reporting.summary.markdown_summary` gives the card).

        Args:
            results: the audits' results.
            probe_inputs: the probe's (first) input the maps are drawn over; ``None``: no map figures.
            probe_labels: the probe's labels, for the maps' titles.
            probe_unobserved: the entries the model ignores, as :meth:`render`'s.
            probe_times: each step's time stamp, as :meth:`render`'s.

        Examples:
            >>> import torch
            >>> from lightning_causal.audits import InputEffectAudit, Probe
            >>> x = torch.randn(4, 1, 4, 4)
            >>> r = InputEffectAudit(patch_size=2).run(torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(16, 3)), Probe(x))
            >>> sorted(TensorBoardRenderer(max_samples=1).figures([r], x))
            ['causal/input_effect/maps/sample_0']
        """
        keeper = _FigureKeeper()
        self.render(keeper, 0, results, probe_inputs, probe_labels=probe_labels, probe_unobserved=probe_unobserved,
                    probe_times=probe_times)
        return keeper.figures

    @staticmethod
    def _figure(writer: Any, tag: str, fig: Figure, step: int) -> None:
        if isinstance(writer, _FigureKeeper):  # figures(): the Figure itself, saved or shown without a glyph warning each
            fig.__class__ = GlyphsGatheredFigure  # a Figure that gathers them when drawn (a subclass: same state)
            writer.figures[tag] = fig
            return
        writer.add_image(tag, figure_image(fig), step, dataformats="HWC")

    @staticmethod
    def _layout(writer: Any, results: Sequence[AuditResult], shared: _WriterState, prefix: str = "") -> None:
        tags = {t for r in results for t in scalar_tags(r)}
        items = {tag_safe(n) for r in results for key in ("feature_names", "class_names") for n in r.meta.get(key) or ()}
        items |= {str(t) for r in results for t in r.meta.get("group_tags") or ()}  # tags already: tag_safe("_") is 'underscore'
        if not tags <= shared.tags or not items <= shared.items:
            shared.tags |= tags
            shared.items |= items
            writer.add_custom_scalars(custom_layout(shared.tags, shared.items, prefix))

    def _maps(self, writer: Any, base: str, r: AuditResult, inputs: Tensor | None, labels: Tensor | None, step: int,
              marks: tuple[Tensor | None, Tensor | None] = (None, None)) -> None:
        if not r.maps or inputs is None:
            return
        kind = self.figure_kind or infer_kind(inputs, r.meta)
        if kind == "tabular" and all(m.shape[0] == 1 for m in r.maps.values()) and inputs.shape[0] > 1:
            return  # maps over the whole probe of columns (Sobol' indices): the intervals figure draws them
        reason = skip_reason(kind, inputs)
        if reason is not None:
            if reason not in self._skipped:
                self._skipped.add(reason)
                warnings.warn(f"Attribution maps are not drawn in TensorBoard: {reason}", UserWarning, stacklevel=outside_package())
            return
        note = ambiguous_sequence(kind, inputs) or ambiguous_frames(kind, inputs)
        if note is not None and note not in self._skipped:
            self._skipped.add(note)
            warnings.warn(note, UserWarning, stacklevel=outside_package())
        for name, m in r.maps.items():  # an audit of one's own: a map of another shape was left out, silently
            if m.shape[1:] == inputs.shape[1:]:
                continue
            odd = (f"Map {name!r} of audit {r.audit!r} is not drawn in TensorBoard: its shape {list(m.shape)} is not that of the "
                   f"probe's inputs {list(inputs.shape)} past the first dimension (a map per sample [N, ...], or [1, ...] over the "
                   "whole probe, shaped like the input it explains); it is in the JSON report")
            if odd not in self._skipped:
                self._skipped.add(odd)
                warnings.warn(odd, UserWarning, stacklevel=outside_package())
        data = MapData(inputs, dict(r.maps), r.audit, r.meta, labels, self.max_samples, self._origin(kind), *marks)
        # the writer's path draws each figure before the next is built, so rows of one layout redraw one figure, from one
        # audit epoch to the next (figures(): their own); a style (rcParams) changed in the middle of a fit builds them afresh
        keeper = isinstance(writer, _FigureKeeper)
        kept = None if keeper else _KEPT.setdefault(self, {}).setdefault(f"{base}/maps", {})
        for suffix, fig in map_figures(data, self.figure_kind, reuse=not keeper, kept=kept):
            self._figure(writer, f"{base}/{suffix}", fig, step)

    def _origin(self, kind: str | None) -> ImageOrigin:
        """Where row 0 of an image is drawn for figure kind ``kind``: ``image_origin`` for ``"image"`` and ``"frames"``
        (each frame of a video is an image); ``"upper"`` for every other kind (a sequence's channels keep their order)."""
        return self.image_origin if kind in ("image", "frames") else "upper"

    def _images(self, writer: Any, base: str, r: AuditResult, step: int, inputs: Tensor | None = None) -> None:
        """Images of the same count and labels share one upscaled, labelled grid. Counterfactuals of
        ``[N, T]`` inputs (one channel over time) are drawn only under a sequence figure kind; of
        ``[N, T, F]`` inputs, along ``T`` (:func:`~lightning_causal.reporting.figure_kinds.sequence_layout`)."""
        labels = r.meta.get("image_labels") or {}
        groups: dict[tuple, dict[str, Tensor]] = {}
        kind = self.figure_kind or (infer_kind(inputs, r.meta) if inputs is not None else None)
        sequence = kind in ("sequence", "sequence_features_last")
        columns = r.meta.get("counterfactual_inputs") == "columns" and not sequence  # [N, D] columns: the table names the
        # changes; a strip of columns is no picture of them
        transpose = (sequence and inputs is not None and inputs.dim() == 3 and r.meta.get("counterfactual_inputs") == "as_given"
                     and sequence_layout(kind, inputs) == "last")
        if sequence and inputs is not None and inputs.dim() in (2, 3):  # label the steps (and the channels or features)
            last = sequence_layout(kind, inputs) == "last"
            axes = ("time step", "feature") if last else ("step", "channel")  # as the card says its groups: "steps 10–19"
        else:
            axes = None
        origin = self._origin(kind)
        # the writer's path draws each figure before the next audit's, so the grid is one figure redrawn (figures(): its own)
        kept = None if isinstance(writer, _FigureKeeper) else _KEPT.setdefault(self, {}).setdefault(f"{base}/images/counterfactuals", {})
        cf = None if columns else _counterfactual_figure(r, self.max_samples, transpose, axes, origin, kept, frames=kind == "frames")
        if cf is not None:
            self._figure(writer, f"{base}/images/counterfactuals", cf, step)
        for name, img in r.images.items():
            if (cf is not None or columns) and name == "counterfactuals":
                continue
            img = img.unsqueeze(0) if img.dim() == 3 else img
            groups.setdefault((int(img.shape[0]), tuple(labels.get(name) or ())), {})[name] = img
        for (count, names), images in groups.items():
            columns = _with_anomaly(list(names), r) if names else None
            flagged = r.meta.get("flagged", []) if names else []
            group = _group_name(list(images))
            rows = {(name[len(group):].lstrip("_/") or name) if len(images) > 1 else name: img for name, img in images.items()}
            title = (f"{r.audit}: {group}" + (f" at {r.meta['image_frame']}" if r.meta.get("image_frame") else "")  # a clip's
                     + (" per class (red: flagged)" if flagged else " per class" if names else ""))
            chosen = _suspect_columns(r, count, flagged) if names else None
            if chosen is not None:  # more classes than columns: the flagged and most suspect ones, not the first
                rows = {name: img[chosen] for name, img in rows.items()}
                columns = [columns[c] for c in chosen] if columns is not None else None
                flagged = [j for j, c in enumerate(chosen) if c in flagged]
                title += f", the {len(chosen)} most suspect of {count}"
            fig = image_grid_figure(rows, columns, title, flagged, max_columns=_GRID_COLUMNS, origin=origin)
            self._figure(writer, f"{base}/images/{group}", fig, step)


def _report_name(report: str | os.PathLike | None, writer: Any) -> str | None:
    """How the text card names the JSON report: its file name where it lies in the writer's run directory (the default
    ``<log_dir>/causal_audit``), else its path: a report elsewhere (the first of several loggers is not this
    ``TensorBoardLogger``, a ``report_dir`` of your own) is not found beside the event files by its name alone."""
    if report is None:
        return None
    path = os.fspath(report)
    log_dir = getattr(writer, "log_dir", None)  # a SummaryWriter's run directory
    if not isinstance(log_dir, str):
        return os.path.basename(path)
    try:
        inside = os.path.commonpath([os.path.abspath(path), os.path.abspath(log_dir)]) == os.path.abspath(log_dir)
    except ValueError:  # Windows: paths on two drives
        inside = False
    return os.path.basename(path) if inside else path


def _unit_value_label(meta: dict, kind: str) -> str:
    """The unit bars' value axis: what was done to the unit (``UnitImportanceAudit``'s ``meta["do"]``), in two lines
    that fit the bars' height (``"mean |effect| of\\ndo(unit := 0)"``; a scale ``"do(unit := unit × 0.5)"``); for a
    do-grid (``meta["do_grid"]``, K values) the mean range of the interventional curve (CARE's), no |effect| of one
    intervention: ``"mean range over 3 values\\nof do(unit := a)"`` (``"mean range over\\n3 interventions"`` where the
    grid's kinds are mixed); ``"mean |effect| of do(unit)"`` where the result does not say (an audit of one's own)."""
    do, grid = meta.get("do"), meta.get("do_grid")
    said = None
    if isinstance(do, str):
        said = f"do({kind} := {kind} {do})" if do.startswith("×") else f"do({kind} {do})"
    if isinstance(grid, int):
        return f"mean range over {grid} values\nof {said}" if said else f"mean range over\n{grid} interventions"
    return f"mean |effect| of\n{said}" if said else f"mean |effect| of do({kind})"


def _estimated(r: AuditResult, layer: str, units: int) -> list[bool] | None:
    """Which units of ``layer`` hold first-order estimates: those not in ``meta["exact_units/<layer>"]``
    (recorded with a screen or ``method="attribution"``); ``None`` when every value is exact."""
    exact = r.meta.get(f"exact_units/{layer}")
    if exact is None:
        return None
    exact = {int(u) for u in exact}
    return [u not in exact for u in range(units)]


_CAPTION_NAME = 24  # the most characters of a class name in a counterfactual column's caption


def _counterfactual_figure(r: AuditResult, columns: int, transpose: bool = False,
                           sequence_axes: tuple[str, str] | None = None, origin: ImageOrigin = "upper",
                           kept: dict | None = None, *, frames: bool = False) -> Figure | None:
    """CounterfactualAudit's pictures (``images["counterfactuals"]``, one input | counterfactual |
    difference strip per row of ``tables["counterfactuals"]``) as rows of panels, one column per
    sample titled with its label (none with ``towards="runner_up"``), prediction and the counterfactual's prediction
    (of a volume or video, the depth slice drawn, the row's ``depth``, a clip's ``frame``); ``None`` for other results.
    ``transpose``: each panel ``[.., A, B]`` drawn as ``[.., B, A]`` (a features-last sequence ``[T, F]``
    stored as given, drawn with time across); ``sequence_axes``: the labels of a sequence's axes; ``origin``: where each
    image's row 0 is drawn; ``kept``: the figure kept from the last audit, redrawn where it may be
    (:func:`~lightning_causal.reporting.counterfactual_figures.counterfactual_figure`); ``frames``: the input is a
    video drawn as ``figure_kind="frames"``, whose slice is captioned ``frame 3``, as the maps' ``t=3``, not ``depth slice 3``."""
    img, rows = r.images.get("counterfactuals"), r.tables.get("counterfactuals")
    if img is None or not rows or img.dim() != 4 or img.shape[0] != len(rows) or (img.shape[-1] - 2) % 3:
        return None
    from lightning_causal.audits.counterfactual import split_triptych

    k = min(columns, len(rows))
    names = _class_names(r)
    shown_ids = sorted({int(row[key]) for row in rows[:k] for key in ("label", "predicted", "counterfactual_predicted") if key in row}
                       & set(range(len(names or ()))))
    cut = dict(zip(shown_ids, short_labels([names[c] for c in shown_ids], _CAPTION_NAME))) if names else {}

    def name(c: int) -> str:  # cut, the names of one figure kept apart: a column is as wide as its longest line
        return repr(cut[c]) if c in cut else str(c)

    labels = []
    for row in rows[:k]:
        head = f"label {name(row['label'])} → pred {name(row['predicted'])}" if "label" in row else f"pred {name(row['predicted'])}"
        head = head if len(head) <= 20 else head.replace(" → ", "\n→ ")  # long class names: one per line
        labels.append(f"{head}\n→ cf {name(row['counterfactual_predicted'])} " + ("✓" if row["success"] else "✗ not found")
                      + (f"\nframe {row['frame']}" if "frame" in row  # a clip's drawn frame, a volume's slice
                         else f"\n{'frame' if frames else 'depth slice'} {row['depth']}" if "depth" in row else ""))
    failed = [j for j, row in enumerate(rows[:k]) if not row["success"]]
    shown = f" (the first {k} of {len(rows)})" if k < len(rows) else ""
    title = (f"{r.audit}: smallest changes flipping each sample's predicted class to its runner-up{shown}"
             if r.meta.get("towards") == "runner_up" else f"{r.audit}: smallest changes giving each misclassified sample its label{shown}")
    panels = {p: v[:k].transpose(-1, -2) if transpose else v[:k] for p, v in split_triptych(img).items()}
    return counterfactual_figure(panels, labels, failed, title, sequence_axes=sequence_axes, origin=origin, kept=kept)


def _group_name(names: list[str]) -> str:
    prefix = os.path.commonprefix(names).rstrip("_/") if len(names) > 1 else names[0]
    return prefix or "+".join(names)


_GRID_COLUMNS = 10  # classes drawn in a grid of images per class (reversed triggers)


def _suspect_columns(r: AuditResult, count: int, flagged: Sequence[int]) -> list[int] | None:
    """The classes a grid of ``count`` > :data:`_GRID_COLUMNS` classes draws, in class order: the flagged ones, then
    the most suspect by the statistic of the rule (the smallest flag score under the ratio rule, else the largest
    anomaly index); ``None``: every class fits, or no statistic (the first ones are drawn)."""
    if count <= _GRID_COLUMNS:
        return None
    ratio_rule = r.meta.get("max_ratio") is not None and "flag_score" in r.vectors
    values = r.vectors["flag_score"] if ratio_rule else r.vectors.get("anomaly_index")
    if values is None or values.numel() != count:
        return None
    suspicion = values.double() if ratio_rule else -values.double()  # smaller: more suspect
    suspicion = torch.nan_to_num(suspicion, nan=math.inf).tolist()  # an undefined statistic last
    marked = set(flagged)
    order = sorted(range(count), key=lambda c: (c not in marked, suspicion[c], c))
    return sorted(order[:_GRID_COLUMNS])


def _with_anomaly(labels: list[str], r: AuditResult) -> list[str]:
    """Class labels with the statistic that flags them: the flag score ``s`` under the ratio rule
    (``meta["max_ratio"]`` set), else the anomaly index ``AI``."""
    ratio_rule = r.meta.get("max_ratio") is not None and "flag_score" in r.vectors
    values, tag, digits = (r.vectors["flag_score"], "s", 2) if ratio_rule else (r.vectors.get("anomaly_index"), "AI", 1)
    if values is None or values.numel() != len(labels):
        return labels
    return [f"{lab}\n{tag} {float(v):.{digits}f}" for lab, v in zip(labels, values.tolist())]


def _class_names(r: AuditResult) -> list[str] | None:
    names = r.meta.get("class_names")
    return [str(n) for n in names] if names is not None else None


def _curve_figure(r: AuditResult, name: str, curve: dict[str, list[float]]) -> Figure:
    if name in ("deletion", "insertion"):  # CaptumBaseline: causal vs each method, AUC in the legend
        flat = [k for k in curve if k in r.maps and not bool(r.maps[k].ne(0).any())]  # ranks nothing: groups by id
        return comparison_curves({name: curve}, str(r.meta.get("curve_score") or "target score"), r.meta.get("curve_auc"), flat)
    xlabel, ylabel = (r.meta.get("curve_axes") or {}).get(name) or _CURVE_AXES.get(name, ("x", name))
    scale = r.meta.get("anomaly_scale")  # BackdoorAudit: the σ mad_anomaly_index divided by where the MAD is 0
    if name == "anomaly_index" and isinstance(scale, str) and scale != "1.4826·MAD":
        ylabel = f"anomaly index of the mask's L1 norm\n(σ = {scale}: MAD = 0;\n> 0: below the median)"
    ticks = _class_names(r) if xlabel == "class" else None
    blank, x = _blank(curve)
    if blank and len(blank) == len(x):  # an empty chart: its axis promises no number (σ = 1.4826·MAD)
        ylabel = f"{ylabel.splitlines()[0]}\n(NaN at every {xlabel}: none drawn)"
    return curves_figure(curve, f"{r.audit}: {name}{_not_drawn(curve, ticks, xlabel)}", xlabel, ylabel, xticklabels=ticks)


def _blank(curve: dict[str, Any]) -> tuple[list[int], list]:
    """The positions of the abscissa values every series of ``curve`` holds NaN at (a line plot leaves them blank), and
    the abscissa values (``curve["x"]``, else the positions)."""
    series = [ys for key, ys in curve.items() if key != "x" and isinstance(ys, list)]
    if not series:
        return [], []
    x = curve.get("x") or list(range(len(series[0])))
    return [i for i in range(len(x)) if all(i < len(ys) and isinstance(ys[i], float) and math.isnan(ys[i]) for ys in series)], x


def _not_drawn(curve: dict[str, Any], names: list[str] | None, xlabel: str) -> str:
    """The title's word on the abscissa values every series holds NaN at, which a line plot leaves blank: BackdoorAudit's
    class that every probe sample is predicted as had no point and no word (with 2 classes an empty chart, whose y-label
    then says so instead of its scale: :func:`_curve_figure`)."""
    blank, x = _blank(curve)
    if not blank:
        return ""
    shown = [names[i] if names is not None and len(names) == len(x) else str(x[i]) for i in blank[:3]]
    return f" (NaN, not drawn: {xlabel} {', '.join(shown)}{', …' if len(blank) > 3 else ''})"


_GROUP_CHARS = 32  # a fairness group's label with its count: "female × race_Amer-Indi… (n=10)"


def _interval_figure(r: AuditResult, name: str, rows: list[dict]) -> Figure:
    what = explained_quantity(r.meta)
    of = f" of {what}" if what else ""
    level = r.meta.get("confidence")
    ci = f", {100 * level:.6g}% intervals" if isinstance(level, float) else ""  # 99.9%, not a rounded 100%
    bounds = [float(b) for row in rows for m in interval_metrics(rows) for b in row[f"{m}_ci"]]
    if bounds and not np.isfinite(bounds).any():  # NaN intervals (SobolAudit(n_bootstrap=0)): none is drawn
        ci = ", no intervals"
    if name == "groups" and all("positive_rate" in row for row in rows):  # FairnessAudit: every group in its order, by its name
        # a small group shows its count: the name is cut to leave " (n=<count>)" whole ("race_Amer-Indian-Es...=23)" lost "(n")
        counts = [f" (n={row['count']})" for row in rows]
        names = short_labels([str(row.get("name", row["group"])) for row in rows], _GROUP_CHARS - max(map(len, counts)))
        rows = [{**row, "label": name + count} for row, name, count in zip(rows, names, counts)]
        return interval_bar_figure(rows, f"{r.audit}: positive rate per group{ci}", label="label", top=len(rows),
                                   xlabel="share of positive decisions" + (f" ({r.meta['positive_decision']})" if
                                                                            r.meta.get("positive_decision") else ""),
                                   ylabel="group", label_chars=_GROUP_CHARS)
    names = r.meta.get("feature_names")  # the rows are named by them: the axis says what they are
    named = bool(names) and all("feature" in row for row in rows)  # input groups: `feature` the name, `group` the index
    chars = 24
    if not named and any(region_text(row) for row in rows):  # input groups with a box: where each lies, not a bare id
        rows = [{**row, "group": f"{row['group']} ({region_text(row)})" if region_text(row) else row["group"]} for row in rows]
        # whole: a 64x64 image's "12 (rows 48–63, cols 0–15)" was cut to "12 (rows 48–63, cols 0–…", the column lost
        chars = _REGION_CHARS
    return interval_bar_figure(rows, f"{r.audit}: {name}{of}{ci}", label="feature" if named else "group", xlabel="index",
                               ylabel="feature" if names else "group", label_chars=chars)


def _graph_figure(graph: dict) -> Figure | None:
    kind = graph.get("kind")
    if kind == "layer_map":  # one row a layer, sized for a card (layer_map_figures' docstring)
        return layer_map_figure(graph)
    if kind == "causal_graph" or _causal_graph_like(graph):
        return graph_figure(graph)
    return None  # a graph of an audit of one's own in another form: in the JSON report only


def _causal_graph_like(graph: dict) -> bool:
    """Whether ``graph`` has the form of ``CausalGraph.to_dict()`` without its ``kind``: nodes ``{"id", "layer", ...}``
    and edges ``{"source", "target", ...}``, the form ``graph_figure`` draws (another audit's ``{"edges": [[a, b]]}``
    failed inside the drawing, stopping the fit)."""
    nodes, edges = graph.get("nodes", []), graph.get("edges")
    return (isinstance(edges, list) and isinstance(nodes, list)
            and all(isinstance(e, dict) and {"source", "target"} <= e.keys() for e in edges)
            and all(isinstance(n, dict) and {"id", "layer"} <= n.keys() for n in nodes))
