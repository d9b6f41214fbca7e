"""Counterfactual-fairness repair: gap reduction, accuracy cost and step time.

    .venv/bin/python benchmarks/bench_repair.py [--adult ../shared/data/adult/adult.data] [--skip-adult] [--step-time-only]

Synthetic: the SCM of ``make_synthetic_fairness`` (8,000 train / 4,000 test), an MLP (4-32-16-2)
trained 20 epochs, then 5 epochs of fine-tuning with ``CounterfactualFairnessTerm`` (default
weight) vs. 5 epochs of plain fine-tuning. Adult: ``examples/adult_fairness.py``'s data and fitted
SCM, an MLP (12-64-32-2) trained 10 epochs, then 5 epochs of repair; a weight sweep; a repair with
the naive ``AttributeFlip`` (CARE's measure). Step time, single thread, on the same Adult batch of
256 rows: (a) the raw PyTorch optimisation step (zero_grad, loss, backward, Adam) of plain
fine-tuning vs. ``CausalRepairModule.objective`` with the term (fraction 1 and 0.5), interleaved,
with two floors (2N rows without counterfactual or distance; + the counterfactual), 3 repeats, on
the 12-64-32-2 MLP and a compute-bound 12-1024-1024-2 MLP; (b) the Lightning training batch of
``CausalRepairModule`` without vs. with the term. Prints markdown tables.
"""

from __future__ import annotations

import argparse
import copy
import functools
import logging
import statistics
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
from torch.nn import functional as F
from torch.utils.data import DataLoader, TensorDataset

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from examples.adult_fairness import COLUMNS, DEFAULT_CSV, adult_scm, load_adult  # noqa: E402
from lightning_causal.causal.scm.attribute_flip import AttributeFlip  # noqa: E402
from lightning_causal.causal.scm.fairness import counterfactual_fairness_gap  # noqa: E402
from lightning_causal.datasets.synthetic_fairness import make_synthetic_fairness  # noqa: E402
from lightning_causal.models import MLP, LightningClassifier  # noqa: E402
from lightning_causal.repair.base import RepairTerm  # noqa: E402
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
    gap = counterfactual_fairness_gap(model, x, cf)
    naive = counterfactual_fairness_gap(model, x, AttributeFlip(0))  # column 0 is sensitive
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
    cf = te.scm.flip("a")
    torch.manual_seed(0)
    clf = LightningClassifier(MLP(4, (32, 16)), lr=1e-2)
    _fit(clf, tr.x, tr.y, 20)
    base = _metrics(clf.model, te.x, te.y, cf)
    plain = _metrics(_repair(clf.model, [], tr.x, tr.y, 5), te.x, te.y, cf)
    rows = {}
    for w in (1.0, 5.0, 20.0):
        rows[f"+ 5 epochs repair, weight {w:g}"] = CounterfactualFairnessTerm(tr.scm.flip("a"), weight=w)
    rows["+ 5 epochs repair, default weight, fraction 0.5"] = CounterfactualFairnessTerm(tr.scm.flip("a"), fraction=0.5)
    rows["+ 5 epochs repair, default weight, sym_kl"] = CounterfactualFairnessTerm(tr.scm.flip("a"), distance="sym_kl")
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
    cf = scm.flip("sex")
    torch.manual_seed(0)
    clf = LightningClassifier(MLP(len(COLUMNS), (64, 32)), lr=1e-3)
    _fit(clf, xt, yt, 10)
    base = _metrics(clf.model, xv, yv, cf)
    print(f"\n### UCI Adult, sensitive attribute sex (test set, {len(yv):,} rows)\n" + _HEAD)
    print(_row("unrepaired MLP (10 epochs)", base, None))
    print(_row("+ 5 epochs plain fine-tuning", _metrics(_repair(clf.model, [], xt, yt, 5), xv, yv, cf), base))
    for w in (1.0, 5.0, 20.0):
        term = CounterfactualFairnessTerm(scm.flip("sex"), weight=w)
        print(_row(f"+ 5 epochs repair, SCM counterfactual, weight {w:g}", _metrics(_repair(clf.model, [term], xt, yt, 5), xv, yv, cf), base))
    half = CounterfactualFairnessTerm(scm.flip("sex"), fraction=0.5)
    print(_row("+ 5 epochs repair, SCM counterfactual, default weight, fraction 0.5", _metrics(_repair(clf.model, [half], xt, yt, 5), xv, yv, cf), base))
    flip = CounterfactualFairnessTerm(AttributeFlip("sex", columns=COLUMNS))
    print(_row("+ 5 epochs repair, naive AttributeFlip, default weight", _metrics(_repair(clf.model, [flip], xt, yt, 5), xv, yv, cf), base))
    return {"x": xt[:256], "y": yt[:256], "scm": scm}  # type: ignore[dict-item]


def _interleaved_step_times(steps: dict[str, tuple[torch.nn.Module, Callable[[], torch.Tensor]]], reps: int,
                            warmup: int = 50) -> dict[str, float]:
    """Median seconds per optimisation step (zero_grad, loss, backward, Adam) of each objective
    ``name -> (model, loss closure)``; steps interleaved so that the load of a shared machine hits
    every objective alike."""
    opts = {k: torch.optim.Adam(m.parameters(), lr=1e-3) for k, (m, _) in steps.items()}
    times: dict[str, list[float]] = {k: [] for k in steps}
    for i in range(reps + warmup):
        for k, (_, loss) in steps.items():
            t0 = time.perf_counter()
            opts[k].zero_grad(set_to_none=True)
            loss().backward()
            opts[k].step()
            if i >= warmup:
                times[k].append(time.perf_counter() - t0)
    return {k: statistics.median(t) for k, t in times.items()}


def _raw_objectives(base, scm, x, y) -> dict[str, tuple[torch.nn.Module, Callable[[], torch.Tensor]]]:
    """Plain fine-tuning, two floors of the repair step and the repair step itself (the module's own
    ``objective``, fraction 1 and 0.5), each on its own copy of ``base``."""
    n, x_cf = len(x), CounterfactualFairnessTerm(scm.flip("sex")).extra_inputs(x)
    steps: dict[str, tuple[torch.nn.Module, Callable[[], torch.Tensor]]] = {}

    def add(name, fn):
        model = copy.deepcopy(base)
        steps[name] = (model, functools.partial(fn, model))

    add("plain", lambda m: F.cross_entropy(m(x), y))
    add("2N rows", lambda m: F.cross_entropy(m(torch.cat([x, x_cf]))[:n], y))  # floor: rows only
    term = CounterfactualFairnessTerm(scm.flip("sex"))
    add("2N rows + counterfactual", lambda m: F.cross_entropy(m(torch.cat([x, term.extra_inputs(x)]))[:n], y))
    for fraction in (1.0, 0.5):
        model = copy.deepcopy(base)
        module = CausalRepairModule(model, [CounterfactualFairnessTerm(scm.flip("sex"), fraction=fraction)])
        steps[f"repair, fraction {fraction:g}"] = (model, functools.partial(lambda mod: mod.objective((x, y))[0], module))
    return steps


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


class _ZeroTerm(RepairTerm):
    """A constant 0 penalty: what a term costs a Lightning step besides its own computation."""

    def loss(self, model, x, y):
        return x.new_zeros(())


def _spread(values: list[float]) -> str:
    return f"{statistics.median(values):.2f}x ({min(values):.2f}–{max(values):.2f})"


def _ms(values: list[float]) -> str:
    return f"{1e3 * statistics.median(values):.3f} ({1e3 * min(values):.3f}–{1e3 * max(values):.3f})"


def bench_step_time(batch: dict, repeats: int = 3, reps: int = 600) -> None:
    """(a) raw PyTorch step ratios (the headline), with the floors, on the 12-64-32-2 MLP and on a
    compute-bound 12-1024-1024-2 MLP; (b) the Lightning training batch ratio."""
    x, y, scm = batch["x"], batch["y"], batch["scm"]
    print(f"\n### Step time (Adult batch of {len(x)} rows, 1 thread; median (min–max) over {repeats} repeats)\n")
    print("| model | objective | step (ms), median of the repeats' medians (min–max) | ratio to plain (min–max) |\n|---|---|---|---|")
    for hidden, model_reps, warmup in (((64, 32), reps, 50), ((1024, 1024), max(10, reps // 20), 5)):
        torch.manual_seed(0)
        base = MLP(x.shape[1], hidden)
        runs = [_interleaved_step_times(_raw_objectives(base, scm, x, y), model_reps, warmup) for _ in range(repeats)]
        arch = f"MLP {x.shape[1]}-{'-'.join(map(str, hidden))}-2, raw step (zero_grad, fwd, bwd, Adam), interleaved, median of {model_reps}"
        for name in runs[0]:
            ratio = "1" if name == "plain" else _spread([r[name] / r["plain"] for r in runs])
            print(f"| {arch} | {name} | {_ms([r[name] for r in runs])} | {ratio} |")
    torch.manual_seed(0)
    base = MLP(x.shape[1], (64, 32))
    light: dict[str, list[float]] = {"plain": [], "a term that costs nothing (its logging and bookkeeping only)": [],
                                     "repair, fraction 1": [], "repair, fraction 0.5": []}
    for _ in range(repeats):  # alternate the runs
        light["plain"].append(_lightning_step_time(base, [], x, y))
        light["a term that costs nothing (its logging and bookkeeping only)"].append(_lightning_step_time(base, [_ZeroTerm()], x, y))
        for fraction in (1.0, 0.5):
            light[f"repair, fraction {fraction:g}"].append(_lightning_step_time(base, [CounterfactualFairnessTerm(scm.flip("sex"), fraction=fraction)], x, y))
    for name, t in light.items():
        ratio = "1" if name == "plain" else _spread([a / b for a, b in zip(t, light["plain"])])
        print(f"| MLP 12-64-32-2, Lightning training batch (CausalRepairModule without / with the term), median of 270 | {name} | {_ms(t)} | {ratio} |")


def main() -> None:
    parser = argparse.ArgumentParser(description="Counterfactual-fairness repair benchmark")
    parser.add_argument("--adult", default=str(DEFAULT_CSV))
    parser.add_argument("--skip-adult", action="store_true")
    parser.add_argument("--step-time-only", action="store_true", help="only the step-time table (needs the Adult CSV)")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    torch.set_num_threads(1)
    if args.step_time_only:
        data = load_adult(args.adult)
        bench_step_time({"x": data["x_train"][:256], "y": data["y_train"][:256], "scm": adult_scm(data["x_train"])})
        return
    bench_synthetic()
    if not args.skip_adult and Path(args.adult).exists():
        bench_step_time(bench_adult(args.adult))


if __name__ == "__main__":
    main()
