"""Shared timing and memory helpers of the benchmark scripts."""

from __future__ import annotations

import argparse
import importlib.util
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def median_time(fn: Callable[[], object], repeats: int) -> float:
    """Median wall seconds of ``fn`` over ``repeats`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def interleaved_times(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, tuple[float, float]]:
    """Median (wall, CPU) seconds of each function, the functions called in turn within every repeat after one
    warm-up round, so that a change of the machine's load hits them alike; the CPU time (the process's) of a
    one-thread process moves less than the wall time on a shared machine."""
    times: dict[str, list[tuple[float, float]]] = {name: [] for name in fns}
    for r in range(repeats + 1):
        for name, fn in fns.items():
            w, c = time.perf_counter(), time.process_time()
            fn()
            if r:
                times[name].append((time.perf_counter() - w, time.process_time() - c))
    return {name: (statistics.median(t[0] for t in ts), statistics.median(t[1] for t in ts)) for name, ts in times.items()}


def interleaved_medians(fns: dict[str, Callable[[], object]], repeats: int) -> dict[str, float]:
    """Median wall seconds of each function, timed as :func:`interleaved_times` does."""
    return {name: wall for name, (wall, _cpu) in interleaved_times(fns, repeats).items()}


def rss_bytes() -> int:
    """This process's resident set size in bytes (Linux ``/proc/self/statm``)."""
    with open("/proc/self/statm") as fh:
        return int(fh.read().split()[1]) * resource.getpagesize()


def peak_rss_growth(fn: Callable[[], object]) -> float:
    """Peak growth of the resident set size (MiB) while ``fn`` runs, sampled every 0.2 ms by a
    thread (run it in a fresh process: freed memory stays resident)."""
    before, peak, done = rss_bytes(), [0], threading.Event()

    def sample() -> None:
        while not done.is_set():
            peak[0] = max(peak[0], rss_bytes())
            time.sleep(0.0002)

    thread = threading.Thread(target=sample)
    thread.start()
    try:
        fn()
    finally:
        done.set()
        thread.join()
    return max(0, peak[0] - before) / 2**20


def module_at(rev: str, path: str) -> ModuleType:
    """The repository's module file ``path`` (``"lightning_causal/causal/structure/graph.py"``) as it was at git
    revision ``rev``, imported under another name: the code before a change, run beside today's in one process."""
    source = subprocess.run(["git", "show", f"{rev}:{path}"], cwd=ROOT, check=True, capture_output=True, text=True).stdout
    name = "reference_" + Path(path).stem
    file = Path(tempfile.mkdtemp()) / f"{name}.py"
    file.write_text(source)
    spec = importlib.util.spec_from_file_location(name, file)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # a dataclass of string annotations looks its module up there
    spec.loader.exec_module(module)
    return module


#: the folder whose ``lightning_causal`` a benchmark's child process imports (:func:`tree_runs`, :func:`import_tree`)
TREE_VARIABLE = "BENCH_TREE"


def import_tree(child_flag: str) -> None:
    """In a child process of :func:`tree_runs` (``child_flag`` among the arguments), put the tree it measures first on
    ``sys.path``: call before importing ``lightning_causal``."""
    import os

    if child_flag in sys.argv and os.environ.get(TREE_VARIABLE):
        sys.path.insert(0, os.environ[TREE_VARIABLE])


def tree_runs(script: str, child_args: list[str], trees: dict[str, str], repeats: int,
              replace: dict[str, tuple[str, str]] | None = None) -> dict[str, list[dict]]:
    """Run ``script child_args`` once per tree and repeat in a child process, the trees in turn within every repeat
    (``trees``: name -> a folder holding a ``lightning_causal``, e.g. an earlier revision's ``git archive REV | tar -x
    -C DIR``, imported through :func:`import_tree`; two names may share a folder where ``replace``, name -> ``(old,
    new)``, makes their arguments differ: ``new`` for ``old`` in them). The child prints a JSON object as its last line,
    with ``"tree"`` the folder it imported ``lightning_causal`` from (checked). Returns tree -> the children's
    objects."""
    import json
    import os

    runs: dict[str, list[dict]] = {tree: [] for tree in trees}
    for _ in range(repeats):
        for tree, path in trees.items():
            old, new = (replace or {}).get(tree, ("", ""))
            argv = [a.replace(old, new) for a in child_args] if old else child_args
            out = subprocess.run([sys.executable, script, *argv], env={**os.environ, TREE_VARIABLE: path},
                                 check=True, capture_output=True, text=True)
            runs[tree].append(json.loads(out.stdout.strip().splitlines()[-1]))
            if Path(runs[tree][-1]["tree"]).resolve() != Path(path).resolve():
                raise RuntimeError(f"the child measured {runs[tree][-1]['tree']}, not {path}")
    return runs


def digits_bench_parser(doc: str) -> argparse.ArgumentParser:
    """The options of the benchmarks that time models trained on digits (bench_unit_rows, bench_moving_rows):
    ``--repeats``, ``--probe`` (validation rows), ``--threads`` and ``--train-epochs``; ``doc`` is the script's
    docstring, whose first paragraph describes it."""
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--probe", type=int, default=64, help="probe rows (validation digits: at most 359)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--train-epochs", type=int, default=3, help="epochs of the trained models")
    return parser
