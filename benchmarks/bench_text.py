"""Text audits and counterfactual logit pairing on the BERT of ``examples/text_transformer.py``.

    .venv/bin/python benchmarks/bench_text.py            # audit cost against one training epoch
    .venv/bin/python benchmarks/bench_text.py --tune     # CLP weight and epochs, on the dev split only

Audit cost: the classifier is trained 2 epochs (4,000 sentences), then, interleaved and
repeated ``--repeats`` times, one training epoch (``Trainer.fit``, one more epoch, batch 32, no validation,
no audits) and each audit of the example on its 128-sentence probe (``CausalAuditCallback``'s
work: ``Audit.run`` in eval mode); medians and the ratio audit / epoch.

Tuning (``--tune``): train 4 epochs, then CLP repairs with weights 0.3, 1, 3 for 1 and 2 epochs,
measured on the dev split (1,000 sentences, seed 1). The rule, fixed before the test split is
measured: among the settings that cut the dev gap by >= 95% with an accuracy change >= -0.5
points, the fewest epochs, then the smallest weight. The test split (seed 2) is measured once,
by the example itself.
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

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from examples.text_transformer import (  # noqa: E402
    TextClassifier,
    _loader,
    audits,
    evaluate,
    make_bert,
)
from lightning_causal.audits.base import Probe  # noqa: E402
from lightning_causal.causal import TokenSwap  # noqa: E402
from lightning_causal.datasets.synthetic_text import IDENTITY_PAIRS, make_synthetic_text  # noqa: E402
from lightning_causal.repair.fairness import CounterfactualFairnessTerm  # noqa: E402
from lightning_causal.repair.module import CausalRepairModule  # noqa: E402


def _fit(module, data, epochs: int) -> float:  # noqa: ANN001
    import lightning.pytorch as pl

    trainer = pl.Trainer(max_epochs=epochs, accelerator="cpu", logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False, num_sanity_val_steps=0)
    t0 = time.perf_counter()
    trainer.fit(module, _loader(data, True))
    return time.perf_counter() - t0


def bench_audits(repeats: int) -> None:
    train, dev = make_synthetic_text(4000, seed=0), make_synthetic_text(1000, seed=1)
    clf = TextClassifier(make_bert(len(train.words)))
    _fit(clf, train, 2)
    probe = Probe(dev.input_ids[:128], dev.labels[:128], {"attention_mask": dev.attention_mask[:128]})
    runs = audits(train.words)
    times: dict[str, list[float]] = {"one training epoch": [], **{a.name: [] for a in runs}, "all audits": []}
    for _ in range(repeats):
        times["one training epoch"].append(_fit(copy.deepcopy(clf), train, 1))
        total = 0.0
        for audit in runs:
            t0 = time.perf_counter()
            audit.run(clf, probe)
            dt = time.perf_counter() - t0
            times[audit.name].append(dt)
            total += dt
        times["all audits"].append(total)
    epoch = statistics.median(times["one training epoch"])
    print(f"\n| work (probe: 128 dev sentences) | median s (min-max) over {repeats} | / one epoch |\n|---|---|---|")
    for name, ts in times.items():
        print(f"| {name} | {statistics.median(ts):.2f} ({min(ts):.2f}-{max(ts):.2f}) | {statistics.median(ts) / epoch:.3f} |")


def tune() -> None:
    train, dev = make_synthetic_text(4000, seed=0), make_synthetic_text(1000, seed=1)
    clf = TextClassifier(make_bert(len(train.words)))
    _fit(clf, train, 4)
    base = evaluate(clf, dev)
    print("\n| dev split (1,000 sentences) | accuracy | clean accuracy | CF token gap | gap cut | accuracy change (points) |\n"
          "|---|---|---|---|---|---|")
    print(f"| trained 4 epochs | {100 * base['accuracy']:.2f} | {100 * base['clean_accuracy']:.2f} | {base['cf_token_gap']:.4f} | - | - |")
    for epochs in (1, 2):
        for weight in (0.3, 1.0, 3.0):
            model = copy.deepcopy(clf)
            torch.manual_seed(1)
            _fit(CausalRepairModule.wrap(model, [CounterfactualFairnessTerm(TokenSwap(IDENTITY_PAIRS), weight=weight)]), train, epochs)
            m = evaluate(model, dev)
            cut = 1 - m["cf_token_gap"] / base["cf_token_gap"]
            print(f"| + CLP weight {weight:g}, {epochs} epoch(s) | {100 * m['accuracy']:.2f} | {100 * m['clean_accuracy']:.2f} | "
                  f"{m['cf_token_gap']:.4f} | {100 * cut:.1f}% | {100 * (m['accuracy'] - base['accuracy']):+.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tune", action="store_true")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    warnings.filterwarnings("ignore")
    print(f"torch threads: {torch.get_num_threads()}")
    tune() if args.tune else bench_audits(args.repeats)


if __name__ == "__main__":
    main()
