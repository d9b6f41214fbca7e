"""Backdoor detection, repair and reverse-engineering cost on the digits CNN.

    .venv/bin/python benchmarks/bench_backdoor.py [--repair-seeds 5] [--first-repair-seed 0] [--seeds 10]
        [--parts repair,detection] [--variants "default (|default,"]

Prints three markdown tables:
1. repair, for each of ``--repair-seeds`` poisoned models: the change of clean accuracy and the
   ASR after fine-tuning with ``CausalRepairModule`` on 10% of the clean training data, for plain
   fine-tuning and each part of ``BackdoorSuppressionTerm`` (ablation), with the known trigger
   and with the reverse-engineered one;
2. detection: Neural Cleanse anomaly index of the true target for several trigger shapes,
   sizes, positions and targets, and the false alarms on cleanly trained models over seeds;
3. the wall time of reverse engineering all 10 classes.
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import logging
import sys
import time
import warnings
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lightning_causal.causal.backdoor.neural_cleanse import neural_cleanse  # noqa: E402
from lightning_causal.causal.backdoor.triggers import attack_success_rate  # noqa: E402
from lightning_causal.datasets.poisoning import patch_trigger, poison  # noqa: E402
from lightning_causal.models import DigitsCNN, fit_classifier, load_digits_tensors  # noqa: E402
from lightning_causal.repair.backdoor import BackdoorSuppressionTerm  # noqa: E402
from lightning_causal.repair.module import CausalRepairModule  # noqa: E402

DATA = load_digits_tensors()


def train(x, y, epochs: int, seed: int) -> DigitsCNN:
    """Plain Adam training (lr 2e-3, batch 64), seeded with private generators."""
    return fit_classifier(DigitsCNN(), x, y, epochs, seed=seed)


def accuracy(model, x, y) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def repair(model, term, epochs: int, seed: int):
    xt, yt = DATA[0], DATA[1]
    sub = torch.randperm(len(yt), generator=torch.Generator().manual_seed(seed + 1))[: len(yt) // 10]
    module = CausalRepairModule(copy.deepcopy(model).train(), [term] if term is not None else [], lr=1e-3)
    trainer = pl.Trainer(max_epochs=epochs, logger=False, enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, accelerator="cpu", deterministic=True)
    pl.seed_everything(seed, verbose=False)
    trainer.fit(module, DataLoader(TensorDataset(xt[sub], yt[sub]), batch_size=32, shuffle=True))
    return module.model.eval()


OLD = {"path_weight": 1.0, "distill_weight": 0.0}  # the defaults before the consistency term
VARIANTS = {  # name -> (term factory(trigger, reverse options), repair epochs or None = --repair-epochs)
    "fine-tuning only (no term)": (lambda t, r: None, None),
    "known trigger: default (β=10 path + α=0.1 unlearning + γ=3 consistency)": (lambda t, r: BackdoorSuppressionTerm(t), None),
    "known trigger: default, 10 epochs": (lambda t, r: BackdoorSuppressionTerm(t), 10),
    "known trigger: default without consistency (γ=0)": (lambda t, r: BackdoorSuppressionTerm(t, distill_weight=0.0), None),
    "known trigger: default without unlearning (α=0)": (lambda t, r: BackdoorSuppressionTerm(t, unlearn_weight=0.0), None),
    "known trigger: path β=1 + unlearning α=0.1 (old default)": (lambda t, r: BackdoorSuppressionTerm(t, **OLD), None),
    "known trigger: old default, 10 epochs (last session's setting)": (lambda t, r: BackdoorSuppressionTerm(t, **OLD), 10),
    "known trigger: unlearning only, α=1": (lambda t, r: BackdoorSuppressionTerm(t, unlearn_weight=1.0, path="none", distill_weight=0.0), None),
    "reversed trigger: default (trigger=None, binarised at 0.25, box completed)": (lambda t, r: BackdoorSuppressionTerm(reverse_options=r), None),
    "reversed trigger: default, 10 epochs": (lambda t, r: BackdoorSuppressionTerm(reverse_options=r), 10),
    "reversed trigger: soft mask as reversed (binarize=None)": (lambda t, r: BackdoorSuppressionTerm(binarize=None, reverse_options=r), None),
    "reversed trigger: binarised, box never completed (box_fill=None)": (
        lambda t, r: BackdoorSuppressionTerm(box_fill=None, reverse_options=r), None),
    "reversed trigger: binarised at 0.5": (lambda t, r: BackdoorSuppressionTerm(binarize=0.5, reverse_options=r), None),
    "reversed trigger: old default (soft + dilated copy, β=1, γ=0)": (
        lambda t, r: BackdoorSuppressionTerm(binarize=None, dilate=1, reverse_options=r, **OLD), None),
}


def repair_tables(epochs: int, repair_epochs: int, seeds: list[int], only: str = "") -> list[str]:
    """Per poisoned-model seed: Δ clean accuracy (points) / ASR (%) of every variant."""
    xt, yt, xv, yv = DATA
    trig = patch_trigger((1, 8, 8), 2, "bottom_right", 1.0, target=0)
    models, acc0, base = {}, {}, ["| poisoned-model seed | clean accuracy | ASR |", "|---|---|---|"]
    for seed in seeds:
        xp, yp, _ = poison(xt, yt, trig, 0.1, generator=torch.Generator().manual_seed(seed))
        models[seed] = train(xp, yp, epochs, seed)
        acc0[seed] = accuracy(models[seed], xv, yv)
        base.append(f"| {seed} | {acc0[seed]:.4f} | {attack_success_rate(models[seed], xv, yv, trig):.4f} |")
    head = " | ".join(f"seed {s}" for s in seeds)
    rows = [f"Cells: Δ clean accuracy (points) / ASR (%) after repair; target: Δ ≥ −1 and ASR ≤ 2. Repair: Adam 1e-3, batch 32, "
            f"{repair_epochs} epochs unless stated, on {len(yt) // 10} clean training images.", "",
            f"| variant | {head} | meets target | mean Δ / ASR | seconds |", "|---|" + "---|" * (len(seeds) + 3)]
    for name, (factory, var_epochs) in VARIANTS.items():
        if only and not any(part in name for part in only.split("|")):
            continue
        cells, ok, t0, sums = [], 0, time.perf_counter(), [0.0, 0.0]
        for seed, model in models.items():
            reverse = {"steps": 300, "generator": torch.Generator().manual_seed(seed)}
            fixed = repair(model, factory(trig, reverse), var_epochs or repair_epochs, seed)
            d, asr = 100 * (accuracy(fixed, xv, yv) - acc0[seed]), 100 * attack_success_rate(fixed, xv, yv, trig)
            ok += d >= -1.0 and asr <= 2.0
            sums[0], sums[1] = sums[0] + d, sums[1] + asr
            cells.append(f"{d:+.1f} / {asr:.1f}")
        k = len(seeds)
        rows.append(f"| {name} | {' | '.join(cells)} | {ok}/{k} | {sums[0] / k:+.2f} / {sums[1] / k:.2f} "
                    f"| {(time.perf_counter() - t0) / k:.1f} |")
    return base + [""] + rows


DETECTION = [  # (size, position, target): shapes 1x1, 2x2, 3x3, lines, 2x3; corners, edges, centre; nine targets
    (2, "bottom_right", 0), (2, "top_left", 3), (3, "top_right", 7), ((1, 3), "bottom_left", 5), (1, (3, 3), 9),
    (1, (0, 0), 9), (1, (7, 0), 2), (3, "bottom_left", 1), (3, "top_left", 4), ((3, 1), "top_right", 6),
    ((2, 3), "bottom_right", 8), (2, (3, 3), 2),
]


KAPPA = 0.8  # the min_concentration measured beside plain Neural Cleanse


def _flags(res, threshold: float, kappa: float | None) -> list[int]:
    """Classes ``res`` would flag at ``threshold`` (and concentration >= ``kappa``): the same
    result re-evaluated by ``ReversedTriggers`` itself."""
    return dataclasses.replace(res, threshold=threshold, min_concentration=kappa).flagged


def detection_table(epochs: int, seeds: int, starts: tuple[int, ...] = (1, 6)) -> list[str]:
    xt, yt, xv, yv = DATA
    head = " | ".join(f"{k} start{'s' if k > 1 else ''}: target's index, κ | flagged (index, κ) | s" for k in starts)
    rows = [f"| model | trigger | ASR | {head} |", "|---|---|---|" + "---|---|---|" * len(starts)]
    poisoned, clean = {k: [] for k in starts}, {k: [] for k in starts}

    def flagged(res) -> str:
        return ", ".join(f"{c} ({float(res.anomaly_index[c]):.2f}, {float(res.concentration[c]):.2f})" for c in res.flagged) or "none"

    def detect(model, seed: int, target: int | None) -> tuple[str, dict]:
        cells, out = [], {}
        for k in starts:
            t0 = time.perf_counter()
            res = neural_cleanse(model, xv[:256], 10, generator=torch.Generator().manual_seed(seed), starts=k)
            secs = time.perf_counter() - t0
            out[k] = res
            mine = (f"{float(res.anomaly_index[target]):.2f}, {float(res.concentration[target]):.2f}" if target is not None
                    else f"max {float(res.anomaly_index.max()):.2f}")
            cells.append(f"{mine} | {flagged(res)} | {secs:.1f}")
        return " | ".join(cells), out

    for size, pos, target in DETECTION:
        trig = patch_trigger((1, 8, 8), size, pos, 1.0, target=target)
        xp, yp, _ = poison(xt, yt, trig, 0.1, generator=torch.Generator().manual_seed(0))
        model = train(xp, yp, epochs, 0)
        cells, out = detect(model, 0, target)
        for k in starts:
            poisoned[k].append((out[k], target))
        rows.append(f"| poisoned | {size} patch at {pos} → {target} | {attack_success_rate(model, xv, yv, trig):.3f} | {cells} |")
    for seed in range(seeds):
        model = train(xt, yt, epochs, seed)
        cells, out = detect(model, seed, None)
        for k in starts:
            clean[k].append(out[k])
        rows.append(f"| clean, seed {seed} | – | – | {cells} |")
    rows += ["", "κ: `mask_concentration` (share of the mask in its densest 3x3 square). Flagging rules, from the same runs:", "",
             "| starts | rule | true target flagged first | another class flagged on a poisoned model | clean models with a false alarm |",
             "|---|---|---|---|---|"]
    for k in starts:
        for threshold in (2.0, 3.0):
            for kappa in (None, KAPPA):
                first = sum(_flags(res, threshold, kappa)[:1] == [t] for res, t in poisoned[k])
                extra = sum(bool(set(_flags(res, threshold, kappa)) - {t}) for res, t in poisoned[k])
                alarms = sum(bool(_flags(res, threshold, kappa)) for res in clean[k])
                rule = f"index ≥ {threshold}" + (f" and κ ≥ {kappa}" if kappa is not None else "")
                rows.append(f"| {k} | {rule} | {first} of {len(DETECTION)} | {extra} of {len(DETECTION)} | {alarms} of {seeds} |")
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repair-epochs", type=int, default=20)
    parser.add_argument("--seeds", type=int, default=10, help="clean models for the false-alarm count")
    parser.add_argument("--repair-seeds", type=int, default=5, help="poisoned models for the repair table")
    parser.add_argument("--first-repair-seed", type=int, default=0, help="seeds first..first+n-1 (5-9: held out)")
    parser.add_argument("--parts", default="repair,detection", help="comma-separated: repair, detection")
    parser.add_argument("--variants", default="", help="repair variants whose name holds one of these '|'-separated parts (default: all)")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    torch.set_num_threads(2)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    if "repair" in parts:
        print("## Repair (ablation)\n")
        print("\n".join(repair_tables(args.epochs, args.repair_epochs, list(range(args.first_repair_seed, args.first_repair_seed + args.repair_seeds)), args.variants)), flush=True)
    if "detection" in parts:
        print("\n## Detection (Neural Cleanse, 300 steps, 256 validation images, all classes and starts in one batch)\n")
        print("\n".join(detection_table(args.epochs, args.seeds)))


if __name__ == "__main__":
    main()
