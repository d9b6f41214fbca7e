"""docs/benchmarks.md: "Each script in `benchmarks/` ... takes `--help`". bench_backdoor_rgb.py read no
arguments, so `--help` started the whole benchmark (minutes of training) instead of printing its usage."""

from __future__ import annotations

from pathlib import Path

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"


#: how a script builds its parser: argparse's own, or the shared one of the digits benchmarks (benchmarks/_timing.py)
PARSERS = ("ArgumentParser(", "digits_bench_parser(")


def test_every_benchmark_script_parses_its_arguments():
    missing = sorted(p.name for p in BENCHMARKS.glob("bench_*.py") if not any(s in p.read_text() for s in PARSERS))
    assert not missing, missing
    assert "ArgumentParser(" in (BENCHMARKS / "_timing.py").read_text().split("def digits_bench_parser")[1]

