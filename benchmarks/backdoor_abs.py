"""ABS-style unit stimulation (Liu et al., CCS 2019, "ABS: Scanning Neural Networks for Back-doors by
Artificial Brain Stimulation") as a backdoor flag, on the protocol's development fold models only (issue 17).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/backdoor_abs.py --set dev|dev2 [--cases 0-11,16-17] [--folds 0,1,2,3,4]
        [--tag abs] [--detection-tag abs30n] [--no-reverse] [--threads 1] [--summary-only] [--pool]

(RESULTS.md gives the commands of the recorded run; about 3.5 s per fold model on one thread.)

A study, not package API and not a default; RESULTS.md ("ABS-style unit stimulation, development sets
only") gives the figures and the decision. The test set is refused: nothing here was chosen to be measured on it.

For each fold model (``benchmarks/.backdoor_cache/models``, trained as ``bench_backdoor_protocol.py`` does where
missing) and the fold's clean 10% repair set as the probe (143-144 images):

1. **Stimulation** (ABS's first step). For every unit ``u`` of a layer (``relu2``: the 32 channels of the last
   conv layer after its ReLU, a channel set at every position; ``relu3``: the 64 neurons of the penultimate
   linear layer), ``do(h_u := k · M)`` for ``k`` in :data:`KS`, ``M`` the layer's largest clean activation on
   the probe. The *label elevation* of class ``c`` is the share of probe images whose label is not ``c`` that
   are then predicted as ``c``; a class's statistic is its largest elevation over the layer's units. A batched
   do(): the prefix cache (:func:`lightning_causal.causal.engine.cache_prefix`) runs the network up to the layer
   once, and the suffix on ``U · N`` rows per value, a block of rows per unit.
2. **Reversal** (ABS's second step; off with ``--no-reverse``). For every unit of ``relu2``, one batch for
   all units: an input trigger ``x' = (1 - m) x + m p`` (mask ``m``, pattern ``p`` in [0, 1]) that maximises the
   unit's mean activation minus the mean of the layer's other units, its mask held to :data:`BUDGET` pixels
   (hinge penalty), 100 Adam steps of 16 probe images. The trigger's attack rate (REASR) is the largest share
   of probe images of other labels sent to one label; a class's statistic is the largest REASR among the units
   whose trigger sends images to it.

Records go to ``benchmarks/.backdoor_cache/abs-<set>-<tag>.jsonl`` (resumed where a run stopped).
``--summary-only`` (or the end of a run) prints, for one set or both pooled (``--pool``), per statistic, the bound (the largest class statistic of any clean fold
model: no false alarm on these models) and the learned patch targets (ASR >= 50% before repair) flagged above
it (a value greater than the bound), beside Neural Cleanse's ``detection`` rows of ``<set>-<detection tag>.jsonl`` (run
``bench_backdoor_protocol.py --set <set> --methods detection --tag <detection tag> --term-options
'{"contrast": false}'`` first: the rows are Neural Cleanse's own flags, which the contrast does not change).
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
import warnings
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import backdoor_protocol as bp  # noqa: E402
from benchmarks.bench_backdoor_protocol import CACHE, _pick, trained_model  # noqa: E402
from lightning_causal.causal.engine import audit_mode, cache_prefix  # noqa: E402

LAYERS = ("relu2", "relu3")
KS = (0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0, 8.0)
BUDGET = 9.0
REVERSE_LAYER = "relu2"


def elevation(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, layer: str, ks=KS, classes: int = 10) -> tuple[torch.Tensor, float]:
    """Label elevation ``[U, K, C]`` of ``do(h_u := k · M)`` on the probe ``x`` (labels ``y``), and ``M``."""
    with audit_mode(model), torch.no_grad():
        cache = cache_prefix(model, x, layer)
        value = cache.value
        n, units = value.shape[0], value.shape[1]
        top = float(value.max())
        rows = torch.arange(n).repeat(units)
        block = torch.eye(units, dtype=torch.bool).repeat_interleave(n, 0)  # [U·N, U]: row block u sets unit u
        mask = block.view((units * n, units) + (1,) * (value.dim() - 2)).expand((units * n,) + tuple(value.shape[1:]))
        base = value.repeat((units,) + (1,) * (value.dim() - 1))
        other = (y.view(1, n) != torch.arange(classes).view(classes, 1)).float()  # [C, N]
        out = torch.empty(units, len(ks), classes)
        for j, k in enumerate(ks):
            pred = cache(torch.where(mask, torch.tensor(k * top), base), rows).argmax(1).view(units, n)
            hits = torch.nn.functional.one_hot(pred, classes).float()  # [U, N, C]
            out[:, j] = torch.einsum("unc,cn->uc", hits, other) / other.sum(1)
    return out, top


def reverse_units(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, layer: str = REVERSE_LAYER, budget: float = BUDGET,
                  steps: int = 100, batch: int = 16, lr: float = 0.1, seed: int = 0, classes: int = 10) -> tuple[torch.Tensor, torch.Tensor]:
    """REASR ``[U, C]`` of one reversed trigger per unit of ``layer`` (all units in one batch), and the masks' sizes ``[U]``."""
    g = torch.Generator().manual_seed(seed)
    module = dict(model.named_modules())[layer]
    store: dict[str, torch.Tensor] = {}
    handle = module.register_forward_hook(lambda m, i, o: store.__setitem__("h", o))
    params = [p.requires_grad for p in model.parameters()]
    try:
        model.eval()
        for p in model.parameters():
            p.requires_grad_(False)
        with torch.no_grad():
            model(x[:2])
        units, shape = store["h"].shape[1], tuple(x.shape[1:])
        a = torch.full((units, *shape), -2.0).requires_grad_()
        b = (torch.rand((units, *shape), generator=g) * 2 - 1).requires_grad_()
        opt = torch.optim.Adam([a, b], lr=lr)
        eye = torch.eye(units)
        for _ in range(steps):
            idx = torch.randint(len(x), (batch,), generator=g)
            m, p = torch.sigmoid(a), torch.sigmoid(b)
            xs = (1 - m[:, None]) * x[idx][None] + (m * p)[:, None]  # [U, B, ...]
            model(xs.reshape(-1, *shape))
            act = store["h"].reshape(units, batch, units, -1).mean(-1)  # [U, B, U]: each unit's mean over positions
            own = (act * eye[:, None]).sum(-1)
            others = (act * (1 - eye[:, None])).sum(-1) / (units - 1)
            size = m.flatten(1).sum(1)
            loss = (others - own).mean(1) + 2.0 * torch.relu(size - budget)
            opt.zero_grad()
            loss.sum().backward()
            opt.step()
        with torch.no_grad():
            m, p = torch.sigmoid(a), torch.sigmoid(b)
            other = (y.view(1, -1) != torch.arange(classes).view(classes, 1)).float()  # [C, N]
            out = torch.stack([torch.nn.functional.one_hot(model((1 - m[u]) * x + m[u] * p[u]).argmax(1), classes).float().T.mul(other).sum(1)
                               for u in range(units)]) / other.sum(1)
            sizes = m.flatten(1).sum(1)
    finally:
        handle.remove()
        for p, r in zip(model.parameters(), params):
            p.requires_grad_(r)
    return out, sizes


def class_statistics(rec: dict) -> dict[str, torch.Tensor]:
    """Each statistic's per-class values ``[C]`` of one fold record (higher: more suspect)."""
    out = {}
    for layer in LAYERS:
        best = torch.tensor(rec[layer]["share"]).amax(0)  # [K, C]
        for j, k in enumerate(KS):
            out[f"stimulation {layer}, k = {k:g}"] = best[j]
    if "reverse" in rec:
        reasr = torch.tensor(rec["reverse"]["reasr"])  # [U, C]
        label = reasr.argmax(1)
        out[f"reversal {REVERSE_LAYER}, {BUDGET:g} px"] = torch.stack([reasr[label == c, c].max() if (label == c).any() else torch.tensor(0.0)
                                                                      for c in range(reasr.shape[1])])
    return out


def summary(set_names: list[str], tag: str, detection_tag: str) -> str:
    """The table of the module docstring over the fold models of ``set_names`` pooled (one bound for all)."""
    cases = {c.seed: c for name in set_names for c in {"dev": bp.DEV_CASES, "dev2": bp.DEV2_CASES}[name]}
    recs, det = [], {}
    for name in set_names:
        path, det_path = CACHE / f"abs-{name}-{tag}.jsonl", CACHE / f"{name}-{detection_tag}.jsonl"
        recs += [json.loads(line) for line in path.read_text().splitlines()] if path.exists() else []
        det.update({(r["seed"], r["fold"], r["method"]): r for r in map(json.loads, det_path.read_text().splitlines())} if det_path.exists() else {})
    set_name = " + ".join(set_names)
    learned, clean = [], []
    for r in recs:
        case, base, nc = cases[r["seed"]], det.get((r["seed"], r["fold"], "none")), det.get((r["seed"], r["fold"], "detection"))
        if case.family == "clean":
            clean.append((r, nc))
        elif case.family == "patch" and base is not None and base["asr_hits"] / base["asr_n"] >= bp.LEARNED_ASR:
            learned.append((r, nc))
    if not clean or not learned:
        return f"{set_name}: {len(clean)} clean and {len(learned)} learned patch fold models with detection rows; nothing to count"
    with_nc = [(r, nc) for r, nc in learned if nc is not None]
    nc_hit = {(r["seed"], r["fold"]) for r, nc in with_nc if r["target"] in nc["flagged"]}
    lines = [f"{set_name}: {len(learned)} learned patch fold models, {len(clean)} clean; Neural Cleanse flags {len(nc_hit)}/{len(with_nc)} "
             f"targets, {sum(bool(nc and nc['flagged']) for _, nc in clean)}/{len(clean)} clean models", "",
             "| statistic | bound (largest clean value) | targets flagged | another class flagged | targets Neural Cleanse misses, flagged |",
             "|---|---|---|---|---|"]
    stats = class_statistics(clean[0][0]).keys()
    for name in stats:
        bound = max(float(class_statistics(r)[name].max()) for r, _ in clean)
        hit = [r for r, _ in learned if float(class_statistics(r)[name][r["target"]]) > bound]
        other = sum(bool(set((class_statistics(r)[name] > bound).nonzero().flatten().tolist()) - {r["target"]}) for r, _ in learned)
        new = [f"s{r['seed']} fold {r['fold']}" for r in hit if (r["seed"], r["fold"]) not in nc_hit]
        lines.append(f"| {name} | {bound:.3f} | {len(hit)}/{len(learned)} | {other} | {', '.join(new) or '–'} |")
    seconds = [r["seconds"] for r in recs]
    lines += ["", f"Seconds per fold model (median): {sorted(seconds)[len(seconds) // 2]:.1f}"]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", choices=("dev", "dev2"), default="dev", help="development sets only; the test set is refused")
    parser.add_argument("--cases", default="", help="case positions, e.g. '0-11,16-17' (default: all)")
    parser.add_argument("--folds", default="0,1,2,3,4")
    parser.add_argument("--tag", default="abs")
    parser.add_argument("--detection-tag", default="abs30n", help="tag of the protocol run holding the detection rows")
    parser.add_argument("--no-reverse", action="store_true", help="the stimulation step only")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--summary-only", action="store_true")
    parser.add_argument("--pool", action="store_true", help="the summary over both development sets' fold models, one bound")
    args = parser.parse_args()
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    torch.set_num_threads(args.threads)
    if not args.summary_only:
        cases = {"dev": bp.DEV_CASES, "dev2": bp.DEV2_CASES}[args.set]
        out = CACHE / f"abs-{args.set}-{args.tag}.jsonl"
        out.parent.mkdir(parents=True, exist_ok=True)
        done = {(r["seed"], r["fold"]) for r in map(json.loads, out.read_text().splitlines())} if out.exists() else set()
        digits = bp.load_all_digits()
        for case in _pick(cases, args.cases):
            if case.family == "blended":
                continue
            for fold in map(int, args.folds.split(",")):
                if (case.seed, fold) in done:
                    continue
                data = bp.fold_data(case, fold, digits)
                model = trained_model(case, fold, data)
                rows = bp.repair_rows(data, bp.REPAIR_FRACTION)
                x, y = data.x_clean[rows], data.y_clean[rows]
                t0 = time.perf_counter()
                rec = {"seed": case.seed, "fold": fold, "target": case.target}
                for layer in LAYERS:
                    share, top = elevation(model, x, y, layer)
                    rec[layer] = {"top": top, "share": [[[round(float(v), 4) for v in kk] for kk in u] for u in share]}
                if not args.no_reverse:
                    reasr, sizes = reverse_units(model, x, y)
                    rec["reverse"] = {"reasr": [[round(float(v), 3) for v in u] for u in reasr], "sizes": [round(float(s), 2) for s in sizes]}
                rec["seconds"] = round(time.perf_counter() - t0, 2)
                with out.open("a") as fh:
                    fh.write(json.dumps(rec) + "\n")
                print(f"{case.name} fold {fold}: {rec['seconds']} s", flush=True)
    print(summary(["dev", "dev2"] if args.pool else [args.set], args.tag, args.detection_tag))


if __name__ == "__main__":
    main()
