"""The seed paper's claim on graphs: are causal explanatory graphs more stable and more faithful
than graphs built from attributions? (Ahmad et al. 2023)

    .venv/bin/python benchmarks/bench_graph_captum.py [--seeds 0 1 2 3 4] [--epochs 10] [--threads 1] [--noise 0.05]

For each training seed a digits CNN (``DigitsCNN``, ``fit_classifier``) is trained and explained on
256 held-out digits over the layers ``conv1``, ``conv2``:

- causal: ``causal_graph`` with its defaults (path effects, tests, ``top_k = 8``);
- attribution: ``attribution_graph`` (LayerConductance top units linked by conductance) with the
  same numbers of nodes per layer and edges per pair of layers as the causal graph built on the
  same data;
- random: random nodes and edges with the same numbers (mean of 5 draws; faithfulness only).

Faithfulness: ``graph_faithfulness`` (the graph as a circuit, mean ablation). Stability: Jaccard
overlap of the edge (and node) sets between the probe and ``--repeats`` noisy copies
(``x + noise sd(x) eps``) and bootstrap resamples of it, each method rebuilt on the perturbed data;
across training seeds: the units of seed ``b`` matched to those of seed ``a`` (Hungarian
assignment on the correlation of their mean activations over the probe), then the Jaccard of the
two graphs. Prints markdown tables.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import sys
import time
from pathlib import Path

import torch
from scipy.optimize import linear_sum_assignment

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lightning_causal.baselines.attribution_graph import attribution_graph  # noqa: E402
from lightning_causal.causal.engine.interventions import capture  # noqa: E402
from lightning_causal.causal.structure.faithfulness import graph_faithfulness  # noqa: E402
from lightning_causal.causal.structure.graph import causal_graph  # noqa: E402
from lightning_causal.causal.structure.graph_data import OUTPUT, CausalGraph  # noqa: E402
from lightning_causal.models import DigitsCNN, fit_classifier, load_digits_tensors  # noqa: E402

LAYERS = ["conv1", "conv2"]


def node_jaccard(a: CausalGraph, b: CausalGraph) -> float:
    na, nb = set(a.nodes), set(b.nodes)
    return len(na & nb) / len(na | nb) if na | nb else 1.0


def random_graph(like: CausalGraph, units: dict[str, int], gen: torch.Generator) -> CausalGraph:
    """Random nodes (same count per layer) and random edges among them (same count per layer pair)."""
    nodes = {layer: torch.randperm(units[layer], generator=gen)[: sum(n.startswith(layer + ":") for n in like.nodes)].tolist()
             for layer in like.layers}
    outputs = [n for n in like.nodes if n.startswith(OUTPUT)]
    counts: dict[tuple[str, str], int] = {}
    for s, t, _ in like.edges:
        key = (s.rsplit(":", 1)[0], t.rsplit(":", 1)[0])
        counts[key] = counts.get(key, 0) + 1
    edges = []
    for (sl, tl), k in counts.items():
        targets = outputs if tl == OUTPUT else [f"{tl}:{u}" for u in nodes[tl]]
        pairs = [(f"{sl}:{i}", t) for i in nodes[sl] for t in targets]
        edges += [(*pairs[p], 1.0) for p in torch.randperm(len(pairs), generator=gen)[:k].tolist()]
    ids = [f"{layer}:{u}" for layer in like.layers for u in nodes[layer]] + outputs
    return CausalGraph(list(like.layers), ids, edges)


def perturbed(probe: torch.Tensor, repeats: int, seed: int, noise: float) -> list[tuple[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(1000 + seed)
    out = []
    for _ in range(repeats):
        out.append(("noise", probe + noise * probe.std() * torch.randn(probe.shape, generator=gen)))
        out.append(("resample", probe[torch.randint(len(probe), (len(probe),), generator=gen)]))
    return out


def unit_matching(model_a, model_b, probe: torch.Tensor) -> dict[str, list[int]]:
    """For each layer: ``perm[u_b] = u_a``, maximising the summed correlation of mean activations."""
    out = {}
    with torch.no_grad(), capture(model_a, LAYERS) as acts_a:
        model_a(probe)
    with torch.no_grad(), capture(model_b, LAYERS) as acts_b:
        model_b(probe)
    for layer in LAYERS:
        a, b = (acts[layer].flatten(2).mean(2) for acts in (acts_a, acts_b))
        a, b = ((t - t.mean(0)) / (t.std(0) + 1e-8) for t in (a, b))
        corr = (b.T @ a) / len(probe)  # [U_b, U_a]
        rows, cols = linear_sum_assignment(-corr.numpy())
        perm = [0] * corr.shape[0]
        for r, c in zip(rows.tolist(), cols.tolist()):
            perm[r] = c
        out[layer] = perm
    return out


def relabel(g: CausalGraph, perm: dict[str, list[int]]) -> CausalGraph:
    def f(node: str) -> str:
        layer, unit = node.rsplit(":", 1)
        return f"{layer}:{perm[layer][int(unit)]}" if layer in perm else node

    return CausalGraph(list(g.layers), [f(n) for n in g.nodes], [(f(s), f(t), w) for s, t, w in g.edges])


def run_seed(seed: int, args: argparse.Namespace, data) -> dict:
    x, y, xv, yv = data
    model = fit_classifier(DigitsCNN(), x, y, epochs=args.epochs, seed=seed)
    probe = xv[: args.probe]
    t0 = time.perf_counter()
    g = causal_graph(model, probe, LAYERS)
    t_causal = time.perf_counter() - t0
    t0 = time.perf_counter()
    a = attribution_graph(model, probe, g)
    t_attr = time.perf_counter() - t0
    units = {layer: getattr(model, layer).out_channels for layer in LAYERS}
    gen = torch.Generator().manual_seed(seed)
    rnd = [graph_faithfulness(model, probe, random_graph(g, units, gen))["faithfulness"] for _ in range(5)]
    row = {"seed": seed, "accuracy": float((model(xv).argmax(1) == yv).float().mean()), "edges": len(g.edges),
           "causal_faith": g.meta["faithfulness"], "attr_faith": graph_faithfulness(model, probe, a)["faithfulness"],
           "random_faith": statistics.mean(rnd), "t_causal": t_causal, "t_attr": t_attr}
    for kind in ("noise", "resample"):
        row.update({f"causal_{kind}": [], f"attr_{kind}": [], f"causal_{kind}_nodes": [], f"attr_{kind}_nodes": []})
    for kind, xp in perturbed(probe, args.repeats, seed, args.noise):
        gp = causal_graph(model, xp, LAYERS)
        ap = attribution_graph(model, xp, gp)
        row[f"causal_{kind}"].append(g.jaccard(gp))
        row[f"attr_{kind}"].append(a.jaccard(ap))
        row[f"causal_{kind}_nodes"].append(node_jaccard(g, gp))
        row[f"attr_{kind}_nodes"].append(node_jaccard(a, ap))
    for key in [k for k, v in row.items() if isinstance(v, list)]:
        row[key] = statistics.mean(row[key])
    return {"row": row, "model": model, "causal": g, "attr": a}


def fmt(values: list[float]) -> str:
    return f"{statistics.mean(values):.3f} ± {statistics.stdev(values) if len(values) > 1 else 0.0:.3f}"


def paired(c: list[float], a: list[float], higher: bool = True) -> str:
    d = [ci - ai for ci, ai in zip(c, a)]
    wins = sum((di > 0) if higher else (di < 0) for di in d)
    return f"{fmt(d)} ({wins}/{len(d)})"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2, 3, 4])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--probe", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--noise", type=float, default=0.05)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_digits_tensors()
    runs = [run_seed(seed, args, data) for seed in args.seeds]
    rows = [r["row"] for r in runs]
    print(f"torch {torch.__version__}, {args.threads} thread(s), seeds {args.seeds}, {args.epochs} epochs, probe {args.probe}, "
          f"noise {args.noise}\n")
    print("| seed | test acc. | edges | faithfulness causal / attribution / random | noise Jaccard causal / attribution "
          "| resample Jaccard causal / attribution | s causal / attribution |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['seed']} | {r['accuracy']:.3f} | {r['edges']} | {r['causal_faith']:.3f} / {r['attr_faith']:.3f} / "
              f"{r['random_faith']:.3f} | {r['causal_noise']:.3f} / {r['attr_noise']:.3f} | {r['causal_resample']:.3f} / "
              f"{r['attr_resample']:.3f} | {r['t_causal']:.2f} / {r['t_attr']:.2f} |")
    cross = {"causal": [], "attr": [], "causal_nodes": [], "attr_nodes": []}
    for i, j in itertools.combinations(range(len(runs)), 2):
        perm = unit_matching(runs[i]["model"], runs[j]["model"], data[2][: args.probe])
        for method in ("causal", "attr"):
            mapped = relabel(runs[j][method], perm)
            cross[method].append(runs[i][method].jaccard(mapped))
            cross[f"{method}_nodes"].append(node_jaccard(runs[i][method], mapped))
    col = {k: [r[k] for r in rows] for k in rows[0]}
    print("\n| metric | causal | attribution (LayerConductance) | causal − attribution (seeds causal better) |")
    print("|---|---|---|---|")
    print(f"| faithfulness ↑ | {fmt(col['causal_faith'])} | {fmt(col['attr_faith'])} | {paired(col['causal_faith'], col['attr_faith'])} |")
    for kind in ("noise", "resample"):
        for suffix, label in (("", "edge"), ("_nodes", "node")):
            c, a = col[f"causal_{kind}{suffix}"], col[f"attr_{kind}{suffix}"]
            print(f"| {kind} {label} Jaccard ↑ | {fmt(c)} | {fmt(a)} | {paired(c, a)} |")
    for suffix, label in (("", "edge"), ("_nodes", "node")):
        c, a = cross[f"causal{suffix}"], cross[f"attr{suffix}"]
        print(f"| across seeds, {label} Jaccard ↑ ({len(c)} pairs) | {fmt(c)} | {fmt(a)} | {paired(c, a)} |")
    print(f"\nrandom graphs of the same size: faithfulness {fmt(col['random_faith'])}")


if __name__ == "__main__":
    main()
