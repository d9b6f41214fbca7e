"""TensorBoard's custom-scalars layout for the audit scalars.

Every chart holds one metric and is built from the tags that exist (a chart is never empty). Its
series are patterns of the metric's family, not the exact tags: ``^causal/<audit>/<metric>/[^/]+$``
for per-item series, ``^causal/<audit>/(?!drift/).+/<metric>$`` for per-layer series, and for the
comparison charts ``^compare/[^/]+/<metric>$`` (every method). Runs in one log directory whose
audits logged other items, layers or methods then write the same chart, and TensorBoard, which
merges the runs' layouts and drops only identical charts, shows one chart per metric instead of one
per run. A pattern never catches a tag of another metric or a drift tag:

- ``causal vs captum``: one chart per comparison metric ``m``: ``compare/<method>/m`` (the reference
  metrics ``sensitivity_max`` and ``infidelity`` too) and the causal explanation's own ``causal/<audit>/m`` (never a drift tag).
- ``causal: <audit>``: one chart per metric of the audit; per-item series of one metric
  (``anomaly_index/<class>``, ``positive_rate/<group>``, ``S/<feature>``) share a chart, as do
  per-layer series (``<layer>/top1_importance``).
- ``causal drift``: one chart per audit and drift metric (``spearman``, ``topk_jaccard``,
  ``shift``), one series per vector.

A layout cannot set a chart's y range: TensorBoard's "Ignore outliers in chart scaling" (on by default, per browser)
takes it from the values within their 5% and 95% quantiles, none of two, so a chart of one series of two audits falls
back to 0 to 1; docs/recipes.md says to untick it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

__all__ = ["custom_layout", "metric_family"]

_ITEM = re.compile(r"\d+|(class|group)_.+")
_DRIFT = re.compile(r"^causal/([^/]+)/drift/.+/([^/]+)$")


def _exact(tag: str) -> str:
    return f"^{re.escape(tag)}$"


def metric_family(path: str, items: Iterable[str] = ()) -> str:
    """The metric a tag path (after ``causal/<audit>/``) belongs to: a per-item scalar
    ``<metric>/<item>`` (item: a number, ``class_<c>``, ``group_<g>`` or one of ``items``, the
    feature and class names and the groups' tags) belongs to ``<metric>``; a per-layer scalar ``<layer>/<metric>`` to
    ``<metric>``; a plain name to itself.

    Args:
        path: the tag's path after ``causal/<audit>/``.
        items: the feature and class names used in tags, and the groups' tags (``female_x_C``).

    Examples:
        >>> metric_family("anomaly_index/class_3"), metric_family("S/age", {"age"}), metric_family("model.conv1/top1_importance")
        ('anomaly_index', 'S', 'top1_importance')
        >>> metric_family("positive_rate/female_x_C", {"female_x_C"}), metric_family("positive_rate/group_2")
        ('positive_rate', 'positive_rate')
        >>> metric_family("cf_gap")
        'cf_gap'
    """
    parts = path.split("/")
    if len(parts) >= 2 and (parts[-1] in set(items) or _ITEM.fullmatch(parts[-1])):
        return "/".join(parts[:-1])
    return parts[-1]


def _charts(groups: dict[str, set[str]], prefix: str = "") -> dict[str, list]:
    head = f"^{re.escape(prefix)}"  # every pattern starts with "^"
    return {title: ["Multiline", sorted(head + p[1:] for p in patterns)] for title, patterns in sorted(groups.items())}


def _audit_pattern(audit: str, path: str, items: set[str]) -> str:
    """The pattern of the series family of ``causal/<audit>/<path>``: every item of a per-item
    metric, every layer of a per-layer metric, or the tag itself."""
    parts = path.split("/")
    family = metric_family(path, items)
    head = f"^causal/{re.escape(audit)}/"
    if family == path:
        return _exact(f"causal/{audit}/{path}")
    if len(parts) >= 2 and family == "/".join(parts[:-1]):  # per item: <metric>/<item>
        return f"{head}{re.escape(family)}/[^/]+$"
    return f"{head}(?!drift/).+/{re.escape(family)}$"  # per layer: <layer>/<metric>


def custom_layout(tags: Iterable[str], items: Iterable[str] = (), prefix: str = "") -> dict[str, dict[str, list]]:
    """The layout ``{category: {chart: ["Multiline", [regex, ...]]}}`` for ``tags`` (every scalar
    tag logged so far); ``items`` are the feature and class names used in tags and the groups' tags.

    Args:
        tags: the scalar tags.
        items: as above.
        prefix: what the logger puts before every tag it logs (``TensorBoardLogger(prefix="p")`` logs
            ``p-causal/...``: ``"p-"``); every pattern starts with it.

    Examples:
        >>> layout = custom_layout(["compare/IG/deletion_auc", "causal/cb/deletion_auc", "causal/cb/drift/mean_abs/causal/spearman"])
        >>> layout["causal vs captum"]["deletion_auc"]
        ['Multiline', ['^causal/[^/]+/deletion_auc$', '^compare/[^/]+/deletion_auc$']]
        >>> sorted(layout)
        ['causal drift', 'causal vs captum', 'causal: cb']
        >>> [pattern] = custom_layout(["causal/cb/deletion_auc"], prefix="p-")["causal: cb"]["deletion_auc"][1]
        >>> bool(re.fullmatch(pattern, "p-causal/cb/deletion_auc")), bool(re.fullmatch(pattern, "causal/cb/deletion_auc"))
        (True, False)
    """
    tags, items = sorted(set(tags)), set(items)
    compare: dict[str, set[str]] = {}
    for t in tags:
        parts = t.split("/")
        if parts[0] == "compare" and len(parts) == 3:
            compare.setdefault(parts[2], set()).add(f"^compare/[^/]+/{re.escape(parts[2])}$")
    per_audit: dict[str, dict[str, set[str]]] = {}
    drift: dict[str, set[str]] = {}
    for t in tags:
        parts = t.split("/")
        if parts[0] != "causal" or len(parts) < 3:
            continue
        audit, path = parts[1], "/".join(parts[2:])
        match = _DRIFT.match(t)
        if match:
            pattern = f"^causal/{re.escape(audit)}/drift/.+/{re.escape(match.group(2))}$"
            drift.setdefault(f"{match.group(1)}: {match.group(2)}", set()).add(pattern)
            continue
        if len(parts) == 3 and path in compare:
            compare[path].add(f"^causal/[^/]+/{re.escape(path)}$")  # the causal explanation's own, any audit
        per_audit.setdefault(audit, {}).setdefault(metric_family(path, items), set()).add(_audit_pattern(audit, path, items))
    layout: dict[str, dict[str, list]] = {}
    if compare:
        layout["causal vs captum"] = _charts(compare, prefix)
    for audit, groups in sorted(per_audit.items()):
        layout[f"causal: {audit}"] = _charts(groups, prefix)
    if drift:
        layout["causal drift"] = _charts(drift, prefix)
    return layout
