"""Captum baseline benchmark: each Captum method and each comparison metric in units of
``input_effects`` time, and the whole CaptumBaseline audit in units of a training epoch.

    .venv/bin/python benchmarks/bench_captum.py [--repeats 5] [--probe 256] [--threads N]

Probe: 256 held-out digits, DigitsCNN (trained 2 epochs so attributions are not degenerate),
2x2 patches (16 groups) as in the digits demo. Unit: ``input_effects`` on the same probe and groups.
Training epoch: the digits demo's (1,437 training digits, batch 64, Adam), measured both as a plain
PyTorch loop and as a Lightning ``Trainer`` epoch with validation (the demo's). Medians of
``--repeats`` after a warm-up.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import warnings
from pathlib import Path

import torch
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks._timing import median_time  # noqa: E402
from examples.demo_digits import EpochTimer  # noqa: E402
from lightning_causal.audits.base import Probe  # noqa: E402
from lightning_causal.audits.captum_baseline import CaptumBaseline, CompareSettings  # noqa: E402
from lightning_causal.baselines import metrics as M  # noqa: E402
from lightning_causal.baselines.captum_methods import METHOD_NAMES, attribute  # noqa: E402
from lightning_causal.causal.effects.input_effects import input_effects  # noqa: E402
from lightning_causal.causal.engine.groups import patch_mask  # noqa: E402
from lightning_causal.models import DigitsCNN, LightningClassifier, load_digits_tensors  # noqa: E402


def train_epoch(model, opt, x, y, gen) -> None:
    perm = torch.randperm(len(y), generator=gen)
    for i in range(0, len(y), 64):
        idx = perm[i : i + 64]
        opt.zero_grad()
        F.cross_entropy(model(x[idx]), y[idx]).backward()
        opt.step()


def lightning_epoch_seconds(xt, yt, xv, yv, epochs: int = 4) -> float:
    import lightning.pytorch as pl
    from torch.utils.data import DataLoader, TensorDataset

    timer = EpochTimer()
    trainer = pl.Trainer(max_epochs=epochs, logger=False, callbacks=[timer], enable_progress_bar=False,
                         enable_model_summary=False, enable_checkpointing=False)
    trainer.fit(LightningClassifier(DigitsCNN(), lr=2e-3), DataLoader(TensorDataset(xt, yt), batch_size=64, shuffle=True),
                DataLoader(TensorDataset(xv, yv), batch_size=256))
    return statistics.median(timer.seconds[1:])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--probe", type=int, default=256)
    parser.add_argument("--threads", type=int, default=None)
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", module="captum")
    torch.manual_seed(0)
    xt, yt, xv, yv = load_digits_tensors()
    model = DigitsCNN()
    opt = torch.optim.Adam(model.parameters(), lr=2e-3)
    gen = torch.Generator().manual_seed(0)
    epoch_plain = median_time(lambda: train_epoch(model, opt, xt, yt, gen), args.repeats)
    epoch_lightning = lightning_epoch_seconds(xt, yt, xv, yv)
    model.eval()
    x = torch.cat([xv, xt])[: args.probe]
    mask = patch_mask((1, 8, 8), 2)
    target = model(x).argmax(1)
    unit = median_time(lambda: input_effects(model, x, mask, 0.0, target=target), args.repeats)

    rows = [("input_effects (unit)", unit)]
    for name in list(METHOD_NAMES) + ["NoiseTunnel(Saliency)", "NoiseTunnel(IntegratedGradients)"]:
        rows.append((f"Captum {name} (defaults)", median_time(lambda n=name: attribute(model, x, n, target, feature_mask=mask), args.repeats)))
    for opts in ({"n_steps": 16}, {"n_steps": 64}, {"n_steps": 32, "internal_batch_size": 2048}):
        rows.append((f"Captum IntegratedGradients {opts}", median_time(
            lambda o=opts: attribute(model, x, ("IntegratedGradients", o), target, feature_mask=mask), args.repeats)))
    rows.append(("Captum ShapleyValueSampling n_samples=25 (Captum's default)", median_time(
        lambda: attribute(model, x, ("ShapleyValueSampling", {"n_samples": 25}), target, feature_mask=mask), args.repeats)))

    effects = input_effects(model, x, mask, 0.0, target=target)
    other = M.aggregate_to_groups(attribute(model, x, "Saliency", target, feature_mask=mask), mask)
    rows += [
        ("agreement: Spearman + Kendall + top-5 (per method)", median_time(
            lambda: (M.spearman(effects, other), M.kendall(effects, other), M.topk_overlap(effects, other, 5, ties="first")), args.repeats)),
        ("deletion + insertion curves, 16 steps (per explanation)", median_time(
            lambda: [M.perturbation_curve(model, x, mask, effects, mode=m, baseline=0.0, target=target) for m in ("deletion", "insertion")], args.repeats)),
        ("stability of the causal effects (1 noise draw)", median_time(
            lambda: M.stability(lambda z: input_effects(model, z, mask, 0.0, target=target), x, reference=effects), args.repeats)),
        ("Captum sensitivity_max of the causal effects (4 draws)", median_time(
            lambda: M.sensitivity(lambda z, t: input_effects(model, z, mask, 0.0, target=t), x, target, 0.03, n_perturb_samples=4), args.repeats)),
        ("Captum infidelity (4 draws, per explanation)", median_time(
            lambda: M.infidelity(model, x, effects, mask, target=target, n_perturb_samples=4), args.repeats)),
    ]
    audits = {
        "CaptumBaseline default (IG + Saliency)": CaptumBaseline(patch_size=2),
        "CaptumBaseline IG + Saliency + reference metrics": CaptumBaseline(
            patch_size=2, settings=CompareSettings(reference_metrics=True)),
        "CaptumBaseline 7 methods": CaptumBaseline(
            ("IntegratedGradients", "Saliency", "DeepLift", "InputXGradient", "GradientShap",
             "NoiseTunnel(Saliency)", "ShapleyValueSampling"), patch_size=2),
    }
    audit_rows = [(name, median_time(lambda a=a: a.run(model, Probe(x)), max(1, args.repeats // 2))) for name, a in audits.items()]

    print(f"threads: {torch.get_num_threads()}; probe {x.shape[0]} digits, {int(mask.max()) + 1} groups; "
          f"input_effects = {unit * 1e3:.1f} ms; training epoch: plain loop {epoch_plain:.3f} s, Lightning {epoch_lightning:.3f} s\n")
    print("| computation | seconds | × input_effects |")
    print("|---|---|---|")
    for name, t in rows:
        print(f"| {name} | {t:.4f} | {t / unit:.1f} |")
    print("\n| audit on 256 digits | seconds | × input_effects | × plain epoch | × Lightning epoch |")
    print("|---|---|---|---|---|")
    for name, t in audit_rows:
        print(f"| {name} | {t:.3f} | {t / unit:.1f} | {t / epoch_plain:.2f} | {t / epoch_lightning:.2f} |")


if __name__ == "__main__":
    main()
