"""The backdoor story on digits: poison, detect, locate, repair.

    .venv/bin/python examples/backdoor_digits.py --logdir runs/backdoor [--epochs 20] [--fast]

1. Train a LeNet-style CNN on scikit-learn's 8x8 digits where 10% of the training images carry a
   white 2x2 patch in the bottom-right corner and are relabelled to class ``--target`` (BadNets).
2. ``CausalAuditCallback`` runs two backdoor audits every few epochs: one that knows the trigger
   (attack success rate, the trigger's causal effect on the target logit, suspect conv2
   channels) and one that does not (Neural Cleanse reverse engineering of every class: anomaly
   indices, reversed masks and patterns). TensorBoard shows the backdoor appearing over epochs.
3. Fine-tune with ``CausalRepairModule`` + ``BackdoorSuppressionTerm(trigger=None)`` (defaults:
   causal-path penalty, light unlearning, consistency with the model before repair) for 20 epochs
   on 10% of the clean training data: the term reverse-engineers the trigger itself at the start.
4. Print a before/after table (clean accuracy, ASR, flagged class, anomaly index, top suspect
   units) and write it to ``<logdir>/report.md``.
"""

from __future__ import annotations

import argparse
import copy
import math
import time
import warnings
from pathlib import Path

import lightning.pytorch as pl
import torch
from lightning.pytorch.loggers import TensorBoardLogger
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import BackdoorAudit, BackdoorSuppressionTerm, CausalAuditCallback
from lightning_causal.causal import attack_success_rate, neural_cleanse, suspect_units
from lightning_causal.datasets import patch_trigger, poison
from lightning_causal.models import DigitsCNN, LightningClassifier, load_digits_tensors
from lightning_causal.repair.module import CausalRepairModule  # noqa: E402


def evaluate(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, trigger, steps: int, seed: int, res=None) -> dict:
    """Clean accuracy, ASR, Neural Cleanse detection (``res``, else run now) and the top suspect conv2 channels."""
    model.eval()
    with torch.no_grad():
        acc = float((model(x).argmax(1) == y).float().mean())
    if res is None:
        res = neural_cleanse(model, x[:256], 10, batch_size=min(64, len(x)), steps=steps,
                             generator=torch.Generator().manual_seed(seed))
    top = res.most_suspect  # the rule's first class, flagged or not; None where every class is left out
    su = suspect_units(model, x[:256], trigger, "conv2")
    return {"acc": acc, "asr": attack_success_rate(model, x, y, trigger), "flagged": res.flagged, "top": top,
            "index": math.nan if top is None else float(res.anomaly_index[top]),
            "kappa": math.nan if top is None else float(res.concentration[top]),
            "target_index": float(res.anomaly_index[trigger.target]),
            "suspects": su.ranking()[:3], "flagged_units": su.flagged}


def train_poisoned(args, trigger, data, logger) -> tuple[LightningClassifier, CausalAuditCallback]:
    xt, yt, xv, yv = data
    xp, yp, _ = poison(xt, yt, trigger, args.rate, generator=torch.Generator().manual_seed(args.seed))
    model = LightningClassifier(DigitsCNN(), lr=2e-3)
    audits = [BackdoorAudit(trigger, layers=["model.conv2"], name="backdoor_known"),
              BackdoorAudit(steps=args.nc_steps, name="backdoor_detect")]
    callback = CausalAuditCallback(audits, probe=(xv[: args.probe], yv[: args.probe]), every_n_epochs=args.every, report_dir=f"{args.logdir}/poisoned/causal_audit")
    trainer = pl.Trainer(max_epochs=args.epochs, logger=logger, callbacks=[callback], enable_progress_bar=False,
                         enable_model_summary=False, log_every_n_steps=10, deterministic=True)
    trainer.fit(model, DataLoader(TensorDataset(xp, yp), batch_size=64, shuffle=True),
                DataLoader(TensorDataset(xv, yv), batch_size=256))
    return model, callback


def repair(args, model: torch.nn.Module, trigger, data, logger) -> BackdoorSuppressionTerm:
    xt, yt, xv, yv = data
    sub = torch.randperm(len(yt), generator=torch.Generator().manual_seed(args.seed + 1))[: len(yt) // 10]
    term = BackdoorSuppressionTerm(reverse_options={"steps": args.nc_steps, "generator": torch.Generator().manual_seed(args.seed)})
    module = CausalRepairModule(model, [term], lr=4e-3)  # the protocol's repair rate: twice the training one (RESULTS)
    callback = CausalAuditCallback([BackdoorAudit(trigger, name="backdoor_known")], probe=(xv[: args.probe], yv[: args.probe]),
                                   report_dir=f"{args.logdir}/repair/causal_audit")
    trainer = pl.Trainer(max_epochs=args.repair_epochs, logger=logger, callbacks=[callback], enable_progress_bar=False,
                         enable_model_summary=False, log_every_n_steps=2, deterministic=True)
    trainer.fit(module, DataLoader(TensorDataset(xt[sub], yt[sub]), batch_size=32, shuffle=True),
                DataLoader(TensorDataset(xv, yv), batch_size=256))
    return term


def _cells(r: dict) -> list[str]:
    return [f"{r['acc']:.3f}", f"{r['asr']:.3f}", str(r["flagged"] or "none"),
            "none (every class left out)" if r["top"] is None else f"{r['top']} ({r['index']:.2f}, {r['kappa']:.2f})", f"{r['target_index']:.2f}", str(r["suspects"])]


def table(before: dict, after: dict) -> list[str]:
    rows = ["| model | clean accuracy | ASR | flagged classes | most suspect class (index, κ) | target's index | top suspect conv2 channels |",
            "|---|---|---|---|---|---|---|"]
    return rows + [f"| {name} | " + " | ".join(_cells(r)) + " |" for name, r in (("poisoned", before), ("repaired", after))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--logdir", default="runs/backdoor")
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--every", type=int, default=10)
    parser.add_argument("--repair-epochs", type=int, default=20)
    parser.add_argument("--nc-steps", type=int, default=300)
    parser.add_argument("--target", type=int, default=0)
    parser.add_argument("--rate", type=float, default=0.1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--probe", type=int, default=256, help="probe samples of the audits")
    parser.add_argument("--fast", action="store_true", help="tiny smoke run (seconds)")
    args = parser.parse_args()
    if args.fast:
        args.epochs, args.every, args.repair_epochs, args.nc_steps, args.probe = 2, 2, 1, 10, 32
    warnings.filterwarnings("ignore", ".*does not have many workers.*")
    pl.seed_everything(args.seed, verbose=False)
    t0 = time.perf_counter()
    data = load_digits_tensors(seed=args.seed)
    trigger = patch_trigger((1, 8, 8), 2, "bottom_right", 1.0, target=args.target)

    if args.fast:
        data = (data[0][:300], data[1][:300], data[2][:128], data[3][:128])
    times = {}
    t = time.perf_counter()
    model, callback = train_poisoned(args, trigger, data, TensorBoardLogger(args.logdir, name="poisoned", version=""))
    net = model.model
    times["train + audits"], t = time.perf_counter() - t, time.perf_counter()
    poisoned_net = copy.deepcopy(net)
    term = repair(args, net.train(), trigger, data, TensorBoardLogger(args.logdir, name="repair", version=""))
    times["repair"], t = time.perf_counter() - t, time.perf_counter()
    before = evaluate(poisoned_net, data[2], data[3], trigger, args.nc_steps, args.seed, term.detection)
    after = evaluate(net, data[2], data[3], trigger, args.nc_steps, args.seed)

    detect = callback.last_results.get("backdoor_detect")
    lines = ["# Backdoor on digits: detect, locate, repair", "",
             f"BadNets trigger: 2x2 white patch, bottom-right corner, target class {args.target}, "
             f"{args.rate:.0%} of the training images poisoned; {args.epochs} epochs, repair {args.repair_epochs} epochs "
             f"on 10% of the clean training data.", ""]
    if detect is not None:
        lines.append(f"Audit during training (last audit epoch): flagged classes "
                     f"{[r['class'] for r in detect.tables['flagged_classes']] or 'none'}, "
                     f"max anomaly index {detect.scalars['max_anomaly_index']:.2f}.")
    lines.append("Before: Neural Cleanse as run by the repair term on its clean fine-tuning data; after: on the validation images.")
    if term.detection is not None:
        lines.append(f"The repair term reverse-engineered on its own: flagged {term.detection.flagged or 'none'} "
                     f"(index {float(term.detection.anomaly_index.max()):.2f}); "
                     f"unlearning {len(term.triggers)} trigger(s).")
    lines += ["", *table(before, after), "", f"Total wall time: {time.perf_counter() - t0:.0f} s ("
              + ", ".join(f"{k} {v:.0f} s" for k, v in times.items()) + ")."]
    report = "\n".join(lines)
    out = Path(args.logdir) / "report.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(report + "\n")
    print(report)
    print(f"\nReport: {out}\nTensorBoard: tensorboard --logdir {args.logdir}")


if __name__ == "__main__":
    main()
