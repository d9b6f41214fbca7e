"""What the figures share: their width, the colours of positive and negative values, label text
cut to fit (axis labels kept distinct, titles broken into lines, module paths without their shared prefix) and
the reading of an exported number.

Sized for TensorBoard's image cards, which fit an image into a landscape box of about 380 x 200
pixels: figures about 520 pixels wide (matplotlib's 100 dpi) and about half as high, labels of at
least 9 points.

Scores that are not finite (NaN, +inf, -inf: a NaN gradient of one sample, a diverged model) follow one rule in
every map kind (tabular bars, token strips, image, frame, point and sequence maps):

- drawn: where a score is a colour (a heatmap's pixel, a token's box, a point) in the grey :data:`NOT_FINITE`, a
  colour map's "bad" colour (:func:`not_finite_colours`; matplotlib's own is transparent, which on a white figure
  reads as a score of 0), a heatmap's pixel (image, frame and sequence maps, the attribution grid) also ringed (one grey pixel among pale blue ones
  is hard to find: :func:`~lightning_causal.reporting.not_finite_marks.ring_not_finite`; smaller rings where more
  than a quarter of the map's cells are ringed, none where the whole map is grey), a point as a grey cross (a
  grey dot reads as a pale blue one among many); where it is a length (a bar: a tabular feature's mean |score|, a
  signal's step) as no bar (:func:`step_bars`).
- order: below every finite score: last in a largest-first ranking (:func:`largest_first`), so out of a top-k chart;
  drawn under the finite points of a point map.
- scale: it counts towards no colour scale or axis: a map's limit is its largest finite |score|
  (:func:`~lightning_causal.reporting.image_figures.finite_peak`), and a scale is signed (diverging) only where a
  finite score is below 0 (:func:`has_negative`).
- note: beside the drawing, ``"k of n scores are not finite (NaN/inf)"`` and how they are drawn
  (:func:`not_finite_note`: ``": grey"``, ``": grey, ringed"``, ``": grey crosses"``, ``": no bar for x1, x2"``;
  ``"all n scores are not finite (NaN/inf): grey"`` of a heatmap all grey), after the map's name where a figure holds
  several maps (:func:`not_finite_notes`): a tabular chart's caption, a token strip's title, the note under a heatmap row (image, frame and
  point maps) or a sequence's figure. ``n`` counts the scores the figure draws from (a sample's map; a tabular
  chart's scores of every sample).
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Sequence
from typing import Any

from lightning_causal.causal.engine.checks import check_int
from lightning_causal.reporting.not_finite_marks import RINGED

__all__ = ["MAGNITUDE", "MAX_BARS", "NEG", "NOT_FINITE", "POS", "WIDTH", "has_negative", "largest_first", "layer_labels",
           "left_out_prefix", "not_finite_colours", "not_finite_note", "not_finite_notes", "numbers_named", "path_tail", "short_label", "short_labels", "step_bars",
           "strip_common_prefix", "title_lines", "to_float", "wrapped_at_separators"]

WIDTH = 5.2  # inches at 100 dpi: 520 pixels, about the width of a TensorBoard image card
POS, NEG = "tab:red", "tab:blue"
MAGNITUDE = "0.45"  # bars of values without a sign (a mean |effect|): no red/blue direction implied
#: more steps than this are drawn as one outline per sign (:func:`step_bars`): a bar is then under 2 pixels wide
#: in a card, and matplotlib builds about one bar a millisecond (3 s a figure of a 2,000-step signal)
MAX_BARS = 256
#: the colour of a score that is not finite (NaN, +-inf) wherever a score is drawn as a colour (the module's rule)
NOT_FINITE = "0.75"
_LAST_COMPARISON = re.compile(r"(<=|>=|!=|==|<|>|=)[^<>=!]*$")  # a name's last '=value', '<=30', '>30'


def step_bars(ax: Any, values: Sequence[float], colours: tuple[Any, Any], *, bars: Sequence[Any] | None = None,
              **kwargs: Any) -> list[Any]:
    """Bars of width 1 at ``0 .. T-1`` of height ``values[t]`` in ``colours[0]`` (``>= 0``) or ``colours[1]``
    (below 0): ``ax.bar`` up to :data:`MAX_BARS` values, else the same bars as one filled step outline per
    sign (``ax.stairs`` on the edges ``t ± 0.5``), two artists whatever ``T``. With ``bars``, the artists an earlier
    call drew on ``ax`` of as many values (a figure kept and drawn again with other data,
    :mod:`~lightning_causal.reporting.kept_figures`): their heights and colours set to ``values`` instead, and ``ax``
    scaled to them again at the draw, as to new ones. A value that is not finite is no bar (the module's rule; an
    infinite bar warned 'invalid value encountered in dot' at every draw).

    Args:
        ax: a matplotlib axes.
        values: the heights, one per step.
        colours: the colours of the non-negative and the negative bars.
        bars: the artists to set, as above (``ax.patches`` of an axes holding only them); ``None``: new ones.
        **kwargs: passed to new artists (``alpha=``).

    Returns:
        The artists: the bars, or the two outlines.

    Examples:
        >>> from matplotlib.figure import Figure
        >>> ax = Figure().subplots()
        >>> drawn = step_bars(ax, [1.0, -2.0], ("red", "blue"))
        >>> again = step_bars(ax, [-3.0, 0.5], ("red", "blue"), bars=drawn)
        >>> [b.get_height() for b in again], [b.get_facecolor()[:3] for b in again]
        ([-3.0, 0.5], [(0.0, 0.0, 1.0), (1.0, 0.0, 0.0)])
    """
    values = [f if math.isfinite(f := float(v)) else math.nan for v in values]  # NaN/inf: no bar (the module's rule)
    if len(values) <= MAX_BARS:
        colour = [colours[0] if v >= 0 else colours[1] for v in values]
        if bars is None:
            return list(ax.bar(range(len(values)), values, width=1.0, color=colour, **kwargs))
        for bar, v, c in zip(bars, values, colour):
            bar.set_height(v)
            bar.set_facecolor(c)
    else:
        edges = [t - 0.5 for t in range(len(values) + 1)]
        signs = ([max(v, 0.0) for v in values], [min(v, 0.0) for v in values])
        if bars is None:
            return [ax.stairs(h, edges, baseline=0.0, fill=True, color=c, **kwargs) for h, c in zip(signs, colours)]
        for outline, h in zip(bars, signs):
            outline.set_data(h, edges, 0.0)
    ax.relim()  # the bars' extent (a NaN bar has none) scales the axes, as new bars' do
    if len(values) > MAX_BARS:
        ax.update_datalim([(-0.5, 0.0)])  # what ax.stairs adds beside its patch: the first edge at the baseline
    ax.autoscale(enable=None)
    return list(bars)


def short_label(text: str, limit: int = 24) -> str:
    """``text`` cut to ``limit`` characters with an ellipsis (axis labels of long feature names;
    the full names are in the JSON report and the text card).

    Args:
        text: the label.
        limit: the most characters kept (the ellipsis included).

    Examples:
        >>> short_label("capital_gain_last_year_in_thousands", 16)
        'capital_gain_la…'
    """
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _kept_value(text: str, limit: int) -> str:
    """``text`` cut to ``limit`` characters; a one-hot column's ``"block=value"`` keeps its value whole and cuts its
    block's name (``"employment_…=unemployed"``): the value is what tells the block's columns apart; so does a
    binned column's comparison (``"monthly_income_in_t…<=30"``: cut at the end, it read as the income itself)."""
    found = _LAST_COMPARISON.search(text)
    if len(text) <= limit or found is None or found.start() == 0 or len(found.group()) > limit - 4:
        return short_label(text, limit)
    return text[: limit - len(found.group()) - 1] + "…" + found.group()


def _cut_apart(texts: list[str], limit: int) -> list[str] | None:
    """Labels of ``texts`` (names that the same cut at the end would merge) of at most ``limit`` characters that
    differ: cut in the middle (start … end) where the end kept holds the whole word where the long ones start to
    differ and all after it; else that part whole after as much of their shared start as fits
    (``"behavioura…07_normalised"``: the middle cut ``"behavioural…7_normalised"`` lost the component's first
    digit); else cut in the middle anyway; else from where they differ, cut at the end (``"…00_monthly_bal…"``);
    ``None`` where none keeps them apart."""
    long = [t for t in texts if len(t) > limit]
    common = len(os.path.commonprefix(long)) if len(long) > 1 else 0
    while common > 0 and long[0][common - 1].isalnum():  # back to the start of the word where they differ
        common -= 1
    width = max((len(t) - common for t in long), default=0)
    head = (limit - 1) // 2
    middles = [t if len(t) <= limit else t[:head] + "…" + t[len(t) - (limit - 1 - head):] for t in texts]
    if len(set(middles)) == len(middles) and (common == 0 or width <= limit - 1 - head):
        return middles
    if 0 < common and width <= limit - 4:  # at least 3 characters of the shared start before the ellipsis
        keep = limit - 1 - width
        shown = [t if len(t) <= limit else t[:keep] + "…" + t[common:] for t in texts]
        if len(set(shown)) == len(shown):
            return shown
    if len(set(middles)) == len(middles):
        return middles
    raw = len(os.path.commonprefix(long)) if len(long) > 1 else 0  # names that differ after a long shared start
    tails = [t if len(t) <= limit else short_label("…" + t[raw:], limit) for t in texts]
    return tails if len(set(tails)) == len(tails) else None


def short_labels(texts: Sequence[str], limit: int = 24) -> list[str]:
    """Axis labels of at most ``limit`` characters that stay distinct: each cut at its end
    (:func:`short_label`; a one-hot column ``"block=value"`` keeps its value, cutting its block's name, a binned
    one ``"income<=30"`` its comparison);
    the names that this cut would merge (and only those) are cut in the middle (start … end) where that keeps the
    word where they start to differ whole, else keep that word and all after it, shortening their shared start
    (``"behavioura…07_normalised"`` of ``behavioural_score_component_<i>_normalised`` columns: the middle cut kept
    the component's last digit only), else cut in the middle, else from where they differ (``"…00_monthly_bal…"``);
    groups whose cuts come out alike (``encoder.layers.10.mlp.fc1[37]``, ``…fc2[37]`` and layer 11's two) are cut apart
    together (``"enc…10.mlp.fc1[37]"``); as a last resort numbered by position.

    Args:
        texts: the labels.
        limit: the most characters of each.

    Examples:
        >>> short_labels(["age", "income_per_household_member_2019", "income_per_household_member_2020"], 16)
        ['age', 'income_…ber_2019', 'income_…ber_2020']
        >>> short_labels(["credit_utilisation_ratio_last_12_months", "employment_status=unemployed"], 24)
        ['credit_utilisation_rati…', 'employment_s…=unemployed']
    """
    texts = [str(t) for t in texts]
    ends = [_kept_value(t, limit) for t in texts]
    merged: dict[str, list[int]] = {}
    for i, e in enumerate(ends):
        merged.setdefault(e, []).append(i)
    out = list(ends)
    for indices in merged.values():
        if len(indices) == 1:
            continue
        apart = _cut_apart([texts[i] for i in indices], limit)
        if apart is None:
            apart = [short_label(f"{i}: {texts[i]}", limit) for i in indices]
        for i, label in zip(indices, apart):
            out[i] = label
    if len(set(out)) == len(out):
        return out
    # names of two merged groups cut apart alike (encoder.layers.10.mlp.fc1[37] beside fc2[37] and layer 11's two: each
    # pair 'encoder.…p.fc1[37]', 'encoder.…p.fc2[37]'): every merged name cut apart together
    cut = [i for indices in merged.values() if len(indices) > 1 for i in indices]
    apart = _cut_apart([texts[i] for i in cut], limit) if cut else None
    if apart is not None:
        for i, label in zip(cut, apart):
            out[i] = label
        if len(set(out)) == len(out):
            return out
    return [t if len(t) <= limit else short_label(f"{i}: {t}", limit) for i, t in enumerate(texts)]


def title_lines(title: str, width: int) -> list[str]:
    """``title`` in lines of at most ``width`` characters: one line if it fits, else broken after
    its last ``": "`` when both parts fit (``"<audit>, sample 0 (label 3):"`` / ``"explains class 3"``),
    else wrapped at spaces, a word longer than a line (a module's path) broken after a dot, an underscore, a slash or
    a hyphen (:func:`_fill`): broken anywhere, ``encoder.layers.1.self_attn.out_proj`` read ``…self_attn.o`` /
    ``ut_proj``.

    Args:
        title: the title.
        width: the most characters per line.

    Raises:
        ValueError: ``width`` is not an int >= 1.

    Examples:
        >>> title_lines("ie, sample 0 (label 'pos'): explains class 'neg'", 30)
        ["ie, sample 0 (label 'pos'):", "explains class 'neg'"]
        >>> title_lines("importance/encoder.layers.1.self_attn.out_proj", 30)
        ['importance/encoder.layers.1.', 'self_attn.out_proj']
    """
    check_int("width", width, minimum=1)  # a width of 0 cut no character off a long word: the loop below never ended
    if len(title) <= width:
        return [title]
    head, sep, tail = title.rpartition(": ")
    if sep and len(head) + 1 <= width and len(tail) <= width:
        return [head + ":", tail]
    return wrapped_at_separators(title, width)


def wrapped_at_separators(text: str, width: int) -> list[str]:
    """``text`` wrapped at its spaces into lines of at most ``width`` characters, a word longer than a line (a module's
    path) broken after a dot, an underscore, a slash or a hyphen (:func:`_fill`; its first piece on the line before
    where one fits there), or anywhere where none fits: the rule of :func:`title_lines` after its ``": "`` and of the
    layer map's key notes.

    Args:
        text: the text.
        width: the most characters per line.

    Raises:
        ValueError: ``width`` is not an int >= 1.

    Examples:
        >>> wrapped_at_separators("left out: model.encoder.layers.10.self_attention (a tuple)", 26)
        ['left out: model.encoder.', 'layers.10.self_attention', '(a tuple)']
    """
    check_int("width", width, minimum=1)
    lines: list[str] = []
    for word in text.split():
        line = lines[-1] if lines else ""
        if line and len(line) + 1 + len(word) <= width:
            lines[-1] = f"{line} {word}"
            continue
        if len(word) > width and line:  # its first piece on the line if one fits there
            cut = _fill(word, width - len(line) - 1)
            if cut:
                lines[-1], word = f"{line} {word[:cut]}", word[cut:]
        while len(word) > width:
            cut = _fill(word, width) or width  # no break within a line: cut at its width
            lines.append(word[:cut])
            word = word[cut:]
        if word:
            lines.append(word)
    return lines


def _fill(word: str, room: int) -> int:
    """How many of ``word``'s first characters fit in ``room`` characters up to a break after a dot, an underscore, a
    slash or a hyphen (the most that do), or 0 where none does.

    Examples:
        >>> _fill("self_attn.out_proj", 12), _fill("self_attn.out_proj", 4)
        (10, 0)
    """
    return max((word.rfind(c, 0, room) + 1 for c in "._/-"), default=0) if room > 0 else 0


def largest_first(scores: Any, k: int) -> list[int]:
    """The indices of the ``k`` largest of ``scores`` (a 1-D tensor), largest first, ties in index order: the order of
    a chart's bars (``topk`` leaves the order of ties unset: a map of 0 drew its features shuffled). A score that is
    not finite comes last (a sort puts NaN and inf first: a feature whose mean |score| one NaN or inf sample made
    non-finite took the top bar, drawn empty; the charts name such features in a note).

    Args:
        scores: one score per item ``[U]``.
        k: how many indices.

    Examples:
        >>> import torch
        >>> largest_first(torch.tensor([0.5, 0.9, 0.5, 0.5]), 3), largest_first(torch.zeros(6), 4)
        ([1, 0, 2], [0, 1, 2, 3])
        >>> largest_first(torch.tensor([float("nan"), 0.5, float("inf"), 0.9]), 4)
        [3, 1, 0, 2]
    """
    if scores.is_floating_point():
        scores = scores.masked_fill(~scores.isfinite(), -math.inf)
    return scores.sort(descending=True, stable=True).indices[:k].tolist()


def not_finite_note(values: Any, drawn: str) -> str:
    """What a figure says of the scores of ``values`` that are not finite (NaN, +-inf; the module's rule):
    ``"k of n scores are not finite (NaN/inf): <drawn>"``, ``n`` the number of ``values``; ``""`` where every one is
    finite; ``"all n scores are not finite (NaN/inf): <drawn>"`` where none is (a heatmap's ``"grey, ringed"`` then
    ``"grey"``: a map all grey gets no rings).

    Args:
        values: the scores the figure draws from (a tensor of any shape).
        drawn: how the figure draws them (``"grey"``, ``"no bar for x1"``).

    Examples:
        >>> import torch
        >>> not_finite_note(torch.tensor([0.5, float("nan"), float("-inf"), 2.0]), "grey")
        '2 of 4 scores are not finite (NaN/inf): grey'
        >>> not_finite_note(torch.tensor([[float("inf"), 1.0]]), "no bar"), not_finite_note(torch.ones(3), "grey")
        ('1 of 2 scores is not finite (NaN/inf): no bar', '')
        >>> not_finite_note(torch.full((2, 2), float("nan")), "grey, ringed")  # a whole grey map: no rings
        'all 4 scores are not finite (NaN/inf): grey'
    """
    if not values.is_floating_point():
        return ""
    count = int((~values.isfinite()).sum())
    if count == 0:
        return ""
    n = values.numel()
    if count == n and n > 1:  # a whole grey map: no ring on it (not_finite_marks), nothing left to find
        return f"all {n} scores are not finite (NaN/inf): {'grey' if drawn == RINGED else drawn}"
    return f"{count} of {n} score{'s' if n > 1 else ''} {'is' if count == 1 else 'are'} not finite (NaN/inf): {drawn}"


def not_finite_notes(maps: dict[str, Any], drawn: str) -> list[str]:
    """The notes of a figure of ``maps`` (name -> a sample's scores) that hold scores that are not finite, one per such
    map (:func:`not_finite_note`), after the map's name where the figure holds several maps (the module's rule).

    Args:
        maps: name -> the scores each map of the figure draws from.
        drawn: how the figure draws them (``"grey"``, ``"no bar"``).

    Examples:
        >>> import torch
        >>> nan = float("nan")
        >>> not_finite_notes({"causal": torch.tensor([nan, 1.0]), "IG": torch.ones(2)}, "grey")
        ['causal: 1 of 2 scores is not finite (NaN/inf): grey']
        >>> not_finite_notes({"causal": torch.tensor([nan, 1.0])}, "no bar")
        ['1 of 2 scores is not finite (NaN/inf): no bar']
    """
    named = len(maps) > 1
    return [f"{name}: {text}" if named else text for name, m in maps.items() if (text := not_finite_note(m, drawn))]


def not_finite_colours(cmap: str) -> Any:
    """The colour map named ``cmap`` with :data:`NOT_FINITE` as its "bad" colour, which ``imshow`` and ``scatter``
    give a NaN or infinite value (they mask both; the module's rule; matplotlib's own bad colour is transparent: such a pixel read as a
    score of 0 on a white figure). The map keeps its name.

    Args:
        cmap: a matplotlib colour map's name (``"RdBu_r"``, ``"Reds"``).

    Examples:
        >>> import math
        >>> grey = not_finite_colours("RdBu_r")
        >>> grey.name, [float(c) for c in grey(math.nan)]
        ('RdBu_r', [0.75, 0.75, 0.75, 1.0])
    """
    from matplotlib import colormaps

    return colormaps[cmap].with_extremes(bad=NOT_FINITE)


def has_negative(values: Any) -> bool:
    """Whether a finite value of ``values`` is below 0: a map drawn on a signed (diverging) scale; a ``-inf``
    counts towards no scale (the module's rule).

    Args:
        values: a map's values (a tensor).

    Examples:
        >>> import torch
        >>> has_negative(torch.tensor([0.5, float("-inf")])), has_negative(torch.tensor([0.5, -0.1]))
        (False, True)
    """
    return bool(((values < 0) & values.isfinite()).any())


def to_float(v: Any) -> float:
    """``float(v)``, NaN where ``v`` is no number (``None``, a missing or non-numeric entry of an exported dict).

    Args:
        v: the value read.

    Examples:
        >>> to_float("0.5"), to_float(None)
        (0.5, nan)
    """
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def strip_common_prefix(names: list[str]) -> list[str]:
    """The names without the dotted prefix they all share (two or more names; each keeps its last part).

    Args:
        names: module paths.

    Examples:
        >>> strip_common_prefix(["model.vit.vit.layers.0.attention", "model.vit.vit.layers.1.mlp", "model.vit.classifier"])
        ['vit.layers.0.attention', 'vit.layers.1.mlp', 'classifier']
        >>> strip_common_prefix(["model.fc"])
        ['model.fc']
    """
    parts = [n.split(".") for n in names]
    common = 0
    if len(parts) >= 2:
        while all(len(p) > common + 1 and p[common] == parts[0][common] for p in parts):
            common += 1
    return [".".join(p[common:]) for p in parts]


def left_out_prefix(layers: list[str], limit: int = 16, whole: dict | None = None) -> str:
    """The module path that the labels of ``layers`` (:func:`numbers_named` of :func:`strip_common_prefix`) all leave
    out, without its last dot, for a figure's title to say: ``"image"`` of ``image.fc`` and ``image.proj`` drawn as ``fc``
    and ``proj``, which a figure of a text tower's ``text.fc`` and ``text.proj`` would draw alike; ``""`` where the
    labels leave nothing out (or not the same for every layer). A path longer than ``limit`` characters keeps its end
    (:func:`path_tail`: the module the layers lie in), so that the title fits the figure. Where that path holds the
    whole model (``whole``, an audit's ``meta["whole_model"]``: a LightningModule's ``self.net``, which says nothing of
    which model), the model's class instead.

    Args:
        layers: module paths.
        limit: the most characters kept (the ellipsis included).
        whole: ``{"path": ..., "class": ...}``, the deepest module holding every parameter of the model and the model's
            class (:func:`~lightning_causal.audits.base.whole_model`), or ``None``.

    Examples:
        >>> left_out_prefix(["image.fc", "image.proj"]), left_out_prefix(["image.fc", "text.fc"]), left_out_prefix(["net.1", "net.3"])
        ('image', '', '')
        >>> left_out_prefix(["model.model.bert.encoder.layer.0", "model.model.bert.encoder.layer.1"])
        '…bert.encoder'
        >>> left_out_prefix(["net.encoder", "net.head"], whole={"path": "net", "class": "Forecaster"})
        'Forecaster'
    """
    labels = numbers_named(layers, strip_common_prefix(layers))
    hidden = {name[: len(name) - len(label)].rstrip(".") for name, label in zip(layers, labels)}
    if len(hidden) != 1 or not next(iter(hidden)):
        return ""
    path = next(iter(hidden))
    if whole and f"{whole['path']}.".startswith(f"{path}."):  # the path holds every parameter: it names no part
        return path_tail(str(whole["class"]), max(limit, 28))  # a class name has no dots to cut at
    return path_tail(path, limit)


def numbers_named(layers: list[str], stripped: list[str]) -> list[str]:
    """Stripped names where a bare number (``1`` of ``net.1``, easily read as a unit) keeps the
    part before it (``net.1``), or, a top-level child of a ``Sequential``, says it is a layer.

    Args:
        layers: the module paths.
        stripped: the same paths without their shared prefix (:func:`strip_common_prefix`).

    Examples:
        >>> numbers_named(["net.1", "net.3"], ["1", "3"]), numbers_named(["0", "2"], ["0", "2"])
        (['net.1', 'net.3'], ['layer 0', 'layer 2'])
    """
    if not any(t.isdigit() for t in stripped):
        return stripped
    out = [".".join(name.split(".")[-t.count(".") - 2:]) for name, t in zip(layers, stripped)]
    return [f"layer {t}" if t.isdigit() else t for t in out]


def path_tail(name: str, limit: int = 28) -> str:
    """A module path cut at its start to at most ``limit`` characters, keeping whole trailing parts
    where it can (the end of a path names the module).

    Args:
        name: the module path.
        limit: the most characters kept (the ellipsis included).

    Examples:
        >>> path_tail("vit.layers.0.attention.q_proj"), path_tail("fc1")
        ('…layers.0.attention.q_proj', 'fc1')
    """
    if len(name) <= limit:
        return name
    tail = ""
    for part in reversed(name.split(".")):
        piece = part if not tail else f"{part}.{tail}"
        if len(piece) + 1 > limit:
            break
        tail = piece
    return "…" + (tail or name[len(name) - limit + 1:])


def layer_labels(layers: list[str], limit: int = 28) -> list[str]:
    """Short labels of module paths: without their shared prefix (:func:`strip_common_prefix`), long
    ones cut at the start (:func:`path_tail`), or, where that makes two alike (paths that differ
    before a long shared end), cut in the middle.

    A bare number keeps the part before it (``layer.0``, not ``0``).

    Args:
        layers: the module paths.
        limit: the most characters of a label.

    Examples:
        >>> layer_labels(["m.blocks.0.residual_attention_projection", "m.blocks.1.residual_attention_projection"], 20)
        ['0.residua…projection', '1.residua…projection']
        >>> layer_labels(["model.bert.encoder.layer.0", "model.bert.encoder.layer.1"])
        ['layer.0', 'layer.1']
    """
    stripped = numbers_named(layers, strip_common_prefix(layers))
    tails = [path_tail(t, limit) for t in stripped]
    if len(set(tails)) == len(tails):
        return tails
    head = (limit - 1) // 2
    return [t if len(t) <= limit else t[:head] + "…" + t[len(t) - (limit - 1 - head):] for t in stripped]
