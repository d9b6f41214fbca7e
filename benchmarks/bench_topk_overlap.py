"""``topk_overlap``'s cost on large explanations: its top-k sets (ties by lower group id) against a full
stable sort of every row (``rank_positions(...) < k``, what 6346c0ed computed) and against ``torch.topk``
alone (ties in torch's own order: the floor, what 21e9ffee computed).

    .venv/bin/python benchmarks/bench_topk_overlap.py [--repeats 3]

One torch thread, medians after a warm-up call (``_timing.median_time``), timed side by side on the same
``[N, G]`` Gaussian scores (no ties) and on scores rounded to 1 decimal (many ties at the k-th place); each line also checks that the sets equal the
full sort's.
"""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._timing import median_time  # noqa: E402
from lightning_causal.causal.engine.ranking import rank_positions, topk_overlap  # noqa: E402


def _full_sort(a: torch.Tensor, b: torch.Tensor, k: int) -> torch.Tensor:
    return ((rank_positions(a) < k) & (rank_positions(b) < k)).sum(1).float() / k


def _topk_only(a: torch.Tensor, b: torch.Tensor, k: int) -> torch.Tensor:
    ta = torch.zeros_like(a, dtype=torch.bool).scatter_(1, a.topk(k, dim=1).indices, True)
    tb = torch.zeros_like(b, dtype=torch.bool).scatter_(1, b.topk(k, dim=1).indices, True)
    return (ta & tb).sum(1).float() / k


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    print("| scores | N x G | k | topk_overlap (s) | full stable sort (s) | torch.topk only (s) | sets equal the full sort's |")
    print("|---|---|---|---|---|---|---|")
    for n, groups, k in [(256, 50_000, 100), (64, 3 * 64 * 64, 20), (256, 784, 10)]:
        a, b = torch.randn(n, groups, generator=g), torch.randn(n, groups, generator=g)
        for kind, (x, y) in [("Gaussian", (a, b)), ("rounded to 0.1", (a.round(decimals=1), b.round(decimals=1)))]:
            first = partial(topk_overlap, ties="first")  # ties by lower id, the rule the full sort gives (the default cuts them)
            same = torch.equal(first(x, y, k), _full_sort(x, y, k))
            cells = [median_time(lambda f=f, x=x, y=y, k=k: f(x, y, k), args.repeats) for f in (first, _full_sort, _topk_only)]
            print(f"| {kind} | {n} x {groups} | {k} | " + " | ".join(f"{c:.3f}" for c in cells) + f" | {same} |")


if __name__ == "__main__":
    main()
