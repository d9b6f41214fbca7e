"""The padding scan of a model with a ``lengths`` argument: :func:`~lightning_causal.causal.engine.ablation.padding_positions`
(``CounterfactualFairnessTerm.loss`` calls it every training step) and ``input_padding`` (the graph, the layer map,
``input_effects``) on a batch of zero-padded waveforms, today's against the code of a git revision (``--rev``, the
commit before the scans were kept per call), and how many times each read every step of the tensors
(``ablation._filled_after``, counted).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_padding.py [--rev eb30fb1f] [--repeats 20]

One torch thread, the two versions timed in turn within every repeat after a warm-up round
(``_timing.interleaved_times``: median wall and CPU ms); each line also checks that the paddings are equal.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._timing import interleaved_times, module_at  # noqa: E402
from lightning_causal.causal.engine import ablation  # noqa: E402


def _counted(module: ModuleType) -> list[int]:
    """Count the calls of ``module._filled_after`` (the scan) from now on."""
    count, scan = [0], module._filled_after

    def counting(*args: object) -> bool:
        count[0] += 1
        return scan(*args)

    module._filled_after = counting
    return count


def _equal(a: object, b: object) -> bool:
    if isinstance(a, tuple) and isinstance(b, tuple):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b))
    return (a is None and b is None) or (isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor) and torch.equal(a, b))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rev", default="eb30fb1f")
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    before = module_at(args.rev, "lightning_causal/causal/engine/ablation.py")
    counts = {"before": _counted(before), "now": _counted(ablation)}
    gen = torch.Generator().manual_seed(0)
    n, samples = 64, 16_000
    lengths = torch.randint(samples // 2, samples + 1, (n,), generator=gen)
    lengths[0] = samples
    audio = torch.randn(n, 1, samples, generator=gen)
    audio[torch.arange(samples).expand(n, 1, samples) >= lengths.view(n, 1, 1)] = 0  # zero-padded after each length
    table = torch.randn(n, 8, generator=gen)
    named = {"lengths": lengths}
    cases: dict[str, Callable[[ModuleType], object]] = {
        "padding_positions(audio)": lambda m: m.padding_positions(audio, named),
        "input_padding((audio,))": lambda m: m.input_padding((audio,), named),
        "input_padding((audio, table))": lambda m: m.input_padding((audio, table), named),
    }
    print(f"{n} x 1 x {samples:,} waveforms, lengths {int(lengths.min()):,}-{samples:,}; before = {args.rev}")
    print("| call | scans before | scans now | before wall / CPU (ms) | now wall / CPU (ms) | equal |")
    print("|---|---|---|---|---|---|")
    for name, call in cases.items():
        scans = {}
        for version, module in (("before", before), ("now", ablation)):
            counts[version][0] = 0
            call(module)
            scans[version] = counts[version][0]
        times = interleaved_times({"before": lambda c=call: c(before), "now": lambda c=call: c(ablation)}, args.repeats)
        (bw, bc), (nw, nc) = times["before"], times["now"]
        print(f"| {name} | {scans['before']} | {scans['now']} | {bw * 1e3:.1f} / {bc * 1e3:.1f} | {nw * 1e3:.1f} / "
              f"{nc * 1e3:.1f} | {_equal(call(before), call(ablation))} |")


if __name__ == "__main__":
    main()
