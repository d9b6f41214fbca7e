"""Cost of the structural explanations in units of one training epoch, and the precision and
recall of causal graph edges on planted networks of growing size.

    .venv/bin/python benchmarks/bench_graph.py [--repeats 3] [--probe 256] [--reference-rev REV] [--threads 1]
    .venv/bin/python benchmarks/bench_graph.py --planted [--seeds 100 ... 119]
    .venv/bin/python benchmarks/bench_graph.py --bert [--probe 64] [--repeats 3] [--threads 2]
    .venv/bin/python benchmarks/bench_graph.py --wide [--before-tree DIR] [--cases mlp cnn] [--probe 16] [--repeats 3]

Costs. Models: the digits LeNet (``DigitsCNN``) and the deeper plain CNN (``DeepCNN``, 6 conv
layers). One training epoch = 1,437 digits, batch 64, Adam (forward + backward + step). Measured
(median of ``--repeats`` after a warm-up, every measurement of a model taken in turn within each
repeat; the explained models are trained for ``--train-epochs`` epochs first, the epoch is timed on
a second instance): ``causal_graph`` with its defaults (``top_k = 8``) on two
layers (faithfulness included), the same plus ``graph_stability`` (2 resamples: 4 more graphs),
``layer_causal_map`` (2x2 patches, default layers) and ``counterfactual_explanation`` for 64
inputs (300 steps). ``--reference-rev`` also times ``causal_graph`` of an earlier revision of
``causal/structure/graph.py`` (read with ``git show``) side by side.

Planted networks (``tests/helpers/planted.py``): layered ReLU MLPs (3 layers of ``width`` units,
``max(3, width / 4)`` classes) with known strong wiring and two leak inputs per unit of 0.1-1% of
the strong weight, positive inputs; the graph (defaults, ``top_k=None``) is scored against the
strong edges between units that reach an explained class.
``--bert``: ``causal_graph`` over the heads of two layers of bench_prefix's 4-layer BERT (hidden
128, 32 tokens, half the probe padded; random weights) and over its layer-1 heads and layer-2 MLP
neurons, each with the defaults (runs from a layer that bring at least 8 rows per sample use the
prefix cache's module-hook split: only the suffix after the layer runs) and with the cache switched
off (full forward passes), interleaved.
``--wide``: ``causal_graph`` (defaults) and ``unit_effects`` of its first layer on wide models with random weights (seed 0),
on the first ``--probe`` validation digits: an MLP 64-4096-4096-10 (layers: its two ReLUs, the first read by a linear
layer of 4,096 x 4,096) and a CNN with 512 channels (conv 1->512->512, 3x3, on 8x8 digits, global average pool, a
linear head; layers: its two ReLUs, the first read by a convolution, which the linear update answers too:
``engine/conv_update.py``); ``--cases`` picks them. With ``--before-tree DIR``
(an earlier revision's files, ``git archive REV | tar -x -C DIR``) each measurement runs in a child process importing
``lightning_causal`` from that tree or from this checkout (``--now-tree DIR``: other files), the trees in turn within
every repeat (``_timing.tree_runs``); medians of the child's CPU seconds of the call (one thread), and whether the two
trees' graphs have the same edges and the largest relative difference of the unit effects.
Prints markdown tables.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
from torch.nn import functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks._timing import import_tree  # noqa: E402

import_tree("--wide-child")  # the tree a --wide child measures

from benchmarks._timing import interleaved_medians, module_at, tree_runs  # noqa: E402
from lightning_causal.causal.engine.groups import patch_mask  # noqa: E402
from lightning_causal.causal.structure.counterfactuals import counterfactual_explanation  # noqa: E402
from lightning_causal.causal.structure.graph import causal_graph, graph_stability  # noqa: E402
from lightning_causal.causal.structure.layer_map import layer_causal_map  # noqa: E402
from lightning_causal.models import DeepCNN, DigitsCNN, fit_classifier, load_digits_tensors  # noqa: E402
from tests.helpers.planted import layered_planted, planted_truth  # noqa: E402


def epoch(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for i in range(0, len(y), 64):
        loss = F.cross_entropy(model(x[i:i + 64]), y[i:i + 64])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


def reference_graph(rev: str):
    """``causal_graph`` of ``causal/structure/graph.py`` at git revision ``rev``."""
    return module_at(rev, "lightning_causal/causal/structure/graph.py").causal_graph


def costs(args: argparse.Namespace) -> None:
    torch.manual_seed(0)
    x, y, xv, _ = load_digits_tensors()
    probe = xv[: args.probe]
    mask = patch_mask((1, 8, 8), 2)
    old = reference_graph(args.reference_rev) if args.reference_rev else None
    cases = [("digits LeNet", DigitsCNN, ["conv1", "conv2"]), ("deep CNN (6 conv)", DeepCNN, ["features.4", "features.7"])]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, probe {len(probe)}, repeats {args.repeats} (interleaved)\n")
    head = "| model | layers | epoch (s) | graph (s) | graph / epoch |"
    head += f" {args.reference_rev} graph (s) | / epoch | new / {args.reference_rev} |" if old else ""
    print(head + " graph + stability (s) | / epoch | layer map (s) | / epoch | 64 counterfactuals (s) | / epoch |")
    print("|---" * (11 + (3 if old else 0)) + "|")
    for name, make, layers in cases:
        model, trainee = fit_classifier(make(), x, y, epochs=args.train_epochs, seed=0), make()
        target = (model(probe[:64]).argmax(1) + 1) % 10
        fns = {"epoch": lambda m=trainee: epoch(m, x, y),
               "graph": lambda m=model, ls=layers: causal_graph(m.eval(), probe, ls),
               "stability": lambda m=model, ls=layers: graph_stability(m.eval(), probe, ls, resamples=2,
                                                                    reference=causal_graph(m, probe, ls)),
               "map": lambda m=model: layer_causal_map(m.eval(), probe, mask),
               "cf": lambda m=model, t=target: counterfactual_explanation(m.eval(), probe[:64], t, bounds=(0.0, 1.0))}
        if old:
            fns["old"] = lambda m=model, ls=layers: old(m.eval(), probe, ls, top_k=8)
        t = interleaved_medians(fns, args.repeats)
        e = t["epoch"]
        row = f"| {name} | {', '.join(layers)} | {e:.3f} | {t['graph']:.3f} | {t['graph'] / e:.2f} |"
        row += f" {t['old']:.3f} | {t['old'] / e:.2f} | {t['graph'] / t['old']:.2f} |" if old else ""
        print(row + f" {t['stability']:.3f} | {t['stability'] / e:.2f} | {t['map']:.3f} | {t['map'] / e:.2f} | "
                    f"{t['cf']:.3f} | {t['cf'] / e:.2f} |")


def bert_graphs(args: argparse.Namespace) -> None:
    from bench_prefix import bert

    from lightning_causal.causal.structure import graph_context

    model, xs, afa = bert(args.probe)
    h = "bert.encoder.layer.{}.attention.self"
    cases = [("heads of layers 1 and 2", [h.format(1), h.format(2)], {h.format(1): 4, h.format(2): 4}, {}),
             ("layer-1 heads, layer-2 MLP neurons", [h.format(1), "bert.encoder.layer.2.intermediate"], {h.format(1): 4},
              {"bert.encoder.layer.2.intermediate": -1})]
    cache = graph_context.prefix_cache

    def full(*_a, **_k):
        raise ValueError("switched off: full forward passes")

    def graph(layers, heads, dims, split):
        graph_context.prefix_cache = cache if split else full
        try:
            return causal_graph(model, xs[0], layers, target=1, additional_forward_args=afa, num_heads=heads, unit_dim=dims)
        finally:
            graph_context.prefix_cache = cache

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, probe {args.probe}, repeats {args.repeats} (interleaved)\n")
    print("| layers | prefix cache (s) | full passes (s) | cache / full | same edges |")
    print("|---|---|---|---|---|")
    for name, layers, heads, dims in cases:
        a, b = graph(layers, heads, dims, True), graph(layers, heads, dims, False)
        same = a.edge_set() == b.edge_set()
        t = interleaved_medians({"cache": lambda c=(layers, heads, dims): graph(*c, True),
                                 "full": lambda c=(layers, heads, dims): graph(*c, False)}, args.repeats)
        print(f"| {name} | {t['cache']:.2f} | {t['full']:.2f} | {t['cache'] / t['full']:.2f}x | {same} |", flush=True)


def wide_model(case: str) -> tuple[torch.nn.Module, list[str]]:
    """The ``--wide`` models (random weights, seed 0) and the graph's layers."""
    nn = torch.nn
    torch.manual_seed(0)
    if case == "mlp":
        model = nn.Sequential(nn.Flatten(), nn.Linear(64, 4096), nn.ReLU(), nn.Linear(4096, 4096), nn.ReLU(), nn.Linear(4096, 10))
        return model.eval(), ["2", "4"]
    model = nn.Sequential(nn.Conv2d(1, 512, 3, padding=1), nn.ReLU(), nn.Conv2d(512, 512, 3, padding=1), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(512, 10))
    return model.eval(), ["1", "3"]


def wide_child(args: argparse.Namespace) -> None:
    """One measurement of ``--wide`` in this process (the tree on ``PYTHONPATH``): JSON of the CPU seconds and results."""
    import json

    from lightning_causal.causal import unit_effects

    case, what = args.wide_child.split(":")
    model, layers = wide_model(case)
    probe = load_digits_tensors()[2][: args.probe]
    c = time.process_time()
    if what == "graph":
        g = causal_graph(model, probe, layers)
        result = {"edges": [list(e[:2]) for e in g.edges]}
    else:
        result = {"effects": unit_effects(model, probe, layers[0]).tolist()}
    import lightning_causal

    print(json.dumps({"cpu": time.process_time() - c, "tree": str(Path(lightning_causal.__file__).parents[1]), **result}))


def wide(args: argparse.Namespace) -> None:
    import statistics

    trees = {"now": args.now_tree or str(ROOT)} | ({"before": args.before_tree} if args.before_tree else {})
    print(f"torch {torch.__version__}, {args.threads} thread(s), probe {args.probe} digits, repeats {args.repeats} "
          "(the trees in turn, a child process each)\n")
    print("| model | measured | " + " | ".join(f"{t} (CPU s)" for t in trees) + (" | now / before | same |" if len(trees) > 1 else " |"))
    print("|---" * (2 + len(trees) + (2 if len(trees) > 1 else 0)) + "|")
    names = {"mlp": "MLP 64-4096-4096-10", "cnn": "CNN 1-512-512 channels"}
    for case in args.cases:
        for what in ("graph", "unit_effects"):
            runs = tree_runs(__file__, ["--wide-child", f"{case}:{what}", "--probe", str(args.probe), "--threads", str(args.threads)],
                             trees, args.repeats)
            cpu = {t: statistics.median(r["cpu"] for r in rs) for t, rs in runs.items()}
            row = f"| {names[case]} | {what} | " + " | ".join(f"{cpu[t]:.2f}" for t in trees)
            if len(trees) > 1:
                a, b = runs["now"][0], runs["before"][0]
                if what == "graph":
                    same = "edges equal" if a["edges"] == b["edges"] else "edges differ"
                else:
                    x, y = torch.tensor(a["effects"]), torch.tensor(b["effects"])
                    same = f"max rel. diff {float((x - y).abs().max() / y.abs().max()):.1e}"
                row += f" | {cpu['now'] / cpu['before']:.2f}x | {same}"
            print(row + " |", flush=True)


def planted(args: argparse.Namespace) -> None:
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, seeds {args.seeds[0]}..{args.seeds[-1]}\n")
    print("| widths | classes | probe | true edges (mean) | candidates (mean) | kept (mean) | precision | recall | exact recoveries "
          "| node precision | node recall | s / graph |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for width, probe in ((8, 256), (16, 256), (32, 256), (64, 256), (128, 256), (32, 32)):
        widths, classes = [width] * 3, max(3, width // 4)
        tp = fp = fn = ntp = nfp = nfn = exact = 0
        truth_sizes, cands, kept, seconds = [], [], [], 0.0
        for seed in args.seeds:
            model, strong = layered_planted(widths, classes=classes, seed=seed)
            x = torch.rand(probe, width, generator=torch.Generator().manual_seed(seed)) + 0.5
            truth = planted_truth(strong, sorted(set(model(x).argmax(1).tolist())))
            t0 = time.perf_counter()
            g = causal_graph(model, x, [f"layer{k}" for k in range(3)], top_k=None)
            seconds += time.perf_counter() - t0
            found = g.edge_set()
            tp, fp, fn = tp + len(found & truth), fp + len(found - truth), fn + len(truth - found)
            true_nodes = {s for s, _ in truth} | {t for _, t in truth if not t.startswith("output")}
            nodes = {n for n in g.nodes if not n.startswith("output")}
            ntp, nfp, nfn = ntp + len(nodes & true_nodes), nfp + len(nodes - true_nodes), nfn + len(true_nodes - nodes)
            exact += found == truth
            truth_sizes.append(len(truth))
            cands.append(g.meta["candidates"])
            kept.append(len(found))
        k = len(args.seeds)
        print(f"| {widths} | {classes} | {probe} | {sum(truth_sizes) / k:.1f} | {sum(cands) / k:.1f} | {sum(kept) / k:.1f} | {tp / max(1, tp + fp):.4f} | "
              f"{tp / max(1, tp + fn):.4f} | {exact}/{k} | {ntp / max(1, ntp + nfp):.4f} | {ntp / max(1, ntp + nfn):.4f} | {seconds / k:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--probe", type=int, default=256)
    parser.add_argument("--reference-rev", default=None)
    parser.add_argument("--train-epochs", type=int, default=5)
    parser.add_argument("--planted", action="store_true")
    parser.add_argument("--seeds", type=int, nargs="+", default=list(range(100, 120)))
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--bert", action="store_true")
    parser.add_argument("--wide", action="store_true")
    parser.add_argument("--before-tree", default=None)
    parser.add_argument("--now-tree", default=None, help="with --wide: the files measured as now (default: this checkout)")
    parser.add_argument("--cases", nargs="+", choices=("mlp", "cnn"), default=["mlp", "cnn"], help="the --wide models")
    parser.add_argument("--wide-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.wide_child:
        wide_child(args)
    elif args.wide:
        wide(args)
    elif args.bert:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        bert_graphs(args)
    else:
        planted(args) if args.planted else costs(args)


if __name__ == "__main__":
    main()
