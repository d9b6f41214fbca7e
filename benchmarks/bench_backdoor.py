"""Backdoor detection, repair and reverse-engineering cost on the digits CNN.

    .venv/bin/python benchmarks/bench_backdoor.py [--seeds 3] [--epochs 20]

Prints three markdown tables:
1. repair: clean accuracy and ASR after fine-tuning with ``CausalRepairModule`` on 10% of the
   clean training data, for plain fine-tuning and each part of ``BackdoorSuppressionTerm``
   (ablation), with the known trigger and with the reverse-engineered one;
2. detection: Neural Cleanse anomaly index of the true target for several trigger shapes,
   sizes, positions and targets, and the false alarms on cleanly trained models over seeds;
3. the wall time of reverse engineering all 10 classes.
"""

from __future__ import annotations

import argparse
import copy
import sys
import time
import warnings
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lightning_causal.causal.backdoor import attack_success_rate, neural_cleanse, suspect_units  # noqa: E402
from lightning_causal.causal.poisoning import patch_trigger, poison  # noqa: E402
from lightning_causal.models import DigitsCNN, load_digits_tensors  # noqa: E402
from lightning_causal.repair.backdoor import BackdoorSuppressionTerm  # noqa: E402
from lightning_causal.repair.module import CausalRepairModule  # noqa: E402

DATA = load_digits_tensors()


def train(x, y, epochs: int, seed: int) -> DigitsCNN:
    """Plain Adam training (lr 2e-3, batch 64), seeded with private generators."""
    g = torch.Generator().manual_seed(seed)
    model = DigitsCNN()
    with torch.no_grad():
        for p in model.parameters():
            p.uniform_(-1, 1, generator=g).mul_(1.0 / max(1, p[0].numel()) ** 0.5)
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    for _ in range(epochs):
        perm = torch.randperm(len(y), generator=g)
        for i in range(0, len(y), 64):
            idx = perm[i : i + 64]
            loss = F.cross_entropy(model(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    return model.eval()


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


def repair_table(epochs: int, repair_epochs: int, seed: int) -> list[str]:
    xt, yt, xv, yv = DATA
    trig = patch_trigger((1, 8, 8), 2, "bottom_right", 1.0, 0)
    xp, yp, _ = poison(xt, yt, trig, 0.1, torch.Generator().manual_seed(seed))
    model = train(xp, yp, epochs, seed)
    acc0, asr0 = accuracy(model, xv, yv), attack_success_rate(model, xv, yv, trig)
    su = suspect_units(model, xv[:256], trig, "conv2")
    units = {"conv2": su.flagged or su.ranking()[:1]}
    reverse = {"steps": 300, "generator": torch.Generator().manual_seed(seed)}
    variants = {
        "fine-tuning only (no term)": None,
        "known trigger: path (target-probability effect) only": BackdoorSuppressionTerm(trig, unlearn_weight=0.0),
        "known trigger: unlearning only, α=1": BackdoorSuppressionTerm(trig, unlearn_weight=1.0, path="none"),
        "known trigger: unlearning only, α=0.1": BackdoorSuppressionTerm(trig, path="none"),
        f"known trigger: suspect-unit shift only {units}": BackdoorSuppressionTerm(trig, suspects=units, unlearn_weight=0.0),
        "known trigger: default (path + 0.1 unlearning)": BackdoorSuppressionTerm(trig),
        "reversed trigger, no dilation: default": BackdoorSuppressionTerm(dilate=0, reverse_options=reverse),
        "reversed trigger + dilated: default (trigger=None)": BackdoorSuppressionTerm(reverse_options=reverse),
        "reversed trigger + dilated: unlearning only, α=1": BackdoorSuppressionTerm(unlearn_weight=1.0, path="none", reverse_options=reverse),
    }
    rows = [f"Poisoned CNN (seed {seed}): clean accuracy {acc0:.4f}, ASR {asr0:.4f}; repair {repair_epochs} epochs, "
            f"Adam 1e-3, batch 32, on {len(yt) // 10} clean training images.", "",
            "| variant | clean accuracy | Δ accuracy (points) | ASR | seconds |", "|---|---|---|---|---|"]
    for name, term in variants.items():
        t0 = time.perf_counter()
        fixed = repair(model, term, repair_epochs, seed)
        secs = time.perf_counter() - t0
        acc, asr = accuracy(fixed, xv, yv), attack_success_rate(fixed, xv, yv, trig)
        rows.append(f"| {name} | {acc:.4f} | {100 * (acc - acc0):+.1f} | {asr:.4f} | {secs:.1f} |")
    return rows


DETECTION = [  # (size, position, target)
    (2, "bottom_right", 0), (2, "top_left", 3), (3, "top_right", 7), ((1, 3), "bottom_left", 5), (1, (3, 3), 9),
]


def detection_table(epochs: int, seeds: int) -> list[str]:
    xt, yt, xv, yv = DATA
    rows = ["| model | trigger | ASR | target's index | flagged (index) | NC seconds |", "|---|---|---|---|---|---|"]
    for size, pos, target in DETECTION:
        trig = patch_trigger((1, 8, 8), size, pos, 1.0, target)
        xp, yp, _ = poison(xt, yt, trig, 0.1, torch.Generator().manual_seed(0))
        model = train(xp, yp, epochs, 0)
        t0 = time.perf_counter()
        res = neural_cleanse(model, xv[:256], 10, generator=torch.Generator().manual_seed(0))
        secs = time.perf_counter() - t0
        flagged = ", ".join(f"{c} ({float(res.anomaly_index[c]):.2f})" for c in res.flagged) or "none"
        rows.append(f"| poisoned | {size} patch at {pos} → {target} | {attack_success_rate(model, xv, yv, trig):.3f} "
                    f"| {float(res.anomaly_index[target]):.2f} | {flagged} | {secs:.1f} |")
    alarms = 0
    for seed in range(seeds):
        model = train(xt, yt, epochs, seed)
        t0 = time.perf_counter()
        res = neural_cleanse(model, xv[:256], 10, generator=torch.Generator().manual_seed(seed))
        secs = time.perf_counter() - t0
        alarms += bool(res.flagged)
        flagged = ", ".join(f"{c} ({float(res.anomaly_index[c]):.2f})" for c in res.flagged) or "none"
        rows.append(f"| clean, seed {seed} | – | – | max {float(res.anomaly_index.max()):.2f} | {flagged} | {secs:.1f} |")
    rows += ["", f"False alarms on clean models: {alarms} of {seeds}."]
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repair-epochs", type=int, default=10)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    torch.set_num_threads(2)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads\n")
    print("## Repair (ablation)\n")
    print("\n".join(repair_table(args.epochs, args.repair_epochs, args.seed)))
    print("\n## Detection (Neural Cleanse, 300 steps, 256 validation images, all 10 classes in one batch)\n")
    print("\n".join(detection_table(args.epochs, args.seeds)))


if __name__ == "__main__":
    main()
