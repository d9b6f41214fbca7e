"""Figures kept to be drawn again with other data. The TensorBoard writer's path draws each figure before it asks for
the next, so a figure of the same layout as one drawn before (a heatmap row of another sample or audit epoch, a
video's frames, a signal's bars, the counterfactual grid) is that figure again, its data and title replaced, without
building its axes, ticks and colour bars (most of a figure's cost, benchmarks/RESULTS.md).

A store is a plain ``dict`` (``{}`` at first), the caller's: per call, or the renderer's per tag from one audit epoch to
the next. It holds :class:`KeptFigure` entries (the figure, its title, the panels a redraw puts new data in, and the
layout it is put back to) under ``("figure", key, style)``: ``key`` is what the caller's layout depends on, ``style``
is :func:`style_key`, so that a figure kept through a change of matplotlib's style (``rcParams``: fonts, sizes,
colours, dpi, read when a figure is built) is built afresh (and the figures of the earlier style are let go). A store
kept from one call to the next (the renderer's, from one audit epoch to the next) lets go, at each call's start, of the
figures the last call neither kept nor took (:func:`forget_unused`): a key that changes every epoch (a note of how many
scores are not finite) kept a figure per epoch before, about 1 MB each."""

from __future__ import annotations

from collections.abc import Hashable, MutableMapping
from dataclasses import dataclass, field
from typing import Any

from matplotlib import rcParams
from matplotlib.figure import Figure
from matplotlib.layout_engine import ConstrainedLayoutEngine
from matplotlib.text import Text

__all__ = ["KeptFigure", "forget_unused", "keep_figure", "kept_figure", "style_key", "subplot_params"]

#: rcParams no figure of the library reads when it is built or drawn on the Agg canvas: the backend (resolved by pyplot
#: at its first use), the GUI's and the file formats' settings
_NOT_DRAWN = ("backend", "interactive", "toolbar", "timezone", "webagg.", "keymap.", "savefig.", "macosx.", "tk.",
              "pdf.", "ps.", "svg.", "pgf.", "animation.")


def style_key() -> int:
    """A hash of matplotlib's style now: every ``rcParams`` entry a figure reads when it is built or drawn (fonts,
    sizes, colours, line widths, ``figure.dpi``, ...; not the backend's, the GUI's or the file formats'). A kept figure
    was built under the style of its key; a style changed since (``matplotlib.rcParams[...] = ...`` or
    ``matplotlib.style.use`` in the middle of a fit) gives another key, and the figure is built afresh. About 0.1 ms
    (0.3 ms under load; benchmarks/RESULTS.md).

    Examples:
        >>> import matplotlib
        >>> before = style_key()
        >>> with matplotlib.rc_context({"font.size": 20}):
        ...     style_key() == before
        False
        >>> style_key() == before
        True
    """
    # dict.items: the values as set, without rcParams' lookup (which resolves the backend)
    return hash(tuple((k, repr(v)) for k, v in dict.items(rcParams) if not k.startswith(_NOT_DRAWN)))


def subplot_params(fig: Figure) -> dict[str, float]:
    """``fig``'s subplot parameters (``left``, ``bottom``, ``right``, ``top``, ``wspace``, ``hspace``), as
    ``fig.subplots_adjust(**params)`` takes them: a kept figure is put back to those it was kept with before it is
    laid out again (:class:`KeptFigure`), and a heatmap row's layout is kept for the next row.

    Args:
        fig: a matplotlib ``Figure``.

    Examples:
        >>> fig = Figure()
        >>> fig.subplots_adjust(left=0.2)
        >>> subplot_params(fig)["left"]
        0.2
    """
    sp = fig.subplotpars
    return {k: getattr(sp, k) for k in ("left", "bottom", "right", "top", "wspace", "hspace")}


@dataclass
class KeptFigure:
    """A figure kept to be drawn again with other data.

    Attributes:
        figure: the figure.
        title: its title (``fig.suptitle``'s ``Text``), or ``None`` where it has none.
        panels: what a redraw puts the new data in, in the caller's own form (the axes of its panels, by row).
        start: the layout it is put back to before it is laid out again, as it was when kept: the subplot parameters
            (:func:`subplot_params`; a figure laid out by ``tight_layout`` or by ``subplots_adjust``), or of a figure
            under the constrained layout each axes' original and active position (the layout, run again at the
            draw, reads the decorations' extents against them).
        used: whether it was kept or taken since the store's last :func:`forget_unused`.
    """

    figure: Figure
    title: Text | None
    panels: Any
    start: dict[str, float] | tuple[tuple[Any, Any, Any, bool], ...]
    used: bool = field(default=True, compare=False)

    def put_back(self) -> None:
        """Put the figure's layout back to :attr:`start`, from where the caller lays it out again as a new figure."""
        if isinstance(self.start, dict):
            self.figure.subplots_adjust(**self.start)
            return
        for ax, original, active, in_layout in self.start:
            ax.set_position(original, which="original")
            ax.set_position(active, which="active")
            ax.set_in_layout(in_layout)  # set_position takes the axes out of the layout


def keep_figure(store: MutableMapping, key: Hashable, figure: Figure, title: Text | None, panels: Any, *,
                alone: bool = False) -> KeptFigure:
    """Keep ``figure`` in ``store`` under ``key`` and the style now (:func:`style_key`), to be taken again by
    :func:`kept_figure`: call it once the figure is built, before it is laid out (or after, for a figure not laid out
    again), as its layout is then put back to what it is now (:attr:`KeptFigure.start`). The store's figures kept
    under another style are forgotten.

    Args:
        store: the caller's store (``{}`` at first).
        key: what the figure's layout depends on (shapes, colour maps, note, figure size, title height, ...).
        figure: the figure.
        title: its title's ``Text`` (what ``fig.suptitle`` returned), or ``None``.
        panels: what a redraw puts the new data in.
        alone: forget the store's other figures (one figure per store: the counterfactual grid's, per tag).

    Examples:
        >>> from matplotlib.backends.backend_agg import FigureCanvasAgg
        >>> store = {}
        >>> fig = Figure()
        >>> kept = keep_figure(store, ("a row", 3), fig, fig.suptitle("x"), fig.subplots(1, 2))
        >>> kept_figure(store, ("a row", 3), ["y"]) is None  # never drawn: not taken
        True
        >>> FigureCanvasAgg(fig).draw()
        >>> kept_figure(store, ("a row", 3), ["y"]) is kept, kept.title.get_text()
        (True, 'y')
    """
    style = style_key()
    if alone:
        store.clear()
    for other in [k for k in store if _is_figure(k) and k[2] != style]:
        del store[other]  # kept under a style changed since: not kept twice, a style changing every epoch kept none
    start: Any = subplot_params(figure)
    if isinstance(figure.get_layout_engine(), ConstrainedLayoutEngine):
        start = tuple((ax, ax.get_position(original=True).frozen(), ax.get_position().frozen(), ax.get_in_layout())
                      for ax in figure.axes)
    kept = KeptFigure(figure, title, panels, start)
    store[("figure", key, style)] = kept
    return kept


def kept_figure(store: MutableMapping | None, key: Hashable, lines: list[str]) -> KeptFigure | None:
    """The figure kept in ``store`` under ``key`` and the style now, titled ``lines`` and its layout put back
    (:meth:`KeptFigure.put_back`), or ``None`` (then the caller builds one) where there is none or it may not be drawn
    again: it has not been drawn since it was built or last changed (``Figure.stale``: a caller that keeps figures
    without drawing them must get figures of their own), or its title set to ``lines`` would have another height (and
    so another layout; the title is then left as it was).

    Args:
        store: the caller's store; ``None``: no figure is kept.
        key: what the figure's layout depends on, as given to :func:`keep_figure`.
        lines: the new title's lines (``[]``: none).

    Examples:
        >>> from matplotlib.backends.backend_agg import FigureCanvasAgg
        >>> store, fig = {}, Figure()
        >>> kept = keep_figure(store, "grid", fig, None, fig.subplots())
        >>> FigureCanvasAgg(fig).draw()
        >>> kept_figure(store, "grid", []) is kept, kept_figure(store, "grid", ["a title"]) is None  # it has none
        (True, True)
    """
    kept = None if store is None else store.get(("figure", key, style_key()))
    if kept is None or kept.figure.stale or not _retitled(kept.title, lines):
        return None
    kept.put_back()
    kept.used = True
    return kept


def forget_unused(store: MutableMapping | None) -> None:
    """Let go of the figures of ``store`` neither kept nor taken since the last call of this function on it: call it at
    the start of each call that draws into a store kept from one call to the next, so that the store holds the figures
    of the last call and of this one only, whatever a long fit changes from one call to the next (a sample's note of
    its scores that are not finite, its title's height, a map's colour map).

    Args:
        store: the caller's store; ``None``: nothing to do.

    Examples:
        >>> store, fig = {}, Figure()
        >>> _ = keep_figure(store, "a row", fig, None, fig.subplots())
        >>> forget_unused(store); len(store)  # kept since: kept for the next call
        1
        >>> forget_unused(store); len(store)  # neither kept nor taken in the call between
        0
    """
    if store is None:
        return
    for key in [k for k in store if _is_figure(k)]:
        kept = store[key]
        if kept.used:
            kept.used = False
        else:
            del store[key]


def _is_figure(key: Any) -> bool:
    """Whether ``key`` of a store is a kept figure's (``("figure", key, style)``; a caller keeps its own entries too)."""
    return isinstance(key, tuple) and len(key) == 3 and key[0] == "figure"


def _retitled(title: Text | None, lines: list[str]) -> bool:
    """Set ``title`` to ``lines`` where its height stays the same; whether it did (no title: whether none is asked)."""
    if title is None:
        return not lines
    height, text = title.get_window_extent().height, title.get_text()
    title.set_text("\n".join(lines))
    if title.get_window_extent().height != height:  # another height: another layout
        title.set_text(text)
        return False
    return True
