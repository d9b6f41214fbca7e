"""Cost of ``LayerMapAudit`` (``layer_causal_map``) with its defaults, now and at an earlier revision of
``causal/structure/layer_trace.py`` (its interventions), side by side in one process.

    .venv/bin/python benchmarks/bench_layer_map.py [--before REV] [--repeats 5] [--probe-cnn 8] [--probe-digits 64] [--threads 1]

Models (random weights: the cost does not depend on them): a small CNN on 3x32x32 inputs (conv 3->16->32->64,
3x3, ReLU, max pools, global average pool, a linear head: the default layers are its 3 convolutions and the head)
and the digits LeNet (``lightning_causal.models.DigitsCNN``, 1x8x8). ``LayerMapAudit()`` defaults: one input group
per element (3,072 on the CNN, 64 on the digits), so ``G * N`` forward rows: 24,576 rows for 8 probe rows of the
CNN. The audit is run with the current ``trace_interventions`` and with the one of ``--before`` (read with
``git show`` and patched into ``layer_map``), in turn within every repeat after a warm-up round, medians of
``--repeats`` of the wall and the CPU time (the process's, one thread: less moved by other
work on a shared machine); the largest difference of the two maps' CKA and relative responses is printed too (0 or float
rounding). A ``torch.profiler`` table of the current code on the CNN follows with ``--profile``.
Prints a markdown table.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._timing import module_at  # noqa: E402
from lightning_causal.audits.base import Probe  # noqa: E402
from lightning_causal.audits.layer_map import LayerMapAudit  # noqa: E402
from lightning_causal.causal.structure import layer_map  # noqa: E402
from lightning_causal.models import DigitsCNN  # noqa: E402


def cnn32() -> nn.Module:
    """The 3x32x32 CNN (random weights, seed 0)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(64, 10)).eval()


def interleaved_medians(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds of each function, the functions called in turn within every repeat after one
    warm-up round: the CPU time of this one-thread process moves less than the wall time on a shared machine."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in fns}
    for r in range(repeats + 1):
        for name, fn in fns.items():
            w, c = time.perf_counter(), time.process_time()
            fn()
            if r:
                times[name].append((time.perf_counter() - w, time.process_time() - c))
    return {name: (statistics.median(t[0] for t in ts), statistics.median(t[1] for t in ts)) for name, ts in times.items()}


def reference_trace(rev: str):
    """``trace_interventions`` of ``causal/structure/layer_trace.py`` at git revision ``rev``."""
    return module_at(rev, "lightning_causal/causal/structure/layer_trace.py").trace_interventions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default="ff911f1", help="git revision of the layer_trace.py compared with (default: "
                        "ff911f1, before the clean rows were subtracted by slices)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--probe-cnn", type=int, default=8, help="probe rows of the 3x32x32 CNN")
    parser.add_argument("--probe-digits", type=int, default=64, help="probe rows of the digits CNN")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--profile", action="store_true", help="also print a torch.profiler table of the current code")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    now, before = layer_map.trace_interventions, reference_trace(args.before)
    gen = torch.Generator().manual_seed(1)
    cases = [("CNN 3x32x32", cnn32(), torch.randn(args.probe_cnn, 3, 32, 32, generator=gen)),
             ("DigitsCNN 1x8x8", DigitsCNN().eval(), torch.randn(args.probe_digits, 1, 8, 8, generator=gen))]
    print(f"threads {args.threads}, medians of {args.repeats} (old and new in turn), torch {torch.__version__}\n")
    print("| model | probe rows | intervention rows | before: wall / CPU (s) | now: wall / CPU (s) | speed-up (wall, CPU) "
          "| max abs diff (CKA, response) |")
    print("|---|---|---|---|---|---|---|")
    for name, model, x in cases:
        audit, results = LayerMapAudit(), {}

        def run(trace, key, model=model, x=x, audit=audit, results=results):
            layer_map.trace_interventions = trace
            try:
                results[key] = audit.run(model, Probe(x))
            finally:
                layer_map.trace_interventions = now

        times = interleaved_medians({"before": lambda: run(before, "before"), "now": lambda: run(now, "now")},
                                    args.repeats)
        a, b = (results[k].graphs["layer_map"] for k in ("before", "now"))
        pairs = [*(p for ra, rb in zip(a["cka"], b["cka"]) for p in zip(ra, rb)), *zip(a["response"], b["response"])]
        diff = max((abs(float(u) - float(v)) for u, v in pairs if u == u and v == v and not isinstance(u, str)), default=0.0)
        rows = x[0].numel() * x.shape[0]
        (wb, cb), (wn, cn) = times["before"], times["now"]
        print(f"| {name} | {x.shape[0]} | {rows:,} | {wb:.2f} / {cb:.2f} | {wn:.2f} / {cn:.2f} | "
              f"{wb / wn:.2f}x, {cb / cn:.2f}x | {diff:.1e} |")
    if args.profile:
        from torch.profiler import profile

        with profile() as prof:
            LayerMapAudit().run(cases[0][1], Probe(cases[0][2]))
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


if __name__ == "__main__":
    main()
