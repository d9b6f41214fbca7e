"""Cost of the hidden-unit row engines besides ``unit_effects``' exact rows with the rows that run the clean sample
left unrun (``unit_rows.moving_units``), against every row run, side by side in one process.

    .venv/bin/python benchmarks/bench_moving_rows.py [--repeats 5] [--probe 64] [--train-epochs 3] [--threads 1]

Models trained (``fit_classifier``, ``--train-epochs``, seed 0) on scikit-learn's digits, probes from the validation
digits. Three calls, each timed with the skip in use ("now") and with the test answering ``None`` (every row runs, as
before: "before"), in turn within every repeat after a warm-up round (``benchmarks._timing.interleaved_times``),
medians of the wall and the CPU time (the process's, one thread):

- ``causal_graph(mlp, probe, ["2", "4"])`` on the ReLU MLP 64 -> 128 -> 64 -> 10 of ``bench_unit_rows.py``: its
  sweeps (``path_effects_from``) leave out the (unit, sample) rows whose unit holds the baseline 0;
- ``carrier_unit_effects(mlp, probe, mirror, layer)`` for its two ReLUs, the counterfactual the mirrored digit: the
  rows of a unit whose activation the mirror leaves as it is (0 on both) are left out;
- ``unit_effects(centred, probe, "2", method="attribution")``: an MLP whose ReLU layer is centred across its units
  before a Tanh and the next linear layer (the frontier), so each (unit, sample) row runs the centring, Tanh and
  nothing else; ``Zero()``'s rows of a unit at 0 are left out.

"skipped" is the share of the rows left out (for the graph: of its sweeps' rows). The largest difference of the
two results is printed (the graph: of its edges' mean effects, and whether nodes and edges are the same). Prints a
markdown table.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks._timing import digits_bench_parser, interleaved_times  # noqa: E402
from benchmarks.bench_unit_rows import at_value, mlp  # noqa: E402
from lightning_causal.causal import carrier_unit_effects, causal_graph, unit_effects  # noqa: E402
from lightning_causal.models import fit_classifier, load_digits_tensors  # noqa: E402

UA = sys.modules["lightning_causal.causal.effects.unit_attribution"]
FAIR = sys.modules["lightning_causal.causal.scm.fairness"]
PATHS = sys.modules["lightning_causal.causal.structure.path_effects"]


class Centred(nn.Module):
    """Flatten, Linear(64, 128), ReLU ("2"), centred across the units, Tanh, Linear(128, 10)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU())
        self.head = nn.Linear(128, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.body(x)
        return self.head(torch.tanh(h - h.mean(1, keepdim=True)))


def mirror(x: torch.Tensor) -> torch.Tensor:
    return x.flip(-1)


def unchanged_share(model: nn.Module, x: torch.Tensor, layer: str) -> float:
    """The share of (unit, sample) pairs whose activation the mirror leaves as it is, bit for bit."""
    seen = []
    handle = model.get_submodule(layer).register_forward_hook(lambda _m, _i, out: seen.append(out.detach().clone()))
    with torch.no_grad():
        model(x), model(mirror(x))
    handle.remove()
    return float(((seen[0] == seen[1]) & (torch.signbit(seen[0]) == torch.signbit(seen[1]))).float().mean())


def main() -> None:
    parser = digits_bench_parser(__doc__)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    x, y, xv, yv = load_digits_tensors()
    probe = xv[:args.probe]
    relu_mlp = fit_classifier(mlp(), x, y, args.train_epochs, seed=0).eval()
    centred = fit_classifier(Centred(), x, y, args.train_epochs, seed=0).eval()
    for name, model in (("ReLU MLP", relu_mlp), ("centred MLP", centred)):
        with torch.no_grad():
            accuracy = float((model(xv).argmax(1) == yv).float().mean())
        print(f"{name}: validation accuracy {accuracy:.3f} after {args.train_epochs} epochs")

    def graph_diff(a, b) -> str:
        same = a.nodes == b.nodes and [e[:2] for e in a.edges] == [e[:2] for e in b.edges]
        diff = max((abs(s["effect"] - t["effect"]) for s, t in zip(a.edge_stats, b.edge_stats)), default=0.0)
        return f"{diff:.1e} ({'same' if same else 'other'} nodes and edges)"

    def tensor_diff(a, b) -> str:
        return f"{float((a - b).abs().max()):.1e}"

    graph_share = (at_value(relu_mlp, probe, "2") * 128 + at_value(relu_mlp, probe, "4") * 64) / 192
    cases = [
        ("causal_graph, ReLU MLP", "2, 4 (sweeps)", PATHS, "moving_units", graph_share,
         lambda: causal_graph(relu_mlp, probe, ["2", "4"]), graph_diff),
        *[("carrier_unit_effects (mirror), ReLU MLP", layer, FAIR, "moving_units", unchanged_share(relu_mlp, probe, layer),
           lambda layer=layer: carrier_unit_effects(relu_mlp, probe, mirror, layer, target=0), tensor_diff)
          for layer in ("2", "4")],
        ("unit_effects attribution, centred MLP", "body.2", UA, "moving_rows", at_value(centred, probe, "body.2"),
         lambda: unit_effects(centred, probe, "body.2", method="attribution"), tensor_diff),
    ]
    print(f"\nthreads {args.threads}, probe {args.probe}, medians of {args.repeats} (before and now in turn), "
          f"torch {torch.__version__}\n")
    print("| call | layer | skipped | before: wall / CPU (s) | now: wall / CPU (s) | speed-up (wall, CPU) | max abs diff |")
    print("|---|---|---|---|---|---|---|")
    for call, layer, module, name, share, fn, diff in cases:
        now, results = getattr(module, name), {}

        def run(key, module=module, name=name, now=now, fn=fn, results=results):
            setattr(module, name, now if key == "now" else (lambda *args: None))
            try:
                results[key] = fn()
            finally:
                setattr(module, name, now)

        times = interleaved_times({"before": lambda: run("before"), "now": lambda: run("now")}, args.repeats)
        (wb, cb), (wn, cn) = times["before"], times["now"]
        print(f"| {call} | {layer} | {share:.0%} | {wb:.3f} / {cb:.3f} | {wn:.3f} / {cn:.3f} | {wb / wn:.2f}x, {cb / cn:.2f}x "
              f"| {diff(results['before'], results['now'])} |")


if __name__ == "__main__":
    main()
