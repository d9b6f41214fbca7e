"""The audits on one GPU (issue: scale): each default audit of the ResNet-18-sized CNN against one
batched forward pass of its probe and against one training epoch, in under 5 minutes.

    .venv/bin/python benchmarks/bench_gpu.py [--probe 256] [--train 10000] [--device cuda]

The model (`ResNet18`, 11.2M parameters, random init) and the probe (`--probe` images of
`bench_scale.images`) live on the device; every audit's rows follow them there. Times are
synchronised wall seconds, medians of `--repeats` runs after one warm-up; "forward" is one
`model(probe)` in eval mode under `no_grad`; "epoch" is one training epoch of `--train` images
(SGD, batch 128, train mode, as `bench_scale.py` times it on CPU) of a copy of the model, after
one warm-up epoch, synchronised. Also the peak GPU memory of each audit
(`torch.cuda.max_memory_allocated` above the memory held before it) against the engine's budget.
"CPU pass sizes" runs the same audit, in the same run, with the pass sizes the engine uses on CPU
(a 32 MiB working set, :data:`~lightning_causal.causal.engine.batching.DEFAULT_WORKING_SET`, under
the 512 MiB :data:`~lightning_causal.causal.engine.batching.DEFAULT_MEMORY_BUDGET`) instead of the
accelerator's (the whole budget, `pass_budget`: an eighth of the free device memory, 512 MiB to 8 GiB). Refuses to run without the device (prints why,
exit status 1).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_scale import AUDITS, images, run_audit, train_epoch  # noqa: E402

from lightning_causal import Probe  # noqa: E402
from lightning_causal.causal.engine import batching  # noqa: E402
from lightning_causal.causal.engine.batching import DEFAULT_MEMORY_BUDGET, DEFAULT_WORKING_SET  # noqa: E402
from lightning_causal.models import ResNet18  # noqa: E402


def timed(fn, device: torch.device, repeats: int) -> float:
    fn()
    times = []
    for _ in range(repeats):
        torch.cuda.synchronize(device)
        t0 = time.perf_counter()
        fn()
        torch.cuda.synchronize(device)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--probe", type=int, default=256)
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train", type=int, default=10000, help="images of the timed training epoch")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    device = torch.device(args.device)
    if device.type != "cuda" or not torch.cuda.is_available():
        print(f"bench_gpu: no CUDA device ({args.device!r}, cuda available: {torch.cuda.is_available()}); not run")
        sys.exit(1)
    torch.manual_seed(0)
    model = ResNet18().to(device).eval()
    probe = Probe(images(args.probe, seed=1)[0].to(device))

    def forward() -> None:
        with torch.no_grad():
            model(probe.first)

    t_forward = timed(forward, device, args.repeats)
    x_train, y_train = (t.to(device) for t in images(args.train, seed=2))
    trained = copy.deepcopy(model)
    train_epoch(trained, x_train, y_train)  # warm-up (cuDNN autotuning, allocator)
    torch.cuda.synchronize(device)
    t0 = time.perf_counter()
    train_epoch(trained, x_train, y_train)
    torch.cuda.synchronize(device)
    t_epoch = time.perf_counter() - t0
    del trained, x_train, y_train
    print(f"torch {torch.__version__}, {torch.cuda.get_device_name(device)}; probe {args.probe}; "
          f"one batched forward {1e3 * t_forward:.1f} ms; one training epoch of {args.train} images {t_epoch:.2f} s\n")
    budget = batching.pass_budget(device) / 2**20
    print("| audit | seconds | / one forward of the probe | / one training epoch | CPU pass sizes (s) "
          "| peak memory above the model (MiB) | pass budget (MiB) |")
    print("|---|---|---|---|---|---|---|")
    preferred, budget_of = batching.preferred_pass_bytes, batching.pass_budget
    for name in AUDITS:
        batching.preferred_pass_bytes = lambda device, budget_bytes=DEFAULT_MEMORY_BUDGET: DEFAULT_WORKING_SET
        batching.pass_budget = lambda device: DEFAULT_MEMORY_BUDGET
        try:
            small = timed(lambda n=name: run_audit(n, model, probe), device, args.repeats)
        finally:
            batching.preferred_pass_bytes, batching.pass_budget = preferred, budget_of
        seconds = timed(lambda n=name: run_audit(n, model, probe), device, args.repeats)
        torch.cuda.reset_peak_memory_stats(device)
        held = torch.cuda.memory_allocated(device)
        run_audit(name, model, probe)
        peak = (torch.cuda.max_memory_allocated(device) - held) / 2**20
        print(f"| {name} | {seconds:.2f} | {seconds / t_forward:.0f} | {seconds / t_epoch:.2f} | {small:.2f} | {peak:.0f} "
              f"| {budget:.0f} |")


if __name__ == "__main__":
    main()
