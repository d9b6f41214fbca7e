"""Realistic sizes (issue: scale): the default audits of a ResNet-18-sized CNN against one training
epoch, and the audit's peak memory against the engine's budget.

    .venv/bin/python benchmarks/bench_scale.py [--train 10000] [--probe 256] [--device cpu]
        [--timed-batches K] [--memory-probe M]

Model: `lightning_causal.models.ResNet18` (11.2M parameters, 3x32x32 inputs, hand-built, random
init then trained for the timed epoch). Data: scikit-learn's digits upscaled to 32x32 and three
channels, shifted by up to 4 pixels and with Gaussian noise, `--train` images (nothing downloaded).
In one process, side by side: one training epoch (SGD, batch 128, train mode) and each audit on
the first `--probe` images, as `CausalAuditCallback` runs them (eval mode, no trace):

- `InputEffectAudit(patch_size=4)` (64 patches; its ACE on 64 samples and 4 values);
- `UnitImportanceAudit(["layers.4.c1"])` (256 channels inside a residual block: the prefix cache);
- the same with `screen=50` (attribution screen, exact interventions on 50 units).

Peak memory: each audit runs again in a fresh process; the peak resident set size above the
process's size just before the audit (model, data and probe loaded) is compared with the
engine's activation budget (512 MiB, `DEFAULT_MEMORY_BUDGET`).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
import warnings

import torch
from torch.nn import functional as F

from lightning_causal import InputEffectAudit, Probe, UnitImportanceAudit
from lightning_causal.callbacks._no_trace import no_trace
from lightning_causal.causal.engine.batching import DEFAULT_MEMORY_BUDGET
from lightning_causal.models import ResNet18, load_digits_tensors

AUDITS = {
    "input_effect (patch 4)": lambda: InputEffectAudit(patch_size=4),
    "unit_importance layers.4.c1": lambda: UnitImportanceAudit(["layers.4.c1"]),
    "unit_importance layers.4.c1, screen=50": lambda: UnitImportanceAudit(["layers.4.c1"], screen=50),
}


def images(n: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` 3x32x32 images made from the digits (upscaled, shifted, noisy) and their labels."""
    x, y, _, _ = load_digits_tensors(seed=seed)
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, len(y), (n,), generator=g)
    big = F.interpolate(x[idx], size=(32, 32), mode="bilinear", align_corners=False).repeat(1, 3, 1, 1)
    shifts = torch.randint(-4, 5, (2,), generator=g).tolist()
    big = torch.roll(big, shifts=shifts, dims=(2, 3)) + 0.1 * torch.randn(big.shape, generator=g)
    return big, y[idx]


def train_epoch(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 128,
                timed_batches: int | None = None) -> float:
    """Seconds of one epoch over ``x``; with ``timed_batches`` only the first batches run and the
    epoch is their time scaled to all ``ceil(len(x) / batch)`` batches (steps of equal size cost
    the same)."""
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    model.train()
    starts = list(range(0, len(y), batch))
    run = starts if timed_batches is None else starts[:timed_batches]
    t0 = time.perf_counter()
    for i in run:
        opt.zero_grad()
        F.cross_entropy(model(x[i : i + batch]), y[i : i + batch]).backward()
        opt.step()
    return (time.perf_counter() - t0) * len(starts) / len(run)


def run_audit(name: str, model: torch.nn.Module, probe: Probe) -> float:
    audit = AUDITS[name]()
    t0 = time.perf_counter()
    with no_trace(model):
        audit.run(model, probe)
    return time.perf_counter() - t0


def _status(key: str) -> float:
    """A ``/proc/self/status`` memory field in MiB (Linux)."""
    for line in open("/proc/self/status"):
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(key)


def child(name: str, probe_size: int, device: str) -> None:
    """Peak RSS of one audit above the process's size just before it (MiB): the high-water mark
    is reset (``/proc/self/clear_refs``) once the model, data and probe are in memory."""
    torch.manual_seed(0)
    model = ResNet18().to(device)
    x, _ = images(probe_size, seed=1)
    probe = Probe(x.to(device))
    with torch.no_grad():
        model.eval()(probe.first[:2])  # allocator warm-up
    with open("/proc/self/clear_refs", "w") as fh:
        fh.write("5")
    before = _status("VmRSS")
    run_audit(name, model, probe)
    print(json.dumps(_status("VmHWM") - before))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--train", type=int, default=10000)
    parser.add_argument("--probe", type=int, default=256)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--timed-batches", type=int, help="time only the first batches of the epoch and scale (default: all)")
    parser.add_argument("--memory-probe", type=int, help="probe size of the peak-memory runs (default: --probe)")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    if args.child:
        child(args.child, args.probe, args.device)
        return
    torch.manual_seed(0)
    model = ResNet18().to(args.device)
    x, y = images(args.train)
    epoch = train_epoch(model, x.to(args.device), y.to(args.device), timed_batches=args.timed_batches)
    probe = Probe(images(args.probe, seed=1)[0].to(args.device))
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, device {args.device}; "
          f"one training epoch of {args.train} images: {epoch:.1f} s"
          f"{'' if args.timed_batches is None else f' (first {args.timed_batches} batches of 128 timed, scaled)'}; "
          f"probe {args.probe}; peak-memory probe {args.memory_probe or args.probe}\n")
    print("| audit | seconds | / one epoch | peak memory above the model and data (MiB) | engine budget (MiB) |")
    print("|---|---|---|---|---|")
    for name in AUDITS:
        seconds = run_audit(name, model, probe)
        cmd = [sys.executable, __file__, "--child", name, "--probe", str(args.memory_probe or args.probe), "--device", args.device]
        mem = float(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1])
        print(f"| {name} | {seconds:.1f} | {seconds / epoch:.2f} | {mem:.0f} | {DEFAULT_MEMORY_BUDGET / 2**20:.0f} |")


if __name__ == "__main__":
    main()
