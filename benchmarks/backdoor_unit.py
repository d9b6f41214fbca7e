"""UNIT (Cheng, Shen, Zhang, Tao, An, Guo, Ma, Zhang, ECCV 2024, "UNIT: Backdoor Mitigation via Automated Neural
Distribution Tightening") as a detection-free repair, on the protocol's development fold models only (issue 17).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/backdoor_unit.py --set dev|dev2 [--cases 0-11,16-17] [--folds 0,1,2,3,4]
        [--methods unit,unit:init,unit+ft] [--ft] [--tag unit] [--summary-only] [--table METHOD,...]

(RESULTS.md, "UNIT, development sets only", gives the commands of the recorded runs.)

A study, not package API and not a default. The test set is refused: nothing here was chosen to be measured on it.

The fold model's weights are never changed (but by ``unit+ft``). Each activation function's output ``a`` (``relu1``:
16x8x8, ``relu2``: 32x4x4, ``relu3``: 64; the paper clamps after every activation of its ResNet-18) is clamped from
above at inference, ``min(a, b)``, by a bound ``b`` of the activation's own shape (one per neuron: per channel and
position in a convolution's output, as the paper's code does). The bounds are learned on the fold's clean 10% repair
set (143-144 images), split per class into 80% to fit (``train``) and 20% to check (``valid``), as the paper's code:

1. **Start**: ``b = mean + 4 std`` of the activation over ``train`` (per neuron; ``std`` unbiased).
2. **Tighten**: ``STEPS`` full-batch Adam steps (lr ``LR``, betas ``BETAS``) on
   ``CE(f_b(x_train), y_train) + cost * sum_l mean(max(b_l, 0))``, where ``f_b`` is the model clamped at
   ``max(b, 0)``. After each step the clamped model's ``valid`` accuracy is read; the kept bounds are those of the
   smallest ``sum_l mean(max(b_l, 0))`` whose ``valid`` accuracy is at least the unclamped model's minus
   ``ACC_DEGRADE`` (the last bounds where none is). ``cost`` starts at ``COST``; after ``PATIENCE`` steps in a row
   within the accuracy budget it is multiplied by ``UP``, after ``PATIENCE`` steps in a row outside it divided by
   ``DOWN``, and once ``PATIENCE`` steps in a row are within budget while ``cost < COST`` it is reset to ``COST``.

Settings, all from the paper's code (``unit.py``, defaults for ResNet-18 on CIFAR-10) and fixed before any run: the
start at mean + 4 std, Adam at 1e-3 with betas (0.5, 0.9), 300 full-batch steps, accuracy budget 3 points on the
validation split, cost 1e-3 multiplied by 2 / divided by 2^1.5 with patience 5, the 80/20 per-class split, a bound per
neuron after every activation. Scaled or changed: the data are the protocol's 10% repair set (the paper: 5% of
CIFAR-10's training set, 2,500 images), so the validation split is 28-29 images and a budget of 3 points lets it lose
no image (one is 3.4 points); no augmentation (the paper augments its defence images once, by CIFAR's crops and flips;
the protocol never augments digits); the kept bounds are those whose accuracy was read (the paper's code keeps the
bounds of before the step whose accuracy it read, one Adam step of 1e-3 looser).

Methods (``METHODS``, all fixed before any run):

- ``unit``: the paper's method, the model clamped at the tightened bounds;
- ``unit:init``: the control, the model clamped at the starting bounds (mean + 4 std), no tightening;
- ``unit+ft``: the tightened clamps kept, then the protocol's plain fine-tuning (20 epochs, Adam 4e-3, batch 32, the
  whole repair set) of the clamped model (the brief's "fine-tune under them"; not in the paper).

Each record (one per fold and method, in ``bench_backdoor_protocol.py``'s format, so ``benchmarks/backdoor_report.pooled``
pools them) also has ``valid`` (the clamped model's validation accuracy; ``valid0``: the unclamped one's), ``tight``
(the kept bounds' ``sum_l mean(max(b_l, 0))`` over the starting ones'), ``best_step`` (the step whose bounds were kept;
-1: none within budget) and ``clipped`` (the share of the held-out fold's clean activations the clamp lowers). ``ft``
(``--ft``) is the protocol's plain fine-tuning. ``cpu`` is the process CPU seconds of the repair (``unit+ft``: the
fine-tuning only; its bounds are ``unit``'s). Records go to ``benchmarks/.backdoor_cache/unit-<set>-<tag>.jsonl``
(resumed where a run stopped); fold models are read from ``benchmarks/.backdoor_cache/models`` and trained as
``bench_backdoor_protocol.py`` does where missing. After the summary, the same table with the default ``trigger=None``
repair's cached records (``<set>-np_default.jsonl``, the NP study's run on the same fold models) merged in.
"""

from __future__ import annotations

import copy
import json
import sys
import tempfile
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import backdoor_peers as peers  # noqa: E402
from benchmarks import backdoor_protocol as bp  # noqa: E402
from benchmarks.backdoor_clp import activations  # noqa: E402
from benchmarks.backdoor_rnp import fold_records, study_parser, summary, trigger_free_study  # noqa: E402
from benchmarks.bench_backdoor_protocol import CACHE, Fold  # noqa: E402

METHODS = ("unit", "unit:init", "unit+ft")
SITES = ("relu1", "relu2", "relu3")
INIT_STDS = 4.0
LR, BETAS, STEPS = 1e-3, (0.5, 0.9), 300
ACC_DEGRADE = 0.03
COST, UP, DOWN, PATIENCE = 1e-3, 2.0, 2.0**1.5, 5
VALID_SHARE = 0.2
DEFAULT_RECORDS = "{set}-np_default.jsonl"


def method_parts(method: str) -> tuple[str, float]:
    """``(base, lr)`` of a method ``unit:init``, ``unit[@<lr>]`` or ``unit+ft[@<lr>]`` (``lr``: the tightening's Adam
    rate, :data:`LR` unless given); a ValueError naming the method and the forms otherwise."""
    base, at, rate = method.partition("@")
    try:
        if base not in METHODS or at and base == "unit:init":
            raise ValueError
        lr = float(rate) if at else LR
        if not 0 < lr < float("inf"):
            raise ValueError
    except ValueError:
        raise ValueError(f"Expected each method to be unit:init, unit[@<lr>] or unit+ft[@<lr>] (lr > 0, e.g. unit@0.01) "
                         f"but got {method!r}") from None
    return base, lr


def split_per_class(y: Tensor, valid_share: float = VALID_SHARE) -> tuple[Tensor, Tensor]:
    """``(train, valid)`` row indices of ``y``: per class, its first ``int((1 - valid_share) * n)`` rows (in order) to
    ``train`` and the rest to ``valid``, as the paper's code splits its defence data."""
    order = torch.argsort(y, stable=True)
    counts = torch.bincount(y)
    rank = torch.arange(len(y)) - torch.repeat_interleave(torch.cumsum(counts, 0) - counts, counts)
    keep = (counts.double() * (1 - valid_share)).long()[y[order]]
    to_train = rank < keep
    return order[to_train].sort().values, order[~to_train].sort().values


def start_bounds(model: nn.Module, x: Tensor, sites=SITES, stds: float = INIT_STDS, per: str = "neuron") -> dict[str, Tensor]:
    """The starting bounds: ``mean + stds * std`` (unbiased) of each site's output over the rows of ``x``, per neuron
    (``per="neuron"``: the output's shape) or per channel (``per="channel"``: over the rows and every position of a
    convolution's channel, shape ``[C, 1, 1]``; a linear layer's neurons are its channels)."""
    if per not in ("neuron", "channel"):
        raise ValueError(f"Expected per to be 'neuron' or 'channel' but got {per!r}")
    acts = activations(model, x, sites)
    if per == "neuron":
        return {s: a.mean(0) + stds * a.std(0) for s, a in acts.items()}
    pooled = {s: a.transpose(0, 1).flatten(1) for s, a in acts.items()}  # [C, rows x positions]
    return {s: (v.mean(1) + stds * v.std(1)).view(-1, *(1,) * (acts[s].dim() - 2)) for s, v in pooled.items()}


def clamp_hooks(model: nn.Module, bounds: dict) -> list:
    """Forward hooks on ``model`` replacing each site's output ``a`` by ``min(a, max(bounds[site], 0))``, read from
    ``bounds`` at every call (so a caller may swap its values); the handles, for the caller to remove."""
    return [model.get_submodule(s).register_forward_hook(lambda m, i, o, s=s: torch.minimum(o, bounds[s].clamp(min=0)))
            for s in bounds]


def clamped(model: nn.Module, bounds: dict[str, Tensor]) -> nn.Module:
    """A copy of ``model`` (eval mode) clamped at ``bounds`` (detached) by hooks it keeps; ``model`` is untouched."""
    net = copy.deepcopy(model).eval()
    clamp_hooks(net, {s: b.detach().clone() for s, b in bounds.items()})
    return net


def accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def bound_size(bounds: dict[str, Tensor]) -> Tensor:
    """``sum_l mean(max(b_l, 0))``: the paper's regulariser."""
    return sum(b.clamp(min=0).mean() for b in bounds.values())


def tighten(model: nn.Module, x: Tensor, y: Tensor, steps: int = STEPS, lr: float = LR,
            acc_degrade: float = ACC_DEGRADE, sites=SITES, per: str = "neuron",
            valid_share: float = VALID_SHARE) -> tuple[dict[str, Tensor], dict]:
    """The tightened bounds of ``model`` on the repair set ``(x, y)`` (the module docstring, 1-2; at ``sites``, a bound
    per neuron or per channel as :func:`start_bounds`, ``valid_share`` of each class to check), and
    ``{"valid0", "valid", "tight", "best_step"}``; ``model``'s weights are neither trained nor changed."""
    train, valid = split_per_class(y, valid_share)
    xt, yt, xv, yv = x[train], y[train], x[valid], y[valid]
    net = copy.deepcopy(model).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    valid0 = accuracy(net, xv, yv)
    params = {s: b.clone().requires_grad_(True) for s, b in start_bounds(net, xt, sites, per=per).items()}
    start = float(bound_size(params).detach())
    holder = dict(params)
    handles = clamp_hooks(net, holder)
    opt = torch.optim.Adam(params.values(), lr=lr, betas=BETAS)
    cost, ups, downs, resets = COST, 0, 0, 0
    best, best_size, best_step, acc = None, float("inf"), -1, valid0
    try:
        for step in range(steps):
            loss = F.cross_entropy(net(xt), yt) + cost * bound_size(params)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                acc, size = accuracy(net, xv, yv), float(bound_size(params))
            ok = acc >= valid0 - acc_degrade
            if ok and size < best_size:
                best, best_size, best_step = {s: b.detach().clamp(min=0) for s, b in params.items()}, size, step
            resets = resets + 1 if cost < COST and ok else 0
            if resets >= PATIENCE:
                cost, ups, downs, resets = COST, 0, 0, 0
            ups, downs = (ups + 1, 0) if ok else (0, downs + 1)
            if ups >= PATIENCE:
                ups, cost = 0, cost * UP
            if downs >= PATIENCE:
                downs, cost = 0, cost / DOWN
    finally:
        for h in handles:
            h.remove()
    if best is None:
        best = {s: b.detach().clamp(min=0) for s, b in params.items()}
        best_size = float(bound_size(best))
    return best, {"valid0": round(valid0, 4), "valid": round(accuracy(clamped(model, best), xv, yv), 4),
                  "tight": round(best_size / start, 4), "best_step": best_step}


def clipped_share(model: nn.Module, bounds: dict[str, Tensor], x: Tensor) -> float:
    """The share of the sites' activations on ``x`` that the clamp at ``bounds`` lowers."""
    acts = activations(model, x, list(bounds))
    over = sum(int((a > bounds[s].clamp(min=0)).sum()) for s, a in acts.items())
    return over / sum(a.numel() for a in acts.values())


def run_fold(case: bp.Case, fold: int, digits, methods: list[str], out: Path, done: set) -> None:
    """Every missing record of one fold model."""

    def per_fold(f: Fold, x: Tensor, y: Tensor, seed: int):
        memo: dict[float, tuple] = {}

        def repaired(m: str) -> tuple[nn.Module, dict]:
            base, lr = method_parts(m)
            if base == "unit:init":
                train, _ = split_per_class(y)
                bounds, extra = start_bounds(f.model, x[train]), {}
            else:
                if lr not in memo:
                    memo[lr] = tighten(f.model, x, y, lr=lr)
                bounds, extra = memo[lr]
            model = clamped(f.model, bounds)
            if base == "unit+ft":
                model = peers.repair_with_terms(model, [], x, y, bp.REPAIR_EPOCHS, seed, lr=bp.REPAIR_LR)
            clean = f.data.x_eval
            return model, {**extra, "clipped": round(clipped_share(f.model, bounds, clean), 5)}

        return repaired

    fold_records(case, fold, digits, methods, out, done, per_fold)


def with_default(out: Path, default: Path, merged: Path) -> Path:
    """``merged``: the study's records and the default ``trigger=None`` repair's (``method == "reversed"``) from
    ``default`` (the same fold models), for one summary."""
    rows = out.read_text().splitlines() if out.exists() else []
    if default.exists():
        rows += [line for line in default.read_text().splitlines() if json.loads(line)["method"] == "reversed"]
    merged.write_text("".join(r + "\n" for r in rows))
    return merged


def main() -> None:
    trigger_free_study(__doc__, "unit", "UNIT", METHODS, "UNIT methods (see the docstring)", method_parts, run_fold)
    args = study_parser(__doc__, "unit", "").parse_known_args()[0]
    cases = {"dev": bp.DEV_CASES, "dev2": bp.DEV2_CASES}[args.set]
    table = [m for m in args.table.split(",") if m]
    default = CACHE / DEFAULT_RECORDS.format(set=args.set)
    print(f"\nWith the default trigger=None repair ('reversed') from {default.name} (the cases it ran on):\n")
    with tempfile.TemporaryDirectory() as tmp:
        merged = with_default(CACHE / f"unit-{args.set}-{args.tag}.jsonl", default, Path(tmp) / "merged.jsonl")
        print(summary(cases, merged, [*table, "reversed"] if table else []))


if __name__ == "__main__":
    main()
