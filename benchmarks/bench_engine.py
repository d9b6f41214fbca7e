"""Engine benchmark: input_effects and unit_effects against Captum and against the limit.

Side by side in one run, medians of repeats after a warm-up, probe of 256 digits.

    .venv/bin/python benchmarks/bench_engine.py [--repeats 7] [--probe 256]

- input_effects vs Captum FeatureAblation (perturbations_per_eval = number of groups) and vs the
  limit (one no-grad forward over N*(G+1) prepared rows). Targets: <= 0.8x Captum, <= 1.3x limit.
- unit_effects at a layer ~2/3 deep vs Captum LayerFeatureAblation (one group per unit, target class 3 for both since Captum rejects per-sample targets there;
  perturbations_per_eval = number of units). Target: <= 0.5x.
- Peak memory (RSS growth during the call, sampled by a thread) of each, in a fresh process,
  under the default 512 MiB budget.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from captum.attr import FeatureAblation, LayerFeatureAblation  # noqa: E402

from benchmarks._timing import median_time, peak_rss_growth  # noqa: E402
from lightning_causal.causal import input_effects, patch_mask, unit_effects  # noqa: E402
from lightning_causal.models import DeepCNN, DigitsCNN, load_digits_tensors  # noqa: E402

MODELS = {
    "digits LeNet": (lambda: DigitsCNN(), "conv2", 32),
    "deep CNN (6 conv)": (lambda: DeepCNN(depth=6, width=32), "features.9", 32),
}




def _setup(name: str, probe: int, patch: int):
    torch.manual_seed(0)
    model = MODELS[name][0]().eval()
    x = load_digits_tensors()[0][:probe]
    return model, x, patch_mask((1, 8, 8), patch)


def time_one(name: str, probe: int, patch: int, repeats: int) -> dict:
    model, x, mask = _setup(name, probe, patch)
    layer, units = MODELS[name][1], MODELS[name][2]
    g = int(mask.max()) + 1
    target = model(x).argmax(1)
    rows = torch.cat([x] + [torch.where(mask == k, torch.zeros(()), x) for k in range(g)])
    layer_mod = dict(model.named_modules())[layer]
    lmask = torch.arange(units).view(1, units, 1, 1)

    def limit():
        with torch.no_grad():
            model(rows)

    def captum_fa():
        FeatureAblation(model).attribute(x, target=target, feature_mask=mask, perturbations_per_eval=g)

    def captum_lfa():
        LayerFeatureAblation(model, layer_mod).attribute(x, target=3, layer_mask=lmask, perturbations_per_eval=units)

    out = {
        "model": name,
        "groups": g,
        "ours_input": median_time(lambda: input_effects(model, x, mask, target=target), repeats),
        "captum_input": median_time(captum_fa, repeats),
        "limit_input": median_time(limit, repeats),
        "ours_unit": median_time(lambda: unit_effects(model, x, layer, target=3), repeats),
        "ours_unit_fallback": median_time(lambda: unit_effects(model, x, layer, target=3, use_suffix=False), repeats),
        "captum_unit": median_time(captum_lfa, repeats),
        "layer": layer,
    }
    return out


def peak_memory(name: str, probe: int, patch: int, what: str) -> float:
    """Peak RSS growth (MiB) during the call, sampled every 0.2 ms by a thread; fresh process."""
    model, x, mask = _setup(name, probe, patch)
    with torch.no_grad():
        model(x)
    if what == "input":
        return peak_rss_growth(lambda: input_effects(model, x, mask))
    return peak_rss_growth(lambda: unit_effects(model, x, MODELS[name][1]))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--probe", type=int, default=256)
    parser.add_argument("--patch", type=int, default=2)
    parser.add_argument("--memory", nargs=2, metavar=("MODEL", "WHAT"))
    args = parser.parse_args()
    if args.memory:
        print(json.dumps(peak_memory(args.memory[0], args.probe, args.patch, args.memory[1])))
        return
    torch.set_num_threads(max(1, torch.get_num_threads()))
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}, probe {args.probe}, patch {args.patch}x{args.patch}\n")
    print("| model | groups | input_effects (s) | Captum FA (s) | limit (s) | ours/Captum | ours/limit "
          "| layer | unit_effects (s) | fallback (s) | Captum LFA (s) | ours/Captum | peak MiB input | peak MiB unit |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in MODELS:
        r = time_one(name, args.probe, args.patch, args.repeats)
        mem = {}
        for what in ("input", "unit"):
            cmd = [sys.executable, __file__, "--memory", name, what, "--probe", str(args.probe), "--patch", str(args.patch)]
            mem[what] = float(subprocess.run(cmd, capture_output=True, text=True, check=True).stdout.strip())
        print(
            f"| {name} | {r['groups']} | {r['ours_input']:.4f} | {r['captum_input']:.4f} | {r['limit_input']:.4f} "
            f"| {r['ours_input'] / r['captum_input']:.2f}x | {r['ours_input'] / r['limit_input']:.2f}x "
            f"| {r['layer']} | {r['ours_unit']:.4f} | {r['ours_unit_fallback']:.4f} | {r['captum_unit']:.4f} "
            f"| {r['ours_unit'] / r['captum_unit']:.2f}x | {mem['input']:.0f} | {mem['unit']:.0f} |"
        )


if __name__ == "__main__":
    main()
