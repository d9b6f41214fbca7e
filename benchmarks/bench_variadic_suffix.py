"""The torch.fx suffix on a variadic forward: a padded-graph classifier whose module is ``forward(self, *a)`` called
with ``(x, adj, mask)`` (a LightningModule delegating to its network), against the same network with an explicit
``forward(x, adj, mask)``, in this checkout and in an earlier revision's tree.

    .venv/bin/python benchmarks/bench_variadic_suffix.py --before-tree DIR [--probe 64] [--repeats 3]

``DIR``: an earlier revision's files (``git archive REV lightning_causal | tar -x -C DIR``). Each measurement runs in a
child process (one thread) importing ``lightning_causal`` from that tree or from this checkout, the trees in turn within
every repeat (``_timing.tree_runs``): ``causal_graph`` (defaults, ``unit_dim=-1``) over the model's two hidden ReLUs
on ``--probe`` random padded graphs of 32 nodes (32 features; a node encoder 32-512-128 before the first ReLU, a
layer 128-128 before the second; random weights, seed 0). Printed: the rows run through the encoder's first layer (a
forward hook), the median CPU seconds of the call, and whether the graph's edges equal those of the explicit forward in
the same tree. Prints a markdown table.

The ``plain`` case (``Explicit``/``Variadic`` beside it) takes the plain fx suffix at both layers, which the padded
graphs never do (the mask crosses the cut: the prefix cache serves them): the same encoder and layer on each node
alone, the nodes' mean pooled after the second ReLU, called with ``x`` alone. Its rows and CPU time against a tree
without the plain suffix's check (``GraphContext._reproduces``, b508ffcc: ``--before-tree`` of ``git archive
f55153ce``) measure what the check costs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from benchmarks._timing import import_tree  # noqa: E402

import_tree("--child")

import torch  # noqa: E402
from torch import nn  # noqa: E402

from benchmarks._timing import tree_runs  # noqa: E402


class _Net(nn.Module):
    def __init__(self, features: int = 32, hidden: int = 128, classes: int = 4) -> None:
        super().__init__()
        self.l1, self.mix = nn.Linear(features, 4 * hidden), nn.Linear(4 * hidden, hidden)  # a node encoder
        self.act1, self.l2, self.act2 = nn.ReLU(), nn.Linear(hidden, hidden), nn.ReLU()
        self.head = nn.Linear(hidden, classes)

    def net(self, x, adj, mask):
        h = self.act1(self.mix(adj @ torch.relu(self.l1(x))))
        h = self.act2(self.l2(adj @ h)) * mask[..., None]
        return self.head(h.sum(1) / mask.sum(1, keepdim=True).clamp(min=1))


    def plain(self, x):
        h = self.act1(self.mix(torch.relu(self.l1(x))))
        return self.head(self.act2(self.l2(h)).mean(1))


class Explicit(_Net):
    def forward(self, x, adj, mask):
        return self.net(x, adj, mask)


class Variadic(_Net):
    def forward(self, *a):
        return self.net(*a)


class ExplicitPlain(_Net):
    def forward(self, x):
        return self.plain(x)


class VariadicPlain(_Net):
    def forward(self, *a):
        return self.plain(*a)


CASES = {"padded graph": ((Explicit, Variadic), True), "plain": ((ExplicitPlain, VariadicPlain), False)}


def _child(probe: int) -> None:
    import lightning_causal
    from lightning_causal.causal.structure.graph import causal_graph

    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    nodes = 32
    x = torch.randn(probe, nodes, 32, generator=g)
    adj = (torch.rand(probe, nodes, nodes, generator=g) < 0.3).float()
    adj = ((adj + adj.transpose(1, 2) + torch.eye(nodes)) > 0).float()
    adj = adj / adj.sum(-1, keepdim=True)
    mask = torch.rand(probe, nodes, generator=g) < 0.8
    result = {"tree": str(Path(lightning_causal.__file__).parents[1])}
    for case, (classes, graph_args) in CASES.items():
        edges = {}
        for cls in classes:
            torch.manual_seed(0)
            model = cls().eval()
            rows = []
            handle = model.l1.register_forward_hook(lambda m, i, o, rows=rows: rows.append(i[0].shape[0]))
            start = time.process_time()
            graph = causal_graph(model, x, ["act1", "act2"], unit_dim=-1,
                                 additional_forward_args=(adj, mask.float()) if graph_args else None)
            result[cls.__name__] = {"seconds": time.process_time() - start, "rows": sum(rows)}
            handle.remove()
            edges[cls.__name__] = [e[:2] for e in graph.edges]
        result[f"same_edges {case}"] = edges[classes[0].__name__] == edges[classes[1].__name__]
    print(json.dumps(result))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--before-tree", required="--child" not in sys.argv)
    parser.add_argument("--probe", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--child", action="store_true")
    args = parser.parse_args()
    if args.child:
        _child(args.probe)
        return
    trees = {"before": args.before_tree, "now": str(ROOT)}
    runs = tree_runs(__file__, ["--child", "--probe", str(args.probe)], trees, args.repeats)
    print(f"probe {args.probe} graphs of 32 nodes, {args.repeats} repeats, 1 thread (median CPU s of causal_graph)\n")
    print("| case | tree | forward | rows through l1 | CPU s | same edges as explicit |")
    print("|---|---|---|---:|---:|---|")
    for case, (classes, _) in CASES.items():
        for tree, found in runs.items():
            for cls in classes:
                name = cls.__name__
                seconds = sorted(r[name]["seconds"] for r in found)[len(found) // 2]
                same = all(r[f"same_edges {case}"] for r in found) if cls is classes[1] else ""
                print(f"| {case} | {tree} | {name.removesuffix('Plain')} | {found[0][name]['rows']:,} | {seconds:.2f} | {same} |")

if __name__ == "__main__":
    main()
