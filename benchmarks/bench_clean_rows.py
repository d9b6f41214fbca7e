"""Cost of the clean-probe check of sample independence (``check_samples_independent``) with rows 0 and 1 then, where
they agree, rows n // 2 and n - 1 run apart (``checked_rows``: one pass more, "now") against rows 0 and 1 only
(``trial_rows``, "before"), side by side in one process.

    .venv/bin/python benchmarks/bench_clean_rows.py [--repeats 30] [--probe 64] [--train-epochs 3] [--threads 1]

The digits LeNet (``lightning_causal.models.DigitsCNN``, 1x8x8, trained by ``fit_classifier``, seed 0) on a probe of
validation digits: one call of the check (its passes of the trial rows, the model treating its samples
independently: both groups run), both in turn within every repeat after a warm-up round (``benchmarks._timing.interleaved_times``),
medians of the wall and the CPU time (the process's, one thread); the whole probe's pass, which every estimator runs
anyway, for scale. Prints a markdown table.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._timing import digits_bench_parser, interleaved_times  # noqa: E402
from lightning_causal.causal.engine import sample_independence as SI  # noqa: E402
from lightning_causal.causal.engine.forward import Forward  # noqa: E402
from lightning_causal.causal.engine.live_values import trial_rows  # noqa: E402
from lightning_causal.causal.engine.state import audit_mode  # noqa: E402
from lightning_causal.models import DigitsCNN, fit_classifier, load_digits_tensors  # noqa: E402


def main() -> None:
    args = digits_bench_parser(__doc__).parse_args()
    torch.set_num_threads(args.threads)
    x, y, xv, _ = load_digits_tensors()
    model = fit_classifier(DigitsCNN(), x, y, args.train_epochs, seed=0).eval()
    probe = xv[:args.probe]
    forward = Forward(model, num_samples=len(probe))
    with audit_mode(model):
        out = forward(probe)
    spread = SI.checked_rows

    def check(rows) -> None:
        SI.checked_rows = rows
        try:
            with audit_mode(model):
                SI.check_samples_independent(forward, (probe,), out, "The analysis")
        finally:
            SI.checked_rows = spread

    def whole() -> None:
        with audit_mode(model):
            forward(probe)

    times = interleaved_times({"before": lambda: check(lambda n, d: [trial_rows(n, d)[1]]), "now": lambda: check(spread),
                               "pass": whole}, args.repeats)
    (wb, cb), (wn, cn), (_, cp) = times["before"], times["now"], times["pass"]
    print(f"threads {args.threads}, probe {len(probe)}, medians of {args.repeats} (in turn), torch {torch.__version__}\n")
    print("| model | rows checked: before / now | before: wall / CPU (ms) | now: wall / CPU (ms) | added CPU (ms) "
          "| the probe's pass: CPU (ms) |")
    print("|---|---|---|---|---|---|")
    print(f"| DigitsCNN | 2 / {sum(len(g) for g in spread(len(probe), 'cpu'))} | {1e3 * wb:.2f} / {1e3 * cb:.2f} | {1e3 * wn:.2f} / {1e3 * cn:.2f} "
          f"| {1e3 * (cn - cb):.2f} | {1e3 * cp:.2f} |")


if __name__ == "__main__":
    main()
