"""Counterfactual fairness on synthetic data with a known SCM: audit, repair, compare with the
best counterfactually fair predictor.

    .venv/bin/python examples/synthetic_fairness.py [--logdir runs/synthetic]

The data come from ``make_synthetic_fairness`` (sensitive ``a`` -> mediators ``m1, m2`` -> label,
and ``a`` -> label). An MLP learns to use ``a`` and its mediators; ``FairnessAudit`` (through
``CausalAuditCallback``) logs the counterfactual gap, group rates and the hidden units that carry
the unfairness; ``CausalRepairModule`` with ``CounterfactualFairnessTerm`` removes it.
"""

from __future__ import annotations

import argparse

import lightning.pytorch as pl
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import (
    CausalAuditCallback,
    CausalRepairModule,
    CounterfactualFairnessTerm,
    FairnessAudit,
    counterfactual_fairness_gap,
)
from lightning_causal.datasets.synthetic_fairness import make_synthetic_fairness
from lightning_causal.models import MLP, LightningClassifier


def _report(name: str, model: torch.nn.Module, test) -> None:  # noqa: ANN001
    with torch.no_grad():
        acc = float((model(test.x).argmax(1) == test.y).float().mean())
    gap = counterfactual_fairness_gap(model, test.x, test.scm.flip("a"))
    print(f"| {name} | {100 * acc:.2f} | {gap['mean_abs']:.4f} | {gap['flip_rate']:.4f} |")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logdir", default="runs/synthetic")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--repair-epochs", type=int, default=5)
    args = parser.parse_args(argv)

    train, test = make_synthetic_fairness(8000, seed=0), make_synthetic_fairness(4000, seed=1)
    loader = DataLoader(TensorDataset(train.x, train.y), batch_size=256, shuffle=True)
    val = DataLoader(TensorDataset(test.x, test.y), batch_size=1024)
    probe = (test.x[:512], test.y[:512])

    def trainer(epochs: int, name: str) -> pl.Trainer:
        audit = FairnessAudit(train.scm.flip("a"), layers=["model.net.1", "model.net.3"], top_k=5)
        return pl.Trainer(max_epochs=epochs, accelerator="cpu", logger=TensorBoardLogger(args.logdir, name=name),
                          callbacks=[CausalAuditCallback([audit], probe=probe, every_n_epochs=max(1, epochs // 5))],
                          enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False)

    torch.manual_seed(0)
    clf = LightningClassifier(MLP(4, (32, 16)), lr=1e-2)
    trainer(args.epochs, "train").fit(clf, loader, val)
    print("| model | accuracy % | CF gap E|Δp| | decision flip rate |\n|---|---|---|---|")
    clf.eval()
    _report("unrepaired", clf.model, test)
    clf.train()
    repair = CausalRepairModule(clf.model, [CounterfactualFairnessTerm(train.scm.flip("a"))], lr=1e-3)
    trainer(args.repair_epochs, "repair").fit(repair, loader, val)
    clf.eval()
    _report("repaired", clf.model, test)
    fair = float(((test.fair_probability(test.x) > 0.5).long() == test.y).float().mean())
    print(f"| best counterfactually fair predictor (known SCM) | {100 * fair:.2f} | 0 | 0 |")
    print(f"\nTensorBoard: {args.logdir}")


if __name__ == "__main__":
    main()
