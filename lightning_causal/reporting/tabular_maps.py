"""Attribution maps of tabular inputs (float ``[N, D]``, or named categorical codes): bars of the top
features by mean |score|, causal beside each Captum method."""

from __future__ import annotations

from matplotlib.figure import Figure

from lightning_causal.reporting.figure_style import WIDTH, short_labels, title_lines
from lightning_causal.reporting.map_data import SERIES_COLOURS, MapData, output_noun

__all__ = ["tabular_maps"]


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


def tabular_maps(data: MapData, top: int = 8) -> list[tuple[str, Figure]]:
    """Bars of the ``top`` features by mean |score| of the first map (causal), largest first. One
    map: horizontal bars coloured by the sign of the mean score (red raises the explained class).
    Several maps (causal beside each Captum method): grouped bars, one per map and feature, each
    map's mean |score| relative to its own largest (the methods' units differ).

    Args:
        data: the maps ``[N, D]`` and the tabular probe inputs they explain.
        top: how many features are drawn.
    """
    columns, names = _column_groups(data, int(data.inputs.shape[-1]))
    names = short_labels(names)  # full names: the JSON report and the text card
    scores = {k: v.detach().float().cpu().reshape(v.shape[0], -1)[:, columns] for k, v in data.maps.items()}
    first = next(iter(scores.values()))
    k, m = min(top, len(columns)), len(scores)
    order = first.abs().mean(0).topk(k).indices.tolist()
    title = "\n".join(title_lines(f"{data.audit}: top features over {int(first.shape[0])} probe samples", int(WIDTH * 12))
                      + title_lines(f"explaining {_explained(data)}", int(WIDTH * 12)))  # 10 pt: about 12 characters per inch
    if m == 1:
        fig = Figure(figsize=(WIDTH, 1.3 + 0.27 * k))
        ax = fig.subplots()
        size, mean = first.abs().mean(0), first.mean(0)
        ax.barh(range(k), [float(size[j]) for j in order[::-1]],  # barh draws bottom-up: largest on top
                color=["tab:red" if float(mean[j]) >= 0 else "tab:blue" for j in order[::-1]])
        ax.set_yticks(range(k))
        ax.set_yticklabels([names[j] for j in order[::-1]], fontsize=9)
        raised = ("the output" if data.meta.get("outputs") == 1 or data.meta.get("regression")
                  else "the label's logit" if data.meta.get("multi_label") else "the class score")
        ax.set_xlabel(f"mean |effect| (red: raises {raised})", fontsize=9)
    else:
        slanted = max(len(names[j]) for j in order) * k > 48
        fig = Figure(figsize=(WIDTH * 1.1, 2.9 + (0.5 if slanted else 0.0)))
        ax = fig.subplots()
        width = 0.8 / m
        for i, (name, s) in enumerate(scores.items()):
            size = s.abs().mean(0)
            peak = float(size.max()) or 1.0
            ax.bar([j + (i - (m - 1) / 2) * width for j in range(k)], [float(size[f]) / peak for f in order], width,
                   label=name, color=SERIES_COLOURS[i % len(SERIES_COLOURS)])
        ax.set_xticks(range(k))
        ax.set_xticklabels([names[j] for j in order], fontsize=9, rotation=35 if slanted else 0, ha="right" if slanted else "center")
        ax.set_ylabel("mean |score| / largest", fontsize=9)
        ax.legend(fontsize=8, ncol=min(m, 4), loc="upper right")
        ax.set_ylim(0, 1.3)
    fig.suptitle(title, fontsize=10)  # centred on the figure: long feature names narrow the axes
    ax.tick_params(labelsize=9)
    fig.tight_layout()
    return [("maps/top_features", fig)]
