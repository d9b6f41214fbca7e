"""Causal filter pruning vs Lightning's L1 ranking vs random, on the digits CNN.

    .venv/bin/python examples/causal_pruning.py [--epochs 15] [--out docs/img/causal_pruning.png]

Trains the LeNet-style ``DigitsCNN`` (conv1: 16 filters, conv2: 32) on scikit-learn's 8x8 digits,
then prunes a growing fraction of the filters of both conv layers *without fine-tuning* and
measures the validation accuracy. Rankings:

- ``causal/layer``: :func:`~lightning_causal.callbacks.pruning.causal_pruning_fn` with
  ``scope="layer"`` (the same fraction in each layer), scored on 256 training digits;
- ``causal/global``: the same scores ranked across both layers (they share one unit, the logit);
- ``causal/iterative``: global, 2 filters at a time, re-scored after each step (greedy);
- ``L1``: Lightning's ``ModelPruning("ln_structured", pruning_norm=1, pruning_dim=0)``, per layer;
- ``random``: random filters per layer (mean over 5 draws of a private generator).

A pruned filter loses its weights and its bias (the L1 ranking is on the weights, as in
``ModelPruning``; its filters' biases are zeroed too so that every method removes whole filters).
Prints a markdown table and saves a figure.
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path
from typing import Literal

import torch
import torch.nn.utils.prune as pytorch_prune
from lightning.pytorch.callbacks import ModelPruning

from lightning_causal.callbacks import causal_pruning_fn
from lightning_causal.models import DigitsCNN, fit_classifier, load_digits_tensors

LAYERS = ("conv1", "conv2")
FRACTIONS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)


def train(epochs: int, seed: int = 0) -> tuple[DigitsCNN, tuple]:
    data = load_digits_tensors(seed=seed)
    torch.manual_seed(seed)  # the example's own weights; the library never touches the global RNG
    return fit_classifier(DigitsCNN(), data[0], data[1], epochs, seed=seed, reinit=False), data


@torch.no_grad()
def accuracy(model: DigitsCNN, x: torch.Tensor, y: torch.Tensor) -> float:
    return float((model(x).argmax(1) == y).float().mean())


def _zero_bias_of_dead_filters(model: DigitsCNN) -> None:
    for name in LAYERS:
        conv = getattr(model, name)
        dead = (conv.weight.detach().flatten(1).abs().sum(1) == 0).float()
        pytorch_prune.custom_from_mask(conv, "bias", 1.0 - dead)


def prune_l1(model: DigitsCNN, fraction: float) -> DigitsCNN:
    pruned = copy.deepcopy(model)
    params = [(getattr(pruned, n), "weight") for n in LAYERS]
    cb = ModelPruning("ln_structured", parameters_to_prune=params, pruning_dim=0, pruning_norm=1,
                      use_global_unstructured=False, amount=fraction)
    cb._parameters_to_prune = params  # what ModelPruning.setup does with a Trainer
    cb.apply_pruning(fraction)
    _zero_bias_of_dead_filters(pruned)
    return pruned


def prune_random(model: DigitsCNN, fraction: float, seed: int) -> DigitsCNN:
    pruned = copy.deepcopy(model)
    gen = torch.Generator().manual_seed(seed)
    for name in LAYERS:
        conv = getattr(pruned, name)
        n = conv.out_channels
        dead = torch.randperm(n, generator=gen)[: round(fraction * n)]
        keep = torch.ones(n)
        keep[dead] = 0.0
        pytorch_prune.custom_from_mask(conv, "weight", keep.view(-1, 1, 1, 1).expand_as(conv.weight))
        pytorch_prune.custom_from_mask(conv, "bias", keep)
    return pruned


def prune_causal(model: DigitsCNN, fraction: float, probe: torch.Tensor, scope: Literal["global", "layer"]) -> DigitsCNN:
    pruned = copy.deepcopy(model)
    if fraction > 0:
        causal_pruning_fn(pruned, probe, list(LAYERS), scope=scope).prune(fraction)
    return pruned


def prune_causal_iterative(model: DigitsCNN, count: int, probe: torch.Tensor, step: int = 2) -> DigitsCNN:
    """Greedy: prune ``step`` filters at a time, re-scoring the rest with the masks applied."""
    pruned = copy.deepcopy(model)
    method = causal_pruning_fn(pruned, probe, list(LAYERS), scope="global")
    for done in range(0, count, step):
        method.prune(min(step, count - done))
    return pruned


def run(epochs: int) -> tuple[list[dict], float]:
    model, (x_train, _y_train, x_val, y_val) = train(epochs)
    probe = x_train[:256]
    rows = []
    for f in FRACTIONS:
        rows.append({
            "fraction": f,
            "filters pruned": sum(round(f * getattr(model, n).out_channels) for n in LAYERS),
            "causal/layer": accuracy(prune_causal(model, f, probe, "layer"), x_val, y_val),
            "causal/global": accuracy(prune_causal(model, f, probe, "global"), x_val, y_val),
            "causal/iterative": accuracy(prune_causal_iterative(model, round(f * 48), probe), x_val, y_val),
            "L1 (ModelPruning)": accuracy(prune_l1(model, f), x_val, y_val),
            "random": sum(accuracy(prune_random(model, f, s), x_val, y_val) for s in range(5)) / 5,
        })
    return rows, accuracy(model, x_val, y_val)


def table(rows: list[dict]) -> str:
    cols = list(rows[0])
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        lines.append("| " + " | ".join(f"{r[c]:.3f}" if isinstance(r[c], float) and c != "fraction" else str(r[c])
                                       for c in cols) + " |")
    return "\n".join(lines)


def figure(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.0, 3.4))
    xs = [r["fraction"] for r in rows]
    styles = (("causal/layer", "o-"), ("causal/global", "s--"), ("causal/iterative", "D-"), ("L1 (ModelPruning)", "^-"),
              ("random", "x:"))
    for name, style in styles:
        ax.plot(xs, [r[name] for r in rows], style, label=name)
    ax.set_xlabel("fraction of conv filters pruned (no fine-tuning)")
    ax.set_ylabel("validation accuracy")
    ax.set_title("Digits CNN: causal vs L1 vs random filter pruning", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=15, help="training epochs of the digits CNN")
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "docs/img/causal_pruning.png",
                        help="where to save the accuracy-vs-pruned-fraction figure (any Matplotlib image format: .png, .svg, ...)")
    args = parser.parse_args()
    rows, base = run(args.epochs)
    print(f"Unpruned validation accuracy: {base:.3f}\n")
    print(table(rows))
    figure(rows, args.out)
    print(f"\nfigure: {args.out}")


if __name__ == "__main__":
    main()
