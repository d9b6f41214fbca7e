"""Rank statistics of the core against torchmetrics (issue: consolidation, torchmetrics where it fits).

    .venv/bin/python benchmarks/bench_ranking.py [--repeats 5]

Per-sample Spearman ρ and Kendall τ_b between two explanations ``[N, G]`` (N samples, G groups,
ties in 4 groups), one torch thread: the core's row-vectorised implementations
(``lightning_causal.causal.engine.ranking``) against torchmetrics' ``spearman_corrcoef`` and
``kendall_rank_corrcoef(variant="b")`` given the transposed ``[G, N]`` inputs (one "output" per
sample), timed side by side (medians). Also the largest difference and whether identical rankings
give exactly 1.
"""

from __future__ import annotations

import argparse
import functools
import sys
from pathlib import Path

import torch
from torchmetrics.functional.regression import kendall_rank_corrcoef, spearman_corrcoef

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._timing import median_time  # noqa: E402
from lightning_causal.causal.engine.ranking import kendall, spearman  # noqa: E402


def median_ms(fn, repeats: int) -> float:
    """Median milliseconds of ``fn`` after a warm-up call (``_timing.median_time``)."""
    return 1e3 * median_time(fn, repeats)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    print("| N | G | Spearman: core (ms) | torchmetrics (ms) | Kendall τ_b: core (ms) | torchmetrics (ms) | max abs diff | identical rankings: core / torchmetrics |")
    print("|---|---|---|---|---|---|---|---|")
    for n, groups in ((256, 16), (256, 64), (64, 256), (64, 1024)):
        a, b = torch.randn(n, groups, generator=g), torch.randn(n, groups, generator=g)
        a[:, :4] = a[:, :1]
        at, bt = a.T.contiguous(), b.T.contiguous()
        s_core = median_ms(functools.partial(spearman, a, b), args.repeats)
        s_tm = median_ms(functools.partial(spearman_corrcoef, at, bt), args.repeats)
        k_core = median_ms(functools.partial(kendall, a, b), args.repeats)
        k_tm = median_ms(functools.partial(kendall_rank_corrcoef, at, bt, variant="b"), args.repeats)
        diff = max(float((spearman(a.double(), b.double()) - spearman_corrcoef(at.double(), bt.double())).abs().max()),
                   float((kendall(a.double(), b.double()) - kendall_rank_corrcoef(at.double(), bt.double(), variant="b")).abs().max()))
        same = f"{float(spearman(a, a).min()):.8f} / {float(spearman_corrcoef(at, at).min()):.8f}"
        print(f"| {n} | {groups} | {s_core:.2f} | {s_tm:.2f} | {k_core:.2f} | {k_tm:.2f} | {diff:.1e} | {same} |")


if __name__ == "__main__":
    main()
