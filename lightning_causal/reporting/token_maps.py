"""Attribution maps of token ids (integer ``[N, T]``): per sample the tokens as a text strip coloured
by each map, padding at either end left out."""

from __future__ import annotations

import math
from typing import Any

import torch
from matplotlib.figure import Figure
from torch import Tensor

from lightning_causal.reporting.figure_style import NOT_FINITE, WIDTH, not_finite_note
from lightning_causal.reporting.image_figures import finite_peak
from lightning_causal.reporting.image_maps import map_tags
from lightning_causal.reporting.map_data import (
    MapData,
    baseline_of,
    drawn_samples,
    map_limits,
    sample_title,
)

__all__ = ["MAX_STRIPS_HEIGHT", "MAX_WINDOW_LINES", "token_maps"]

# inches: a figure of 598 pixels' width and at most this height is shown at two thirds or more in a TensorBoard
# card (a box of about 400 x 215 pixels); three strips of a three-line sentence were 4.5 inches, shown at 0.48
MAX_STRIPS_HEIGHT = 3.2
#: the most lines of a sentence a strip draws: a longer one (128 tokens: 12 lines, a 598 x 430 figure shown at 0.5,
#: words about 7 pixels high) is drawn as this many lines around its token of largest |score| of the first map, the
#: same lines for every map, holding as many other maps' largest tokens as they can (:func:`_window`), the title
#: saying which tokens and naming a map's largest token left out; 6 lines and two title lines fit in MAX_STRIPS_HEIGHT
MAX_WINDOW_LINES = 6
_NOTE_HEIGHT = 0.2  # inches: a title line naming the window (or a map's largest token left out)


def _strips_height(lines: int, strips: int) -> float:
    """The height in inches of a figure of ``strips`` strips of ``lines`` lines each."""
    return 0.6 + (0.3 * lines + 0.4) * strips


def _unpadded(ids: list[int], scores: list[Tensor]) -> tuple[int, int]:
    """The tokens to draw, ``ids[start:end]``: a trailing run of the last token id (right padding)
    and a leading run of the first (left padding, as GPT-2 and Llama batches are padded) whose
    scores are all 0 are left out (padded positions are not run: their effect is exactly 0); a
    leading run of one token is kept (a first token whose effect happens to be 0)."""
    def blank(k: int) -> bool:
        return all(float(v[k]) == 0.0 for v in scores)

    end = len(ids)
    while end > 1 and ids[end - 1] == ids[-1] and blank(end - 1):
        end -= 1
    start = 0
    while start < end - 1 and ids[start] == ids[0] and blank(start):
        start += 1
    return (start if start >= 2 else 0), end  # one unscored first token ([CLS] of effect 0) is drawn



def _cut(word: str, width: int) -> str:
    """``word``, cut to ``width`` characters with an ellipsis (one long token, a URL, must not push
    the strip's other words off the figure)."""
    return word if len(word) <= width else word[: max(1, width - 1)] + "…"



def _word(vocabulary: list[str] | dict[str, str] | None, token: int) -> str:
    """``token``'s word: ``vocabulary[token]`` (a list) or ``vocabulary[str(token)]`` (a mapping,
    as audits store the words of a probe), else the id itself."""
    if isinstance(vocabulary, dict):
        return str(vocabulary.get(str(token), token))
    return str(vocabulary[token]) if vocabulary is not None and 0 <= token < len(vocabulary) else str(token)



def _token_lines(words: list[str], chars_per_line: int) -> list[list[tuple[int, int, str]]]:
    """Words laid out left to right and wrapped: per line, ``(index, column, word)``."""
    lines: list[list[tuple[int, int, str]]] = [[]]
    col = 0
    for j, w in enumerate(words):
        if col and col + len(w) > chars_per_line:
            lines.append([])
            col = 0
        lines[-1].append((j, col, w))
        col += len(w) + 1
    return lines



def token_maps(data: MapData, chars_per_line: int = 56) -> list[tuple[str, Figure]]:
    """Per sample, one text strip per map: each token (its id, or its word in ``meta["vocabulary"]``)
    boxed in the colour of its score (red positive, blue negative, one symmetric scale per map
    shared by the drawn sentences, as for images: a sentence whose effects are all near 0 stays
    pale; each strip's title gives its own largest |score| and the scale where they differ),
    in a monospace font laid out by word length and wrapped at ``chars_per_line`` (a word longer
    than half a line is cut); padding at either end (a run of the first or last id with all scores
    0) is left out. One figure per sample (``maps/sample_<i>``); where the strips of every map of a
    drawn sentence would be taller than :data:`MAX_STRIPS_HEIGHT` (several maps of a sentence of
    several lines), one figure per sample and map (``maps/sample_<i>/<map>``, the map's name made
    tag-safe) for every drawn sentence, so that each is readable in a TensorBoard card. A sentence of more than
    :data:`MAX_WINDOW_LINES` lines is drawn as that many, each sentence its own: around its token of largest |score|
    of the first map, the same lines in every map's strip and card, holding as many of the other maps' largest tokens
    as they can; the title names the tokens drawn and, in a map's card, that map's largest token where it is left out;
    where ``meta["baseline"]`` says what each token is set to (``InputEffectAudit``), a title line says what the
    scores are against: ``effects against each token set to id 0``.
    A score that is NaN or infinite is a grey box, counts towards no colour scale, and a line under its strip's title
    says "k of n scores are not finite (NaN/inf): grey" (``n``: the sentence's tokens without padding; where the window
    of a long sentence leaves some out, ", j of them outside the tokens drawn"), as every map kind notes them
    (:mod:`~lightning_causal.reporting.figure_style`'s rule).

    Args:
        data: the maps ``[N, T]`` and the token ids ``[N, T]`` they explain.
        chars_per_line: the line width of a strip, in characters.
    """
    from matplotlib import colormaps

    n, _ = drawn_samples(data)
    vocab = data.meta.get("vocabulary")
    cmap = colormaps["RdBu_r"]
    limits = map_limits(data, {name: m[:n] for name, m in data.maps.items()})  # one scale per map for every drawn sentence
    sentences, starts = [], []
    for i in range(n):
        ids = data.inputs[i].reshape(-1).tolist()
        scores = {name: m[i].detach().float().cpu().reshape(-1) for name, m in data.maps.items()}
        start, end = _unpadded(ids, list(scores.values()))
        words = [_cut(_word(vocab, t), chars_per_line // 2) for t in ids[start:end]]
        sentences.append(({name: v[start:end] for name, v in scores.items()}, _token_lines(words, chars_per_line)))
        starts.append(start)
    windows = [_window(scores, lines, start, len(data.inputs[i].reshape(-1)))
               for i, ((scores, lines), start) in enumerate(zip(sentences, starts))]
    sentences = [(scores, lines[a:b]) for (scores, lines), (a, b, _, _) in zip(sentences, windows)]
    split = len(data.maps) > 1 and any(_strips_height(len(lines), len(data.maps)) > MAX_STRIPS_HEIGHT for _, lines in sentences)
    tags = dict(zip(data.maps, map_tags(list(data.maps), data.meta.get("methods") or ())))
    # InputEffectAudit's δ_g = f(x) − f(x | do(x_g := b)): red and blue are against the token set to b (meta["baseline"])
    b, of = baseline_of(data, list(data.maps))
    out = []
    for i, ((scores, lines), (_, _, note, hidden)) in enumerate(zip(sentences, windows)):
        for group in [list(scores)] if not split else [[name] for name in scores]:
            tag = f"maps/sample_{i}/{tags[group[0]]}" if split else f"maps/sample_{i}"
            mine = [name for name in group if name in of]  # CaptumBaseline's causal map only: named
            against = (f"{'' if len(mine) == len(group) else ', '.join(mine) + ': '}effects against each token set to {b}"
                       if mine else None)
            said = "\n".join(([note] + [f"the largest |{name}|, token {hidden[name]}, is not drawn (see the report)"
                                         for name in group if name in hidden] if note else []) + ([against] if against else [])) or None
            out.append((tag, _strips(data, i, {name: scores[name] for name in group}, lines, limits, chars_per_line, cmap, said)))
    return out


def _window(scores: dict[str, Tensor], lines: list[list[tuple[int, int, str]]], start: int,
            total: int) -> tuple[int, int, str | None, dict[str, int]]:
    """The lines ``[a, b)`` of a sentence its strips draw, the same for every map: all of them up to
    :data:`MAX_WINDOW_LINES`, else that many holding the token of largest finite |score| of the first map that is not 0
    everywhere (two lines before it where it can) and, of the windows that do, one holding the most other maps'
    largest tokens; with the title line naming them and, per map, the position of its largest token where the
    window leaves it out (token positions ``start``-based in the ``total`` of the input)."""
    if len(lines) <= MAX_WINDOW_LINES:
        return 0, len(lines), None, {}
    line_of = {j: r for r, words in enumerate(lines) for j, _, _ in words}
    # a map of 0 (or of no finite score) has none; a NaN or infinite score is no largest (argmax reads NaN as largest)
    tops = {name: int(v.abs().nan_to_num(nan=-1.0, posinf=-1.0).argmax()) for name, v in scores.items()
            if bool((v.ne(0) & v.isfinite()).any())}
    last = len(lines) - MAX_WINDOW_LINES
    if tops:
        name, anchor = next(iter(tops)), line_of[next(iter(tops.values()))]
        wanted = min(max(0, anchor - 2), last)
        options = range(max(0, anchor - MAX_WINDOW_LINES + 1), min(anchor, last) + 1)
        a = max(options, key=lambda o: (sum(o <= line_of[j] < o + MAX_WINDOW_LINES for j in tops.values()), -abs(o - wanted)))
        around = f"around the largest |{name}|"
    else:
        a, around = 0, "(every score 0)"
    b = a + MAX_WINDOW_LINES
    lo, hi = start + lines[a][0][0], start + lines[b - 1][-1][0]
    hidden = {name: start + j for name, j in tops.items() if not a <= line_of[j] < b}
    return a, b, f"tokens {lo}–{hi} of {total}: the {MAX_WINDOW_LINES} of {len(lines)} lines {around}", hidden


def _grey(v: Tensor, drawn: Tensor) -> str:
    """How a strip draws the scores of ``v`` that are not finite, ``drawn`` its tokens drawn: ``"grey"``, and how many
    fall outside a long sentence's window (its note counts the sentence's, as its title's largest |score| does)."""
    out = int((~v.isfinite() & ~drawn).sum())
    if out == 0:
        return "grey"
    return "grey, outside the tokens drawn" if out == int((~v.isfinite()).sum()) else f"grey, {out} of them outside the tokens drawn"


def _strips(data: MapData, i: int, scores: dict[str, Tensor], lines: list[list[tuple[int, int, str]]], limits: dict[str, float],
            chars_per_line: int, cmap: Any, note: str | None = None) -> Figure:
    """Sample ``i``'s figure: one strip per map of ``scores``, the words of ``lines`` boxed in their colour (``note``:
    title lines under the sample's, the window of a long sentence drawn)."""
    drawn = torch.zeros(len(next(iter(scores.values()))), dtype=torch.bool)
    drawn[[j for line in lines for j, _, _ in line]] = True  # the tokens of the window of a long sentence
    unfinished = {name: not_finite_note(v, _grey(v, drawn)) for name, v in scores.items()}  # a title line of each strip that has one
    fig = Figure(figsize=(WIDTH * 1.15, _strips_height(len(lines), len(scores)) + _NOTE_HEIGHT * (note or "").count("\n")
                          + (_NOTE_HEIGHT if note else 0.0) + _NOTE_HEIGHT * sum(map(bool, unfinished.values()))))
    axes = fig.subplots(len(scores), 1, squeeze=False)[:, 0]
    for ax, (name, v) in zip(axes, scores.items()):
        lim, own = limits[name], finite_peak(v)
        for row, line in enumerate(lines):
            for j, col, text in line:
                level = float(v[j]) / lim
                finite = math.isfinite(level)  # a NaN or infinite score: a grey box (figure_style's rule)
                ax.text(col / chars_per_line, 1.0 - (row + 0.5) / len(lines), text, fontsize=10, family="monospace",
                        ha="left", va="center", color="white" if finite and abs(level) > 0.6 else "black",
                        bbox={"facecolor": cmap(0.5 + 0.5 * level) if finite else NOT_FINITE, "edgecolor": "none", "pad": 1.5})
        ax.set_xlim(0, 1)
        scale = "" if own == lim else f", colour scale ±{lim:.3g}"
        grey = f"\n{unfinished[name]}" if unfinished[name] else ""
        ax.set_title(f"{name} (max |score| {own:.3g}{scale}; red +, blue −){grey}", fontsize=9, loc="left")  # no colour bar
        ax.axis("off")
    fig.suptitle(sample_title(data, i) + (f"\n{note}" if note else ""), fontsize=10)
    fig.tight_layout()
    return fig
