"""Cost of the region search of ``BackdoorSuppressionTerm(trigger=None)`` (issue 17): one repair
step (the term's loss, the task loss and the backward pass) with and without the search, side by
side in one process.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/bench_region_search.py [--repeats 30] [--steps 5]

The model is a development case's DigitsCNN (poisoned at 10% with a 2x2 corner patch, trained by
``fit_classifier`` as the protocol does); the term is set up once (Neural Cleanse flags the
target), then the same batches of 32 repair images are timed with the flagged regions kept
(the default) and cleared (``adversarial_region=None``), interleaved, median of ``--repeats``.
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._timing import median_time  # noqa: E402
from lightning_causal.datasets.poisoning import patch_trigger, poison  # noqa: E402
from lightning_causal.models import DigitsCNN, fit_classifier, load_digits_tensors  # noqa: E402
from lightning_causal.repair.backdoor import BackdoorSuppressionTerm  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--steps", type=int, default=5, help="adversarial_steps of the search")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore")
    xt, yt, _, _ = load_digits_tensors()
    trig = patch_trigger((1, 8, 8), 2, "top_left", 1.0, target=3)
    xp, yp, _ = poison(xt, yt, trig, 0.1, generator=torch.Generator().manual_seed(0))
    model = fit_classifier(DigitsCNN(), xp, yp, epochs=20, seed=0).train()
    sub = torch.randperm(len(yt), generator=torch.Generator().manual_seed(1))[: len(yt) // 10]
    x, y = xt[sub][:32], yt[sub][:32]
    term = BackdoorSuppressionTerm(adversarial_steps=args.steps)
    term.setup(model, xt[sub])
    regions = list(term.regions)
    if not regions:
        sys.exit(f"nothing flagged (flagged: {term.detection.flagged}); no region to search")

    def step(search: bool) -> None:
        term.regions = regions if search else []
        model.zero_grad(set_to_none=True)
        loss = F.cross_entropy(model(x), y) + term.loss(model, x, y)
        loss.backward()

    with_search, without = [], []
    for _ in range(3):  # interleaved blocks: drift of a noisy machine hits both alike
        with_search.append(median_time(lambda: step(True), args.repeats))
        without.append(median_time(lambda: step(False), args.repeats))
    a, b = sorted(with_search)[1], sorted(without)[1]
    print(f"flagged {term.detection.flagged}, region pixels {[int(r.sum()) for r in regions]}, batch 32, "
          f"{torch.get_num_threads()} thread(s), torch {torch.__version__}")
    print(f"| repair step | seconds |\n|---|---|\n| without the search | {b:.4f} |\n| with the search ({args.steps} steps) | {a:.4f} |")
    print(f"ratio: {a / b:.2f}x")


if __name__ == "__main__":
    main()
