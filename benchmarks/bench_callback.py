"""Callback benchmark on the demo's set-up (digits CNN, 15 epochs, audits every 5 epochs).

    .venv/bin/python benchmarks/bench_callback.py [--repeats 3]

Measures, alternating runs with and without the callback in one process: fit wall time (median),
the ratio, the audit's cost in units of one training epoch (median audit seconds / median epoch
seconds), and, in fresh processes, peak RSS of a fit with and without the callback.
Targets: audit <= 1 training epoch; fit ratio <= 1.3.
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

import lightning.pytorch as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from examples.demo_digits import EpochTimer  # noqa: E402
from lightning_causal import CausalAuditCallback, InputEffectAudit, UnitImportanceAudit  # noqa: E402
from lightning_causal.models import DigitsCNN, LightningClassifier, load_digits_tensors  # noqa: E402


def fit(with_callback: bool, epochs: int, every: int) -> dict:
    pl.seed_everything(0, verbose=False)
    xt, yt, xv, yv = load_digits_tensors()
    train = DataLoader(TensorDataset(xt, yt), batch_size=64, shuffle=True)
    val = DataLoader(TensorDataset(xv, yv), batch_size=256)
    timer = EpochTimer()
    callbacks: list[pl.Callback] = [timer]
    audit = None
    if with_callback:
        audit = CausalAuditCallback(
            [InputEffectAudit(patch_size=2, top_k=5), UnitImportanceAudit(["model.conv1", "model.conv2"], top_k=5)],
            every_n_epochs=every, report_dir="/tmp/bench_callback_reports",
        )
        callbacks.append(audit)
    trainer = pl.Trainer(max_epochs=epochs, logger=False, callbacks=callbacks, enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False)
    t0 = time.perf_counter()
    trainer.fit(LightningClassifier(DigitsCNN(), lr=2e-3), train, val)
    out = {"fit": time.perf_counter() - t0, "epoch": statistics.median(timer.seconds)}
    if audit is not None:
        seconds = [r.meta["seconds"] for r in audit.last_results.values()]
        out["audit_last"] = sum(seconds)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--every", type=int, default=5)
    parser.add_argument("--memory", choices=["with", "without"])
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    if args.memory:
        fit(args.memory == "with", args.epochs, args.every)
        print(json.dumps(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024))
        return
    fit(True, 2, 1)  # warm-up (imports, first tracing)
    runs: dict[bool, list[dict]] = {True: [], False: []}
    for _ in range(args.repeats):
        for flag in (False, True):
            runs[flag].append(fit(flag, args.epochs, args.every))
    f_with = statistics.median(r["fit"] for r in runs[True])
    f_without = statistics.median(r["fit"] for r in runs[False])
    epoch = statistics.median(r["epoch"] for r in runs[False])
    audit = statistics.median(r["audit_last"] for r in runs[True])
    mem = {}
    for flag in ("with", "without"):
        cmd = [sys.executable, __file__, "--memory", flag, "--epochs", str(args.epochs), "--every", str(args.every)]
        mem[flag] = float(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, {args.epochs} epochs, audits every {args.every}, "
          f"{args.repeats} repeats (medians)\n")
    print("| fit without (s) | fit with (s) | ratio | epoch (s) | one audit (s) | audit / epoch | peak RSS without (MiB) | peak RSS with (MiB) |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {f_without:.2f} | {f_with:.2f} | {f_with / f_without:.2f} | {epoch:.3f} | {audit:.3f} | {audit / epoch:.2f} "
          f"| {mem['without']:.0f} | {mem['with']:.0f} |")


if __name__ == "__main__":
    main()
