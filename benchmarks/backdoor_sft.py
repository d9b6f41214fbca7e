"""Super-fine-tuning (SFT; Sha, He, Berrang, Humbert, Zhang 2022, "Fine-Tuning Is All You Need to Mitigate Backdoor
Attacks") as a detection-free repair, alone and with the default ``trigger=None`` term's hold, on the protocol's
development fold models only (issue 17).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/backdoor_sft.py --set dev|dev2 [--cases 0-11,16-17] [--folds 0,1,2,3,4]
        [--methods sft:2:0.05:20:sgd,...] [--ft] [--tag sft] [--summary-only] [--table METHOD,...]

(RESULTS.md, "Super-fine-tuning, development sets only", gives the commands of the recorded runs.)

A study, not package API and not a default. The test set is refused: nothing here was chosen to be measured on it.

The ``trigger=None`` misses are backdoors Neural Cleanse does not flag. Plain fine-tuning at the protocol's one small
rate (Adam 4e-3) leaves 13-45% ASR on them. SFT keeps fine-tuning on the clean set but changes the learning-rate
*schedule*: cyclical, reaching a large peak (after super-convergence's one-cycle policy), so that the large steps move
the model out of the basin where the backdoor lives and the falling rate brings clean accuracy back.

``sft:<cycles>:<peak>:<epochs>:<sgd|adam>`` fine-tunes the model on the fold's clean 10% repair set (143-144 images,
batch 32, the protocol's loop ``backdoor_peers.repair_with_terms`` without terms) for ``epochs`` passes, with SGD
(momentum 0.9, weight decay 5e-4, the paper's optimiser) or Adam, the rate following :func:`cyclical`: ``cycles``
triangles from ``peak / 25`` up to ``peak`` and back, the last one falling to ``peak / 2500``. ``rsft:...`` is the same
schedule with the default ``trigger=None`` term (``BackdoorSuppressionTerm()``, set up on the fold model as the
protocol's ``reversed`` row; its consistency and distillation hold the model to the pre-repair one), and records what
the term flagged. ``ft`` (``--ft``) is plain fine-tuning at the protocol's setting (20 epochs, Adam 4e-3, batch 32).

Each record (one per fold and method, in ``bench_backdoor_protocol.py``'s format, so
``benchmarks/backdoor_report.pooled`` pools them) also has ``fit``: the repair set's accuracy after the repair. ``cpu``
is the process CPU seconds of the repair. Records go to ``benchmarks/.backdoor_cache/sft-<set>-<tag>.jsonl`` (resumed
where a run stopped); fold models are read from ``benchmarks/.backdoor_cache/models`` and trained as
``bench_backdoor_protocol.py`` does where missing.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import backdoor_peers as peers  # noqa: E402
from benchmarks import backdoor_protocol as bp  # noqa: E402
from benchmarks.backdoor_rnp import fold_records, trigger_free_study  # noqa: E402
from benchmarks.bench_backdoor_protocol import Fold  # noqa: E402

METHODS = ("sft:1:0.05:20:sgd", "sft:2:0.05:20:sgd")
FORM = "(r)sft:<cycles>:<peak>:<epochs>:<sgd|adam>"


def method_parts(method: str) -> tuple[bool, int, float, int, str]:
    """``(with the term, cycles, peak, epochs, optimiser)`` of ``(r)sft:<cycles>:<peak>:<epochs>:<sgd|adam>``; a
    ValueError naming the method and the form otherwise."""
    parts = method.split(":")
    try:
        if parts[0] not in ("sft", "rsft") or len(parts) != 5 or parts[4] not in ("sgd", "adam"):
            raise ValueError
        cycles, peak, epochs = int(parts[1]), float(parts[2]), int(parts[3])
        if cycles < 1 or not peak > 0 or epochs < 1:
            raise ValueError
    except (ValueError, IndexError):
        raise ValueError(f"Expected each method to be {FORM} (e.g. {METHODS[1]}) but got {method!r}") from None
    return parts[0] == "rsft", cycles, peak, epochs, parts[4]


def cyclical(cycles: int, peak: float):
    """``schedule(step, steps)`` for ``repair_with_terms``: ``cycles`` equal triangles over the ``steps``, each rising
    linearly from ``peak / 25`` to ``peak`` at its middle and falling back, the last one falling to ``peak / 2500``."""

    def schedule(step: int, steps: int) -> float:
        length = steps / cycles
        u = (step % length) / length if step < steps else 1.0
        last = step >= steps - length
        low = peak / 2500 if last and u >= 0.5 else peak / 25
        return low + (peak - low) * (1 - abs(2 * u - 1))

    return schedule


def sft(model: nn.Module, x: Tensor, y: Tensor, cycles: int, peak: float, epochs: int, optimiser: str, seed: int,
        terms: list | None = None) -> nn.Module:
    """The repaired copy of ``model`` (the module docstring); ``model`` is left untouched. ``terms``: already set up."""
    return peers.repair_with_terms(model, terms or [], x, y, epochs, seed, setup=False, lr=peak,
                                   schedule=cyclical(cycles, peak), sgd=0.9 if optimiser == "sgd" else None)


def run_fold(case: bp.Case, fold: int, digits, methods: list[str], out: Path, done: set) -> None:
    """Every missing record of one fold model."""

    def per_fold(f: Fold, x: Tensor, y: Tensor, seed: int):
        def repaired(m: str) -> tuple[nn.Module, dict]:
            with_term, *setting = method_parts(m)
            extra: dict = {}
            terms = None
            if with_term:
                terms = [copy.deepcopy(f.reversed_term(bp.REPAIR_FRACTION))]
                extra["flagged"] = [t.target for t in terms[0].triggers]
            model = sft(f.model, x, y, *setting, seed, terms=terms)
            return model, {**extra, "fit": round(peers._accuracy(model, x, y), 4)}

        return repaired

    fold_records(case, fold, digits, methods, out, done, per_fold)


def main() -> None:
    trigger_free_study(__doc__, "sft", "SFT", METHODS, "sft: settings (see the docstring)", method_parts, run_fold)


if __name__ == "__main__":
    main()
