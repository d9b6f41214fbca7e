"""Cost of the structural explanations, in units of one training epoch.

    .venv/bin/python benchmarks/bench_graph.py [--repeats 3] [--probe 256]

Models: the digits LeNet (``DigitsCNN``) and the deeper plain CNN (``DeepCNN``, 6 conv layers).
One training epoch = 1,437 digits, batch 64, Adam (forward + backward + step). Measured (median
of ``--repeats`` after a warm-up): ``causal_graph`` with ``top_k = 8`` on two layers (faithfulness
included), the same plus ``graph_stability`` (2 resamples: 4 more graphs), ``layer_causal_map``
(2x2 patches, default layers) and ``counterfactual_explanation`` for 64 inputs (300 steps).
Prints a markdown table.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._timing import median_time  # noqa: E402
from lightning_causal.causal.engine.groups import patch_mask  # noqa: E402
from lightning_causal.causal.structure.counterfactuals import counterfactual_explanation  # noqa: E402
from lightning_causal.causal.structure.graph import causal_graph, graph_stability  # noqa: E402
from lightning_causal.causal.structure.layer_map import layer_causal_map  # noqa: E402
from lightning_causal.models import DeepCNN, DigitsCNN, load_digits_tensors  # noqa: E402


def epoch(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for i in range(0, len(y), 64):
        loss = F.cross_entropy(model(x[i:i + 64]), y[i:i + 64])
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--probe", type=int, default=256)
    args = parser.parse_args()
    torch.manual_seed(0)
    x, y, xv, _ = load_digits_tensors()
    probe = xv[: args.probe]
    mask = patch_mask((1, 8, 8), 2)
    cases = [("digits LeNet", DigitsCNN(), ["conv1", "conv2"]), ("deep CNN (6 conv)", DeepCNN(), ["features.4", "features.7"])]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, probe {len(probe)}, repeats {args.repeats}\n")
    print("| model | layers | epoch (s) | graph (s) | graph / epoch | graph + stability (s) | / epoch | layer map (s) | / epoch | 64 counterfactuals (s) | / epoch |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for name, model, layers in cases:
        t_epoch = median_time(lambda m=model: epoch(m, x, y), args.repeats)
        model.eval()
        t_graph = median_time(lambda m=model, ls=layers: causal_graph(m, probe, ls, top_k=8), args.repeats)
        t_stab = median_time(lambda m=model, ls=layers: graph_stability(m, probe, ls, top_k=8, resamples=2,
                                                                 reference=causal_graph(m, probe, ls, top_k=8)), args.repeats)
        t_map = median_time(lambda m=model: layer_causal_map(m, probe, mask), args.repeats)
        target = (model(probe[:64]).argmax(1) + 1) % 10
        t_cf = median_time(lambda m=model, t=target: counterfactual_explanation(m, probe[:64], t, bounds=(0.0, 1.0)), args.repeats)
        print(f"| {name} | {', '.join(layers)} | {t_epoch:.3f} | {t_graph:.3f} | {t_graph / t_epoch:.2f} | {t_stab:.3f} | "
              f"{t_stab / t_epoch:.2f} | {t_map:.3f} | {t_map / t_epoch:.2f} | {t_cf:.3f} | {t_cf / t_epoch:.2f} |")


if __name__ == "__main__":
    main()
