"""Audits sharded across DDP processes: the audit's wall time with 2 processes against 1.

    .venv/bin/python benchmarks/bench_ddp.py [--repeats 3] [--probe 1024] [--sobol-n 8192]

Each run is a fresh `trainer.fit` of the digits CNN for one epoch with a `CausalAuditCallback`
(input effects of every pixel, unit importance of both conv layers, Sobol' indices on 2x2
patches with ``--sobol-n`` base samples) at the end of the epoch, on `--probe` images (the 360
validation digits first, then training digits); one torch thread per process
(`ddp_spawn` with gloo for 2 processes, a plain CPU fit for 1). The audit's wall time is the
`audit_seconds` of the JSON report (the slowest process decides it: the rows are gathered before
the report is written); each audit's own seconds are reported beside it. Runs alternate 1 and 2 processes; medians are reported.
Target (issue: scale): 2 processes <= 0.6x one process.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path


def run(devices: int, probe: int, sobol_n: int, root: str) -> dict[str, float]:
    import lightning.pytorch as pl
    import torch
    from torch.utils.data import DataLoader, TensorDataset

    from lightning_causal import (
        CausalAuditCallback,
        InputEffectAudit,
        SobolAudit,
        UnitImportanceAudit,
    )
    from lightning_causal.models import DigitsCNN, LightningClassifier, load_digits_tensors

    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    pl.seed_everything(0, verbose=False)
    xt, yt, xv, yv = load_digits_tensors()
    audits = [InputEffectAudit(patch_size=1, ace_values=None), UnitImportanceAudit(["model.conv1", "model.conv2"]),
              SobolAudit(n=sobol_n, patch_size=2, n_bootstrap=0)]
    probe_data = (torch.cat([xv, xt])[:probe], torch.cat([yv, yt])[:probe])  # validation images first, then training images
    cb = CausalAuditCallback(audits, probe=probe_data, report_dir=f"{root}/r{devices}")
    trainer = pl.Trainer(max_epochs=1, accelerator="cpu", devices=devices, strategy="ddp_spawn" if devices > 1 else "auto",
                         logger=False, callbacks=[cb], enable_progress_bar=False, enable_model_summary=False,
                         enable_checkpointing=False)
    trainer.fit(LightningClassifier(DigitsCNN(), lr=2e-3), DataLoader(TensorDataset(xt, yt), batch_size=64),
                DataLoader(TensorDataset(xv, yv), batch_size=256))
    doc = json.loads(Path(f"{root}/r{devices}/epoch_0000.json").read_text())
    assert doc["world_size"] == devices
    per_audit = {name: float(entry["meta"]["seconds"]) for name, entry in doc["audits"].items()}
    return {"total": float(doc["audit_seconds"]), **per_audit}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--probe", type=int, default=1024, help="probe images: the 360 validation digits, then training digits")
    parser.add_argument("--sobol-n", type=int, default=8192)
    parser.add_argument("--child", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--root", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run(args.child, args.probe, args.sobol_n, args.root)))
        return
    seconds: dict[int, list[dict[str, float]]] = {1: [], 2: []}
    with tempfile.TemporaryDirectory() as root:
        for _ in range(args.repeats):
            for devices in (1, 2):
                cmd = [sys.executable, __file__, "--child", str(devices), "--probe", str(args.probe), "--sobol-n", str(args.sobol_n), "--root", root]
                out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
                seconds[devices].append(json.loads(out))
    print(f"probe {args.probe}, Sobol' n {args.sobol_n}, {args.repeats} repeats (medians), one thread per process\n")
    print("| audit | 1 process (s) | 2 processes (s) | ratio |")
    print("|---|---|---|---|")
    for name in seconds[1][0]:
        one = statistics.median(run[name] for run in seconds[1])
        two = statistics.median(run[name] for run in seconds[2])
        print(f"| {'all (audit_seconds)' if name == 'total' else name} | {one:.2f} | {two:.2f} | {two / one:.2f} |")
    print("\nall runs:", json.dumps(seconds))


if __name__ == "__main__":
    main()
