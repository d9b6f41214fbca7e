"""Mode connectivity repair (MCR; Zhao, Chen, Das, Ramamurthy, Lin, ICLR 2020, "Bridging Mode Connectivity in Loss
Landscapes and Adversarial Robustness") as a detection-free repair, on the protocol's development fold models only
(issue 17).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/backdoor_mcr.py --set dev|dev2 [--cases 0-11,16-17] [--folds 0,1,2,3,4]
        [--methods mcr:100:0.01:0.3,...] [--ft] [--tag mcr] [--summary-only] [--table METHOD,...]

(RESULTS.md, "Mode connectivity repair, development sets only", gives the commands of the recorded runs.)

A study, not package API and not a default. The test set is refused: nothing here was chosen to be measured on it.

The ``trigger=None`` misses are backdoors Neural Cleanse does not flag; plain fine-tuning at the protocol's setting
leaves 13-45% ASR on them, and the methods that leave the pre-repair model's basin by force (SEAM, SAU, SFT) cost clean
models more than the 0.5 point the issue allows. MCR leaves it along a *path trained to stay accurate*: a quadratic
Bezier curve ``w(t) = (1-t)^2 w0 + 2t(1-t) theta + t^2 w1`` between the fold model ``w0`` and a fine-tuned copy ``w1``,
where only the control point ``theta`` is trained, on the clean repair set, with the cross-entropy of ``w(t)`` at a
``t`` drawn uniformly in [0, 1] at every step. The paper finds the backdoor gone from the curve's middle while clean
accuracy stays high along it, because the clean set pulls every point of the curve to the clean task and nothing pulls
the middle to the trigger. The repaired model is the curve read at a fixed ``t``, chosen without triggered data.

``mcr:<epochs>:<lr>:<t>`` trains ``theta`` (started at ``(w0 + w1) / 2``) for ``epochs`` shuffled passes of the fold's
clean 10% repair set (143-144 images, batch 32), Adam at ``lr``, and reads the curve at ``t``; ``w1`` is the
protocol's plain fine-tuning of the fold model (20 epochs, Adam 4e-3, batch 32: the study's ``ft`` record). Each
curve is trained once a fold and shared by the settings that differ only in ``t``. ``ft`` (``--ft``) is that
fine-tuning alone.

Each record (one per fold and method, in ``bench_backdoor_protocol.py``'s format, so
``benchmarks/backdoor_report.pooled`` pools them) also has ``fit``: the repair set's accuracy at ``t``, and ``along``:
for ``t`` = 0, 0.1, ..., 1, the held-out fold's correct images and (on a poisoned fold) ASR hits of the curve's point,
so that the whole curve can be read from one run. ``cpu`` is the process CPU seconds of the repair (the curve's
training is counted in the first record of a fold that uses it). Records go to
``benchmarks/.backdoor_cache/mcr-<set>-<tag>.jsonl`` (resumed where a run stopped); fold models are read from
``benchmarks/.backdoor_cache/models`` and trained as ``bench_backdoor_protocol.py`` does where missing.
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import backdoor_peers as peers  # noqa: E402
from benchmarks import backdoor_protocol as bp  # noqa: E402
from benchmarks.backdoor_report import load  # noqa: E402
from benchmarks.backdoor_rnp import fold_records, method_cells, study_parser, trigger_free_study  # noqa: E402
from benchmarks.bench_backdoor_protocol import CACHE, Fold, scores  # noqa: E402

METHODS = ("mcr:100:0.01:0.2", "mcr:100:0.01:0.3", "mcr:100:0.01:0.5")
FORM = "mcr:<epochs>:<lr>:<t>"
ALONG = tuple(i / 10 for i in range(11))


def method_parts(method: str) -> tuple[int, float, float]:
    """``(epochs, lr, t)`` of ``mcr:<epochs>:<lr>:<t>`` (``t`` in [0, 1]); a ValueError naming the method and the form
    otherwise."""
    parts = method.split(":")
    try:
        if parts[0] != "mcr" or len(parts) != 4:
            raise ValueError
        epochs, lr, t = int(parts[1]), float(parts[2]), float(parts[3])
        if epochs < 1 or not lr > 0 or not 0 <= t <= 1:
            raise ValueError
    except (ValueError, IndexError):
        raise ValueError(f"Expected each method to be {FORM} (e.g. {METHODS[0]}) but got {method!r}") from None
    return epochs, lr, t


def bezier(w0: dict[str, Tensor], theta: dict[str, Tensor], w1: dict[str, Tensor], t: float) -> dict[str, Tensor]:
    """The quadratic Bezier curve's point ``(1-t)^2 w0 + 2t(1-t) theta + t^2 w1``, parameter by parameter."""
    return {k: (1 - t) ** 2 * w0[k] + 2 * t * (1 - t) * theta[k] + t ** 2 * w1[k] for k in w0}


def train_curve(model: nn.Module, end: nn.Module, x: Tensor, y: Tensor, epochs: int, lr: float, seed: int,
                batch: int = 32) -> tuple[dict[str, Tensor], dict[str, Tensor], dict[str, Tensor]]:
    """``(w0, theta, w1)``: the parameters of ``model`` and ``end`` (same architecture) and the control point trained
    on ``(x, y)`` (the module docstring: one ``t`` a step, uniform in [0, 1], drawn from ``seed``); both models are
    left untouched. Buffers are not on the curve: a point keeps ``model``'s."""
    w0 = {k: p.detach().clone() for k, p in model.named_parameters()}
    w1 = {k: p.detach().clone() for k, p in end.named_parameters()}
    if w0.keys() != w1.keys() or any(w0[k].shape != w1[k].shape for k in w0):
        raise ValueError("Expected model and end to have the same parameters (names and shapes) but they differ")
    theta = {k: ((w0[k] + w1[k]) / 2).requires_grad_() for k in w0}
    net = copy.deepcopy(model).train()
    opt = torch.optim.Adam(theta.values(), lr=lr)
    g = torch.Generator().manual_seed(seed + 3)
    for idx in peers._batches(len(y), epochs, batch, seed):
        t = torch.rand((), generator=g).item()
        loss = F.cross_entropy(functional_call(net, bezier(w0, theta, w1, t), (x[idx],)), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return w0, {k: v.detach() for k, v in theta.items()}, w1


def point(model: nn.Module, curve: tuple[dict, dict, dict], t: float) -> nn.Module:
    """A copy of ``model`` holding the curve's point at ``t``, in eval mode."""
    out = copy.deepcopy(model)
    with torch.no_grad():
        for k, v in bezier(*curve, t).items():
            out.get_parameter(k).copy_(v)
    return out.eval()


def run_fold(case: bp.Case, fold: int, digits, methods: list[str], out: Path, done: set) -> None:
    """Every missing record of one fold model."""

    def per_fold(f: Fold, x: Tensor, y: Tensor, seed: int):
        curves: dict[tuple[int, float], tuple] = {}  # (epochs, lr) -> (curve, along)
        ft: list[nn.Module] = []

        def repaired(m: str) -> tuple[nn.Module, dict]:
            epochs, lr, t = method_parts(m)
            if (epochs, lr) not in curves:
                if not ft:
                    ft.append(peers.repair_with_terms(f.model, [], x, y, bp.REPAIR_EPOCHS, seed, lr=bp.REPAIR_LR))
                curve = train_curve(f.model, ft[0], x, y, epochs, lr, seed)
                along = []
                for s in ALONG:
                    sc = scores(point(f.model, curve, s), f.before, f.trigger, f.data)
                    along.append([s, sc["correct"], *([sc["asr_hits"]] if "asr_hits" in sc else [])])
                curves[epochs, lr] = curve, along
            curve, along = curves[epochs, lr]
            model = point(f.model, curve, t)
            return model, {"fit": round(peers._accuracy(model, x, y), 4), "along": along}

        return repaired

    fold_records(case, fold, digits, methods, out, done, per_fold)


def along_table(cases, path: Path, key: str = "along", label=lambda m, t: f"{m.rsplit(':', 1)[0]} t={t:.1f}",
                head: str = "curve read at") -> str:
    """For each curve (``mcr:<epochs>:<lr>``) and each ``t`` of ``ALONG``, the study summary's figures
    (``backdoor_rnp.method_cells``) of the curve read at ``t``, from the records' ``along``. Other studies' records
    that hold readings ``[point, correct, (asr_hits)]`` under ``key`` name a row ``label(method, point)`` (e.g.
    ``backdoor_np.py``'s ``trace``, by epoch) under the column ``head``."""
    records = load(path)
    along: dict = {}
    for (seed, fold, m), r in records.items():
        if key in r:
            for t, correct, *hits in r[key]:
                along[seed, fold, label(m, t)] = {"n": r["n"], "correct": correct, "lost": 0, "gained": 0,
                                                  **({"asr_hits": hits[0], "asr_n": r["asr_n"]} if hits else {})}
        elif m == "none":
            along[seed, fold, m] = r
    lines = [f"| {head} | patch: ASR ≤ 2% | Δ ≥ −1 | mean Δ | mean ASR | clean: mean Δ | worst Δ |",
             "|---|---|---|---|---|---|---|"]
    for m in sorted({k[2] for k in along} - {"none"}):
        lines.append(f"| {m} | {method_cells(cases, along, m)} |")
    return "\n".join(lines)


def main() -> None:
    trigger_free_study(__doc__, "mcr", "MCR", METHODS, "mcr: settings (see the docstring)", method_parts, run_fold)
    args = study_parser(__doc__, "mcr", "").parse_known_args()[0]
    cases = {"dev": bp.DEV_CASES, "dev2": bp.DEV2_CASES}[args.set]
    print("\nThe curves, read at every t of ALONG (pooled as above):\n")
    print(along_table(cases, CACHE / f"mcr-{args.set}-{args.tag}.jsonl"))


if __name__ == "__main__":
    main()
