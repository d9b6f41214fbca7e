"""Cost of ``LayerMapAudit`` (``layer_causal_map``) with its defaults, now and at an earlier revision of
``causal/structure/layer_trace.py`` (its interventions), side by side in one process.

    .venv/bin/python benchmarks/bench_layer_map.py [--before REV] [--repeats 5] [--probe-cnn 8] [--probe-digits 64] [--threads 1]
    .venv/bin/python benchmarks/bench_layer_map.py --deep [--before-tree DIR] [--repeats 3] [--probe-digits 64]

Models: a small CNN on 3x32x32 inputs (conv 3->16->32->64, 3x3, ReLU, max pools, global average pool, a linear
head: the default layers are its 3 convolutions and the head) and the digits LeNet
(``lightning_causal.models.DigitsCNN``, 1x8x8), random weights on random normal inputs (the cost does not depend on
the weights; no input element holds the baseline 0); and, trained (``fit_classifier``, ``--train-epochs``, seed 0) on
scikit-learn's digits, the DigitsCNN on digits (1x8x8, pixels in [0, 1]) and a 4-conv ReLU CNN on the digits
scaled to 3x32x32 (nearest, the grey value in 3 channels; conv 3->16->32->64->64, 3x3, max pools after the 2nd and
3rd, a 4x4 average pool, a linear head), probes from the validation digits, about half of whose pixels are 0 (the
background): their rows (one group per element set to the baseline 0 that it already holds) change nothing, and
the layer map leaves them unrun since ``moving_rows`` (now ``moving_input_rows``). ``LayerMapAudit()`` defaults: one input group per element
(3,072 on the 32x32 CNNs, 64 on the digits), so ``G * N`` intervention rows: 24,576 for 8 probe rows of a
3x32x32 CNN; the column "at the baseline" is the share of them whose group already holds it. The audit is run with
the current ``trace_interventions`` and with the one of ``--before`` (read with ``git show`` and patched into
``layer_map``), in turn within every repeat after a warm-up round, medians of ``--repeats`` of the wall and the CPU
time (the process's, one thread: less moved by other work on a shared machine); the largest difference of the two
maps' CKA and relative responses is printed too (0 or float rounding). A ``torch.profiler`` table of the current
code on the CNN follows with ``--profile``. Prints a markdown table.

``--deep``: ``layer_causal_map`` (2x2 patches of the 8x8 digits, default layers) of a residual CNN of 134 layers (a
stem, 4 stages of 8 blocks conv-BN-ReLU-conv-BN plus a skip, each stage ended by a 1x1 conv, a linear head; 8
channels; random weights, seed 0) on the first ``--probe-digits`` validation digits, in a child process per tree
(``--before-tree DIR``: an earlier revision's files, ``git archive REV | tar -x -C DIR``; ``--now-tree DIR``: the files
measured as now, default this checkout; the trees in turn within every repeat): medians of the child's CPU seconds of the call, and the largest difference of the two trees' CKA and responses.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch
from torch import nn
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks._timing import import_tree  # noqa: E402

import_tree("--deep-child")

from benchmarks._timing import interleaved_times, module_at, tree_runs  # noqa: E402
from lightning_causal.audits.base import Probe  # noqa: E402
from lightning_causal.audits.layer_map import LayerMapAudit  # noqa: E402
from lightning_causal.causal.structure import layer_map  # noqa: E402
from lightning_causal.models import DigitsCNN, fit_classifier, load_digits_tensors  # noqa: E402


def cnn32() -> nn.Module:
    """The 3x32x32 CNN (random weights, seed 0)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(64, 10)).eval()


def cnn32_deep() -> nn.Module:
    """The 4-conv ReLU CNN on 3x32x32 (random weights, seed 0; trained by :func:`trained_cases`)."""
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(3, 16, 3, padding=1), nn.ReLU(), nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4), nn.Flatten(),
                         nn.Linear(64 * 16, 10)).eval()


def trained_cases(epochs: int, probe_cnn: int, probe_digits: int) -> list[tuple[str, nn.Module, torch.Tensor]]:
    """The DigitsCNN on digits and the 4-conv CNN on digits scaled to 3x32x32, trained, with validation probes."""
    x, y, xv, yv = load_digits_tensors()
    big = lambda t: F.interpolate(t, scale_factor=4, mode="nearest").expand(-1, 3, -1, -1).contiguous()  # noqa: E731
    cases = []
    for name, model, train, probe in (("DigitsCNN 1x8x8, trained, digits", DigitsCNN(), x, xv[:probe_digits]),
                                      ("CNN 4-conv 3x32x32, trained, digits x4", cnn32_deep(), big(x), big(xv[:probe_cnn]))):
        model = fit_classifier(model, train, y, epochs, seed=0).eval()
        with torch.no_grad():
            accuracy = float((model(big(xv) if train.shape[-1] == 32 else xv).argmax(1) == yv).float().mean())
        print(f"{name}: validation accuracy {accuracy:.3f} after {epochs} epochs")
        cases.append((name, model, probe))
    return cases


class _Block(nn.Module):
    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv1, self.bn1 = nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c)
        self.conv2, self.bn2 = nn.Conv2d(c, c, 3, padding=1), nn.BatchNorm2d(c)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x + self.bn2(self.conv2(torch.relu(self.bn1(self.conv1(x))))))


class DeepResNet(nn.Module):
    """The ``--deep`` model: 134 layers (a stem, 4 stages of ``per`` blocks and a 1x1 conv, a linear head)."""

    def __init__(self, per: int = 8, c: int = 8) -> None:
        super().__init__()
        self.stem = nn.Conv2d(1, c, 3, padding=1)
        self.stages = nn.ModuleList(nn.ModuleDict({"blocks": nn.ModuleList(_Block(c) for _ in range(per)),
                                                   "down": nn.Conv2d(c, c, 1)}) for _ in range(4))
        self.head = nn.Linear(c, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = torch.relu(self.stem(x))
        for stage in self.stages:
            for block in stage["blocks"]:
                h = block(h)
            h = stage["down"](h)
        return self.head(h.mean((2, 3)))


def deep_child(args: argparse.Namespace) -> None:
    """One ``--deep`` measurement in this process (the tree it imported): JSON of the CPU seconds and the map."""
    import json
    import time

    import lightning_causal
    from lightning_causal.causal import layer_causal_map, patch_mask

    torch.manual_seed(0)
    model, x = DeepResNet().eval(), load_digits_tensors()[2][: args.probe_digits]
    c = time.process_time()
    lm = layer_causal_map(model, x, patch_mask((1, 8, 8), 2))
    print(json.dumps({"cpu": time.process_time() - c, "tree": str(Path(lightning_causal.__file__).parents[1]),
                      "layers": len(lm.layers), "cka": torch.as_tensor(lm.cka).tolist(),
                      "response": torch.as_tensor(lm.response).tolist()}))


def deep(args: argparse.Namespace) -> None:
    import statistics

    trees = {"now": args.now_tree or str(ROOT)} | ({"before": args.before_tree} if args.before_tree else {})
    runs = tree_runs(__file__, ["--deep-child", "--probe-digits", str(args.probe_digits), "--threads", str(args.threads)],
                     trees, args.repeats)
    cpu = {t: statistics.median(r["cpu"] for r in rs) for t, rs in runs.items()}
    print(f"torch {torch.__version__}, {args.threads} thread(s), {args.probe_digits} digits, repeats {args.repeats} (the "
          f"trees in turn, a child process each)\n")
    print("| model | layers | " + " | ".join(f"{t} (CPU s)" for t in trees) + (" | now / before | max abs diff (CKA, response) |"
                                                                              if len(trees) > 1 else " |"))
    print("|---" * (2 + len(trees) + (2 if len(trees) > 1 else 0)) + "|")
    row = f"| residual CNN, 2x2 patches | {runs['now'][0]['layers']} | " + " | ".join(f"{cpu[t]:.2f}" for t in trees)
    if len(trees) > 1:
        a, b = runs["now"][0], runs["before"][0]
        pairs = [*zip(torch.tensor(a["cka"]).flatten().tolist(), torch.tensor(b["cka"]).flatten().tolist()),
                 *zip(a["response"], b["response"])]
        diff = max((abs(u - v) for u, v in pairs if u == u and v == v), default=0.0)
        row += f" | {cpu['now'] / cpu['before']:.2f}x | {diff:.1e}"
    print(row + " |")


def reference_trace(rev: str):
    """``trace_interventions`` of ``causal/structure/layer_trace.py`` at git revision ``rev``."""
    return module_at(rev, "lightning_causal/causal/structure/layer_trace.py").trace_interventions


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--before", default="0f3c15f", help="git revision of the layer_trace.py compared with (default: "
                        "0f3c15f, before the rows that change no input element were left unrun; ff911f1: before the "
                        "clean rows were subtracted by slices)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--probe-cnn", type=int, default=8, help="probe rows of the 3x32x32 CNN")
    parser.add_argument("--probe-digits", type=int, default=64, help="probe rows of the digits CNN")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--train-epochs", type=int, default=3, help="epochs of the trained models")
    parser.add_argument("--no-trained", action="store_true", help="the random-weight cases only")
    parser.add_argument("--profile", action="store_true", help="also print a torch.profiler table of the current code")
    parser.add_argument("--deep", action="store_true", help="the 134-layer residual CNN, in child processes")
    parser.add_argument("--before-tree", default=None, help="with --deep: an earlier revision's files to compare with")
    parser.add_argument("--now-tree", default=None, help="with --deep: the files measured as now (default: this checkout)")
    parser.add_argument("--deep-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.deep_child or args.deep:
        return deep_child(args) if args.deep_child else deep(args)
    warnings.filterwarnings("ignore", message="LayerMapAudit: without `feature_mask`")  # the defaults, on purpose
    now, before = layer_map.trace_interventions, reference_trace(args.before)
    gen = torch.Generator().manual_seed(1)
    cases = [("CNN 3x32x32", cnn32(), torch.randn(args.probe_cnn, 3, 32, 32, generator=gen)),
             ("DigitsCNN 1x8x8", DigitsCNN().eval(), torch.randn(args.probe_digits, 1, 8, 8, generator=gen))]
    if not args.no_trained:
        cases += trained_cases(args.train_epochs, args.probe_cnn, args.probe_digits)
    print(f"threads {args.threads}, medians of {args.repeats} (old and new in turn), torch {torch.__version__}\n")
    print("| model | probe rows | intervention rows | at the baseline | before: wall / CPU (s) | now: wall / CPU (s) "
          "| speed-up (wall, CPU) | max abs diff (CKA, response) |")
    print("|---|---|---|---|---|---|---|---|")
    for name, model, x in cases:
        audit, results = LayerMapAudit(), {}

        def run(trace, key, model=model, x=x, audit=audit, results=results):
            layer_map.trace_interventions = trace
            try:
                results[key] = audit.run(model, Probe(x))
            finally:
                layer_map.trace_interventions = now

        times = interleaved_times({"before": lambda: run(before, "before"), "now": lambda: run(now, "now")},
                                  args.repeats)
        a, b = (results[k].graphs["layer_map"] for k in ("before", "now"))
        pairs = [*(p for ra, rb in zip(a["cka"], b["cka"]) for p in zip(ra, rb)), *zip(a["response"], b["response"])]
        diff = max((abs(float(u) - float(v)) for u, v in pairs if u == u and v == v and not isinstance(u, str)), default=0.0)
        rows = x[0].numel() * x.shape[0]
        (wb, cb), (wn, cn) = times["before"], times["now"]
        print(f"| {name} | {x.shape[0]} | {rows:,} | {float((x == 0).float().mean()):.0%} | {wb:.2f} / {cb:.2f} | {wn:.2f} / {cn:.2f} | "
              f"{wb / wn:.2f}x, {cb / cn:.2f}x | {diff:.1e} |")
    if args.profile:
        from torch.profiler import profile

        with profile() as prof:
            LayerMapAudit().run(cases[0][1], Probe(cases[0][2]))
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))


if __name__ == "__main__":
    main()
