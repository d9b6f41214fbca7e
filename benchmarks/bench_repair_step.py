"""Per-step cost of ``BackdoorSuppressionTerm.loss`` and of a ``CausalRepairModule`` step around it, at a git revision
before a change and in the working tree, in separate processes run in turn.

    .venv/bin/python benchmarks/bench_repair_step.py --before HEAD~1 [--after HEAD] [--repeats 5] [--calls 2000] [--threads 1]

The model is small on purpose (an MLP 64 -> 32 -> 10 on 8x8 "images", batches of 32 rows, a known 2x2 trigger,
``augment=None``, ``distill_weight=3``): the term's own work beside the forward and backward passes is what the
figures show. Each case times ``--calls`` calls (process CPU time and wall time, one thread) after 50 warm-up calls:

- ``loss, int labels``: ``term.loss(model, x, y)`` with class indices ``[N]``;
- ``loss, soft labels``: the same with soft labels ``[N, 10]`` (a mixup of two one-hot rows, 0.7 / 0.3), read by
  their largest class;
- ``objective, int labels`` / ``objective, soft labels``: ``CausalRepairModule(model, [term],
  task_loss=nn.CrossEntropyLoss()).objective((x, y))``, the training step without Lightning's logging (the task
  loss, which takes soft labels as class probabilities, the term and the logged parts).

The revision's tree (``git archive``) and the working tree (or ``--after``'s revision) each run as a child process,
``--repeats`` times in turn (before, now, before, now, ...), so that a change of the machine's load hits both alike;
the table gives the median per call in microseconds, the median ratio of the pairs (and their range), and the host
reads of one call: the ops that read the device's data back on the host or copy host data to it
(``aten._local_scalar_dense``: ``float(t)``, ``bool(t)``; ``aten.nonzero`` and boolean-mask indexing; ``aten.lift_fresh``:
a tensor made of Python data), counted by a dispatch mode on the CPU: each one a synchronisation on a GPU. Without
``--before``, one tree only.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CASES = ("loss, int labels", "loss, soft labels", "objective, int labels", "objective, soft labels")


def _child(calls: int, threads: int) -> dict[str, tuple[float, float, int]]:
    """Per-call (CPU, wall) seconds and host reads of each case, in this process (whose ``lightning_causal`` is the
    tree's)."""
    import warnings

    import torch
    from torch import nn

    from lightning_causal.causal.backdoor.triggers import Trigger
    from lightning_causal.repair import BackdoorSuppressionTerm, CausalRepairModule

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
    mask = torch.zeros(1, 8, 8)
    mask[:, -2:, -2:] = 1.0
    trigger = Trigger(mask, torch.ones(1, 8, 8), target=3)
    x = torch.rand(32, 1, 8, 8)
    y = torch.arange(32) % 10
    soft = 0.7 * nn.functional.one_hot(y, 10).float() + 0.3 * nn.functional.one_hot((y + 1) % 10, 10).float()
    term = BackdoorSuppressionTerm(trigger, augment=None, distill_weight=3.0)
    term.setup(model)
    repair = CausalRepairModule(model, [term], task_loss=nn.CrossEntropyLoss())
    fns = {
        "loss, int labels": lambda: term.loss(model, x, y),
        "loss, soft labels": lambda: term.loss(model, x, soft),
        "objective, int labels": lambda: repair.objective((x, y)),
        "objective, soft labels": lambda: repair.objective((x, soft)),
    }
    out = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name in CASES:
            fn = fns[name]
            for _ in range(50):
                fn()
            c, w = time.process_time(), time.perf_counter()
            for _ in range(calls):
                fn()
            out[name] = ((time.process_time() - c) / calls, (time.perf_counter() - w) / calls, _host_reads(fn))
    import lightning_causal

    out["package"] = lightning_causal.__file__  # type: ignore[assignment]
    return out


def _host_reads(fn) -> int:
    """The ops of one call of ``fn`` that read the device's data on the host or copy host data to it."""
    import torch
    from torch.utils._python_dispatch import TorchDispatchMode

    reads = {"aten._local_scalar_dense.default", "aten.nonzero.default", "aten.lift_fresh.default",
             "aten.masked_select.default"}

    class Count(TorchDispatchMode):
        n = 0

        def __torch_dispatch__(self, func, types, args=(), kwargs=None):
            masked = str(func) == "aten.index.Tensor" and any(i is not None and i.dtype == torch.bool for i in args[1])
            Count.n += str(func) in reads or masked
            return func(*args, **(kwargs or {}))

    with Count():
        fn()
    return Count.n


def _tree_at(rev: str) -> Path:
    """The repository's files at ``rev`` (``git archive``), in a temporary folder."""
    folder = Path(tempfile.mkdtemp(prefix="bench_repair_step_"))
    archive = folder / "tree.tar"
    subprocess.run(["git", "archive", "-o", str(archive), rev], cwd=ROOT, check=True)
    with tarfile.open(archive) as tar:
        tar.extractall(folder / "tree", filter="data")
    return folder / "tree"


def _run(tree: Path, calls: int, threads: int) -> dict[str, tuple[float, float, int]]:
    env = {**os.environ, "PYTHONPATH": str(tree), "OMP_NUM_THREADS": str(threads)}
    done = subprocess.run([sys.executable, str(Path(__file__).resolve()), "--child", "--calls", str(calls),
                           "--threads", str(threads)], cwd=tree, env=env, check=True, capture_output=True, text=True)
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if not Path(result.pop("package")).resolve().is_relative_to(tree.resolve()):
        raise RuntimeError(f"the child process imported lightning_causal from outside {tree}")
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default=None, help="git revision to compare with (e.g. HEAD); none: one tree only")
    parser.add_argument("--after", default=None, help="git revision compared with --before (default: the working tree)")
    parser.add_argument("--repeats", type=int, default=5, help="child processes per tree, run in turn")
    parser.add_argument("--calls", type=int, default=2000, help="timed calls of each case per process")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(_child(args.calls, args.threads)))
        return
    now = ROOT if args.after is None else _tree_at(args.after)
    trees = {"now": now} if args.before is None else {"before": _tree_at(args.before), "now": now}
    runs: dict[str, list[dict[str, tuple[float, float, int]]]] = {k: [] for k in trees}
    try:
        for _ in range(args.repeats):
            for key, tree in trees.items():
                runs[key].append(_run(tree, args.calls, args.threads))
    finally:
        for tree in trees.values():
            if tree != ROOT:
                shutil.rmtree(tree.parent)
    head = ("| case | " + " | ".join(f"{k}: CPU / wall (µs per call), host reads" for k in trees)
            + (" | CPU ratio now/before |" if len(trees) > 1 else " |"))
    print(head)
    print("|" + "---|" * (head.count("|") - 1))
    for case in CASES:
        cells = []
        for key in trees:
            cpu = statistics.median(r[case][0] for r in runs[key]) * 1e6
            wall = statistics.median(r[case][1] for r in runs[key]) * 1e6
            cells.append(f"{cpu:.1f} / {wall:.1f}, {runs[key][0][case][2]}")
        if len(trees) > 1:
            ratios = [n[case][0] / b[case][0] for b, n in zip(runs["before"], runs["now"])]
            cells.append(f"{statistics.median(ratios):.3f} ({min(ratios):.3f}-{max(ratios):.3f})")
        print(f"| {case} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
