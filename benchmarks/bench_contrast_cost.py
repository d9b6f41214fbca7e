"""Set-up cost of ``BackdoorSuppressionTerm(trigger=None)`` with and without ``contrast=True``, side
by side in one process (issue 17): ``term.setup`` on the backdoor protocol's 10% repair set of a
development case whose target only the contrast flags (tee4 at 1%, seed 212), folds 0 and 1, twice
each, alternating.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_contrast_cost.py
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import backdoor_protocol as bp  # noqa: E402
from benchmarks.bench_backdoor_protocol import Fold, reversed_term  # noqa: E402


def main() -> None:
    argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter).parse_args()
    torch.set_num_threads(1)
    warnings.filterwarnings("ignore")
    digits = bp.load_all_digits()
    case = bp.DEV2_CASES[12]  # tee4 at 1%: its target is flagged on the contrast only
    for fold in (0, 1):
        f = Fold(case, fold, digits, {})
        x, _ = f.repair_set(bp.REPAIR_FRACTION)
        for contrast in (False, True, False, True):
            t0 = time.perf_counter()  # the protocol's set-up itself; its permutation of the rows takes microseconds
            term = reversed_term(f.model, x, f.data.train_seed, {"contrast": contrast})
            seconds = time.perf_counter() - t0
            print(f"{case.name} fold {fold} {'contrast' if contrast else 'plain   '} set-up {seconds:.2f} s, "
                  f"suppressed {[t.target for t in term.triggers]}", flush=True)


if __name__ == "__main__":
    main()
