"""Cost of the hidden-unit row engines besides ``unit_effects``' exact rows with the rows that run the clean sample
left unrun (``unit_rows.moving_units``), against every row run, side by side in one process.

    .venv/bin/python benchmarks/bench_moving_rows.py [--repeats 5] [--probe 64] [--train-epochs 3] [--threads 1]
    .venv/bin/python benchmarks/bench_moving_rows.py --value-sets [--repeats 5] [--threads 1]

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

``--value-sets`` times instead the test itself, ``moving_units``, whose chunks compare the ``K`` value sets one after
the other (a Python loop over ``K``), against the same answer with the ``K`` value sets stacked ``[K, R, ...]`` and
compared in one ``differs`` / ``unit_sums`` (written here, not in the library), on ReLU-ed random outputs of a linear
layer ``[256, 128]``, a conv layer ``[64, 16, 8, 8]`` and token sequences ``[32, 12, 64]`` (features last), ``K`` = 1,
4 and 16 interventions (``Zero``, ``SetTo(0.5)``, ``Scale(1.0)``, ``MeanOf``, in turn); the answers are checked equal.
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
from lightning_causal.causal import (  # noqa: E402
    MeanOf,
    Scale,
    SetTo,
    Zero,
    carrier_unit_effects,
    causal_graph,
    unit_effects,
)
from lightning_causal.causal.effects.unit_rows import moving_units, row_values  # noqa: E402
from lightning_causal.causal.engine.ablation import differs  # noqa: E402
from lightning_causal.causal.engine.batching import each_chunk, rows_per_pass  # noqa: E402
from lightning_causal.causal.engine.units import resolve_layout, unit_sums  # noqa: E402
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


def stacked_moving_units(h, values, count, units, layout):
    """``moving_units``' answer with the ``count`` value sets of a chunk stacked and compared at once."""
    moved = torch.empty(count, units.numel(), h.shape[0], dtype=torch.bool, device=h.device)

    def compare(samples):
        part = h[samples]
        vals = torch.stack([values(k, part, samples).expand_as(part) for k in range(count)])  # [K, R, ...]
        sums = unit_sums(differs(part.unsqueeze(0).expand_as(vals), vals).flatten(0, 1), layout)  # [K * R, units]
        moved[:, :, samples] = (sums[:, units] > 0).view(count, -1, units.numel()).transpose(1, 2)

    each_chunk(h.shape[0], max(1, rows_per_pass(nn.Identity(), (h,)) // count), compare, h.device)
    return moved.reshape(-1)


def value_sets(repeats: int) -> None:
    """The ``--value-sets`` table: ``moving_units``' loop over the value sets against them stacked."""
    print(f"\nthreads {torch.get_num_threads()}, medians of {repeats} (loop and stacked in turn), torch {torch.__version__}\n")
    print("| layer output | K | loop: wall / CPU (ms) | stacked: wall / CPU (ms) | stacked / loop (CPU) |")
    print("|---|---|---|---|---|")
    g = torch.Generator().manual_seed(0)
    for name, shape, unit_dim in (("linear", (256, 128), None), ("conv", (64, 16, 8, 8), None),
                                  ("tokens", (32, 12, 64), -1)):
        h = torch.relu(torch.randn(*shape, generator=g))
        layout = resolve_layout(h.shape, unit_dim=unit_dim)
        units = torch.arange(layout.num_units)
        one = torch.zeros(1, dtype=torch.long)
        for count in (1, 4, 16):
            ivs = ([Zero(), SetTo(0.5), Scale(1.0), MeanOf(h[:5])] * 4)[:count]

            def values(k, part, samples, ivs=ivs, one=one):
                return row_values([ivs[k]], one.expand(samples.shape[0]), part, samples=samples)

            args = (h, values, count, units, layout)
            if not torch.equal(moving_units(*args), stacked_moving_units(*args)):
                raise AssertionError(f"the stacked comparison's answer differs on {name}, K={count}")
            t = interleaved_times({"loop": lambda args=args: moving_units(*args),
                                   "stacked": lambda args=args: stacked_moving_units(*args)}, repeats)
            (wl, cl), (ws, cs) = t["loop"], t["stacked"]
            print(f"| {name} {list(shape)} | {count} | {wl * 1e3:.2f} / {cl * 1e3:.2f} | {ws * 1e3:.2f} / {cs * 1e3:.2f} "
                  f"| {cs / cl:.2f} |")


def main() -> None:
    parser = digits_bench_parser(__doc__)
    parser.add_argument("--value-sets", action="store_true",
                        help="time moving_units' loop over the K value sets against them stacked (no models trained)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.value_sets:
        value_sets(args.repeats)
        return
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
