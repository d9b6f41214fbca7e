"""Selective amnesia (SEAM; Zhu, Tang, Tang, Wang, Tang, IEEE S&P 2023, "Selective Amnesia: On Efficient,
High-Fidelity and Blind Suppression of Backdoor Effects in Trojaned Machine Learning Models") as a detection-free
repair, on the protocol's development fold models only (issue 17).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/backdoor_seam.py --set dev|dev2 [--cases 0-11,16-17] [--folds 0,1,2,3,4]
        [--methods seam:3:0.004:20:0.004,...] [--ft] [--tag seam] [--summary-only] [--table METHOD,...]

(RESULTS.md, "Selective amnesia (SEAM), development sets only", gives the commands of the recorded runs.)

A study, not package API and not a default. The test set is refused: nothing here was chosen to be measured on it.

The ``trigger=None`` misses are backdoors Neural Cleanse does not flag, and the default term's hold on the pre-repair
model (its consistency and distillation) keeps them alive. SEAM needs no trigger, no detection and no reference model:

1. **Forgetting.** The model is trained ``forget_epochs`` passes on the fold's clean 10% repair set (143-144 images)
   with *random* labels (one label per image, uniform over the classes, drawn once), Adam at ``forget_lr``, batch 32.
   Catastrophic forgetting wipes what the network maps to its outputs, the backdoor with the clean task.
2. **Recovery.** It is then trained ``recover_epochs`` passes on the same images with their true labels, Adam at
   ``recover_lr`` (a fresh optimiser), batch 32. The clean task comes back from the features that remain; the backdoor
   should not, because its trigger is absent from the clean set.

``seam:<forget_epochs>:<forget_lr>:<recover_epochs>:<recover_lr>[:kd<w>]`` names a setting; ``kd<w>`` (not SEAM's;
tried here to spare clean accuracy) adds ``w * KL(f0(x) || f(x))`` against the frozen pre-repair model ``f0`` to the
recovery's cross-entropy. ``ft`` (``--ft``) is plain fine-tuning at the protocol's setting (20 epochs, Adam 4e-3,
batch 32). Each record (one per fold and method, in ``bench_backdoor_protocol.py``'s format, so
``benchmarks/backdoor_report.pooled`` pools them) also has ``forgot``: the repair set's accuracy after forgetting, and on a poisoned
fold ``forgot_asr_hits``: the ASR hits on the held-out fold after forgetting (before recovery; not in the first
development set's records, which were written before it was added).
``cpu`` is the process CPU seconds of the repair. Records go to ``benchmarks/.backdoor_cache/seam-<set>-<tag>.jsonl``
(resumed where a run stopped); fold models are read from ``benchmarks/.backdoor_cache/models`` and trained as
``bench_backdoor_protocol.py`` does where missing.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import backdoor_peers as peers  # noqa: E402
from benchmarks import backdoor_protocol as bp  # noqa: E402
from benchmarks.backdoor_rnp import fold_records, trigger_free_study  # noqa: E402
from benchmarks.bench_backdoor_protocol import Fold, scores  # noqa: E402

METHODS = ("seam:1:0.004:20:0.004", "seam:3:0.004:20:0.004", "seam:2:0.01:40:0.004")


def method_parts(method: str) -> tuple[int, float, int, float, float]:
    """``(forget_epochs, forget_lr, recover_epochs, recover_lr, kd_weight)`` of
    ``seam:<forget_epochs>:<forget_lr>:<recover_epochs>:<recover_lr>[:kd<w>]``; a ValueError naming the method and the
    form otherwise."""
    parts = method.split(":")
    try:
        if parts[0] != "seam" or len(parts) not in (5, 6) or (len(parts) == 6 and not parts[5].startswith("kd")):
            raise ValueError
        fe, flr, re, rlr = int(parts[1]), float(parts[2]), int(parts[3]), float(parts[4])
        kd = float(parts[5][2:]) if len(parts) == 6 else 0.0
        if fe < 0 or re < 1 or flr <= 0 or rlr <= 0 or kd < 0:
            raise ValueError
    except (ValueError, IndexError):
        raise ValueError(f"Expected each method to be seam:<forget_epochs>:<forget_lr>:<recover_epochs>:<recover_lr>"
                         f"[:kd<w>] (e.g. {METHODS[1]}) but got {method!r}") from None
    return fe, flr, re, rlr, kd


def kd_loss(ref: nn.Module, weight: float):
    """``repair_with_terms``' ``extra``: ``weight * KL(ref(x) || model(x))`` on the step's batch, ``ref`` frozen."""

    def extra(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        with torch.no_grad():
            target = ref(x).log_softmax(1)
        return weight * F.kl_div(model(x).log_softmax(1), target, log_target=True, reduction="batchmean")

    return extra


def random_labels(y: Tensor, classes: int, seed: int) -> Tensor:
    """One label per row of ``y``, uniform over ``classes``, drawn once from ``seed``."""
    return torch.randint(0, classes, y.shape, generator=torch.Generator().manual_seed(seed))


def seam(model: nn.Module, x: Tensor, y: Tensor, forget_epochs: int, forget_lr: float, recover_epochs: int,
         recover_lr: float, seed: int, kd: float = 0.0) -> tuple[nn.Module, nn.Module]:
    """The repaired copy of ``model`` (forgetting on random labels, then recovery on ``y``; the module docstring) and
    the copy after forgetting, both in eval mode; ``model`` is left untouched. Both phases are
    ``backdoor_peers.repair_with_terms`` without terms (the protocol's loop, as ``ft``)."""
    with torch.no_grad():
        classes = model(x[:1]).shape[1]
    forgotten = peers.repair_with_terms(model, [], x, random_labels(y, classes, seed + 5), forget_epochs, seed + 6,
                                        lr=forget_lr)
    ref = copy.deepcopy(model).eval() if kd > 0 else None
    repaired = peers.repair_with_terms(forgotten, [], x, y, recover_epochs, seed + 7, lr=recover_lr,
                                       extra=None if ref is None else kd_loss(ref, kd))
    return repaired, forgotten


def run_fold(case: bp.Case, fold: int, digits, methods: list[str], out: Path, done: set) -> None:
    """Every missing record of one fold model."""

    def per_fold(f: Fold, x: Tensor, y: Tensor, seed: int):
        def repaired(m: str) -> tuple[nn.Module, dict]:
            *setting, kd = method_parts(m)
            model, forgotten = seam(f.model, x, y, *setting, seed, kd=kd)
            with torch.no_grad():
                extra = {"forgot": round((forgotten(x).argmax(1) == y).float().mean().item(), 4)}
            if f.trigger is not None:
                extra["forgot_asr_hits"] = scores(forgotten, f.before, f.trigger, f.data)["asr_hits"]
            return model, extra

        return repaired

    fold_records(case, fold, digits, methods, out, done, per_fold)


def main() -> None:
    trigger_free_study(__doc__, "seam", "SEAM", METHODS, "seam: settings (see the docstring)", method_parts, run_fold)


if __name__ == "__main__":
    main()
