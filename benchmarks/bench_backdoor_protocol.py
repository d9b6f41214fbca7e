"""The pre-registered backdoor protocol (issue 17): detection and repair per trigger family, our
term against its peers, on the development or the test set of ``benchmarks/backdoor_protocol.py``.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_backdoor_protocol.py --set dev|dev2|test [--folds 0,1,2,3,4]
        [--methods known,reversed,...] [--cases 0-5] [--tag NAME] [--term-options JSON] [--lr LR] [--summary-only]

Every (case, fold, method) result is appended to ``benchmarks/.backdoor_cache/<set>-<tag>.jsonl``
(ignored by git) as soon as it is measured, so an interrupted run resumes where it stopped;
trained models are cached there too. ``--summary-only`` prints the tables from that file.

Methods (all on the fold's clean repair set; 10% of the training images and 20 epochs unless
the name says otherwise):

- ``known``, ``reversed``: ``BackdoorSuppressionTerm(trigger)`` / ``(trigger=None)`` with the
  defaults (since 2026-12-04 contrastive detection is on by default: ``--term-options
  '{"contrast": false}'`` gives the earlier defaults' rows); ``:e10``/``:e30`` repair epochs,
  ``:f05``/``:f20`` repair-set shares;
- ``ft``: plain fine-tuning; ``nc-unlearn:known`` / ``nc-unlearn:reversed``: Neural Cleanse's
  unlearning with the planted trigger / the reversed triggers of the flagged classes;
  ``fine-pruning``; ``anp``; ``fst`` / ``fst:<alpha>`` (Feature Shift Tuning, alpha 0.2 by default;
  see ``benchmarks/backdoor_peers.py``); ``ibau:<eps>[:<weight>]`` (I-BAU's min-max by alternating steps,
  L2 bound ``eps``, 5 ascent steps, weight 1 by default) and ``ribau:...`` (the same beside the
  ``trigger=None`` term).

``detection`` (run unless ``--methods`` leaves it out) is the ``trigger=None`` term's own Neural
Cleanse run (default options) on the 10% repair set; ``ddet`` / ``ddet:<alpha>`` is Neural Cleanse on
the contrast between the model and its FST copy (the study behind ``contrast=True``; term options,
e.g. ``--term-options '{"contrast": true}'``, apply to the ``known``/``reversed`` rows).
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import backdoor_peers as peers  # noqa: E402
from benchmarks import backdoor_protocol as bp  # noqa: E402
from benchmarks.backdoor_report import summary  # noqa: E402
from lightning_causal.models import DigitsCNN, fit_classifier  # noqa: E402
from lightning_causal.repair.backdoor import BackdoorSuppressionTerm  # noqa: E402

CACHE = Path(__file__).resolve().parent / ".backdoor_cache"
PEERS = ("ft", "nc-unlearn:known", "nc-unlearn:reversed", "fine-pruning", "anp")
OURS = ("known", "reversed", "known:e10", "known:e30", "reversed:e10", "reversed:e30",
        "known:f05", "known:f20", "reversed:f05", "reversed:f20")
SUFFIX = {"e10": ("epochs", 10), "e30": ("epochs", 30), "f05": ("fraction", 0.05), "f20": ("fraction", 0.2)}


def trained_model(case: bp.Case, fold: int, data: bp.FoldData) -> DigitsCNN:
    """The case's model for ``fold`` (trained once, then read from the cache)."""
    path = CACHE / "models" / f"{case.seed}_{fold}.pt"
    model = DigitsCNN()
    if path.exists():
        model.load_state_dict(torch.load(path, weights_only=True))
        return model.eval()
    fit_classifier(model, data.x_train, data.y_train, bp.TRAIN_EPOCHS, seed=data.train_seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(model.state_dict(), path)
    return model.eval()


def scores(model, before, trig, data: bp.FoldData) -> dict:
    """Counts on the held-out fold: correct before/after, lost/gained images, ASR hits."""
    with torch.no_grad():
        after = model(data.x_eval).argmax(1) == data.y_eval
        out = {"n": len(after), "correct": int(after.sum()), "lost": int((before & ~after).sum()), "gained": int((~before & after).sum())}
        if trig is not None:
            keep = data.y_eval != trig.target
            out["asr_hits"] = int((model(trig.apply(data.x_eval[keep])).argmax(1) == trig.target).sum())
            out["asr_n"] = int(keep.sum())
    return out


def reversed_term(model: torch.nn.Module, x: torch.Tensor, seed: int, options: dict) -> BackdoorSuppressionTerm:
    """The protocol's ``trigger=None`` term, ``BackdoorSuppressionTerm(**options)``, set up (Neural Cleanse run) on
    ``model`` and up to 512 rows of the repair set ``x``, drawn by a permutation seeded with ``seed`` (the fold's
    ``train_seed``); warnings silenced."""
    term = BackdoorSuppressionTerm(**options)
    first = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        term.setup(model, x[first][:512])
    return term


class Fold:
    """One (case, fold): the data, the poisoned model and the set-up ``trigger=None`` terms."""

    def __init__(self, case: bp.Case, fold: int, digits, options: dict, lr: float = bp.REPAIR_LR) -> None:
        self.case, self.fold, self.options, self.lr = case, fold, options, lr
        self.data = bp.fold_data(case, fold, digits)
        self.model = trained_model(case, fold, self.data)
        self.trigger = case.trigger()
        with torch.no_grad():
            self.before = self.model(self.data.x_eval).argmax(1) == self.data.y_eval
        self._reversed: dict[float, BackdoorSuppressionTerm] = {}

    def repair_set(self, fraction: float):
        rows = bp.repair_rows(self.data, fraction)
        return self.data.x_clean[rows], self.data.y_clean[rows]

    def reversed_term(self, fraction: float) -> BackdoorSuppressionTerm:
        """A ``trigger=None`` term set up (Neural Cleanse run) on this fold's repair set."""
        if fraction not in self._reversed:
            self._reversed[fraction] = reversed_term(self.model, self.repair_set(fraction)[0], self.data.train_seed, self.options)
        return self._reversed[fraction]

    def run(self, method: str) -> tuple[torch.nn.Module, dict]:
        base, _, suffix = method.partition(":")
        epochs, fraction = bp.REPAIR_EPOCHS, bp.REPAIR_FRACTION
        if base in ("known", "reversed") and suffix:
            key, value = SUFFIX[suffix]
            epochs, fraction = (value, fraction) if key == "epochs" else (epochs, value)
        x, y = self.repair_set(fraction)
        seed = self.data.train_seed
        if base == "known":
            return peers.repair_with_terms(self.model, [BackdoorSuppressionTerm(self.trigger, **self.options)], x, y, epochs, seed, lr=self.lr), {}
        if base == "reversed":
            term = copy.deepcopy(self.reversed_term(fraction))
            flags = {"flagged": [t.target for t in term.triggers]}
            if term.contrast_detection is not None:
                flags["contrast_flagged"] = term.contrast_detection.flagged
            return peers.repair_with_terms(self.model, [term], x, y, epochs, seed, setup=False, lr=self.lr), flags
        if base == "ft":
            return peers.repair_with_terms(self.model, [], x, y, epochs, seed, lr=self.lr), {}
        if method == "nc-unlearn:known":
            return peers.nc_unlearning(self.model, [self.trigger], x, y, epochs, seed, lr=self.lr), {}
        if method == "nc-unlearn:reversed":
            det = self.reversed_term(fraction).detection
            return peers.nc_unlearning(self.model, [det.triggers[c] for c in det.flagged], x, y, epochs, seed, lr=self.lr), {}
        if base == "fine-pruning":
            model, pruned = peers.fine_pruning(self.model, x, y, epochs, seed, lr=self.lr)
            return model, {"pruned": pruned}
        if base == "rfst":  # the trigger=None term with FST's feature shift: rfst:<alpha>
            term = copy.deepcopy(self.reversed_term(fraction))
            return peers.repair_with_terms(self.model, [term], x, y, epochs, seed, setup=False, lr=self.lr,
                                           shift=("fc2", float(suffix or 0.2))), {}
        if base in ("ibau", "ribau"):  # ibau:<eps>[:<weight>]: I-BAU's min-max alone / beside the trigger=None term
            eps, _, weight = suffix.partition(":")
            universal = (float(eps or 2.0), 5, float(weight or 1.0))
            terms = [copy.deepcopy(self.reversed_term(fraction))] if base == "ribau" else []
            return peers.repair_with_terms(self.model, terms, x, y, epochs, seed, setup=False, lr=self.lr, universal=universal), {}
        if base == "fst":  # fst or fst:<alpha>
            return peers.fst(self.model, x, y, epochs, seed, alpha=float(suffix or 0.2), lr=self.lr), {}
        if base == "anp":
            model, pruned = peers.anp(self.model, x, y, seed)
            return model, {"pruned": pruned}
        raise ValueError(f"unknown method {method!r}")

    def detection(self, det=None) -> dict:
        det = det if det is not None else self.reversed_term(bp.REPAIR_FRACTION).detection
        out = {"flagged": det.flagged, "index": det.anomaly_index.tolist(), "norms": det.mask_norms.tolist()}
        if det.concentration is not None:
            out["kappa"] = det.concentration.tolist()
        # the masks themselves (3 decimals), so that other statistics of them can be compared offline
        out["masks"] = [[round(float(v), 3) for v in t.mask.flatten()] for t in det.triggers]
        return out


def fold_case(spec: str) -> tuple[bp.Case, int]:
    """The development case and fold of a study's ``"set:case position:fold"`` (``"dev2:8:1"``)."""
    set_name, case_at, fold = spec.split(":")
    return {"dev": bp.DEV_CASES, "dev2": bp.DEV2_CASES}[set_name][int(case_at)], int(fold)


def study_main(doc: str, folds: str, variants: str, run_fold) -> None:  # noqa: ANN001 - run_fold(spec, names, digits)
    """The command line of a development-fold study: ``--folds`` specs (:func:`fold_case`) and ``--variants``,
    each fold run by ``run_fold(spec, variant names, digits)`` on one thread, warnings and Lightning's logs off."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--folds", default=folds, help="set:case position:fold, comma-separated")
    parser.add_argument("--variants", default=variants)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    torch.set_num_threads(1)
    digits = bp.load_all_digits()
    for spec in args.folds.split(","):
        run_fold(spec, args.variants.split(","), digits)


def _done(path: Path) -> set[tuple[int, int, str]]:
    if not path.exists():
        return set()
    return {(r["seed"], r["fold"], r["method"]) for r in map(json.loads, path.read_text().splitlines())}


def run_case(case: bp.Case, folds: list[int], methods: list[str], digits, options: dict, out: Path, floor_case: bp.Case | None,
             lr: float = bp.REPAIR_LR) -> None:
    done = _done(out)
    for fold in folds:
        todo = [m for m in ["none", "floor", *methods] if (case.seed, fold, m) not in done]
        if case.family == "clean":
            todo = [m for m in todo if m in ("none", "detection", "reversed", "ft") or m.startswith(("fst", "rfst", "ddet", "ibau", "ribau"))]
        if case.family == "blended":  # Neural Cleanse's blind spot: trigger=None rows reported at 10% only (not counted)
            todo = [m for m in todo if m not in ("reversed:f05", "reversed:f20")]
        if case.family != "clean" and floor_case is None:
            todo = [m for m in todo if m != "floor"]
        if not todo:
            continue
        f = Fold(case, fold, digits, options, lr)
        for method in todo:
            t0 = time.perf_counter()
            if method == "none":
                rec = scores(f.model, f.before, f.trigger, f.data)
            elif method == "detection":
                rec = f.detection()
            elif method.startswith("ddet"):  # differential detection: Neural Cleanse on log p_0 - log p_FST (ddet:<alpha>)
                rec = f.detection(peers.differential_detection(f.model, *f.repair_set(bp.REPAIR_FRACTION), bp.REPAIR_EPOCHS,
                                                               f.data.train_seed, alpha=float(method.partition(":")[2] or 0.2), lr=lr))
            elif method == "floor":  # the trigger's ASR on a clean model of the same fold (its natural rate)
                clean = trained_model(floor_case, fold, bp.fold_data(floor_case, fold, digits))
                rec = scores(clean, f.before, f.trigger, f.data)
            else:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    model, extra = f.run(method)
                rec = {**scores(model, f.before, f.trigger, f.data), **extra}
            rec.update(seed=case.seed, fold=fold, method=method, seconds=round(time.perf_counter() - t0, 2))
            with out.open("a") as fh:
                fh.write(json.dumps(rec) + "\n")
        print(f"{case.name} fold {fold}: {', '.join(todo)}", flush=True)


def _pick(items: tuple, spec: str) -> list:
    if not spec:
        return list(items)
    out = []
    for part in spec.split(","):
        lo, _, hi = part.partition("-")
        out += items[int(lo) : int(hi or lo) + 1]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", choices=("dev", "dev2", "test"), default="dev")
    parser.add_argument("--folds", default="0,1,2,3,4")
    parser.add_argument("--cases", default="", help="case positions, e.g. '0-5,12' (default: all)")
    parser.add_argument("--methods", default=",".join(("detection", *OURS, *PEERS)))
    parser.add_argument("--tag", default="default", help="results file name part (one per configuration)")
    parser.add_argument("--term-options", default="{}", help="JSON keyword arguments of BackdoorSuppressionTerm (dev experiments)")
    parser.add_argument("--lr", type=float, default=bp.REPAIR_LR, help="Adam learning rate of every repair and peer (dev experiments)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--summary-only", action="store_true")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    torch.set_num_threads(args.threads)
    cases = {"dev": bp.DEV_CASES, "dev2": bp.DEV2_CASES, "test": bp.TEST_CASES}[args.set]
    out = CACHE / f"{args.set}-{args.tag}.jsonl"
    out.parent.mkdir(parents=True, exist_ok=True)
    if not args.summary_only:
        digits = bp.load_all_digits()
        floor_case = next((c for c in cases if c.family == "clean"), None)
        options = json.loads(args.term_options)
        t0 = time.perf_counter()
        for case in _pick(cases, args.cases):
            run_case(case, [int(k) for k in args.folds.split(",")], args.methods.split(","), digits, options, out, floor_case, args.lr)
        print(f"\nwall time {time.perf_counter() - t0:.0f} s, torch {torch.__version__}, {torch.get_num_threads()} thread(s)\n")
    print(summary(cases, out))


if __name__ == "__main__":
    main()
