"""Reconstructive Neuron Pruning (Li et al., ICML 2023, "Reconstructive Neuron Pruning for Backdoor Defense") as a
detection-free repair, alone and before the default ``trigger=None`` repair, on the protocol's development fold
models only (issue 17).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/backdoor_rnp.py --set dev|dev2 [--cases 0-11,16-17] [--folds 0,1,2,3,4]
        [--configs 0.2:0.01:0.2:20,...] [--repair rnp:0.2:0.01:0.2:20@k4,...] [--reversed] [--random] [--tag rnp]
        [--summary-only] [--table METHOD,...]

(RESULTS.md, "Reconstructive neuron pruning, development sets only", gives the commands of the recorded runs.)

A study, not package API and not a default. The test set is refused: nothing here was chosen to be measured on it.

For each fold model (``benchmarks/.backdoor_cache/models``, trained as ``bench_backdoor_protocol.py`` does where
missing) and the fold's clean 10% repair set (143-144 images), RNP with a config ``floor:unlearn_lr:mask_lr:epochs``:

1. **Unlearn.** A copy of the model takes gradient *ascent* steps on the repair set's cross-entropy (SGD, momentum 0.9,
   weight decay 5e-4, batch 32, the paper's optimiser) until its accuracy on the repair set is at most ``floor``
   (checked after every step; at most 20 epochs).
2. **Recover.** On the unlearned weights, held fixed, one mask value per unit (the output channels of ``conv1`` and
   ``conv2``, the neurons of ``fc1``: 16 + 32 + 64 = 112 units; the unit's whole output, bias included, is multiplied)
   starts at 1 and is learned by SGD (``mask_lr``, momentum 0.9, batch 32) on the repair set's cross-entropy for
   ``epochs`` epochs, clipped to [0, 1] after every step.
3. **Prune** in the *original* model the units whose mask is below a threshold (method suffix ``@t<threshold>``) or
   the ``k`` units of lowest mask (``@k<k>``): their weights and bias set to zero.

Methods recorded (one record per fold and method, in ``bench_backdoor_protocol.py``'s format, so
``benchmarks/backdoor_report.pooled`` pools them): ``none`` (before), ``rnp:<config>@t<t>`` / ``@k<k>`` (RNP alone,
with ``pruned``: the number of units), ``<rnp method>+reversed`` (``--repair``: the pruned model, its pruned units held
at zero, then the default ``trigger=None`` repair of the protocol: ``BackdoorSuppressionTerm()`` set up on the pruned
model, 20 epochs, Adam 4e-3, batch 32), ``reversed`` (``--reversed``: that repair of the unpruned model, the
protocol's ``reversed`` row), and ``random@k<k>`` (``--random``: the control, k units drawn at random, one seeded draw
per fold). Records go to ``benchmarks/.backdoor_cache/rnp-<set>-<tag>.jsonl`` (resumed where a run
stopped). The summary prints, per method, the patch cases at pooled ASR <= 2% and at Δ >= −1 point, the mean Δ and
ASR, the clean cases' mean and worst Δ (issue target: a loss of at most 0.5 point), and the mean units pruned.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import backdoor_peers as peers  # noqa: E402
from benchmarks import backdoor_protocol as bp  # noqa: E402
from benchmarks.backdoor_peers import _accuracy  # noqa: E402
from benchmarks.backdoor_report import load, pooled  # noqa: E402
from benchmarks.bench_backdoor_protocol import CACHE, Fold, _done, _pick, reversed_term, scores  # noqa: E402

UNITS = ("conv1", "conv2", "fc1")
THRESHOLDS = (0.05, 0.1, 0.2, 0.3, 0.5)
KS = (1, 2, 4, 8)
#: floor:unlearn_lr:mask_lr:epochs. The paper's settings are floor 0.2, unlearning lr 0.01, mask lr 0.2, 20 epochs.
CONFIGS = ("0.2:0.01:0.2:20", "0.5:0.01:0.2:20", "0.2:0.001:0.01:20", "0.5:0.001:0.01:20")


def config_values(config: str) -> tuple[float, float, float, int]:
    """``(floor, unlearn_lr, mask_lr, epochs)`` of an RNP config ``floor:unlearn_lr:mask_lr:epochs``; a ValueError
    naming the config and the form otherwise."""
    parts = config.split(":")
    try:
        if len(parts) != 4 or int(parts[3]) < 1:
            raise ValueError
        return float(parts[0]), float(parts[1]), float(parts[2]), int(parts[3])
    except ValueError:
        raise ValueError(f"Expected an RNP config floor:unlearn_lr:mask_lr:epochs (e.g. {CONFIGS[0]}: three numbers and "
                         f"a whole number of epochs >= 1) but got {config!r}") from None


def method_parts(method: str) -> tuple[str, str]:
    """``(config, rule)`` of an RNP method ``rnp:<config>@t<threshold>`` or ``rnp:<config>@k<k>`` (``--repair``'s
    names); a ValueError naming the method and the form otherwise."""
    prefix, _, rest = method.partition(":")
    config, at, rule = rest.partition("@")
    try:
        if prefix != "rnp" or not at:
            raise ValueError
        config_values(config)
        if not (rule[:1] == "t" and float(rule[1:]) >= 0 or rule[:1] == "k" and int(rule[1:]) >= 1):
            raise ValueError
    except ValueError:
        raise ValueError(f"Expected each --repair method to be rnp:<floor:unlearn_lr:mask_lr:epochs>@t<threshold> or "
                         f"@k<k> (e.g. rnp:{CONFIGS[0]}@k4: RNP, then the trigger=None repair) but got {method!r}") from None
    return config, rule


def unlearn(model: nn.Module, x: torch.Tensor, y: torch.Tensor, floor: float, lr: float, seed: int,
            batch: int = 32, max_epochs: int = 20) -> tuple[nn.Module, int]:
    """A copy of ``model`` after gradient-ascent steps on ``CE(x, y)`` until its accuracy on ``x`` is <= ``floor``;
    and the number of steps taken."""
    m = copy.deepcopy(model).train()
    opt = torch.optim.SGD(m.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    g = torch.Generator().manual_seed(seed)
    steps = 0
    for _ in range(max_epochs):
        for idx in torch.randperm(len(y), generator=g).split(batch):
            loss = -F.cross_entropy(m(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            steps += 1
            if _accuracy(m.eval(), x, y) <= floor:
                return m.eval(), steps
            m.train()
    return m.eval(), steps


def recover(unlearned: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, lr: float, seed: int,
            batch: int = 32) -> torch.Tensor:
    """The learned unit masks ``[112]`` (in :data:`UNITS` order) of the unlearned model, its weights held fixed."""
    m = copy.deepcopy(unlearned).eval()
    for p in m.parameters():
        p.requires_grad_(False)
    mods = [m.get_submodule(n) for n in UNITS]
    masks = [torch.ones(mod.weight.shape[0], requires_grad=True) for mod in mods]

    def hook(k: int):
        return lambda mod, inp, out: out * masks[k].view((1, -1) + (1,) * (out.dim() - 2))

    handles = [mod.register_forward_hook(hook(k)) for k, mod in enumerate(mods)]
    opt = torch.optim.SGD(masks, lr=lr, momentum=0.9)
    g = torch.Generator().manual_seed(seed + 1)
    try:
        for _ in range(epochs):
            for idx in torch.randperm(len(y), generator=g).split(batch):
                loss = F.cross_entropy(m(x[idx]), y[idx])
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                with torch.no_grad():
                    for t in masks:
                        t.clamp_(0, 1)
    finally:
        for h in handles:
            h.remove()
    return torch.cat([t.detach() for t in masks])


def pruned_units(mask: torch.Tensor, rule: str) -> torch.Tensor:
    """The units (bool ``[112]``) a rule prunes: ``t<threshold>`` (mask below it) or ``k<k>`` (the k lowest)."""
    if rule.startswith("t"):
        return mask < float(rule[1:])
    off = torch.zeros_like(mask, dtype=torch.bool)
    off[mask.argsort(stable=True)[: int(rule[1:])]] = True
    return off


def pruned_model(model: nn.Module, off: torch.Tensor) -> nn.Module:
    """A copy of ``model`` whose units ``off`` are held at zero: their weights and bias set to zero, and a forward
    hook that zeroes their output, so that later training (whose gradient there is then zero) keeps them off."""
    m = copy.deepcopy(model)
    start = 0
    with torch.no_grad():
        for name in UNITS:
            mod = m.get_submodule(name)
            keep = (~off[start : start + mod.weight.shape[0]]).float()
            start += mod.weight.shape[0]
            mod.weight.mul_(keep.view((-1,) + (1,) * (mod.weight.dim() - 1)))
            mod.bias.mul_(keep)
            mod.register_forward_hook(lambda mod, inp, out, keep=keep: out * keep.view((1, -1) + (1,) * (out.dim() - 2)))
    return m.eval()


def reversed_repair(model: nn.Module, x: torch.Tensor, y: torch.Tensor, seed: int) -> tuple[nn.Module, list[int]]:
    """The protocol's default ``trigger=None`` repair of ``model`` (term set up on it), and the flagged classes."""
    term = reversed_term(model, x, seed, {})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return peers.repair_with_terms(model, [term], x, y, bp.REPAIR_EPOCHS, seed, setup=False, lr=bp.REPAIR_LR), [
            t.target for t in term.triggers]


def run_fold(case: bp.Case, fold: int, digits, configs: list[str], repair: list[str], with_reversed: bool, out: Path,
             done: set, with_random: bool = False) -> None:
    """Every missing record of one fold model."""
    repair_configs = {method_parts(m)[0] for m in repair}
    rules = [f"t{t:g}" for t in THRESHOLDS] + [f"k{k}" for k in KS]
    todo = [c for c in dict.fromkeys([*configs, *repair_configs]) if (case.seed, fold, f"rnp:{c}@{rules[0]}") not in done]
    todo_repair = [m for m in repair if (case.seed, fold, f"{m}+reversed") not in done]
    need = ["none"] if (case.seed, fold, "none") not in done else []
    need += ["reversed"] if with_reversed and (case.seed, fold, "reversed") not in done else []
    need += ["random"] if with_random and (case.seed, fold, f"random@k{KS[0]}") not in done else []
    if not (todo or todo_repair or need):
        return
    f = Fold(case, fold, digits, {})
    x, y = f.repair_set(bp.REPAIR_FRACTION)
    seed = f.data.train_seed
    records, masks = [], {}
    if "none" in need:
        records.append({**scores(f.model, f.before, f.trigger, f.data), "method": "none", "seconds": 0.0})
    if "random" in need:  # the control: k units drawn at random (seeded by the fold), nested over k
        total = sum(f.model.get_submodule(n).weight.shape[0] for n in UNITS)
        order = torch.randperm(total, generator=torch.Generator().manual_seed(seed))
        for k in KS:
            off = torch.zeros(total, dtype=torch.bool)
            off[order[:k]] = True
            records.append({**scores(pruned_model(f.model, off), f.before, f.trigger, f.data), "method": f"random@k{k}",
                            "pruned": k, "seconds": 0.0})
    for c in dict.fromkeys([*todo, *(method_parts(m)[0] for m in todo_repair)]):
        floor, ulr, mlr, epochs = config_values(c)
        t0 = time.perf_counter()
        unlearned, steps = unlearn(f.model, x, y, floor, ulr, seed)
        masks[c] = recover(unlearned, x, y, epochs, mlr, seed)
        seconds = round(time.perf_counter() - t0, 2)
        if c in todo:
            for rule in rules:
                off = pruned_units(masks[c], rule)
                rec = scores(pruned_model(f.model, off), f.before, f.trigger, f.data)
                records.append({**rec, "method": f"rnp:{c}@{rule}", "pruned": int(off.sum()), "steps": steps, "seconds": seconds})
            records[-1]["mask"] = [round(float(v), 3) for v in masks[c]]
    for m in todo_repair:
        c, rule = method_parts(m)
        t0 = time.perf_counter()
        off = pruned_units(masks[c], rule)
        model, flagged = reversed_repair(pruned_model(f.model, off), x, y, seed)
        records.append({**scores(model, f.before, f.trigger, f.data), "method": f"{m}+reversed", "pruned": int(off.sum()),
                        "flagged": flagged, "seconds": round(time.perf_counter() - t0, 2)})
    if "reversed" in need:
        t0 = time.perf_counter()
        model, flagged = reversed_repair(f.model, x, y, seed)
        records.append({**scores(model, f.before, f.trigger, f.data), "method": "reversed", "flagged": flagged,
                        "seconds": round(time.perf_counter() - t0, 2)})
    with out.open("a") as fh:
        for rec in records:
            fh.write(json.dumps({"seed": case.seed, "fold": fold, **rec}) + "\n")
    print(f"{case.name} fold {fold}: {len(records)} records", flush=True)


def summary(cases, path: Path, table: list[str]) -> str:
    """Per method: patch cases at ASR <= 2% / Δ >= −1 (pooled folds), mean Δ and ASR; clean cases' mean / worst Δ;
    units pruned (only where a record says ``pruned``: the studies that prune); and, for the ``table`` methods, every
    case."""
    records = load(path)
    methods = [m for m in dict.fromkeys(k[2] for k in records) if m != "none"]
    prunes = any("pruned" in r for r in records.values())
    lines = ["| method | patch: ASR ≤ 2% | Δ ≥ −1 | mean Δ | mean ASR | clean: mean Δ | worst Δ |"
             f"{' units pruned (mean) |' * prunes} s per fold (median) |", "|---|---|---|---|---|---|---|" + "---|" * (1 + prunes)]
    for m in methods:
        rs = [r for k, r in records.items() if k[2] == m]
        units = [r["pruned"] for r in rs if "pruned" in r]
        secs = sorted(r["seconds"] for r in rs)
        pruned = f" {sum(units) / len(units) if units else 0:.1f} |" * prunes
        lines.append(f"| {m} | {method_cells(cases, records, m)} |{pruned} {secs[len(secs) // 2]:.1f} |")
    if table:
        lines += ["", f"| case | before: acc / ASR | {' | '.join(table)} |", "|---|---|" + "---|" * len(table)]
        for c in cases:
            base = pooled(records, c, "none")
            if base is None or c.family == "blended":
                continue
            cells = [(lambda p: "–" if p is None else f"{p['delta']:+.2f} / {p['asr']:.1f}" if "asr" in p else f"{p['delta']:+.2f}")(pooled(records, c, m))
                     for m in table]
            before = f"{base['acc']:.1f} / {base['asr']:.1f}" if "asr" in base else f"{base['acc']:.1f}"
            lines.append(f"| {c.name} | {before} | {' | '.join(cells)} |")
    return "\n".join(lines)


def method_cells(cases, records: dict, method: str) -> str:
    """The summary's cells of one method over ``cases`` (``pooled`` records): patch cases at ASR <= 2% / Δ >= −1, mean
    Δ and ASR; clean cases' mean / worst Δ ("–" where a family has none)."""
    ps = [p for c in cases if c.family == "patch" and (p := pooled(records, c, method)) is not None]
    cs = [p for c in cases if c.family == "clean" and (p := pooled(records, c, method)) is not None]
    cell = (f"{sum(p['asr'] <= 2 for p in ps)}/{len(ps)} | {sum(p['delta'] >= -1 for p in ps)}/{len(ps)} | "
            f"{sum(p['delta'] for p in ps) / len(ps):+.2f} | {sum(p['asr'] for p in ps) / len(ps):.1f}") if ps else "– | – | – | –"
    clean = f"{sum(p['delta'] for p in cs) / len(cs):+.2f} | {min(p['delta'] for p in cs):+.2f}" if cs else "– | –"
    return f"{cell} | {clean}"


def write_record(out: Path, case: bp.Case, fold: int, method: str, model: nn.Module, f: Fold, extra: dict,
                 t0: float) -> None:
    """Append one repaired fold model's record to the study's ``out`` (JSON lines): its scores, the method's ``extra``
    fields and the CPU seconds since ``t0`` (one reading for ``cpu`` and ``seconds``), as the SAU and SEAM studies write."""
    rec = {"seed": case.seed, "fold": fold, "method": method, **scores(model, f.before, f.trigger, f.data), **extra,
           "cpu": (cpu := round(time.process_time() - t0, 2)), "seconds": cpu}
    with out.open("a") as fh:
        fh.write(json.dumps(rec) + "\n")


def fold_records(case: bp.Case, fold: int, digits, methods: list[str], out: Path, done: set,
                 per_fold: Callable[[Fold, torch.Tensor, torch.Tensor, int], Callable[[str], tuple[nn.Module, dict]]]) -> None:
    """Every missing record of one fold model, as the SAU, SEAM and BTI-DBF studies write them: ``none`` (the model as
    trained), ``ft`` (plain fine-tuning) and each of ``methods`` by ``per_fold(fold model, repair x, repair y, seed)``,
    called once a fold (what its methods share, cached in it), which gives a method's repaired model and ``extra``
    record fields."""
    todo = [m for m in ["none", *methods] if (case.seed, fold, m) not in done]
    if not todo:
        return
    f = Fold(case, fold, digits, {})
    x, y = f.repair_set(bp.REPAIR_FRACTION)
    seed = f.data.train_seed
    repaired = per_fold(f, x, y, seed)
    for m in todo:
        t0 = time.process_time()
        extra: dict = {}
        if m == "none":
            model = f.model
        elif m == "ft":
            model = peers.repair_with_terms(f.model, [], x, y, bp.REPAIR_EPOCHS, seed, lr=bp.REPAIR_LR)
        else:
            model, extra = repaired(m)
        write_record(out, case, fold, m, model, f, extra, t0)
    print(f"{case.name} fold {fold}: {len(todo)} records", flush=True)


def trigger_free_study(doc: str, tag: str, label: str, methods: list[str], methods_help: str,
                       parts: Callable[[str], object], run_fold: Callable[..., None]) -> None:
    """Run a study of methods whose settings name their own repair (SEAM, BTI-DBF, SFT) from its command line
    (:func:`method_study`; ``--repair`` and ``--reversed`` refused, naming ``label``): ``run_fold(case, fold, digits,
    methods, out, done)`` over the folds asked for, records in ``<tag>-<set>-<--tag>.jsonl``, then the summary."""
    parser, args, chosen = method_study(doc, tag, "not used by this study (refused)", methods, methods_help, parts)
    if args.repair or args.reversed:
        parser.error(f"--repair and --reversed are not used by this study (each {label} setting names its own repair) "
                     f"but got --repair {args.repair!r}, --reversed {args.reversed}")
    out = CACHE / f"{tag}-{args.set}-{args.tag}.jsonl"
    cases = study_folds(args, out, lambda case, fold, digits, done: run_fold(case, fold, digits, chosen, out, done))
    print(summary(cases, out, [m for m in args.table.split(",") if m]))


def method_study(doc: str, tag: str, repair: str, methods: list[str], methods_help: str,
                 parts: Callable[[str], object]) -> tuple[argparse.ArgumentParser, argparse.Namespace, list[str]]:
    """A repair study's command line (:func:`study_parser` with its ``--methods``, checked by ``parts``, and ``--ft``):
    the parser (for its own refusals), the arguments and the methods, plain fine-tuning first with ``--ft``."""
    parser = study_parser(doc, tag, repair)
    parser.add_argument("--methods", default=",".join(methods), help=methods_help)
    parser.add_argument("--ft", action="store_true", help="also plain fine-tuning")
    args, (chosen,) = study_lists(parser, {"methods": parts})
    return parser, args, [*(["ft"] if args.ft else []), *chosen]


def study_parser(doc: str, tag: str, repair: str) -> argparse.ArgumentParser:
    """The command line shared by the development-set studies of units (this one, ``backdoor_clp.py``): ``--set``
    (development sets only), ``--cases``, ``--folds``, ``--repair`` (help ``repair``: the study's methods followed by
    the default ``trigger=None`` repair), ``--reversed``, ``--tag`` (default ``tag``), ``--table``, ``--summary-only``;
    each study adds its own options."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--set", choices=("dev", "dev2"), default="dev", help="development sets only; the test set is refused")
    parser.add_argument("--cases", default="", help="case positions, e.g. '0-11,16-17' (default: all; blended cases are skipped)")
    parser.add_argument("--folds", default="0,1,2,3,4")
    parser.add_argument("--repair", default="", help=repair)
    parser.add_argument("--reversed", action="store_true", help="also the default trigger=None repair of the unpruned model")
    parser.add_argument("--tag", default=tag)
    parser.add_argument("--table", default="", help="methods shown case by case in the summary")
    parser.add_argument("--summary-only", action="store_true")
    return parser


def study_lists(parser: argparse.ArgumentParser, checks: dict) -> tuple[argparse.Namespace, list[list[str]]]:
    """The parsed arguments, and each comma-separated option named in ``checks`` as a list of names, every name checked
    by its function (a ValueError becomes argparse's error, naming it) before anything else runs: a name that no
    study method is used to fail only when its fold came, and the run's set-up (:func:`study_folds`) must not have
    touched the process before a refusal."""
    args = parser.parse_args()
    lists = [[n for n in getattr(args, option).split(",") if n] for option in checks]
    try:
        for names, check in zip(lists, checks.values()):
            for n in names:
                check(n)
    except ValueError as err:
        parser.error(str(err))
    return args, lists


def study_folds(args: argparse.Namespace, out: Path, run) -> tuple:  # noqa: ANN001 - run(case, fold, digits, done)
    """Sets the process up for a run (warnings and Lightning's logs off, one thread) and, unless ``--summary-only``,
    calls ``run(case, fold, digits, done)`` on every fold of the chosen cases but the blended ones (``done``: the
    ``(seed, fold, method)`` already in ``out``); returns the set's cases. Call it after the study's options are
    checked, so that a refused name leaves the process as it was."""
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    torch.set_num_threads(1)
    cases = {"dev": bp.DEV_CASES, "dev2": bp.DEV2_CASES}[args.set]
    if not args.summary_only:
        out.parent.mkdir(parents=True, exist_ok=True)
        done = _done(out)
        digits = bp.load_all_digits()
        for case in _pick(cases, args.cases):
            if case.family == "blended":
                continue
            for fold in map(int, args.folds.split(",")):
                run(case, fold, digits, done)
    return cases


def main() -> None:
    parser = study_parser(__doc__, "rnp", "RNP methods (rnp:<config>@t<t> or @k<k>) followed by the trigger=None repair")
    parser.add_argument("--configs", default=",".join(CONFIGS), help="RNP configs floor:unlearn_lr:mask_lr:epochs ('' for none)")
    parser.add_argument("--random", action="store_true", help="also the control: the k units pruned drawn at random")
    args, (configs, repair) = study_lists(parser, {"configs": config_values, "repair": method_parts})
    out = CACHE / f"rnp-{args.set}-{args.tag}.jsonl"
    cases = study_folds(args, out, lambda case, fold, digits, done: run_fold(case, fold, digits, configs, repair, args.reversed,
                                                                            out, done, args.random))
    print(summary(cases, out, [m for m in args.table.split(",") if m]))


if __name__ == "__main__":
    main()
