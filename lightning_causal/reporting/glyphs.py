"""Characters of names that matplotlib's font cannot draw (Chinese, Japanese or Korean class names, emoji), said once.

Matplotlib warns ``Glyph 21271 (\\N{CJK UNIFIED IDEOGRAPH-5317}) missing from font(s) DejaVu Sans.`` for each
character at each place a figure is laid out or drawn, again after every change of the warning filters (which
clears Python's record of warnings already shown): 21 lines for three characters in one audit epoch of a tabular
fit, and as many at every audit epoch (a line per character and place: a 1000-class model named in Chinese has
hundreds of characters). :class:`glyphs_gathered` gathers them into one warning naming the characters not named
before in the process, which says where the names stay whole and how to give matplotlib a font that has them; a
:class:`GlyphsGatheredFigure` (what ``TensorBoardRenderer.figures()`` returns) does so whenever it is drawn or saved.
"""

from __future__ import annotations

import re
import warnings
from typing import Any

from matplotlib import rcParams
from matplotlib.figure import Figure

from lightning_causal.causal.engine.user_frame import outside_package

__all__ = ["GlyphsGatheredFigure", "glyphs_gathered"]

# matplotlib 3.11 names the fonts; older releases (pyproject allows 3.7) say "Glyph 21271 (...) missing from current font."
_GLYPH = re.compile(r"Glyph (\d+)(?: \(.*\))? missing from (?:current font|font\(s\) (.+))\.$")


def _current_font() -> str:
    """The font matplotlib draws text with, for its warnings that do not name it (matplotlib < 3.8: "missing from
    current font"): the first of ``rcParams["font.family"]`` resolved to a font file ("DejaVu Sans", not the generic
    "sans-serif"), as newer matplotlib names it."""
    from matplotlib import font_manager

    try:
        path = font_manager.findfont(font_manager.FontProperties(family=rcParams["font.family"]))
        return font_manager.get_font(path).family_name
    except (OSError, RuntimeError, ValueError):  # an unreadable font file: the families as configured
        return ", ".join(rcParams["font.family"])
_SHOWN: set[str] = set()  # characters already named in this process's warnings


def _message(characters: list[str], fonts: str) -> str:
    shown = " ".join(characters[:12]) + (f" and {len(characters) - 12} more" if len(characters) > 12 else "")
    return (f"Matplotlib's font ({fonts}) has no glyph for {shown} of the names in the audits' figures, which draw them "
            "as empty boxes; the JSON report and the text card hold their characters. Install a font "
            "that has them (Noto Sans CJK for Chinese, Japanese and Korean; Noto Emoji for emoji) and put it after the "
            "default in matplotlib's list of fonts to fall back to: matplotlib.rcParams['font.family'] = "
            f"[{fonts.split(', ')[0]!r}, 'Noto Sans CJK JP']")


class glyphs_gathered:  # noqa: N801 - a context manager named as one (contextlib's are functions)
    """Matplotlib's missing-glyph warnings raised inside the block become one ``UserWarning`` naming the characters
    not named before in this process; every other warning is shown as it would have been, after the block.

    Examples:
        >>> from matplotlib.figure import Figure
        >>> from lightning_causal.reporting.tensorboard import figure_image
        >>> fig = Figure()
        >>> _ = fig.text(0.5, 0.5, "鯛 鯛 鯛")
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     with glyphs_gathered():
        ...         _ = figure_image(fig)
        ...         _ = figure_image(fig)
        >>> [str(w.message)[:53] for w in caught]
        ["Matplotlib's font (DejaVu Sans) has no glyph for 鯛 of"]
    """

    def __enter__(self) -> None:
        self._catcher = warnings.catch_warnings(record=True)
        self._caught = self._catcher.__enter__()

    def __exit__(self, *exc: object) -> None:
        self._catcher.__exit__(*exc)
        missing: dict[str, str] = {}
        for w in self._caught:
            match = _GLYPH.match(str(w.message))
            if match is None:  # shown as it would have been
                warnings.showwarning(w.message, w.category, w.filename, w.lineno, w.file, w.line)
            else:
                missing.setdefault(chr(int(match.group(1))), match.group(2) or _current_font())
        new = [c for c in missing if c not in _SHOWN]
        if new:  # at the user's line (a method here, not a generator: contextlib's frame would be that line)
            _SHOWN.update(new)
            warnings.warn(_message(new, missing[new[0]]), UserWarning, stacklevel=outside_package())


class GlyphsGatheredFigure(Figure):
    """A ``Figure`` whose drawing and layout, wherever they happen (``fig.savefig(...)`` in any format, with
    ``bbox_inches="tight"``, a notebook's display), gather matplotlib's missing-glyph warnings as
    :class:`glyphs_gathered` does: characters named before in this process (when the figure was built) are not named
    again, where matplotlib warned once per character at every save. What
    :meth:`~lightning_causal.reporting.tensorboard.TensorBoardRenderer.figures` returns.

    Examples:
        >>> import io
        >>> fig = GlyphsGatheredFigure()
        >>> _ = fig.text(0.5, 0.5, "鮪")
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     fig.savefig(io.BytesIO())
        ...     fig.savefig(io.BytesIO(), format="svg", bbox_inches="tight")
        >>> [w for w in caught if str(w.message).startswith("Glyph")]  # matplotlib's own: none
        []
    """

    def draw(self, renderer: Any) -> None:
        with glyphs_gathered():
            super().draw(renderer)

    def get_tightbbox(self, *args: Any, **kwargs: Any) -> Any:  # savefig(bbox_inches="tight") lays the text out first
        with glyphs_gathered():
            return super().get_tightbbox(*args, **kwargs)
