"""Sharpness-aware repair steps against the backdoors detection misses (issue 17, development cases
only; see RESULTS, "Sharpness-aware repair steps").

The ``trigger=None`` misses left after the contrast became the default are fold models whose target
Neural Cleanse does not flag: nothing is suppressed there, and the repair is fine-tuning held to the
pre-repair model. FT-SAM (Zhu et al. 2023, "Enhancing Fine-Tuning Based Backdoor Defense with
Sharpness-Aware Minimization") reports that fine-tuning with sharpness-aware minimisation removes
backdoors that plain fine-tuning keeps, without a trigger: the backdoor's neurons carry large weights,
and the worst-case weight perturbation of SAM's inner step pushes on them. This study takes the default
``trigger=None`` term (set up as the protocol does) and replaces Adam's step by a SAM step around it
(Foret et al. 2021):

    e = rho * g / ||g||                        (``sam<rho>``)
    e = rho * w^2 * g / ||w * g||              (``asam<rho>``, adaptive SAM, Kwon et al. 2021)
    w <- Adam step with the gradient of the objective at w + e

``base`` is the protocol's own repair (Adam, no SAM). Each fold model prints Δ clean accuracy and ASR
per variant.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/study_sam_repair.py [--folds dev:6:1,...] [--variants base,sam0.05]
"""

from __future__ import annotations

import copy
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import backdoor_peers as peers  # noqa: E402
from benchmarks import backdoor_protocol as bp  # noqa: E402
from benchmarks.bench_backdoor_protocol import Fold, fold_case, scores, study_main  # noqa: E402
from lightning_causal.repair.module import CausalRepairModule  # noqa: E402

# development fold models: the default's misses (target not flagged), folds it repairs, clean folds
FOLDS = ("dev:6:1,dev:6:3,dev2:4:4,dev2:7:0,dev2:8:1,dev2:14:0,dev2:14:4,dev2:10:3,"
         "dev:3:0,dev:8:3,dev2:16:2,dev:16:0,dev:17:1,dev2:18:2,dev2:21:3")
VARIANTS = "base,sam0.05,sam0.2,asam0.5,asam2"


def sam_repair(model, term, x, y, epochs: int, seed: int, lr: float, rho: float, adaptive: bool, batch: int = 32):
    """:func:`benchmarks.backdoor_peers.repair_with_terms` (``setup=False``) with a SAM step."""
    module = CausalRepairModule(copy.deepcopy(model).train(), [term], lr=lr)
    params = [p for p in module.model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=lr)
    for idx in peers._batches(len(y), epochs, batch, seed):
        opt.zero_grad(set_to_none=True)
        module.objective((x[idx], y[idx]))[0].backward()
        with torch.no_grad():
            scaled = [(p.abs() if adaptive else torch.ones_like(p)) * p.grad if p.grad is not None else None for p in params]
            norm = torch.sqrt(sum((s * s).sum() for s in scaled if s is not None)) + 1e-12
            shifts = []
            for p, s in zip(params, scaled, strict=True):
                e = None if s is None else rho * s * (p.abs() if adaptive else 1.0) / norm
                if e is not None:
                    p.add_(e)
                shifts.append(e)
        opt.zero_grad(set_to_none=True)
        module.objective((x[idx], y[idx]))[0].backward()
        with torch.no_grad():
            for p, e in zip(params, shifts, strict=True):
                if e is not None:
                    p.sub_(e)
        opt.step()
    return module.model.eval()


def run_fold(spec: str, names: list[str], digits) -> None:
    case, fold = fold_case(spec)
    f = Fold(case, fold, digits, {})
    t0 = time.perf_counter()
    term = f.reversed_term(bp.REPAIR_FRACTION)
    flags = [t.target for t in term.triggers]
    x, y = f.repair_set(bp.REPAIR_FRACTION)
    s0 = scores(f.model, f.before, f.trigger, f.data)
    before = f"{s0['asr_hits'] / s0['asr_n'] * 100:.1f}%" if "asr_n" in s0 else "–"
    print(f"{case.name} fold {fold}: ASR before {before}, flagged {flags} (set-up {time.perf_counter() - t0:.0f} s)", flush=True)
    for name in names:
        t0 = time.perf_counter()
        if name == "base":
            model = peers.repair_with_terms(f.model, [copy.deepcopy(term)], x, y, bp.REPAIR_EPOCHS, f.data.train_seed,
                                            setup=False, lr=f.lr)
        else:
            adaptive = name.startswith("asam")
            rho = float(name.removeprefix("asam" if adaptive else "sam"))
            model = sam_repair(f.model, copy.deepcopy(term), x, y, bp.REPAIR_EPOCHS, f.data.train_seed, f.lr, rho, adaptive)
        s = scores(model, f.before, f.trigger, f.data)
        delta = (s["correct"] - int(f.before.sum())) / s["n"] * 100
        asr = f"{s['asr_hits'] / s['asr_n'] * 100:5.1f}%" if "asr_n" in s else "  –"
        print(f"  {name:>8}: delta {delta:+.2f} asr {asr} ({time.perf_counter() - t0:.1f} s)", flush=True)


def main() -> None:
    study_main(__doc__, FOLDS, VARIANTS, run_fold)


if __name__ == "__main__":
    main()
