"""benchmarks/bench_graph.py --small --only (e1c6bad3) took any name: a misspelt case printed the table's header over
no rows and exited 0, a run that looks measured and is not. It takes the --small sets' case names only (review_s34c)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "benchmarks" / "bench_graph.py"


def test_a_misspelt_small_case_is_refused_before_anything_runs():
    done = subprocess.run([sys.executable, str(SCRIPT), "--small", "--set", "test", "--only", "seq64_steps"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "invalid choice: 'seq64_steps'" in done.stderr and "seq64-steps" in done.stderr
    assert "| set | model |" not in done.stdout


def test_a_case_of_a_set_not_picked_is_refused_too():
    done = subprocess.run([sys.executable, str(SCRIPT), "--small", "--set", "test", "--only", "cnn8"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and "--only ['cnn8'] are no cases of --set ['test']" in done.stderr
    assert "| set | model |" not in done.stdout
