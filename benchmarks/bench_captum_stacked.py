"""Cost of the stacked-rows check over Captum's passes (``baselines/captum_methods._stacked_rows_checked``): each pass
Captum sends the model (interpolated inputs, perturbed copies, sampled points, the samples and their baselines) runs
its first and last rows and an inner one (drawn from the check's own generator) alone too, to refuse a model whose
batch statistic moves across a branch's threshold.

The package's ``DigitsCNN`` trained (``fit_classifier``, ``--train-epochs``, seed 0) on scikit-learn's digits, a probe
from the validation digits. ``CaptumBaseline`` with IntegratedGradients, Saliency, DeepLift, GradientShap and
FeatureAblation (2x2 patches; ``audit.run``: the causal effects, the curves and the stability besides the methods), and
each method's ``attribute`` alone, are timed with the check ("checked"), with the check of the end rows only ("ends":
the check before its inner row, ``bench_stacked_rows.ends_only``) and with it off
(``_stacked_rows_checked`` replaced by a block that checks nothing: the code's path before the check), in turn within
every repeat (``interleaved_times``); the ratios are checked / off and ends / off of the medians. The audit's results of both are compared with
``torch.equal`` (NaN matching NaN; the seconds of its comparison table aside). Last, the CPU time spent inside the
check over the rest of the audit's (``check_share``), which a loaded machine moves less than the ratio.

    python benchmarks/bench_captum_stacked.py --repeats 7 --threads 1
"""

from __future__ import annotations

import contextlib
import json
import statistics
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._timing import digits_bench_parser, interleaved_times  # noqa: E402
from benchmarks.bench_stacked_rows import ends_only, equal, tensors  # noqa: E402
from lightning_causal.audits import CaptumBaseline  # noqa: E402
from lightning_causal.audits.base import Probe  # noqa: E402
from lightning_causal.baselines import captum_methods  # noqa: E402
from lightning_causal.models import DigitsCNN, fit_classifier, load_digits_tensors  # noqa: E402

METHODS = ("IntegratedGradients", "Saliency", "DeepLift", "GradientShap", "FeatureAblation")


@contextlib.contextmanager
def off():
    """The check off: Captum's passes run as they are."""
    checked = captum_methods._stacked_rows_checked
    captum_methods._stacked_rows_checked = lambda spec, model: contextlib.nullcontext()
    try:
        yield
    finally:
        captum_methods._stacked_rows_checked = checked


def numbers(result) -> dict[str, object]:
    """The audit's results (``bench_stacked_rows.tensors``) without the seconds each method took (its comparison table's
    ``seconds``), which differ from run to run."""
    found = tensors(result)
    for key, value in found.items():
        if key.startswith("tables/"):
            rows = json.loads(value)
            found[key] = json.dumps([{k: v for k, v in row.items() if k != "seconds"} if isinstance(row, dict) else row
                                     for row in rows], sort_keys=True) if isinstance(rows, list) else value
    return found


def check_share(run, repeats: int) -> list[float]:
    """The CPU seconds spent inside the Captum passes' check (``RowsAlone.__call__`` less the pass it checks: the rows
    alone, the states kept and compared) over the rest of ``run()``'s, for ``repeats`` runs: a measure of the check's
    cost that the machine's load moves less than a difference of two timings."""
    import time

    from lightning_causal.causal.engine import stacked_rows

    spent, plain = [0.0], stacked_rows.RowsAlone.__call__

    def timed(self, fn, idx, rows_of):
        if not self.what.startswith("Captum's"):
            return plain(self, fn, idx, rows_of)
        inner = [0.0]

        def chunk(i):
            if i.numel() != idx.numel():
                return fn(i)
            c = time.process_time()
            try:
                return fn(i)
            finally:
                inner[0] += time.process_time() - c

        c = time.process_time()
        try:
            return plain(self, chunk, idx, rows_of)
        finally:
            spent[0] += time.process_time() - c - inner[0]

    stacked_rows.RowsAlone.__call__ = timed
    shares = []
    try:
        for _ in range(repeats):
            spent[0] = 0.0
            c = time.process_time()
            run()
            total = time.process_time() - c
            shares.append(spent[0] / (total - spent[0]))
    finally:
        stacked_rows.RowsAlone.__call__ = plain
    return shares


def main() -> None:
    args = digits_bench_parser(__doc__).parse_args()
    torch.set_num_threads(args.threads)
    x, y, xv, yv = load_digits_tensors()
    torch.manual_seed(0)
    cnn = fit_classifier(DigitsCNN(), x.view(-1, 1, 8, 8), y, args.train_epochs, seed=0).eval()
    probe = Probe(xv[:args.probe].view(-1, 1, 8, 8), yv[:args.probe])
    audit = CaptumBaseline(methods=METHODS, patch_size=2)
    mask = audit._mask(probe.first)
    target = cnn(probe.first).argmax(1)
    runs = {"CaptumBaseline (5 methods, 2x2 patches)": lambda: audit.run(cnn, probe)}
    runs.update({f"attribute {m}": (lambda m=m: captum_methods.attribute(cnn, probe.first, m, target, feature_mask=mask))
                 for m in METHODS})
    with off():
        before = numbers(audit.run(cnn, probe))
    after = numbers(audit.run(cnn, probe))
    same = before.keys() == after.keys() and all(equal(before[k], after[k]) for k in before)
    print(f"threads {args.threads}, probe {args.probe}, medians of {args.repeats} (checked and off in turn), "
          f"torch {torch.__version__}; CaptumBaseline's {len(after)} results {'torch.equal' if same else 'DIFFER'}\n")
    print("| run | off: wall / CPU (s) | ends: wall / CPU (s) | checked: wall / CPU (s) | ends / off (wall, CPU) | "
          "checked / off (wall, CPU) |")
    print("|---|---|---|---|---|---|")
    for name, run in runs.items():
        def run_off(run=run):
            with off():
                return run()

        def run_ends(run=run):
            with ends_only():
                return run()

        times = interleaved_times({"off": run_off, "ends": run_ends, "checked": run}, args.repeats)
        (wo, co), (we, ce), (wc, cc) = times["off"], times["ends"], times["checked"]
        print(f"| {name} | {wo:.3f} / {co:.3f} | {we:.3f} / {ce:.3f} | {wc:.3f} / {cc:.3f} | {we / wo:.3f}, {ce / co:.3f} | "
              f"{wc / wo:.3f}, {cc / co:.3f} |", flush=True)
    with ends_only():
        ends = check_share(runs["CaptumBaseline (5 methods, 2x2 patches)"], args.repeats)
    shares = check_share(runs["CaptumBaseline (5 methods, 2x2 patches)"], args.repeats)
    for what, found in (("the end rows' check", ends), ("the check", shares)):
        print(f"\nCPU time inside {what} over the rest of CaptumBaseline's run: median {100 * statistics.median(found):.2f}% "
              f"(from {100 * min(found):.2f}% to {100 * max(found):.2f}%, {len(found)} runs)")


if __name__ == "__main__":
    main()
