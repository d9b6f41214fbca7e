"""Counterfactual-fairness repair: gap reduction, accuracy cost and step time.

    .venv/bin/python benchmarks/bench_repair.py [--adult ../shared/data/adult/adult.data] [--skip-adult]

Synthetic: the SCM of ``make_synthetic_fairness`` (8,000 train / 4,000 test), an MLP (4-32-16-2)
trained 20 epochs, then 5 epochs of fine-tuning with ``CounterfactualFairnessTerm`` (default
weight) vs. 5 epochs of plain fine-tuning. Adult: ``examples/adult_fairness.py``'s data and fitted
SCM, an MLP (12-64-32-2) trained 10 epochs, then 5 epochs of repair; a weight sweep; a repair with
the naive ``AttributeFlip`` (CARE's measure). Step time: one optimisation step (forward, loss,
backward, Adam) on the same Adult batch of 256 rows, with and without the term, single thread.
Prints markdown tables.
"""

from __future__ import annotations

import argparse
import copy
import logging
import statistics
import sys
import time
import warnings
from pathlib import Path

import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from examples.adult_fairness import COLUMNS, DEFAULT_CSV, adult_scm, load_adult  # noqa: E402
from lightning_causal.causal.fairness import counterfactual_fairness_gap  # noqa: E402
from lightning_causal.causal.scm import AttributeFlip  # noqa: E402
from lightning_causal.causal.synthetic import make_synthetic_fairness  # noqa: E402
from lightning_causal.models import MLP, LightningClassifier  # noqa: E402
from lightning_causal.repair.fairness import CounterfactualFairnessTerm  # noqa: E402
from lightning_causal.repair.module import CausalRepairModule  # noqa: E402


def _fit(module, x, y, epochs: int) -> None:
    import lightning.pytorch as pl

    trainer = pl.Trainer(max_epochs=epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False)
    trainer.fit(module, DataLoader(TensorDataset(x, y), batch_size=256, shuffle=True))


def _metrics(model, x, y, cf) -> dict[str, float]:
    model.eval()
    with torch.no_grad():
        acc = float((model(x).argmax(1) == y).float().mean())
    gap = counterfactual_fairness_gap(model, x, cf(x))
    naive = counterfactual_fairness_gap(model, x, AttributeFlip(0).flip_counterfactual(x))  # column 0 is sensitive
    return {"acc": acc, "gap": gap["mean_abs"], "flip_rate": gap["flip_rate"], "naive_gap": naive["mean_abs"], "naive_flip_rate": naive["flip_rate"]}


def _repair(base, terms, x, y, epochs: int, seed: int = 1):
    torch.manual_seed(seed)
    model = copy.deepcopy(base).train()
    _fit(CausalRepairModule(model, terms, lr=1e-3), x, y, epochs)
    return model


def _row(name: str, m: dict[str, float], ref: dict[str, float] | None) -> str:
    red = f"{100 * (1 - m['gap'] / ref['gap']):.1f}%" if ref else "-"
    drop = f"{100 * (ref['acc'] - m['acc']):+.2f}" if ref else "-"
    return (f"| {name} | {100 * m['acc']:.2f} | {m['gap']:.4f} | {m['flip_rate']:.4f} | {m['naive_gap']:.4f} | "
            f"{m['naive_flip_rate']:.4f} | {red} | {drop} |")


_HEAD = ("| model | accuracy % | CF gap (SCM) E|Δp| | decision flip rate (SCM) | naive-flip gap | naive flip rate | gap reduction | accuracy drop (points) |\n"
         "|---|---|---|---|---|---|---|---|")


def bench_synthetic() -> None:
    tr, te = make_synthetic_fairness(8000, seed=0), make_synthetic_fairness(4000, seed=1)
    cf = lambda x: te.scm.flip_counterfactual(x, "a")  # noqa: E731
    torch.manual_seed(0)
    clf = LightningClassifier(MLP(4, (32, 16)), lr=1e-2)
    _fit(clf, tr.x, tr.y, 20)
    base = _metrics(clf.model, te.x, te.y, cf)
    plain = _metrics(_repair(clf.model, [], tr.x, tr.y, 5), te.x, te.y, cf)
    rows = {}
    for w in (1.0, 5.0, 20.0):
        rows[f"+ 5 epochs repair, weight {w:g}"] = CounterfactualFairnessTerm(tr.scm, "a", weight=w)
    rows["+ 5 epochs repair, default weight, fraction 0.5"] = CounterfactualFairnessTerm(tr.scm, "a", fraction=0.5)
    rows["+ 5 epochs repair, default weight, sym_kl"] = CounterfactualFairnessTerm(tr.scm, "a", distance="sym_kl")
    bayes = float(((te.fair_probability(te.x) > 0.5).long() == te.y).float().mean())
    print("\n### Synthetic SCM (test set, 4,000 rows)\n" + _HEAD)
    print(_row("unrepaired MLP (20 epochs)", base, None))
    print(_row("+ 5 epochs plain fine-tuning", plain, base))
    for name, term in rows.items():
        print(_row(name, _metrics(_repair(clf.model, [term], tr.x, tr.y, 5), te.x, te.y, cf), base))
    print(f"\nBest counterfactually fair predictor (known SCM, level 3): accuracy {100 * bayes:.2f}%.")


def bench_adult(csv: str) -> dict[str, torch.Tensor]:
    data = load_adult(csv)
    scm = adult_scm(data["x_train"])
    xt, yt, xv, yv = data["x_train"], data["y_train"], data["x_test"], data["y_test"]
    cf = lambda x: scm.flip_counterfactual(x, "sex")  # noqa: E731
    torch.manual_seed(0)
    clf = LightningClassifier(MLP(len(COLUMNS), (64, 32)), lr=1e-3)
    _fit(clf, xt, yt, 10)
    base = _metrics(clf.model, xv, yv, cf)
    print(f"\n### UCI Adult, sensitive attribute sex (test set, {len(yv):,} rows)\n" + _HEAD)
    print(_row("unrepaired MLP (10 epochs)", base, None))
    print(_row("+ 5 epochs plain fine-tuning", _metrics(_repair(clf.model, [], xt, yt, 5), xv, yv, cf), base))
    for w in (1.0, 5.0, 20.0):
        term = CounterfactualFairnessTerm(scm, "sex", weight=w)
        print(_row(f"+ 5 epochs repair, SCM counterfactual, weight {w:g}", _metrics(_repair(clf.model, [term], xt, yt, 5), xv, yv, cf), base))
    half = CounterfactualFairnessTerm(scm, "sex", fraction=0.5)
    print(_row("+ 5 epochs repair, SCM counterfactual, default weight, fraction 0.5", _metrics(_repair(clf.model, [half], xt, yt, 5), xv, yv, cf), base))
    flip = CounterfactualFairnessTerm(AttributeFlip("sex", columns=COLUMNS), "sex")
    print(_row("+ 5 epochs repair, naive AttributeFlip, default weight", _metrics(_repair(clf.model, [flip], xt, yt, 5), xv, yv, cf), base))
    return {"x": xt[:256], "y": yt[:256], "scm": scm}  # type: ignore[dict-item]


def _interleaved_step_times(base, loss_fns, x, y, reps: int = 600) -> list[float]:
    """Median seconds per optimisation step of each objective, steps interleaved so that the
    load of a shared machine hits every objective alike."""
    models = [copy.deepcopy(base) for _ in loss_fns]
    opts = [torch.optim.Adam(m.parameters(), lr=1e-3) for m in models]
    times: list[list[float]] = [[] for _ in loss_fns]
    for i in range(reps + 50):
        for k, (m, opt, fn) in enumerate(zip(models, opts, loss_fns)):
            t0 = time.perf_counter()
            opt.zero_grad(set_to_none=True)
            fn(m, x, y).backward()
            opt.step()
            if i >= 50:
                times[k].append(time.perf_counter() - t0)
    return [statistics.median(t) for t in times]


def _fused(term):
    def loss(m, x, y):  # CausalRepairModule's fused objective: one forward over x and its counterfactuals
        x_cf = term.extra_inputs(x)
        out = m(torch.cat([x, x_cf]))
        return F.cross_entropy(out[: len(x)], y) + term.weight_at(0) * term.loss_from_outputs(out[: len(x)], out[len(x) :], y)

    return loss


class _StepTimer:
    """Lightning callback: wall time of each training batch (hooks, step, optimizer, logging)."""

    def __new__(cls):
        import lightning.pytorch as pl

        class Timer(pl.Callback):
            def __init__(self) -> None:
                self.times: list[float] = []

            def on_train_batch_start(self, *args) -> None:
                self.t0 = time.perf_counter()

            def on_train_batch_end(self, *args) -> None:
                self.times.append(time.perf_counter() - self.t0)

        return Timer()


def _lightning_step_time(base, terms, x, y, steps: int = 300) -> float:
    import lightning.pytorch as pl

    timer = _StepTimer()
    module = CausalRepairModule(copy.deepcopy(base), terms, lr=1e-3)
    data = TensorDataset(x.repeat(steps, 1), y.repeat(steps))
    pl.Trainer(max_epochs=1, accelerator="cpu", logger=False, enable_checkpointing=False, enable_progress_bar=False,
               enable_model_summary=False, callbacks=[timer]).fit(module, DataLoader(data, batch_size=len(x)))
    return statistics.median(timer.times[30:])


def bench_step_time(batch: dict) -> None:
    x, y, scm = batch["x"], batch["y"], batch["scm"]
    torch.manual_seed(0)
    base = MLP(x.shape[1], (64, 32))
    plain = lambda m, x, y: F.cross_entropy(m(x), y)  # noqa: E731
    full, half = (CounterfactualFairnessTerm(scm, "sex", fraction=f) for f in (1.0, 0.5))
    tp, tf, th = _interleaved_step_times(base, [plain, _fused(full), _fused(half)], x, y)
    print(f"\n### Step time (Adult batch of {len(x)} rows, MLP 12-64-32-2, 1 thread)\n")
    print("| measurement | plain step (ms) | repair step (ms) | ratio |\n|---|---|---|---|")
    for name, t in (("fraction 1", tf), ("fraction 0.5", th)):
        print(f"| raw PyTorch step (zero_grad, fwd, bwd, Adam), {name}, interleaved, median of 600 | {1e3 * tp:.3f} | {1e3 * t:.3f} | {t / tp:.2f}x |")
    lp, lf = [], []
    for _ in range(3):  # alternate the two runs; keep the fastest median of each
        lp.append(_lightning_step_time(base, [], x, y))
        lf.append(_lightning_step_time(base, [full], x, y))
    print(f"| Lightning training batch (CausalRepairModule without vs with the term), fraction 1, best of 3 medians | "
          f"{1e3 * min(lp):.3f} | {1e3 * min(lf):.3f} | {min(lf) / min(lp):.2f}x |")


def main() -> None:
    parser = argparse.ArgumentParser(description="Counterfactual-fairness repair benchmark")
    parser.add_argument("--adult", default=str(DEFAULT_CSV))
    parser.add_argument("--skip-adult", action="store_true")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    torch.set_num_threads(1)
    bench_synthetic()
    if not args.skip_adult and Path(args.adult).exists():
        bench_step_time(bench_adult(args.adult))


if __name__ == "__main__":
    main()
