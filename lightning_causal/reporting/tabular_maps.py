"""Attribution maps of tabular inputs (float ``[N, D]``, or named categorical codes): bars of the top
features by mean |score|, causal beside each Captum method."""

from __future__ import annotations

import math

import torch
from matplotlib.figure import Figure

from lightning_causal.reporting.figure_style import (
    MAGNITUDE,
    WIDTH,
    largest_first,
    not_finite_note,
    short_labels,
    title_lines,
)
from lightning_causal.reporting.image_figures import finite_peak, say_all_zero
from lightning_causal.reporting.map_data import (
    SERIES_COLOURS,
    MapData,
    baseline_of,
    drawn_samples,
    explained_quantity,
    output_noun,
)

__all__ = ["tabular_maps"]


def _width(inputs: torch.Tensor) -> int:
    """The columns of a table ``[N, D]``; one for an input of one value per sample ``[N]`` (a user id)."""
    return int(inputs.shape[-1]) if inputs.dim() > 1 else 1


def _column_groups(data: MapData, d: int) -> tuple[list[int], list[str]]:
    """One representative column per feature group and the groups' names."""
    groups = data.meta.get("feature_groups")
    if groups is None or len(groups) != d:
        groups = list(range(d))
    first: dict[int, int] = {}
    for column, g in enumerate(groups):
        first.setdefault(int(g), column)
    ids = sorted(first)
    names = data.meta.get("feature_names")
    if names is None or len(names) != len(ids):
        names = [f"x{g}" if groups == list(range(d)) else f"group {g}" for g in ids]
    return [first[g] for g in ids], [str(s) for s in names]



def _explained(data: MapData) -> str:
    if data.meta.get("outputs") == 1:
        return "the output"
    targets = data.meta.get("targets")
    noun = output_noun(data)
    if targets and len(set(targets)) == 1:
        return f"{noun} {data.class_name(int(targets[0]))}"
    if data.meta.get("regression"):
        return "each sample's largest output" if targets else "the target output"
    if data.meta.get("multi_label"):
        return "each sample's label of largest logit" if targets else "the target label"
    return "each sample's predicted class" if targets else "the target class"


_SIGN_COLOURS = {1.0: "tab:red", -1.0: "tab:blue", 0.0: "tab:gray"}


def _directions(data: MapData, columns: list[int], scores) -> list[float] | None:
    """Per drawn group, the direction of its column where one output is explained for every sample:
    ``sign(Σ_n (x_n − x̄)(δ_n − δ̄))`` over the probe (+1: higher values raise the output), 0 for a
    group of several columns, a category code an embedding reads cast (``meta["code_elements"]``: a nominal code has
    no higher value), a column without spread or a covariance that is not finite (NaN inputs); ``None`` where the explained output differs
    between samples (each sample's predicted class) or the inputs are not floats (category codes)."""
    targets = data.meta.get("targets")
    fixed = data.meta.get("outputs") == 1 or (targets is not None and len(targets) > 0 and len(set(targets)) == 1)
    if not fixed or not data.inputs.is_floating_point():
        return None
    d = _width(data.inputs)
    groups = data.meta.get("feature_groups")
    groups = list(range(d)) if groups is None or len(groups) != d else [int(g) for g in groups]
    x = data.inputs.detach().double().cpu().reshape(data.inputs.shape[0], -1)[:, columns]
    s = scores.double()
    cov = ((x - x.mean(0)) * (s - s.mean(0))).sum(0)
    defined = (x.amax(0) > x.amin(0)) & cov.isfinite()  # spread, and no NaN (a missing value, diverged weights)
    single = [groups.count(groups[c]) == 1 for c in columns]
    codes = set(data.meta.get("code_elements") or ())  # nominal codes an embedding reads cast: no higher value
    return [float(torch.sign(cov[j])) if single[j] and bool(defined[j]) and columns[j] not in codes else 0.0
            for j in range(len(columns))]


def _not_finite(scores: torch.Tensor, features: list[int], names: list[str]) -> str:
    """What a map's bars leave out, said beside them (:func:`~lightning_causal.reporting.figure_style.not_finite_note`,
    the rule of every map kind): how many of its scores of ``features`` (every sample's) are NaN or infinite and which
    features they fall on (one such score of one sample makes the feature's mean |score| NaN or infinite, drawn as no
    bar; the first map's also rank last, out of a top-k chart); "" where every score is finite."""
    bad = ~scores[:, features].isfinite()
    hit = [names[features[i]] for i in range(len(features)) if bool(bad[:, i].any())]
    shown = ", ".join(hit[:3]) + (f" and {len(hit) - 3} more" if len(hit) > 3 else "")
    return not_finite_note(scores[:, features], f"no bar for {shown}")


def _bar(value: torch.Tensor) -> float:
    """A bar's length: ``value``, NaN where it is not finite (no bar, said by :func:`_not_finite`)."""
    v = float(value)
    return v if math.isfinite(v) else math.nan


def tabular_maps(data: MapData, top: int = 8) -> list[tuple[str, Figure]]:
    """Bars of the ``top`` features by mean |score| of the first map (causal), largest first. One
    map: horizontal bars. Where one output is explained for every sample (a model of one output, or a
    fixed ``target``) of a float table, each bar is coloured by the direction of its column, the sign
    of the covariance of the column's values and its effects over the probe (red: a higher value raises
    the output; a linear model's coefficient, whatever the probe's mean of the column, which with
    standardised columns and the baseline 0 leaves the mean effect near 0 and of either sign); a group
    of several columns or a constant column has no direction and is grey. Explaining each sample's
    predicted class (or integer codes), the colour is the sign of the mean score (red: the column's
    values raise the explained class's score on average, blue where they lower it; the caption names blue where a
    blue bar is drawn). Several maps (causal beside each Captum method): grouped bars, one per map and feature (the
    groups side by side under short names, else one under the other beside the names, the first on top), each
    map's mean |score| relative to its own largest finite one (the methods' units differ), or on one scale where
    ``meta["shared_map_scale"]`` says the maps share a unit (Sobol' first-order and total indices); a map of 0 only
    (a gradient method on a model whose gradient is 0), which draws no bars, is "(all 0)" in the legend; a single
    such map says "0 everywhere" in its panel (its features in index order, its axis 0 to 1, no colour key).
    A global map (one row for the whole probe, :func:`drawn_samples`) is titled with what it explains
    (``P(class 'high')``) and its single bars are grey: a variance share has no direction. A feature one of whose
    scores is NaN or infinite (a NaN gradient of one sample) has no bar and ranks last: the caption (one map) or a line
    per map under the bars (several) says "k of n scores are not finite (NaN/inf): no bar for" those features, as
    every map kind notes them (:mod:`~lightning_causal.reporting.figure_style`'s rule).

    Args:
        data: the maps ``[N, D]`` and the tabular probe inputs they explain.
        top: how many features are drawn.
    """
    columns, names = _column_groups(data, _width(data.inputs))
    names = short_labels(names)  # full names: the JSON report and the text card
    scores = {k: v.detach().float().cpu().reshape(v.shape[0], -1)[:, columns] for k, v in data.maps.items()}
    first = next(iter(scores.values()))
    k, m = min(top, len(columns)), len(scores)
    order = largest_first(first.abs().mean(0), k)  # ties in index order (a map of 0: the features as they come)
    _, glob = drawn_samples(data)
    if glob:  # one map for the whole probe (Sobol' indices): no per-sample scores to average
        what = explained_quantity(data.meta, data.class_name)
        head, tail = f"{data.audit}: top features over the whole probe ({int(data.inputs.shape[0])} samples)", f"of {what}" if what else ""
    else:
        head, tail = f"{data.audit}: top features over {int(first.shape[0])} probe samples", f"explaining {_explained(data)}"
        b, of = baseline_of(data, list(scores))  # InputEffectAudit's effects are against each feature set to b
        if of:  # CaptumBaseline's causal map only: named
            tail = f"{tail}{', ' if len(of) == m else '; ' + ', '.join(of) + ': '}against each feature set to {b}"
    title = "\n".join(title_lines(head, int(WIDTH * 12)) + (title_lines(tail, int(WIDTH * 12)) if tail else []))  # 10 pt: ~12 characters per inch
    more = 0.17 * max(0, title.count("\n") - 1)  # a title of more than two lines (the baseline said) keeps the bars' room
    shared = bool(data.meta.get("shared_map_scale"))  # maps of one unit (Sobol' S and S_T): one scale, not each its own largest
    if m == 1:
        unfinished = _not_finite(first, list(range(len(columns))), names)  # every feature: a NaN mean ranks last
        # 8 bars: 306 pixels, at 0.7 in a card of about 400 x 215 (0.27: 0.62); one bar the height of two (at 1.52 inches
        # the title's and the caption's lines left the axes no room: 'Tight layout not applied', the caption cut)
        fig = Figure(figsize=(WIDTH, 1.3 + 0.22 * max(k, 2) + (0.16 if unfinished else 0.0) + more))
        ax = fig.subplots()
        size = first.abs().mean(0)
        raised = ("the output" if data.meta.get("outputs") == 1 or data.meta.get("regression")
                  else "the label's logit" if data.meta.get("multi_label") else "the class score")
        sign = None if glob else _directions(data, columns, first)
        if glob:  # one global value per feature (a Sobol' index): a size, no direction
            caption = "value over the whole probe"
        elif sign is None:  # each sample's own class: do its values support it, on average
            sign = [(1.0 if m >= 0 else -1.0) if math.isfinite(m) else 0.0 for m in first.mean(0).tolist()]  # NaN/inf: no bar
            blue = any(sign[j] < 0 for j in order)  # name blue where a blue bar is drawn
            caption = f"mean |effect| (red: raises {raised},\nblue: lowers it)" if blue else f"mean |effect| (red: raises {raised})"
        else:  # three short lines: the axes narrow under long feature names
            drawn = [j for j in order if math.isfinite(float(size[j]))]  # a NaN/inf mean is no bar: no grey one
            grey = "; grey: no direction" if any(sign[j] == 0 for j in drawn) else ""
            caption = f"mean |effect|\nred: a higher value raises {raised},\nblue: lowers it{grey}"
        colours = [MAGNITUDE] * k if sign is None else [_SIGN_COLOURS[sign[j]] for j in order[::-1]]
        # barh draws bottom-up: largest on top; a bar of an infinite mean NaN, undrawn as a NaN one is (matplotlib
        # warned 'invalid value encountered in dot' at every draw of an infinite one)
        ax.barh(range(k), [_bar(size[j]) for j in order[::-1]], color=colours)
        ax.set_yticks(range(k))
        ax.set_yticklabels([names[j] for j in order[::-1]], fontsize=9)
        if say_all_zero(ax, first):  # no bars, an axis of -0.05 to 0.05 and a colour key for none: says why
            ax.set_xlim(0, 1)
            caption = caption if glob else "mean |effect|"
        ax.set_xlabel(caption + (f"\n{unfinished}" if unfinished else ""), fontsize=9)
    else:
        # names too long to sit side by side under their columns: horizontal groups, the names beside them (slanted
        # under vertical bars they made a 572 x 340 figure, shown at 0.63 in a TensorBoard card of about 400 x 215)
        across = max(len(names[j]) for j in order) * k > 48
        labels = [name if bool(s.ne(0).any()) else f"{name} (all 0)" for name, s in scores.items()]  # no bars: says why
        # the first map ranks the features: its features of a NaN mean ranked last, out of the chart, are said too
        notes = [f"{name}: {note}" for i, (name, s) in enumerate(scores.items())
                 if (note := _not_finite(s, list(range(len(columns))) if i == 0 else order, names))]
        unfinished = "\n".join(line for note in notes for line in title_lines(note, int(WIDTH * 1.1 * 14)))  # 8 pt
        # one row while the labels fit the axes (about 60 characters of 8 pt; 40 beside the names), else two columns
        ncol = min(m, 4) if sum(len(label) + 5 for label in labels) <= (40 if across else 68) else 2
        rows = -(-m // ncol) if across else 0  # the legend's rows above the bars
        row = 0.19 if m < 4 else 0.21  # inches a feature: its 9-point name apart from the next (8 features: 0.66 or more)
        below = 0.15 * (unfinished.count("\n") + 1) if unfinished else 0.0  # the notes' lines under the bars
        fig = Figure(figsize=(WIDTH * 1.1, 1.2 + 0.15 * rows + row * k + below + more) if across else (WIDTH * 1.1, 2.9 + below + more))
        ax = fig.subplots()
        width = 0.8 / m
        for i, (label, s) in enumerate(zip(labels, scores.values())):
            size = s.abs().mean(0)
            peak = 1.0 if shared else finite_peak(size) or 1.0  # one NaN score of one sample: its own bar only
            at, heights = [j + (i - (m - 1) / 2) * width for j in range(k)], [_bar(size[f]) / peak for f in order]
            colour = SERIES_COLOURS[i % len(SERIES_COLOURS)]
            if across:  # first feature on top, causal the top bar of each group
                ax.barh([k - 1 - a for a in at], heights, width, label=label, color=colour)
            else:
                ax.bar(at, heights, width, label=label, color=colour)
        caption = ("value (one scale)" if glob else "mean |score| (one scale)") if shared else "mean |score| / largest"
        top_value = max(finite_peak(s.abs().mean(0)) for s in scores.values()) if shared else 1.0
        if across:  # the legend above the bars, in the figure's margin: the longest bars reach the axes' right edge
            ax.set_yticks(range(k - 1, -1, -1))
            ax.set_yticklabels([names[j] for j in order], fontsize=9)
            ax.legend(fontsize=8, ncol=ncol, loc="lower right", bbox_to_anchor=(1.0, 1.0), frameon=False)
            ax.set_xlabel(caption + (f"\n{unfinished}" if unfinished else ""), fontsize=9)
            ax.set_xlim(0, 1.05 * top_value if top_value > 0 else 1.0)
        else:
            ax.set_xticks(range(k))
            ax.set_xticklabels([names[j] for j in order], fontsize=9)
            ax.legend(fontsize=8, ncol=ncol, loc="upper right")
            ax.set_ylabel(caption, fontsize=9)
            if unfinished:  # under the names of the features
                ax.set_xlabel(unfinished, fontsize=8)
            ax.set_ylim(0, 1.3 * top_value if top_value > 0 else 1.0)
    fig.suptitle(title, fontsize=10)  # centred on the figure: long feature names narrow the axes
    ax.tick_params(labelsize=9)
    fig.tight_layout()
    return [("maps/top_features", fig)]
