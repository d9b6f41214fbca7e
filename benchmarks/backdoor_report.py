"""Markdown tables of the backdoor protocol's results (``bench_backdoor_protocol.py``).

A case's accuracy change pools its folds: ``Δ = 100 · (Σ correct after − Σ correct before) / Σ n``
points over every evaluated digit; its noise floor is the standard error of that paired
difference, ``100 · sqrt(b + c − (b − c)² / n) / n`` with ``b``/``c`` the images lost/gained.
"""

from __future__ import annotations

import json
import math
from collections import defaultdict
from pathlib import Path

from benchmarks import backdoor_protocol as bp

ORDER = ("ft", "known", "reversed", "nc-unlearn:known", "nc-unlearn:reversed", "fine-pruning", "anp",
         "known:e10", "known:e30", "known:f05", "known:f20", "reversed:e10", "reversed:e30", "reversed:f05", "reversed:f20")
LABEL = {"ft": "fine-tuning", "known": "ours, known trigger", "reversed": "ours, trigger=None",
         "nc-unlearn:known": "NC unlearning, known trigger", "nc-unlearn:reversed": "NC unlearning, reversed",
         "fine-pruning": "Fine-Pruning", "anp": "ANP"}


def _label(method: str) -> str:
    base, _, suffix = method.partition(":")
    if method in LABEL:
        return LABEL[method]
    if base in ("fst", "rfst"):  # Feature Shift Tuning, alone or on top of our term (fst:<alpha>)
        return f"{'ours + ' if base == 'rfst' else ''}FST, alpha {suffix or '0.2'}"
    if base in ("ibau", "ribau"):  # I-BAU's min-max, alone or beside our term (ibau:<eps>[:<weight>])
        eps, _, weight = suffix.partition(":")
        return f"{'ours + ' if base == 'ribau' else ''}I-BAU min-max, eps {eps or '2'}, weight {weight or '1'}"
    if base == "ddet":
        return f"contrastive detection, alpha {suffix or '0.2'}"
    what = f"{suffix[1:]} epochs" if suffix.startswith("e") else f"{int(suffix[1:])}% repair set"
    return f"{LABEL[base]}, {what}"


def load(path: Path) -> dict:
    """``{(seed, fold, method): record}`` (the last record wins)."""
    rows = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
    return {(r["seed"], r["fold"], r["method"]): r for r in rows}


def pooled(records: dict, case: bp.Case, method: str) -> dict | None:
    """A case's figures for ``method`` pooled over the folds that have both it and the baseline."""
    folds = [f for f in range(bp.FOLDS) if (case.seed, f, method) in records and (case.seed, f, "none") in records]
    if not folds:
        return None
    rs, bs = [records[case.seed, f, method] for f in folds], [records[case.seed, f, "none"] for f in folds]
    n = sum(r["n"] for r in rs)
    lost, gained = sum(r["lost"] for r in rs), sum(r["gained"] for r in rs)
    out = {"folds": len(folds), "n": n, "delta": 100 * (sum(r["correct"] for r in rs) - sum(b["correct"] for b in bs)) / n,
           "se": 100 * math.sqrt(max(lost + gained - (lost - gained) ** 2 / n, 0.0)) / n,
           "acc": 100 * sum(r["correct"] for r in rs) / n,
           "fold_delta": [100 * (r["correct"] - b["correct"]) / r["n"] for r, b in zip(rs, bs)]}
    if "asr_n" in rs[0]:
        out["asr"] = 100 * sum(r["asr_hits"] for r in rs) / sum(r["asr_n"] for r in rs)
        out["fold_asr"] = [100 * r["asr_hits"] / r["asr_n"] for r in rs]
    return out


def _share(flags: list[bool]) -> str:
    return f"{sum(flags)}/{len(flags)}" if flags else "–"


def case_table(cases, records, methods) -> list[str]:
    head = " | ".join(_label(m) for m in methods)
    rows = [f"| case | before: acc / ASR | clean-model ASR | {head} |", "|---|---|---|" + "---|" * len(methods)]
    for case in cases:
        base = pooled(records, case, "none")
        if base is None:
            continue
        floor = pooled(records, case, "floor")
        cells = []
        for m in methods:
            p = pooled(records, case, m)
            cells.append("–" if p is None else f"{p['delta']:+.2f} / {p['asr']:.1f}" if "asr" in p else f"{p['delta']:+.2f}")
        before = f"{base['acc']:.1f} / {base['asr']:.1f}" if "asr" in base else f"{base['acc']:.1f}"
        rows.append(f"| {case.name} | {before} | {floor['asr']:.1f} |" if floor and "asr" in floor else f"| {case.name} | {before} | – |")
        rows[-1] += f" {' | '.join(cells)} |"
    return rows


def target_table(cases, records, methods) -> list[str]:
    t = bp.TARGETS
    rows = ["| method | cases | family | ASR ≤ 2% | Δ ≥ −1 | both | mean Δ | worst Δ | mean ASR | fold models: ASR ≤ 2% / Δ ≥ −1 (359 images each) |",
            "|---|---|---|---|---|---|---|---|---|---|"]
    for m in methods:
        for family in ("patch", "blended", "clean"):
            ps = [p for c in cases if c.family == family and (p := pooled(records, c, m)) is not None]
            if not ps:
                continue
            asr_ok = [p.get("asr", 0.0) <= 100 * t["asr"] for p in ps]
            drop_ok = [p["delta"] >= -t["drop"] for p in ps]
            fa = [a <= 100 * t["asr"] for p in ps for a in p.get("fold_asr", [])]
            fd = [d >= -t["drop"] for p in ps for d in p["fold_delta"]]
            mean_asr = f"{sum(p['asr'] for p in ps) / len(ps):.2f}" if "asr" in ps[0] else "–"
            rows.append(f"| {_label(m)} | {len(ps)} | {family} | {_share(asr_ok) if 'asr' in ps[0] else '–'} | {_share(drop_ok)} | "
                        f"{_share([a and d for a, d in zip(asr_ok, drop_ok)])} | {sum(p['delta'] for p in ps) / len(ps):+.2f} | "
                        f"{min(p['delta'] for p in ps):+.2f} | {mean_asr} | {_share(fa)} / {_share(fd)} |")
    return rows


def detection_table(cases, records) -> list[str]:
    learned, unlearned, other, clean, blended = [], [], [], [], []
    for case in cases:
        for f in range(bp.FOLDS):
            det, base = records.get((case.seed, f, "detection")), records.get((case.seed, f, "none"))
            if det is None or base is None:
                continue
            if case.family == "clean":
                clean.append(bool(det["flagged"]))
            elif case.family == "blended":
                blended.append(case.target in det["flagged"])
            elif base["asr_hits"] / base["asr_n"] >= bp.LEARNED_ASR:
                learned.append(case.target in det["flagged"])
                other.append(bool(set(det["flagged"]) - {case.target}))
            else:
                unlearned.append(case.target in det["flagged"])
    return ["| models | target flagged | another class flagged | any class flagged |", "|---|---|---|---|",
            f"| patch, backdoor learned (ASR ≥ {bp.LEARNED_ASR:.0%}) | {_share(learned)} | {_share(other)} | – |",
            f"| patch, not learned | {_share(unlearned)} | – | – |",
            f"| blended | {_share(blended)} | – | – |",
            f"| clean (false alarms) | – | – | {_share(clean)} |"]


def summary(cases, path: Path) -> str:
    records = load(path)
    methods = [m for m in ORDER if any(k[2] == m for k in records)]
    methods += sorted({k[2] for k in records} - set(methods) - {"none", "detection", "floor"} - {k[2] for k in records if k[2].startswith("ddet")})
    ses = [p["se"] for c in cases if c.family != "clean" and (p := pooled(records, c, "known")) is not None]
    secs = defaultdict(list)
    for (_, _, m), r in records.items():
        secs[m].append(r["seconds"])
    lines = [f"Results: `{path.name}`. Cells: Δ clean accuracy (points, pooled over the folds) / ASR (%).", "",
             *case_table(cases, records, methods), "", *target_table(cases, records, methods), "",
             "Detection (default rule, on the repair set):", "", *detection_table(cases, records)]
    if ses:
        lines += ["", f"Noise floor (standard error of a case's pooled Δ, ours with the known trigger): median "
                      f"{sorted(ses)[len(ses) // 2]:.2f}, max {max(ses):.2f} points."]
    lines += ["", "Seconds per fold: " + ", ".join(f"{m} {sum(v) / len(v):.1f}" for m, v in sorted(secs.items()))]
    return "\n".join(lines)
