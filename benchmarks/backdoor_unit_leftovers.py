"""UNIT's leftovers (issue 17): the variants of ``benchmarks/backdoor_unit.py``'s study that its report did not try,
on the protocol's development fold models only.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/backdoor_unit_leftovers.py --set dev|dev2 [--cases 0-11,16-17]
        [--folds 0,1,2,3,4] [--methods ch,ch@0.01,relu3,v50,reversed,reversed+unit,reversed+ch] [--tag unitleft]
        [--summary-only] [--table METHOD,...]

(RESULTS.md, "UNIT leftovers, development sets only", gives the commands of the recorded runs.)

A study, not package API and not a default. The test set is refused: nothing here was chosen to be measured on it.

Every variant is UNIT's tightening (``backdoor_unit.tighten``: start at mean + 4 std of the fit split, 300 full-batch
Adam steps with betas (0.5, 0.9) on ``CE + cost * sum_l mean(max(b_l, 0))``, the smallest bounds within 3 points of
the unclamped model's validation accuracy, the paper's cost schedule) with one thing changed, and the model clamped
``min(a, max(b, 0))`` at inference. Settings, all fixed before any run (:data:`VARIANTS`; nothing was adapted on the
development sets):

- ``ch``: one bound per **channel** of ``relu1`` (16) and ``relu2`` (32), over all positions (start: mean + 4 std of
  the channel's values over the fit rows and every position), and per neuron of ``relu3`` (64, its channels): a patch
  trigger lights a few positions of a few channels far above their clean values, which a bound per position learned at
  that position's clean spread may not see;
- ``ch@0.01``: ``ch`` with Adam at 0.01 (a bound per channel moves at most ``lr`` a step, 0.3 in 300 steps at 1e-3);
- ``relu3``: bounds per neuron at ``relu3`` only (the fully connected layer, where the conv features meet);
- ``v50``: the paper's bounds (per neuron, ``relu1-3``) with half of each class held to check (72 images: one is 1.4
  points, so the 3-point budget lets 2 images go; the paper's 20% was 28-34 images, none allowed to go);
- ``reversed``: the protocol's default ``trigger=None`` repair (``BackdoorSuppressionTerm()``, Neural Cleanse set-up,
  20 epochs, Adam 4e-3, batch 32), run again here (the cached runs held it on the default's misses only);
- ``reversed+unit`` / ``reversed+ch``: **beside** the default: the default's repaired model, then the paper's UNIT
  (per neuron, ``relu1-3``) / ``ch`` tightened on that repaired model (same repair set) and clamped at inference.

Records (one per fold and method, ``bench_backdoor_protocol.py``'s format, in
``benchmarks/.backdoor_cache/unitleft-<set>-<tag>.jsonl``, resumed where a run stopped) carry UNIT's ``valid0``,
``valid``, ``tight``, ``best_step`` and ``clipped`` (share of the held-out fold's clean activations the clamp lowers);
``reversed`` its ``flagged`` classes. ``cpu`` is process CPU seconds of the method; a ``reversed+`` method's is the clamp
alone where ``reversed`` ran before it on the fold (the repaired model is shared), else repair and clamp.

The summary (the UNIT study's, ``backdoor_rnp.summary``; the second one of the ``--cases`` asked for only, so that
methods run on part of a set compare on the same cases) merges, on the fold models whose ``none`` record equals this
run's, plain fine-tuning (``ft``) and the paper's UNIT (``unit``) from the UNIT study's records
(``unit-<set>-full.jsonl``) and, where this run has no ``reversed`` record, the default's cached records
(``<set>-np_default.jsonl``).
"""

from __future__ import annotations

import json
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import backdoor_protocol as bp  # noqa: E402
from benchmarks import backdoor_unit as unit  # noqa: E402
from benchmarks.backdoor_rnp import fold_records, study_parser, summary, trigger_free_study  # noqa: E402
from benchmarks.bench_backdoor_protocol import CACHE, Fold, _pick  # noqa: E402


@dataclass(frozen=True)
class Variant:
    """One clamp: where (``sites``), a bound per ``neuron`` or ``channel``, Adam's rate, the share held to check."""

    sites: tuple[str, ...] = unit.SITES
    per: str = "neuron"
    lr: float = unit.LR
    valid_share: float = unit.VALID_SHARE


#: Fixed before any run (see the docstring).
PAPER = Variant()
VARIANTS = {"ch": Variant(per="channel"), "ch@0.01": Variant(per="channel", lr=0.01), "relu3": Variant(sites=("relu3",)),
            "v50": Variant(valid_share=0.5)}
BESIDE = {"reversed+unit": PAPER, "reversed+ch": VARIANTS["ch"]}
METHODS = (*VARIANTS, "reversed", *BESIDE)
CACHED = {"unit-{set}-full.jsonl": ("ft", "unit"), "{set}-np_default.jsonl": ("reversed",)}


def method_parts(method: str) -> tuple[bool, Variant | None]:
    """``(beside the default, variant)`` of a method of :data:`METHODS` (``reversed``: ``(True, None)``); a
    ValueError naming the method and the methods otherwise."""
    if method not in METHODS:
        raise ValueError(f"Expected each method to be one of {', '.join(METHODS)} but got {method!r}")
    beside = method.startswith("reversed")
    return beside, (BESIDE if beside else VARIANTS).get(method)


def clamp(model: nn.Module, x: Tensor, y: Tensor, v: Variant) -> tuple[nn.Module, dict, dict]:
    """``model`` clamped at the bounds of variant ``v`` tightened on ``(x, y)``; the bounds and UNIT's fields."""
    bounds, info = unit.tighten(model, x, y, lr=v.lr, sites=v.sites, per=v.per, valid_share=v.valid_share)
    return unit.clamped(model, bounds), bounds, info


def run_fold(case: bp.Case, fold: int, digits, methods: list[str], out: Path, done: set) -> None:
    """Every missing record of one fold model."""

    def per_fold(f: Fold, x: Tensor, y: Tensor, seed: int):
        repaired: list = []  # the default's repaired model and flags, shared by the reversed methods

        def run(m: str) -> tuple[nn.Module, dict]:
            beside, v = method_parts(m)
            base, extra = f.model, {}
            if beside:
                if not repaired:
                    repaired.append(f.run("reversed"))
                base, extra = repaired[0][0], dict(repaired[0][1])
                if v is None:
                    return base, extra
            model, bounds, info = clamp(base, x, y, v)
            return model, {**extra, **info, "clipped": round(unit.clipped_share(base, bounds, f.data.x_eval), 5)}

        return run

    fold_records(case, fold, digits, methods, out, done, per_fold)


def merged(out: Path, set_name: str, into: Path) -> Path:
    """``into``: this run's records and, on the fold models whose ``none`` record equals this run's, the cached
    :data:`CACHED` methods' records this run lacks (the docstring)."""
    rows = [json.loads(line) for line in out.read_text().splitlines()] if out.exists() else []
    mine = {(r["seed"], r["fold"], r["method"]): r for r in rows}
    for name, keep in CACHED.items():
        path = CACHE / name.format(set=set_name)
        cached = [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
        none = {(r["seed"], r["fold"]): r for r in cached if r["method"] == "none"}
        for r in cached:
            key = (r["seed"], r["fold"])
            ours = mine.get((*key, "none"))
            same = ours is not None and key in none and all(ours.get(k) == none[key].get(k) for k in ("n", "correct", "asr_hits"))
            if same and r["method"] in keep and (*key, r["method"]) not in mine:
                rows.append(r)
    into.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return into


def main() -> None:
    parser = study_parser(__doc__, "unitleft", "")
    args = parser.parse_known_args()[0]
    with tempfile.TemporaryDirectory() as tmp:
        trigger_free_study(__doc__, "unitleft", "UNIT", list(METHODS), "methods (see the docstring)", method_parts, run_fold)
        cases = _pick({"dev": bp.DEV_CASES, "dev2": bp.DEV2_CASES}[args.set], args.cases)
        table = [m for m in args.table.split(",") if m]
        print("\nWith plain fine-tuning and UNIT (unit-*-full.jsonl) and the default's cached records where this run has none:\n")
        print(summary(cases, merged(CACHE / f"unitleft-{args.set}-{args.tag}.jsonl", args.set, Path(tmp) / "m.jsonl"),
                      [*dict.fromkeys(["ft", "unit", *table, "reversed"])] if table else []))


if __name__ == "__main__":
    main()
