"""Memory of the probe reader with a user's ``unpack_batch``: ``size`` rows of a dataset given as one batch of about
102 MB (``x`` ``[100_000, 256]`` float32 and its labels), given as the batch itself (``probe=(x, y)``) and as the one
item of a ``DataLoader(batch_size=None)``, read by the callback's probe (``callbacks/_probe.probe_from``) in a fresh
child process per reading and tree; peak growth of the resident set (MiB, sampled every 0.2 ms:
``_timing.peak_rss_growth``) and the calls of the ``unpack_batch`` (the rows it was given each time).

    git archive 1c1d0b7b | tar -x -C /tmp/before
    .venv/bin/python benchmarks/bench_probe_reader_memory.py --before-tree /tmp/before [--size 64] [--repeats 3]

Without ``--before-tree`` the working tree alone. Before leftovers_s43b the reader copied the whole batch for the
user's function to count its rows (and a loader's one item twice: read, then joined to itself and read again); now it
reads a copy of the batch's first rows (``data_reading._read_off_a_cut``); since leftovers_s44b a loader's first item
of more rows than asked for is read so too (it was copied whole to be counted).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks._timing import import_tree  # noqa: E402

import_tree("--child")  # the tree a child measures

from benchmarks._timing import peak_rss_growth, tree_runs  # noqa: E402

ROWS, FEATURES = 100_000, 256


def _child(kind: str, size: int) -> None:
    import torch
    from torch import nn
    from torch.utils.data import DataLoader

    import lightning_causal
    from lightning_causal.callbacks._probe import probe_from

    x, y = torch.randn(ROWS, FEATURES), torch.zeros(ROWS, dtype=torch.long)
    source = (x, y) if kind == "batch" else DataLoader([(x, y)], batch_size=None)
    calls: list[int] = []

    def unpack(b):
        calls.append(int(b[0].shape[0]))
        return b[0], b[1], None

    found = []

    def read() -> None:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found.append(probe_from(source, size, unpack, origin="probe", model=nn.Linear(FEATURES, 2)))

    grown = peak_rss_growth(read)
    assert torch.equal(found[0].inputs, x[:size])
    print(json.dumps({"tree": str(Path(lightning_causal.__file__).parents[1]), "mib": grown, "calls": calls}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--before-tree", default=None, help="a folder holding an earlier revision's lightning_causal")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", choices=["batch", "loader"], default=None)
    args = parser.parse_args()
    if args.child:
        _child(args.child, args.size)
        return
    trees = {"now": str(ROOT), **({"before": args.before_tree} if args.before_tree else {})}
    print(f"{args.size} rows of a one-batch dataset of {ROWS * FEATURES * 4 / 1e6:.0f} MB, user's unpack_batch; "
          f"peak RSS growth (MiB, median of {args.repeats}) and the rows given to unpack_batch at each call")
    print("| tree | given as | peak RSS growth (MiB) | unpack_batch calls (rows) |\n|---|---|---|---|")
    for kind, label in (("batch", "`probe=(x, y)`"), ("loader", "`DataLoader([(x, y)], batch_size=None)`")):
        runs = tree_runs(__file__, ["--child", kind, "--size", str(args.size)], trees, args.repeats)
        for tree in ("before", "now"):
            if tree in runs:
                print(f"| {tree} | {label} | {statistics.median(r['mib'] for r in runs[tree]):.1f} | {runs[tree][0]['calls']} |")


if __name__ == "__main__":
    main()
