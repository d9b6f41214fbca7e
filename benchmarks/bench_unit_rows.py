"""Cost of ``unit_effects`` (``UnitImportanceAudit``'s call) with the rows that change nothing left unrun, against
every row run, side by side in one process.

    .venv/bin/python benchmarks/bench_unit_rows.py [--repeats 5] [--probe 64] [--train-epochs 3] [--threads 1] [--cnn32 8]

Models, trained (``fit_classifier``, ``--train-epochs``, seed 0) on scikit-learn's digits, probes from the
validation digits: a ReLU MLP (64 -> 128 -> 64 -> 10) and the digits LeNet (``lightning_causal.models.DigitsCNN``,
1x8x8). For each hidden layer (the ReLUs: neurons of the MLP and of DigitsCNN's ``fc1``, conv channels of its
``relu1``/``relu2``); with ``--cnn32 N`` also the 4-conv ReLU CNN of ``bench_layer_map.py`` on the digits scaled to
3x32x32 (its four ReLUs' channels, ``N`` probe rows: each row runs a larger suffix), ``unit_effects(model, probe, layer)`` (``Zero()``, ``K = 1``: ``U * N`` suffix rows) is timed
with :func:`~lightning_causal.causal.effects.unit_rows.moving_rows` in use ("now") and with it answering ``None``
(every row runs, as before this change: "before"), in turn within every repeat after a warm-up round
(``benchmarks._timing.interleaved_times``), medians of the wall and the CPU time (the process's, one thread: less
moved by other work on a shared machine). "at the value" is the share of (unit, sample) pairs whose unit is 0 on
the sample (a conv channel: at every position), the rows left unrun. The largest difference of the two results is
printed too (0: the same bit for bit). Prints a markdown table.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._timing import digits_bench_parser, interleaved_times  # noqa: E402
from benchmarks.bench_layer_map import cnn32_deep  # noqa: E402
from lightning_causal.causal.effects.unit_effects import unit_effects  # noqa: E402
from lightning_causal.models import DigitsCNN, fit_classifier, load_digits_tensors  # noqa: E402

UE = sys.modules["lightning_causal.causal.effects.unit_effects"]


def mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 64), nn.ReLU(), nn.Linear(64, 10))


def at_value(model: nn.Module, x: torch.Tensor, layer: str) -> float:
    """The share of (unit, sample) pairs at 0.0 (a conv channel: at every position)."""
    seen = {}
    handle = model.get_submodule(layer).register_forward_hook(lambda _m, _i, out: seen.setdefault("h", out))
    with torch.no_grad():
        model(x)
    handle.remove()
    zero = (seen["h"] == 0) & ~torch.signbit(seen["h"])
    return float((zero.flatten(2).all(2) if zero.dim() > 2 else zero).float().mean())


def main() -> None:
    parser = digits_bench_parser(__doc__)
    parser.add_argument("--cnn32", type=int, default=0, help="probe rows of the 3x32x32 CNN (0: left out)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x, y, xv, yv = load_digits_tensors()
    probe = xv[:args.probe]
    cases = []
    big = lambda t: F.interpolate(t, scale_factor=4, mode="nearest").expand(-1, 3, -1, -1).contiguous()  # noqa: E731
    models = [("ReLU MLP 64-128-64-10", mlp(), ["2", "4"], lambda t: t, probe),
              ("DigitsCNN", DigitsCNN(), ["relu1", "relu2", "relu3"], lambda t: t, probe)]
    if args.cnn32:
        models.append(("CNN 4-conv 3x32x32", cnn32_deep(), ["1", "3", "6", "9"], big, xv[:args.cnn32]))
    for name, model, layers, view, x_probe in models:
        model = fit_classifier(model, view(x), y, args.train_epochs, seed=0).eval()
        with torch.no_grad():
            accuracy = float((model(view(xv)).argmax(1) == yv).float().mean())
        print(f"{name}: validation accuracy {accuracy:.3f} after {args.train_epochs} epochs")
        cases += [(name, model, layer, view(x_probe)) for layer in layers]
    print(f"\nthreads {args.threads}, probe {args.probe}, medians of {args.repeats} (before and now in turn), "
          f"torch {torch.__version__}\n")
    print("| model | layer | rows (U x N) | at the value | before: wall / CPU (s) | now: wall / CPU (s) | speed-up (wall, CPU) "
          "| max abs diff |")
    print("|---|---|---|---|---|---|---|---|")
    now = UE.moving_rows
    for name, model, layer, probe in cases:
        results = {}

        def run(key, model=model, layer=layer, probe=probe, results=results):
            UE.moving_rows = now if key == "now" else (lambda *args: None)
            try:
                results[key] = unit_effects(model, probe, layer)
            finally:
                UE.moving_rows = now

        times = interleaved_times({"before": lambda: run("before"), "now": lambda: run("now")}, args.repeats)
        diff = float((results["before"] - results["now"]).abs().max())
        (wb, cb), (wn, cn) = times["before"], times["now"]
        rows = results["now"].numel()
        print(f"| {name} | {layer} | {rows:,} | {at_value(model, probe, layer):.0%} | {wb:.3f} / {cb:.3f} | {wn:.3f} / {cn:.3f} "
              f"| {wb / wn:.2f}x, {cb / cn:.2f}x | {diff:.1e} |")


if __name__ == "__main__":
    main()
