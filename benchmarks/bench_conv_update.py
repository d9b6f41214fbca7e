"""Where the linear update of a convolution reader pays: the update of rows that change one input channel each against
the convolution's own product on the same rows, by input channels, kernel and size (``engine/conv_update.py``; the
rule it checks: ``linear_update.MAX_SHARE``, a unit at most an eighth of a group's input channels).

    .venv/bin/python benchmarks/bench_conv_update.py [--rows 256] [--repeats 5] [--threads 1] [--positions]

Each case: ``nn.Conv2d(C, C, k, padding=k // 2)`` (random weights, seed 0) read by a layer output of 16 probe samples
``[16, C, S, S]``; ``--rows`` rows, each a probe sample with one random channel scaled by 0. "conv": the module's
forward on the rows; "update": ``LinearReaders._update`` (the rows' probe outputs copied, the changed channel's change
gathered, its windows and the batched product with its weight slice added), the path a suffix run takes. Medians of
``--repeats`` (interleaved, after a warm-up) of the process's CPU seconds (on a shared machine they move less than the
wall time), one thread by default. Prints a markdown table.

``--positions``: units along positions instead (``unit_dim=-1`` of a ``Conv1d``'s input, a sequence's steps): each case
``nn.Conv1d(C, C, k, padding=k // 2)`` read by ``[16, C, L]``, each row one random position of every channel changed
(scaled by 0); the update computes the output positions the change reaches only (``conv_update.add_position_change``).
"answered": the rule ``conv_share`` * ``MAX_SHARE`` <= 1 (the reach, ``k`` positions here, at most an eighth of ``L``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import Tensor, nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks._timing import interleaved_times  # noqa: E402
from lightning_causal.causal.engine.conv_update import conv_share  # noqa: E402
from lightning_causal.causal.engine.linear_update import MAX_SHARE, LinearReaders  # noqa: E402


def _timed(conv: nn.Module, value: Tensor, unit_dim: int, width: int, rows: int, repeats: int) -> dict[str, float]:
    """Median CPU seconds of ``conv`` and of the update on ``rows`` rows of ``value``, each with one unit of
    ``unit_dim`` (``width`` of them) set to 0."""
    readers = LinearReaders(nn.Identity())
    with torch.no_grad():
        readers.value, readers.outputs = value, {conv: conv(value)}
    picked = torch.randint(0, value.shape[0], (rows,))
    columns = torch.randint(0, width, (rows, 1))
    h = value[picked].clone()
    h.movedim(unit_dim, 1)[torch.arange(rows)[:, None], columns] = 0.0

    def plain() -> None:
        with torch.no_grad():
            conv(h)

    def update() -> None:
        with torch.no_grad():
            readers._update(conv, h, picked, columns, unit_dim=unit_dim)

    return {name: cpu for name, (_wall, cpu) in interleaved_times({"conv": plain, "update": update}, repeats).items()}


def case(channels: int, kernel: int, size: int, rows: int, repeats: int) -> dict[str, float]:
    """Median CPU seconds of the convolution and of the update on ``rows`` rows of one changed channel each."""
    torch.manual_seed(0)
    conv = nn.Conv2d(channels, channels, kernel, padding=kernel // 2).eval()
    return _timed(conv, torch.randn(16, channels, size, size), 1, channels, rows, repeats)


def position_case(channels: int, kernel: int, length: int, rows: int, repeats: int) -> dict[str, float]:
    """Median CPU seconds of a ``Conv1d`` and of the update on ``rows`` rows of one changed position each."""
    torch.manual_seed(0)
    conv = nn.Conv1d(channels, channels, kernel, padding=kernel // 2).eval()
    return _timed(conv, torch.randn(16, channels, length), 2, length, rows, repeats)


def positions(args: argparse.Namespace) -> None:
    print("| channels | kernel | length | conv (CPU ms) | update (CPU ms) | update / conv | answered |")
    print("|---|---|---|---|---|---|---|")
    for kernel in (3, 7):
        for length in (8, 16, 32, 64, 128, 512):
            for channels in (8, 64, 256):
                t = position_case(channels, kernel, length, args.rows, args.repeats)
                share = conv_share(nn.Conv1d(channels, channels, kernel, padding=kernel // 2), -1, 1, 3, (1, channels, length))
                answered = "yes" if share is not None and share * MAX_SHARE <= 1 else "no"
                print(f"| {channels} | {kernel} | {length} | {t['conv'] * 1e3:.2f} | {t['update'] * 1e3:.2f} | "
                      f"{t['update'] / t['conv']:.2f} | {answered} |", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rows", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--positions", action="store_true", help="units along a Conv1d's positions")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), {args.rows} rows, medians of {args.repeats}; "
          f"MAX_SHARE = {MAX_SHARE}\n")
    if args.positions:
        positions(args)
        return
    print("| input channels | kernel | size | conv (CPU ms) | update (CPU ms) | update / conv | answered |")
    print("|---|---|---|---|---|---|---|")
    for kernel in (3, 1):
        for size in (8, 16, 32):
            for channels in (2, 4, 8, 16, 32, 64):
                t = case(channels, kernel, size, args.rows, args.repeats)
                answered = "yes" if MAX_SHARE <= channels else "no"
                print(f"| {channels} | {kernel}x{kernel} | {size}x{size} | {t['conv'] * 1e3:.2f} | {t['update'] * 1e3:.2f} | "
                      f"{t['update'] / t['conv']:.2f} | {answered} |", flush=True)


if __name__ == "__main__":
    main()
