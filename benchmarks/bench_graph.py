"""Cost of the structural explanations in units of one training epoch, and the precision and
recall of causal graph edges on planted networks of growing size.

    .venv/bin/python benchmarks/bench_graph.py [--repeats 3] [--probe 256] [--reference-rev REV] [--threads 1]
    .venv/bin/python benchmarks/bench_graph.py --planted [--seeds 100 ... 119]
    .venv/bin/python benchmarks/bench_graph.py --bert [--probe 64] [--repeats 3] [--threads 2]
    .venv/bin/python benchmarks/bench_graph.py --wide [--before-tree DIR] [--cases mlp cnn] [--probe 16] [--repeats 3]
    .venv/bin/python benchmarks/bench_graph.py --small [--set dev test] [--only CASE ...] [--measure graph unit_effects]
        [--before-tree DIR] [--probe 64] [--repeats 5]
    .venv/bin/python benchmarks/bench_graph.py --unfinite-cost [--cases mlp cnn] [--probe 16]
    .venv/bin/python benchmarks/bench_graph.py --stability --before-tree DIR [--stability-cases mlp tokens cnn] [--repeats 3]
    .venv/bin/python benchmarks/bench_graph.py --audit --before-tree DIR [--stability-cases mlp tokens cnn] [--repeats 3]

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
``--small``: ``causal_graph`` (defaults) and ``unit_effects`` of its first layer on small CNNs (random weights, seed 0,
the first ``--probe`` validation digits; CPU seconds per call over 3 calls in a child process, medians of
``--repeats``, the variants in turn), where the convolution update is near break-even and the prefix cache the graph
builds beside its plain ``torch.fx`` suffix may cost more than it saves (``graph_context.CONV_CACHE_MIN_WORK``). The
cases come in two sets (``--set``): ``dev``, on which the rule was decided (2-conv CNNs of 8 to 64 channels on 8x8,
their first ReLU read by the second convolution; the LeNet and the deep CNN, whose chosen layers a ReLU reads, as the
noise), and ``test``, committed before it was measured (1-D convolutions over the 64 pixels as steps, of 24 and 96
channels, and over the steps as units; a stride-2 reader; 32 channels on digits upsampled to 16x16). Without
``--before-tree`` each case runs with the cache forced beside the plain suffix and refused there, in this checkout, and
the table says which the rule takes (the update's spared multiply-adds per row of the first layer's readers); with
``--before-tree DIR`` this checkout against that tree, both as they are.
``--unfinite-cost``: the work the non-finite check (``linear_update._unfinite_rows``, review 96678d11) adds to the
``--wide`` models' ``causal_graph`` and ``unit_effects``, timed inside one call of each (one thread).
``--stability``: ``CausalGraphAudit``'s stability measure, ``graph_stability`` with the audit's defaults (2 resamples and
2 noisy copies; ``reference`` the probe's graph, built first and not timed), on three small models of the session-35
reports (newuser76-78), trained briefly (seed 0): ``mlp``, a 31-32-32-2 MLP on ``load_breast_cancer`` (30 standardised
features and a constant column), probe 100, layers its two ReLUs; ``tokens``, a 2-layer transformer encoder (width 32,
4 heads, feed-forward 64) over 12 random token ids, probe 128, layers the two ``linear1`` with ``unit_dim=-1`` (token
ids: no noisy copies); ``cnn``, a 1-8-16 conv net on the first 64 validation digits, layers its two ReLUs. With
``--before-tree DIR`` each tree runs in a child process (``_timing.tree_runs``, the trees in turn within every repeat):
medians of the child's CPU seconds of the call (one thread), the rows through the model's layers, and whether the two
trees' bootstrap graphs (every node, edge and statistic, ``CausalGraph.to_dict``) and Jaccard values are equal.
``--audit``: the same models' whole ``CausalGraphAudit.run`` (defaults: the probe's graph and the stability's four) after
a warm-up run, and its figure as TensorBoard draws it (``graph_figure`` + ``figure_image``, the mean of 5), each tree in a
child process as for ``--stability``; whether the two trees' graphs (``to_dict``) and scalars are equal.
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
import_tree("--small-child")  # the tree a --small child measures
import_tree("--stability-child")  # the tree a --stability child measures
import_tree("--audit-child")  # the tree an --audit child measures

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


SMALL_SETS = {"dev": ["cnn8", "cnn16", "cnn32", "cnn64", "lenet", "deep"],
              "test": ["seq24", "seq96", "seq64-steps", "cnn48-stride2", "cnn32-16x16"]}


def small_model(case: str) -> tuple[torch.nn.Module, list[str], dict, callable]:
    """The ``--small`` models (random weights, seed 0): the model, the graph's layers, its keyword arguments (units
    along the steps for ``seq64-steps``) and the map from digits ``[N, 1, 8, 8]`` to the model's input."""
    nn = torch.nn
    torch.manual_seed(0)
    same, kw = (lambda x: x), {}
    if case in ("lenet", "deep"):
        return (DigitsCNN() if case == "lenet" else DeepCNN()).eval(), (["conv1", "conv2"] if case == "lenet" else
                                                                         ["features.4", "features.7"]), kw, same
    if case.startswith("seq"):  # the 64 pixels as the steps of a sequence
        c = int(case[3:].split("-")[0])
        kw = {"unit_dim": {"1": -1, "3": -1}} if case.endswith("steps") else {}
        model = nn.Sequential(nn.Conv1d(1, c, 5, padding=2), nn.ReLU(), nn.Conv1d(c, c, 5, padding=2), nn.ReLU(),
                              nn.Flatten(), nn.Linear(c * 64, 10))
        return model.eval(), ["1", "3"], kw, lambda x: x.reshape(x.shape[0], 1, 64)
    if case == "cnn48-stride2":
        model = nn.Sequential(nn.Conv2d(1, 48, 3, padding=1), nn.ReLU(), nn.Conv2d(48, 48, 3, stride=2, padding=1),
                              nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(48, 10))
        return model.eval(), ["1", "3"], kw, same
    c, size = int(case[3:].split("-")[0]), (16 if case.endswith("16x16") else 8)
    model = nn.Sequential(nn.Conv2d(1, c, 3, padding=1), nn.ReLU(), nn.Conv2d(c, c, 3, padding=1), nn.ReLU(),
                          nn.Flatten(), nn.Linear(c * size * size, 10))
    upsample = (lambda x: F.interpolate(x, scale_factor=2, mode="nearest")) if size == 16 else same
    return model.eval(), ["1", "3"], kw, upsample


def small_child(args: argparse.Namespace) -> None:
    """One ``--small`` measurement in this process: JSON of the CPU seconds per call (3 calls) and the results."""
    import json
    import math

    import lightning_causal
    from lightning_causal.causal import unit_effects
    from lightning_causal.causal.structure import graph_context

    case, what, mode = args.small_child.split(":")
    if mode != "as-is":  # the prefix cache beside the plain suffix forced (0) or refused (inf) for convolution readers
        graph_context.CONV_CACHE_MIN_WORK = 0 if mode == "cache" else math.inf
    model, layers, kw, prepare = small_model(case)
    probe = prepare(load_digits_tensors()[2][: args.probe])
    c = time.process_time()
    for _ in range(3):
        if what == "graph":
            g = causal_graph(model, probe, layers, **kw)
            result = {"edges": [list(e[:2]) for e in g.edges]}
        else:
            dim = kw.get("unit_dim", {}).get(layers[0])
            result = {"effects": unit_effects(model, probe, layers[0], **({"unit_dim": dim} if dim else {})).tolist()}
    print(json.dumps({"cpu": (time.process_time() - c) / 3, "tree": str(Path(lightning_causal.__file__).parents[1]),
                      **result}))


def small_spared(case: str, probe: torch.Tensor) -> float | None:
    """The multiply-adds per row the update spares in the convolutions reading the first layer (``None``: none
    answers, or a linear layer does), as the graph's rule reads them."""
    from lightning_causal.causal.engine.prefix_cache import cache_prefix

    model, layers, kw, prepare = small_model(case)
    dim = kw.get("unit_dim", {}).get(layers[0], 1)
    with torch.no_grad():
        readers = cache_prefix(model, prepare(probe[:2]), layers[0]).linear
    return readers.conv_work_spared(dim, 1) if readers.answers(dim, 1) else None


def _same(a: dict, b: dict, what: str) -> str:
    if what == "graph":
        return "edges equal" if a["edges"] == b["edges"] else "edges differ"
    x, y = torch.tensor(a["effects"]), torch.tensor(b["effects"])
    return f"max rel. diff {float((x - y).abs().max() / y.abs().max()):.1e}"


def small(args: argparse.Namespace) -> None:
    import statistics

    from lightning_causal.causal.structure.graph_context import CONV_CACHE_MIN_WORK

    probe = load_digits_tensors()[2][: args.probe]
    if args.before_tree:
        variants = {"now": (args.now_tree or str(ROOT), "as-is"), "before": (args.before_tree, "as-is")}
    else:
        variants = {"cache": (str(ROOT), "cache"), "plain": (str(ROOT), "plain")}
    a, b = variants
    print(f"torch {torch.__version__}, {args.threads} thread(s), probe {args.probe} digits, CPU s per call (3 calls), "
          f"medians of {args.repeats} (the variants in turn, a child process each); CONV_CACHE_MIN_WORK = "
          f"{CONV_CACHE_MIN_WORK:,}\n")
    print(f"| set | model | spared per row | measured | {a} (CPU s) | {b} (CPU s) | {a} / {b} | rule takes | same |")
    print("|---" * 9 + "|")
    for name in args.set:
        for case in [c for c in SMALL_SETS[name] if not args.only or c in args.only]:
            spared = small_spared(case, probe)
            takes = "cache" if spared is not None and spared >= CONV_CACHE_MIN_WORK else "plain"
            for what in args.measure:
                runs = tree_runs(__file__, ["--small-child", f"{case}:{what}:MODE", "--probe", str(args.probe),
                                            "--threads", str(args.threads)],
                                 {v: path for v, (path, _) in variants.items()}, args.repeats,
                                 replace={v: ("MODE", mode) for v, (_, mode) in variants.items()})
                cpu = {v: statistics.median(r["cpu"] for r in rs) for v, rs in runs.items()}
                print(f"| {name} | {case} | {'-' if spared is None else f'{spared:,.0f}'} | {what} | {cpu[a]:.4f} | "
                      f"{cpu[b]:.4f} | {cpu[a] / cpu[b]:.2f}x | {takes if what == 'graph' else '-'} | "
                      f"{_same(runs[a][0], runs[b][0], what)} |", flush=True)


def stability_model(case: str) -> tuple[torch.nn.Module, torch.Tensor, list[str], dict]:
    """The ``--stability`` models (seed 0, trained briefly): the model, the probe, the layers and the graph's options."""
    nn = torch.nn
    torch.manual_seed(0)
    if case == "mlp":
        from sklearn.datasets import load_breast_cancer

        data, labels = load_breast_cancer(return_X_y=True)
        x = torch.tensor((data - data.mean(0)) / data.std(0), dtype=torch.float32)
        x, y = torch.cat([x, torch.ones(len(x), 1)], 1), torch.tensor(labels)
        model = nn.Sequential(nn.Linear(31, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 2))
        probe, layers, kw = x[:100], ["1", "3"], {}
    elif case == "tokens":
        class Tokens(nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.emb = nn.Embedding(50, 32)
                layer = nn.TransformerEncoderLayer(32, 4, 64, dropout=0.0, batch_first=True)
                self.enc = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
                self.head = nn.Linear(32, 3)

            def forward(self, t: torch.Tensor) -> torch.Tensor:
                return self.head(self.enc(self.emb(t)).mean(1))

        model = Tokens()
        x = torch.randint(0, 50, (256, 12), generator=torch.Generator().manual_seed(1))
        y = (x[:, 0] % 3 + (x[:, 1] > 25)).clamp(max=2)
        probe, layers, kw = x[:128], ["enc.layers.0.linear1", "enc.layers.1.linear1"], {"unit_dim": -1}
    else:
        x, y = load_digits_tensors()[:2]
        model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(),
                              nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(16, 10))
        probe, layers, kw = load_digits_tensors()[2][:64], ["1", "3"], {}
    opt = torch.optim.Adam(model.parameters(), 1e-2)
    for _ in range(100):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    return model.eval(), probe, layers, kw


def stability_child(args: argparse.Namespace) -> None:
    """One ``--stability`` measurement in this process: JSON of the CPU seconds, rows and a digest of the results."""
    import hashlib
    import json

    import lightning_causal
    from lightning_causal.causal.structure import graph as graph_module

    model, probe, layers, kw = stability_model(args.stability_child)
    reference = causal_graph(model, probe, layers, **kw)
    built = []
    # what graph_stability builds its graphs with: graph._graph since perf_graph_s36 (its copies and traces as
    # arguments), causal_graph in an earlier tree
    name = "_graph" if hasattr(graph_module, "_graph") else "causal_graph"
    build = getattr(graph_module, name)

    def recording(*a, **k):  # the graphs graph_stability builds, for the digest
        built.append(build(*a, **k))
        return built[-1]

    setattr(graph_module, name, recording)
    rows = [0]
    hooks = [m.register_forward_hook(lambda _m, _i, out: rows.__setitem__(0, rows[0] + out.shape[0]))
             for n, m in model.named_modules() if n in layers]
    c = time.process_time()
    result = graph_stability(model, probe, layers, resamples=2, seed=0, reference=reference, **kw)
    cpu = time.process_time() - c
    for h in hooks:
        h.remove()
    digest = hashlib.sha256(json.dumps([g.to_dict() for g in built], sort_keys=True, default=str).encode()).hexdigest()
    print(json.dumps({"cpu": cpu, "rows": rows[0], "digest": digest[:16], "graphs": len(built), **result,
                      "tree": str(Path(lightning_causal.__file__).parents[1])}))


def stability(args: argparse.Namespace) -> None:
    import math
    import statistics

    trees = {"now": args.now_tree or str(ROOT), **({"before": args.before_tree} if args.before_tree else {})}
    print(f"torch {torch.__version__}, {args.threads} thread(s), graph_stability (2 resamples, noise 0.05, seed 0), "
          f"CPU s per call, medians of {args.repeats} (the trees in turn, a child process each)\n")
    names = list(trees)
    print("| model | graphs | " + " | ".join(f"{t} CPU s | {t} rows" for t in names)
          + (" | now / before (CPU) | same graphs and Jaccard |" if len(names) > 1 else " |"))
    print("|---" * (2 + 2 * len(names) + (2 if len(names) > 1 else 0)) + "|")
    for case in args.stability_cases:
        runs = tree_runs(__file__, ["--stability-child", case, "--threads", str(args.threads)], trees, args.repeats)
        cpu = {t: statistics.median(r["cpu"] for r in rs) for t, rs in runs.items()}
        line = f"| {case} | {runs['now'][0]['graphs']} | " + " | ".join(f"{cpu[t]:.3f} | {runs[t][0]['rows']:,}" for t in names)
        if len(names) > 1:
            a, b = runs["now"][0], runs["before"][0]
            same = all(a[k] == b[k] for k in ("digest", "resample_jaccard")) and (  # NaN: no noisy copies (token ids)
                a["noise_jaccard"] == b["noise_jaccard"] or math.isnan(a["noise_jaccard"]) and math.isnan(b["noise_jaccard"]))
            line += f" | {cpu['now'] / cpu['before']:.2f}x | {'yes' if same else 'NO'} |"
        print(line, flush=True)


def audit_child(args: argparse.Namespace) -> None:
    """One ``--audit`` measurement in this process: JSON of the CPU seconds of ``CausalGraphAudit.run`` and of its
    figure, and a digest of the result's graph and scalars."""
    import hashlib
    import json
    import warnings

    import lightning_causal
    from lightning_causal.audits.base import Probe
    from lightning_causal.audits.causal_graph import CausalGraphAudit
    from lightning_causal.reporting.graph_figures import graph_figure
    from lightning_causal.reporting.tensorboard import figure_image

    warnings.simplefilter("ignore")
    model, probe, layers, kw = stability_model(args.audit_child)
    audit, probe = CausalGraphAudit(layers, **kw), Probe(probe)
    figure_image(graph_figure(audit.run(model, probe).graphs["causal_graph"]))  # warm: the first figure loads fonts
    audit._previous = None
    c = time.process_time()
    result = audit.run(model, probe)
    run = time.process_time() - c
    c = time.process_time()
    for _ in range(5):  # the garbage collector's passes land on one figure or another: their mean
        figure_image(graph_figure(result.graphs["causal_graph"]))
    figure = (time.process_time() - c) / 5
    digest = hashlib.sha256(json.dumps([result.graphs["causal_graph"], result.scalars], sort_keys=True,
                                       default=str).encode()).hexdigest()
    print(json.dumps({"run": run, "figure": figure, "digest": digest[:16],
                      "tree": str(Path(lightning_causal.__file__).parents[1])}))


def audit(args: argparse.Namespace) -> None:
    import statistics

    trees = {"now": args.now_tree or str(ROOT), **({"before": args.before_tree} if args.before_tree else {})}
    print(f"torch {torch.__version__}, {args.threads} thread(s), CausalGraphAudit.run (defaults: 2 resamples, 2 noisy "
          f"copies) and its figure (graph_figure + figure_image, the mean of 5), CPU s, medians of {args.repeats} (the "
          "trees in turn, a child process each)\n")
    names = list(trees)
    print("| model | " + " | ".join(f"{t} run | {t} figure" for t in names)
          + (" | run now / before | figure now / before | same graph and scalars |" if len(names) > 1 else " |"))
    print("|---" * (1 + 2 * len(names) + (3 if len(names) > 1 else 0)) + "|")
    for case in args.stability_cases:
        runs = tree_runs(__file__, ["--audit-child", case, "--threads", str(args.threads)], trees, args.repeats)
        cpu = {t: {k: statistics.median(r[k] for r in rs) for k in ("run", "figure")} for t, rs in runs.items()}
        line = f"| {case} | " + " | ".join(f"{cpu[t]['run']:.3f} | {cpu[t]['figure']:.3f}" for t in names)
        if len(names) > 1:
            same = len({r["digest"] for rs in runs.values() for r in rs}) == 1
            line += (f" | {cpu['now']['run'] / cpu['before']['run']:.2f}x | {cpu['now']['figure'] / cpu['before']['figure']:.2f}x"
                     f" | {'yes' if same else 'NO'} |")
        print(line, flush=True)


def unfinite_cost(args: argparse.Namespace) -> None:
    """The non-finite check's CPU time inside one call of ``causal_graph`` and ``unit_effects`` (``--wide`` models)."""
    from lightning_causal.causal import unit_effects
    from lightning_causal.causal.engine import linear_update

    spent, original = {"t": 0.0, "n": 0, "elems": 0}, linear_update._unfinite_rows

    def timed(t: torch.Tensor) -> torch.Tensor:
        c = time.process_time()
        rows = original(t)
        spent["t"] += time.process_time() - c
        spent["n"], spent["elems"] = spent["n"] + 1, spent["elems"] + t.numel()
        return rows

    linear_update._unfinite_rows = timed
    probe = load_digits_tensors()[2][: args.probe]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} thread(s), probe {args.probe} digits, one call each\n")
    print("| model | measured | call (CPU s) | checks | elements read | check (CPU ms) | share |")
    print("|---|---|---|---|---|---|---|")
    names = {"mlp": "MLP 64-4096-4096-10", "cnn": "CNN 1-512-512 channels"}
    try:
        for case in args.cases:
            model, layers = wide_model(case)
            for what in ("graph", "unit_effects"):
                spent.update(t=0.0, n=0, elems=0)
                c = time.process_time()
                causal_graph(model, probe, layers) if what == "graph" else unit_effects(model, probe, layers[0])
                total = time.process_time() - c
                print(f"| {names[case]} | {what} | {total:.2f} | {spent['n']} | {spent['elems']:,} | {spent['t'] * 1e3:.1f} "
                      f"| {100 * spent['t'] / total:.2f}% |", flush=True)
    finally:
        linear_update._unfinite_rows = original


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
    parser.add_argument("--now-tree", default=None,
                        help="with --wide, --small or --stability: the files measured as now (default: this checkout)")
    parser.add_argument("--cases", nargs="+", choices=("mlp", "cnn"), default=["mlp", "cnn"], help="the --wide models")
    parser.add_argument("--wide-child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--small", action="store_true")
    parser.add_argument("--set", nargs="+", choices=tuple(SMALL_SETS), default=list(SMALL_SETS), help="the --small cases")
    parser.add_argument("--only", nargs="+", default=None, choices=[c for cases in SMALL_SETS.values() for c in cases],
                        help="with --small: these cases of the sets only")
    parser.add_argument("--measure", nargs="+", choices=("graph", "unit_effects"), default=["graph", "unit_effects"],
                        help="with --small: what is timed")
    parser.add_argument("--small-child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--unfinite-cost", action="store_true")
    parser.add_argument("--stability", action="store_true")
    parser.add_argument("--stability-cases", nargs="+", choices=("mlp", "tokens", "cnn"), default=["mlp", "tokens", "cnn"],
                        help="with --stability: the models")
    parser.add_argument("--stability-child", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--audit", action="store_true", help="CausalGraphAudit.run and its figure, per tree (--stability-cases)")
    parser.add_argument("--audit-child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    picked = {c for s in args.set for c in SMALL_SETS[s]}
    if args.only and not set(args.only) <= picked:  # a case of a set not picked: a table of no rows, no run
        parser.error(f"--only {sorted(set(args.only) - picked)} are no cases of --set {args.set}: {sorted(picked)}")
    torch.set_num_threads(args.threads)
    if args.wide_child:
        wide_child(args)
    elif args.small_child:
        small_child(args)
    elif args.stability_child:
        stability_child(args)
    elif args.stability:
        stability(args)
    elif args.audit_child:
        audit_child(args)
    elif args.audit:
        audit(args)
    elif args.small:
        small(args)
    elif args.unfinite_cost:
        unfinite_cost(args)
    elif args.wide:
        wide(args)
    elif args.bert:
        sys.path.insert(0, str(ROOT / "benchmarks"))
        bert_graphs(args)
    else:
        planted(args) if args.planted else costs(args)


if __name__ == "__main__":
    main()
