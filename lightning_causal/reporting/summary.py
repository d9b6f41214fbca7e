"""The per-epoch text card: a compact markdown summary of one audit epoch (the detail stays in the
JSON report)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from lightning_causal.audits.base import AuditResult
from lightning_causal.audits.captum_report import RANK_METRICS
from lightning_causal.audits.group_regions import region_text
from lightning_causal.causal.engine.checks import check_choice

__all__ = ["markdown_summary"]

_HEADLINE = 4  # scalars per audit
_TOP = 3  # items per table
_WIDTH = 160  # characters per part (scalars, tops) before it is cut


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.3g}" if math.isfinite(v) else str(v)
    return str(v)


def _cut(text: str) -> str:
    """One item's part: at most ``_WIDTH`` characters, pipes escaped (a pipe would start a table)."""
    text = text if len(text) <= _WIDTH else text[: _WIDTH - 1] + "…"
    return text.replace("|", "\\|")


def _headline(r: AuditResult) -> str:
    """The audit's first plain scalars (no drift, no per-item or per-method series); a ``top{k}_share`` that sums fewer
    than its ``k`` (all units or groups but one: ``meta["top_shares"]``) says how many of how many
    (``top10_share (4 of 5) 0.933``), which its tag, the same whatever the width, does not."""
    plain = [(k, v) for k, v in r.scalars.items() if "/" not in k]
    if not plain:  # audits whose scalars are all per layer (``<layer>/top1_importance``)
        plain = [(k, v) for k, v in r.scalars.items() if "drift" not in k and not k.startswith("compare/")]
    return ", ".join(f"{k}{_summed(r, k)} {_fmt(float(v))}" for k, v in plain[:_HEADLINE])


def _summed(r: AuditResult, key: str) -> str:
    """`` (4 of 5)`` after a ``top10_share`` that sums the 4 strongest of 5 (``meta["top_shares"]``), else ``""``."""
    summed = (r.meta.get("top_shares") or {}).get(key)
    asked = key.rpartition("/")[2][3:-6]  # top10_share: 10
    if not (isinstance(summed, (list, tuple)) and len(summed) == 2 and asked.isdigit() and summed[0] < int(asked)):
        return ""
    return f" ({summed[0]} of {summed[1]})"


_LABELS = ("feature", "name", "word", "node", "method", "group", "unit", "token", "class")


def _node_name(node: object, class_names: list | None, unit_name: object = None) -> str:
    """A graph node id, an output node followed by its class where the audit has class names
    (``output:1 (chirp)``), a unit node by its name where the audit has unit names (``tokens:3 (age)``)."""
    text = _fmt(node)
    if class_names and isinstance(node, str) and node.startswith("output:") and node[7:].isdigit() and int(node[7:]) < len(class_names):
        return f"{text} ({class_names[int(node[7:])]})"
    return f"{text} ({unit_name})" if isinstance(unit_name, str) else text


def _label_and_value(row: dict, class_names: list | None = None) -> tuple[str, str] | None:
    """A table row as ``(label, value)``: the most specific name-like column (an edge: ``source →
    target``; a graph's output nodes with their class where ``class_names`` are given, its unit nodes with their
    ``name``/``source_name``/``target_name``) and the number the audit ranks its rows by (``_VALUES``), else the
    first number."""
    if "source" in row and "target" in row:
        label_keys = {"source", "target", "source_name", "target_name"}
        label = (f"{_node_name(row['source'], class_names, row.get('source_name'))} → "
                 f"{_node_name(row['target'], class_names, row.get('target_name'))}")
    elif "node" in row:  # a graph's node, with its unit's name where it has one
        label_keys, label = {"node", "name"}, _node_name(row["node"], class_names, row.get("name"))
    else:
        label_key = next((k for k in _LABELS if k in row), None)
        if label_key is None:
            return None
        label_keys, label = {label_key}, _fmt(row[label_key])
        where = region_text(row) if label_key == "group" else ""
        if where:  # an input group's box (a patch, a window, an octant): where it is, not a bare id
            label = f"{label} at {where}"
    key = next((k for k in _VALUES if isinstance(row.get(k), float)), None)  # what the audits rank their rows by
    if key is None:
        key = next((k for k, v in row.items() if k not in label_keys and isinstance(v, float)), None)
    return label, "" if key is None else f"{key} {_fmt(row[key])}"


#: the columns the audits sort their table rows by (Sobol' total order, unit importance, effects, a
#: group's rate of positive decisions, an edge's effect rather than its normalised weight, a layer map node's response)
_VALUES = ("ST", "importance", "mean_abs_effect", "effect", "positive_rate", "score", "flag_score", "response")


def _counterfactual_row(row: dict, class_names: list | None) -> str:
    """A tabular counterfactual (a row of CounterfactualAudit's ``counterfactuals`` table with its
    ``changes``) as ``#index predicted → cf class: changes``, classes by name when the audit has them;
    where none was found, ``#index predicted → target (not found)``: the class it could not reach (the label, or
    with ``towards="runner_up"`` the runner-up class)."""
    def name(c: object) -> str:
        return str(class_names[c]) if isinstance(c, int) and class_names is not None and 0 <= c < len(class_names) else str(c)

    found = row.get("success", True)
    reached = row["counterfactual_predicted"] if found else row.get("target", row.get("label", row["counterfactual_predicted"]))
    return (f"#{row['index']} {name(row['predicted'])} → {name(reached)}{'' if found else ' (not found)'}: "
            f"{row['changes'] or 'no change'}")


def _tops(r: AuditResult) -> str:
    parts = []
    graph_classes = (r.graphs.get("causal_graph") or {}).get("meta", {}).get("class_names")  # CausalGraphAudit(class_names=)
    for name, rows in r.tables.items():
        if not rows or name == "comparison":
            continue
        if all(isinstance(row, dict) and {"index", "predicted", "counterfactual_predicted", "changes"} <= row.keys() for row in rows[:2]):
            # two samples' changes fit the part's width; the rest are in the JSON report
            parts.append(f"{name}: " + "; ".join(_counterfactual_row(row, r.meta.get("class_names")) for row in rows[:2]))
            continue
        # a top list of groups of no effect says nothing: left out before the first _TOP are taken (a table not sorted
        # by effect keeps its rows of effect)
        shown = [row for row in rows if not _no_effect(row)][:_TOP]
        if not shown and all(_no_effect(row) for row in rows):  # every row, not the first: a table not sorted by effect
            key = next(k for k in _EFFECTS if isinstance(rows[0].get(k), float))
            parts.append(f"{name}: none had an effect ({key} 0)")
            continue
        items = [lv for lv in (_label_and_value(row, graph_classes) for row in shown) if lv is not None]
        if items:
            parts.append(f"{name}: " + ", ".join(f"{lab} ({val})" if val else lab for lab, val in items))
    return "; ".join(parts)


#: the columns of an effect (Sobol' total order, unit importance, effects, a layer map node's response: 0 where no
#: input intervention moves it), whose 0 is no effect: such a row is no "top" item (a group's rate of positive
#: decisions or a score of 0 is a value, kept)
_EFFECTS = ("ST", "importance", "mean_abs_effect", "effect", "response")


def _no_effect(row: object) -> bool:
    """Whether a table row's ranking value (the first of :data:`_VALUES` it has) is an effect of exactly 0."""
    key = next((k for k in _VALUES if isinstance(row, dict) and isinstance(row.get(k), float)), None)
    return key in _EFFECTS and row[key] == 0.0


#: How each column of the causal-vs-Captum table reads (its direction), said below the table.
_AGREEMENT, _LOWER, _HIGHER = ("spearman", "kendall", "topk"), ("deletion_auc", "sensitivity_max", "infidelity"), ("insertion_auc", "stability")


def _reading(cols: list[str], r: AuditResult) -> str:
    """One line under the table: what its columns measure and which way is better; the curves' score."""
    parts = []
    agree = [c for c in cols if c in _AGREEMENT]
    if agree:
        parts.append(f"{', '.join(agree)}: agreement of the method's ranking of the groups with the causal one (1: the same)")
    for cols_of, word in (([c for c in cols if c in _LOWER], "lower"), ([c for c in cols if c in _HIGHER], "higher")):
        if cols_of:
            parts.append(f"{word} is better: {', '.join(cols_of)}")
    score = r.meta.get("curve_score")
    if score and any(c in cols for c in ("deletion_auc", "insertion_auc")):
        parts.append(f"areas of the {score}")
    return ("Read: " + "; ".join(parts) + ".") if parts else ""


def _comparison(r: AuditResult) -> list[str]:
    rows = r.tables.get("comparison")
    if not rows:
        return []
    cols = [c for c in rows[0] if c != "seconds"]
    lines = [f"**{r.audit}: causal vs Captum**", "", "| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    # at most 6 rows; the last one (CaptumBaseline's causal reference, which every method is read against) always shown
    shown = rows if len(rows) <= 6 else rows[:5] + rows[-1:]
    lines += ["| " + " | ".join("-" if c in row and row[c] is None else _fmt(row.get(c, "")) for c in cols) + " |"
              for row in shown]  # None: the causal row's rank agreement with itself
    more = [f"({len(rows) - len(shown)} more rows in the JSON report)"] if len(shown) < len(rows) else []
    reading = _reading(cols, r)
    return lines + [""] + more + ([""] if more else []) + ([reading, ""] if reading else []) + _layer_agreement(r, rows)


def _layer_agreement(r: AuditResult, rows: list[dict]) -> list[str]:
    """One line for ``CaptumBaseline(layers=...)``'s ``compare/<layer method>-<layer>/{spearman,kendall,topk}`` scalars,
    the agreement of Captum's layer method with the units' causal effects, which the table of input groups holds no row
    of (a user who named an SAE's latents saw nothing of them on the card)."""
    methods = {str(row.get("method")) for row in rows}
    found: dict[str, dict[str, float]] = {}
    for key, value in r.scalars.items():
        head, _, metric = key.rpartition("/")
        label = head.removeprefix("compare/")
        if head.startswith("compare/") and metric in RANK_METRICS and label not in methods \
                and label.split(":", 1)[-1] not in methods:  # an audit's own name= leads its methods' labels
            found.setdefault(label, {})[metric] = value
    if not found:
        return []
    items = "; ".join(f"{label}: " + ", ".join(f"{m} {_fmt(v)}" for m, v in vals.items()) for label, vals in found.items())
    return [f"Captum's layer method vs the units' causal effects (agreement of their rankings, 1: the same): {items}", ""]


def _audit_line(r: AuditResult) -> str:
    """One audit as a list item: its name and seconds, its headline scalars, the top rows of its
    tables, what its gap compares (``meta["compared"]``). A list item wraps at the card's width; a table cell squeezed
    beside long cells broke names and headers inside words in TensorBoard."""
    seconds = r.meta.get("seconds")
    if isinstance(seconds, float):  # 0.032 s, not 0.0 s, for a fast audit
        head = f"- **{r.audit}** ({seconds:.1f} s)" if seconds >= 0.1 else f"- **{r.audit}** ({seconds:.2g} s)"
    else:
        head = f"- **{r.audit}**"
    parts = [p for p in (_cut(_headline(r)), _cut(_tops(r))) if p]
    if len(parts) == 2:
        parts[1] = "top: " + parts[1]
    compared = r.meta.get("compared")  # what a gap is the change of (FairnessAudit's cf_gap: a probability, the output)
    if isinstance(compared, str) and compared:
        parts.append(_cut(f"compared: {compared}"))
    return head + (": " + " · ".join(parts) if parts else "")


#: the line under the heading of the audit at the end of fit (``CausalAuditCallback(on_fit_end=True)``)
_FIT_END_LINE = ("The audit at the end of fit (`on_fit_end=True`): the fit's last epoch was not audited at its end (off the "
                "schedule, or an epoch that never ended); run after training, its scalars are not monitored.")

#: the moments an audit runs at, as the JSON report's ``stage`` says them
STAGES = ("epoch_end", "fit_end")


def check_stage(stage: object) -> None:
    """Refuse a ``stage`` that is not one of :data:`STAGES`: a typo (``"fit-end"``) would give the ordinary card
    silently, without the line that says the audit ran at the end of fit.

    Args:
        stage: the value given as ``stage``.

    Raises:
        ValueError: ``stage`` is not one of :data:`STAGES`.

    Examples:
        >>> check_stage("fit_end")
        >>> check_stage("fit-end")
        Traceback (most recent call last):
        ...
        ValueError: Expected argument `stage` to be one of ['epoch_end', 'fit_end'] but got 'fit-end'
    """
    check_choice("stage", stage, STAGES)


def check_model_name(model: object) -> None:
    """Refuse a ``model`` that is not a name (``None`` or a ``str``): the module itself (``model=net``, the word the
    argument invites) would put its whole ``repr``, many lines, between the card's backticks.

    Args:
        model: the value given as ``model``.

    Raises:
        TypeError: ``model`` is neither ``None`` nor a ``str``.

    Examples:
        >>> check_model_name("Linear")
        >>> check_model_name(3)
        Traceback (most recent call last):
        ...
        TypeError: Expected argument `model` to be None or a str, the network's name as the JSON report's "model" gives it (the module's class: 'Linear'), but got int
    """
    if model is not None and not isinstance(model, str):
        raise TypeError("Expected argument `model` to be None or a str, the network's name as the JSON report's \"model\" "
                        f"gives it (the module's class: 'Linear'), but got {type(model).__name__}")


_HALF = {"bfloat16": 2.0**-8, "float16": 2.0**-11}  # half a unit in the last place, relative: an output's rounding


def precision_line(precision: dict[str, Any]) -> str:
    """The card's line saying the precision the audits computed in, from a report's ``"precision"`` entry
    (``{"weights", "other_weights", "autocast", "trainer"}``:
    :func:`~lightning_causal.callbacks._trainer_facts.audit_precision`): the dtype, why (the weights', autocast's; a
    mixed-precision fit's autocast off during the audits), the other dtypes some weights hold, and, where the outputs
    pass through bfloat16 or float16 (the weights', autocast's, or some layers' weights), that an effect under that
    rounding is rounding.

    Args:
        precision: the report's ``"precision"`` entry: ``"weights"`` (a dtype's name), ``"other_weights"`` (the names
            of the other dtypes some weights hold; absent or ``[]``: none), ``"autocast"`` (a dtype's name or ``None``)
            and ``"trainer"`` (``Trainer(precision=)`` or ``None``).

    Examples:
        >>> print(precision_line({"weights": "float32", "autocast": None, "trainer": "bf16-mixed"}))
        Precision: the audits computed in float32, the weights' dtype (the fit's `bf16-mixed` autocast is off during the audits).
        >>> print(precision_line({"weights": "bfloat16", "autocast": None, "trainer": "bf16-true"}))
        Precision: the audits computed in bfloat16, the weights' dtype (the fit's `bf16-true`); an effect smaller than the rounding of the outputs there (0.39% of their size) is rounding: audit a float32 copy (`model.float()`, the probe too) for those.
        >>> print(precision_line({"weights": "float32", "other_weights": ["bfloat16"], "autocast": None, "trainer": None}))
        Precision: the audits computed in float32, the dtype of most weights (some in bfloat16); an effect smaller than the rounding of the outputs through the bfloat16 weights (0.39% of their size) is rounding: audit a float32 copy (`model.float()`, the probe too) for those.
    """
    weights, auto, trainer = precision.get("weights"), precision.get("autocast"), precision.get("trainer")
    others = list(precision.get("other_weights") or [])  # some weights in another dtype: their layers' outputs round so
    held = f"{weights}, the dtype of most weights (some in {' and '.join(others)})" if others else f"{weights}, the weights' dtype"
    if auto is not None:
        line = f"Precision: the audits computed in {auto} under autocast (the weights in {weights}"
        line += f", some in {' and '.join(others)})" if others else ")"
    else:
        line = f"Precision: the audits computed in {held}"
        if trainer is not None and "mixed" in trainer:
            line += f" (the fit's `{trainer}` autocast is off during the audits)"
        elif trainer is not None and trainer not in ("32-true", "32"):
            line += f" (the fit's `{trainer}`)"
    coarse = max((d for d in (auto, weights, *others) if d in _HALF), key=_HALF.__getitem__, default=None)
    if coarse is not None:  # the coarsest half precision the outputs pass through: theirs is at least its rounding
        there = "there" if coarse in (auto, weights) else f"through the {coarse} weights"  # what they were computed in
        line += (f"; an effect smaller than the rounding of the outputs {there} ({_HALF[coarse]:.2%} of their size) is "
                 "rounding: audit a float32 copy (`model.float()`, the probe too) for those")
    return line + "."


def markdown_summary(epoch: int, results: Sequence[AuditResult], step: int | None = None, report: str | None = None,
                     stage: str = "epoch_end", model: str | None = None, precision: dict[str, Any] | None = None) -> str:
    """A compact markdown summary of one audit epoch: one list item per audit (seconds, its first
    scalars, the top rows of its tables), the causal-vs-Captum comparison table when there is one (with a
    line under it saying how its columns read: agreement 1 = the same ranking, which metrics are better
    lower or higher, what the curves' areas are of), and notes (NaN values, failures; a note several audits hold
    once, after their names). About 10 + 2 x audits lines; the full detail is in the JSON
    report (``report``, its file name).

    Args:
        epoch: the audited epoch.
        results: the audits' results of that epoch.
        step: the global step, shown when given.
        report: the JSON report's file name, or ``None``.
        stage: when the audit ran, as the report's ``stage``: ``"epoch_end"`` (nothing said) or ``"fit_end"``, the
            callback's audit at the end of fit, said under the heading (why it ran then, and that its scalars are not
            monitored).
        model: the network the audits explain, its name as the JSON report's ``"model"`` gives it (the module's class, or
            ``"<class>.audited_module (<network's class>)"``), said on a line ``Model: `...``` under the heading;
            ``None``: no such line.
        precision: the report's ``"precision"`` entry, said on a line ``Precision: ...`` under the model's
            (:func:`precision_line`); ``None``: no such line.

    Examples:
        >>> r = AuditResult("ie", scalars={"mean_abs_effect": 0.123}, tables={"top_groups": [{"feature": "age", "mean_abs_effect": 0.3}]},
        ...                 meta={"seconds": 0.5})
        >>> print(markdown_summary(2, [r], step=40))
        ### Causal audit, epoch 2 (step 40)
        <BLANKLINE>
        - **ie** (0.5 s): mean_abs_effect 0.123 · top: top_groups: age (mean_abs_effect 0.3)
        >>> print(markdown_summary(2, [r], model="Teacher.audited_module (Sequential)"))  # an EMA copy the module names
        ### Causal audit, epoch 2
        <BLANKLINE>
        Model: `Teacher.audited_module (Sequential)`
        <BLANKLINE>
        - **ie** (0.5 s): mean_abs_effect 0.123 · top: top_groups: age (mean_abs_effect 0.3)
        >>> print(markdown_summary(4, [r], stage="fit_end"))  # the callback's audit at the end of fit
        ### Causal audit at the end of fit, epoch 4
        <BLANKLINE>
        The audit at the end of fit (`on_fit_end=True`): the fit's last epoch was not audited at its end (off the schedule, or an epoch that never ended); run after training, its scalars are not monitored.
        <BLANKLINE>
        - **ie** (0.5 s): mean_abs_effect 0.123 · top: top_groups: age (mean_abs_effect 0.3)

    Raises:
        TypeError: ``results`` is not a sequence of ``AuditResult``; ``model`` is not ``None`` nor a ``str``.
        ValueError: ``stage`` is not ``"epoch_end"`` nor ``"fit_end"``.
    """
    check_stage(stage)
    check_model_name(model)
    sequence = isinstance(results, Sequence) and not isinstance(results, (str, bytes))  # any sequence, as the hint says
    if not sequence or not all(isinstance(r, AuditResult) for r in results):
        raise TypeError(f"Expected argument `results` to be a sequence of AuditResult (audit.run's results) but got "
                        f"{type(results).__name__}{'' if not sequence else ' of ' + str(sorted({type(r).__name__ for r in results}))}")
    at = f" (step {step})" if step is not None else ""
    lines = [f"### Causal audit, epoch {epoch}{at}", ""] if stage != "fit_end" else [
        f"### Causal audit at the end of fit, epoch {epoch}{at}", "", _FIT_END_LINE, ""]
    if model is not None:  # whose weights the numbers explain, as the report's "model" (an EMA copy, the trained network)
        lines += [f"Model: `{model}`", ""]
    if precision is not None:  # the dtype the numbers were computed in (a bf16-true fit's bfloat16, a mixed one's float32)
        lines += [precision_line(precision), ""]
    by_note: dict[str, list[str]] = {}  # note -> the audits that hold it: one line for a note several audits share
    extra = []
    for r in results:
        lines.append(_audit_line(r))
        extra += _comparison(r)
        for n in r.meta.get("notes", []):
            by_note.setdefault(f": {_cut(str(n))}", []).append(r.audit)
        if "error" in r.meta:
            by_note.setdefault(f" failed: {_cut(str(r.meta['error']))}", []).append(r.audit)
    notes = [f"- {', '.join(audits)}{note}" for note, audits in by_note.items()]
    if extra:
        lines += [""] + extra
    if notes:
        lines += ["", "Notes:"] + notes
    if report:
        lines += ["", f"Full detail: `{report}`"]
    return "\n".join(lines).rstrip()
