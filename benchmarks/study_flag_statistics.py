"""Offline study of two flag statistics of Neural Cleanse's reversed triggers (issue 17,
development cases only; see RESULTS, "Two more flag statistics").

For every patch and clean fold model of ``DEV_CASES`` and ``DEV2_CASES`` (blended cases skipped),
the ``trigger=None`` term's Neural Cleanse run on the fold's repair set is redone, and for every
class it computes:

- the attack rate of its reversed trigger per source class (uniformity);
- the attack rate of a binarised trigger made of the mask's ``k`` largest pixels with the
  reversed pattern (``k`` in 2, 4, 6, 9).

Then, for each ``k``, the bound that no clean fold model exceeds, and what it would catch.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/study_flag_statistics.py   # about 10 minutes, 1 thread
"""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import backdoor_protocol as bp  # noqa: E402
from benchmarks.bench_backdoor_protocol import Fold  # noqa: E402

KS = (2, 4, 6, 9)
LEARNED = 0.2  # ASR before repair at which a target counts as learned


def fold_rows(case: bp.Case, fold: int, digits) -> list[dict]:
    f = Fold(case, fold, digits, {})
    det = f.reversed_term(bp.REPAIR_FRACTION).detection
    x, y = f.repair_set(bp.REPAIR_FRACTION)
    model, out = f.model, []
    with torch.no_grad():
        pred = model(x).argmax(1)
        asr = None
        if f.trigger is not None:
            keep = f.data.y_eval != f.trigger.target
            asr = float((model(f.trigger.apply(f.data.x_eval[keep])).argmax(1) == f.trigger.target).float().mean())
        for c, trig in enumerate(det.triggers):
            keep = pred != c
            hits = model(trig.apply(x[keep])).argmax(1) == c
            per_source = torch.tensor([float(hits[y[keep] == s].float().mean()) for s in range(10) if s != c and (y[keep] == s).sum() >= 3])
            order = trig.mask.flatten().argsort(descending=True)
            top = []
            for k in KS:
                m = torch.zeros(trig.mask.numel()).index_fill(0, order[:k], 1.0).view_as(trig.mask)
                top.append(float((model((1 - m) * x[keep] + m * trig.pattern).argmax(1) == c).float().mean()))
            learned = case.family == "patch" and asr is not None and asr >= LEARNED
            kind = "target" if learned and c == case.target else "clean" if case.family == "clean" else "other"
            if case.family == "patch" and c == case.target and not learned:
                kind = "weak"
            out.append({"kind": kind, "model": (case.seed, fold), "flagged": c in det.flagged, "median_source": float(per_source.median()),
                        "top": top})
    return out


def main() -> None:
    torch.set_num_threads(1)
    warnings.simplefilter("ignore")
    digits = bp.load_all_digits()
    rows = [r for case in bp.DEV_CASES + bp.DEV2_CASES if case.family != "blended" for fold in range(bp.FOLDS)
            for r in fold_rows(case, fold, digits)]
    q = torch.tensor([0.0, 0.5, 1.0])
    for kind in ("target", "clean"):
        v = torch.tensor([r["median_source"] for r in rows if r["kind"] == kind])
        print(f"median per-source rate, {kind}: min / median / max {[round(float(t), 2) for t in v.quantile(q)]}")
    unflagged = [r for r in rows if r["kind"] == "target" and not r["flagged"]]
    for i, k in enumerate(KS):
        clean = {}
        for r in rows:
            if r["kind"] == "clean":
                clean[r["model"]] = max(clean.get(r["model"], 0.0), r["top"][i])
        bound = max(clean.values())
        flagged = [r for r in rows if r["kind"] == "target" and r["flagged"]]
        print(f"top-{k}: median rate flagged targets {torch.tensor([r['top'][i] for r in flagged]).median():.2f}, clean classes "
              f"{torch.tensor([r['top'][i] for r in rows if r['kind'] == 'clean']).median():.2f}; bound {bound:.2f} (no clean fold model "
              f"over it) catches {sum(r['top'][i] > bound for r in unflagged)}/{len(unflagged)} unflagged learned targets and "
              f"{sum(r['top'][i] > bound for r in rows if r['kind'] == 'other')} wrong classes of poisoned models")


if __name__ == "__main__":
    main()
