"""docs/benchmarks.md: "Each script in `benchmarks/` ... takes `--help`". bench_backdoor_rgb.py read no
arguments, so `--help` started the whole benchmark (minutes of training) instead of printing its usage."""

from __future__ import annotations

from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


def test_every_benchmark_script_parses_its_arguments():
    missing = sorted(p.name for p in BENCHMARKS.glob("bench_*.py") if "ArgumentParser(" not in p.read_text())
    assert not missing, missing

