"""Channel Lipschitzness-based Pruning (CLP; Zheng, Zhang, Wang, Li, Xia, ECCV 2022, "Data-free Backdoor Removal based
on Channel Lipschitzness") as a detection-free repair, alone and before the default ``trigger=None`` repair, on the
protocol's development fold models only (issue 17).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/backdoor_clp.py --set dev|dev2 [--cases 0-11,16-17] [--folds 0,1,2,3,4]
        [--rules clp:uclc:all:3,...] [--repair clp:uclc:all:2,...] [--reversed] [--diagnose] [--tag clp]
        [--summary-only] [--table METHOD,...]

(RESULTS.md, "Channel Lipschitzness pruning, development sets only", gives the commands of the recorded runs.)

A study, not package API and not a default. The test set is refused: nothing here was chosen to be measured on it.

For each fold model (``benchmarks/.backdoor_cache/models``, trained as ``bench_backdoor_protocol.py`` does where
missing), a score per unit (the 16 output channels of ``conv1``, the 32 of ``conv2`` and the 64 neurons of ``fc1``,
the units of ``benchmarks/backdoor_rnp.py``):

- ``uclc`` (the paper's, data-free): the upper bound of the channel's Lipschitz constant, the largest singular value
  of its weights ``W_k`` reshaped ``[in channels, kh · kw]`` (a Linear neuron: its weight row, whose largest singular
  value is its L2 norm); a ``BatchNorm2d`` after the layer is folded in, ``W_k · |gamma_k| / sqrt(var_k + eps)``
  (``DigitsCNN(batch_norm=True)``'s ``bn1``; the protocol's models have none);
- ``peak`` (a data-aware variant): on the fold's clean 10% repair set (143-144 images), the unit's response to an
  image (after the layer's ReLU, its largest value over positions for a conv channel), its largest value over the
  images divided by its mean over them (0 for a unit that never fires).

A rule ``clp:<score>:<layers>:<u>`` prunes, within each layer of ``<layers>`` (``all``: the three; ``convs``: the two
conv layers, the paper's choice; or unit layer names joined by ``+``, e.g. ``conv2+fc1``), the units whose score is
above ``mean + u · std`` of that layer's scores (``std`` with Bessel's correction, as ``torch.std`` in the authors'
code; the paper uses u = 3 and tunes 2-4): their weights and bias set to zero (``backdoor_rnp.pruned_model``).

Methods recorded (one record per fold and method, in ``bench_backdoor_protocol.py``'s format, so
``benchmarks/backdoor_report.pooled`` pools them): ``none`` (before), each rule alone (with ``pruned``: the number of
units, and ``units``: which), ``<rule>+reversed`` (``--repair``: the pruned model, its pruned units held at zero, then
the protocol's default ``trigger=None`` repair, ``backdoor_rnp.reversed_repair``; where the rule prunes nothing the
record is the fold's ``reversed`` row, which the same call would reproduce exactly, with ``"same_as": "reversed"``; where it prunes the
same units as another rule's ``+reversed`` record of the fold, that record, ``"same_as"`` naming it)
and ``reversed`` (that repair of the unpruned model; run with ``--reversed`` or wherever a ``+reversed`` row needs
it). ``seconds`` is the time to score the units (and, for ``+reversed`` / ``reversed``, the repair). Records go to
``benchmarks/.backdoor_cache/clp-<set>-<tag>.jsonl`` (resumed where a run stopped).

``--diagnose`` (the known trigger used to explain the result, not by any rule) records, per fold model whose backdoor
was learned (ASR >= 50% before), the unit whose ablation alone lowers the ASR most, that drop, its within-layer
z-score under each score and how many of the 112 units score higher; and the correlation over the 112 units between
the ablation's ASR drop and the z-score (to ``clp-<set>-<tag>-diagnose.jsonl``).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import backdoor_protocol as bp  # noqa: E402
from benchmarks.backdoor_report import load  # noqa: E402
from benchmarks.backdoor_rnp import (  # noqa: E402
    UNITS,
    pruned_model,
    reversed_repair,
    study_folds,
    study_lists,
    study_parser,
    summary,
)
from benchmarks.bench_backdoor_protocol import CACHE, Fold, scores  # noqa: E402

SCORES = ("uclc", "peak")
LAYER_SETS = {"all": UNITS, "convs": ("conv1", "conv2")}
US = (1.5, 2.0, 2.5, 3.0, 3.5, 4.0)
#: layer unit -> the module after it whose ReLU output ``peak`` reads, and the BatchNorm folded into ``uclc``
RELU = {"conv1": "relu1", "conv2": "relu2", "fc1": "relu3"}
NORM = {"conv1": "bn1"}
RULES = tuple(f"clp:{s}:{layers}:{u:g}" for s in SCORES for layers in (*LAYER_SETS, *UNITS) for u in US)


def rule_parts(rule: str) -> tuple[str, tuple[str, ...], float]:
    """``(score, layers, u)`` of a rule ``clp:<score>:<layers>:<u>``; a ValueError naming the rule and the form
    otherwise."""
    parts = rule.split(":")
    try:
        if len(parts) != 4 or parts[0] != "clp" or parts[1] not in SCORES:
            raise ValueError
        layers = LAYER_SETS.get(parts[2]) or tuple(parts[2].split("+"))
        if not set(layers) <= set(UNITS) or float(parts[3]) < 0:
            raise ValueError
        return parts[1], layers, float(parts[3])
    except ValueError:
        raise ValueError(f"Expected a CLP rule clp:<score>:<layers>:<u> (score one of {SCORES}; layers 'all', 'convs' or "
                         f"names of {UNITS} joined by '+'; u >= 0; e.g. clp:uclc:all:3) but got {rule!r}") from None


def uclc(model: nn.Module) -> list[torch.Tensor]:
    """Per layer of :data:`UNITS`, each unit's upper bound of its channel Lipschitz constant (the largest singular value
    of its weights ``[in, kh · kw]``, a following BatchNorm folded in)."""
    out = []
    for name in UNITS:
        w = model.get_submodule(name).weight.detach()
        w = w.reshape(w.shape[0], w.shape[1], -1) if w.dim() == 4 else w.reshape(w.shape[0], 1, -1)
        s = torch.linalg.matrix_norm(w, ord=2)
        norm = getattr(model, NORM.get(name, ""), None)
        if isinstance(norm, nn.BatchNorm2d):
            s = s * norm.weight.detach().abs() / (norm.running_var + norm.eps).sqrt()
        out.append(s)
    return out


def activations(model: nn.Module, x: torch.Tensor, sites) -> dict[str, torch.Tensor]:
    """Each of the modules ``sites``' output on ``x`` (no grad), read by forward hooks removed before returning (also
    ``benchmarks/backdoor_unit.py``'s)."""
    acts: dict[str, torch.Tensor] = {}
    handles = [model.get_submodule(r).register_forward_hook(lambda m, i, o, r=r: acts.__setitem__(r, o.detach())) for r in sites]
    try:
        with torch.no_grad():
            model(x)
    finally:
        for h in handles:
            h.remove()
    return acts


def peak(model: nn.Module, x: torch.Tensor) -> list[torch.Tensor]:
    """Per layer of :data:`UNITS`, each unit's largest response over the clean images ``x`` divided by its mean response
    (a conv channel's response to an image: its largest value over positions after the ReLU; 0 where the mean is 0)."""
    acts = activations(model, x, RELU.values())
    out = []
    for name in UNITS:
        a = acts[RELU[name]]
        a = a.flatten(2).amax(2) if a.dim() == 4 else a
        mean = a.mean(0)
        out.append(torch.where(mean > 0, a.amax(0) / mean.clamp_min(1e-12), torch.zeros_like(mean)))
    return out


def pruned_by(layer_scores: list[torch.Tensor], layers: tuple[str, ...], u: float) -> torch.Tensor:
    """The units (bool ``[112]``, :data:`UNITS` order) whose score exceeds ``mean + u · std`` of their layer, in
    ``layers``."""
    return torch.cat([s > s.mean() + u * s.std() if name in layers else torch.zeros_like(s, dtype=torch.bool)
                      for name, s in zip(UNITS, layer_scores)])


def z_scores(layer_scores: list[torch.Tensor]) -> torch.Tensor:
    """Each unit's score in standard deviations of its layer (``[112]``)."""
    return torch.cat([(s - s.mean()) / s.std() for s in layer_scores])


def diagnose(f: Fold, x: torch.Tensor) -> dict | None:
    """The ablation diagnosis of one fold model (module docstring), or None if its backdoor was not learned."""
    keep = f.data.y_eval != f.trigger.target
    xt = f.trigger.apply(f.data.x_eval[keep])
    with torch.no_grad():
        asr = (f.model(xt).argmax(1) == f.trigger.target).float().mean()
        if asr < bp.LEARNED_ASR:
            return None
        drops = []
        for name in UNITS:
            mod = f.model.get_submodule(name)
            for k in range(mod.weight.shape[0]):
                h = mod.register_forward_hook(lambda m, i, o, k=k: o.index_fill(1, torch.tensor([k]), 0.0))
                try:
                    drops.append(asr - (f.model(xt).argmax(1) == f.trigger.target).float().mean())
                finally:
                    h.remove()
    drops = torch.stack(drops)
    best = int(drops.argmax())
    rec = {"asr": round(float(asr), 4), "best": best, "drop": round(float(drops[best]), 4), "big": int((drops > 0.1).sum())}
    for name, values in (("uclc", uclc(f.model)), ("peak", peak(f.model, x))):
        z = z_scores(values)
        rec[name] = {"z": round(float(z[best]), 3), "higher": int((z > z[best]).sum()),
                     "corr": round(float(torch.corrcoef(torch.stack([drops, z]))[0, 1]), 4)}
    return rec


def run_fold(case: bp.Case, fold: int, digits, rules: list[str], repair: list[str], with_reversed: bool, out: Path,
             done: set, with_diagnosis: bool = False) -> None:
    """Every missing record of one fold model."""
    todo = [r for r in dict.fromkeys([*rules, *repair]) if (case.seed, fold, r) not in done]
    todo_repair = [r for r in repair if (case.seed, fold, f"{r}+reversed") not in done]
    need_reversed = (with_reversed or todo_repair) and (case.seed, fold, "reversed") not in done
    need_none = (case.seed, fold, "none") not in done
    diag_path = out.with_name(out.stem + "-diagnose.jsonl")
    diagnosed = {(r["seed"], r["fold"]) for r in map(json.loads, diag_path.read_text().splitlines())} if diag_path.exists() else set()
    need_diag = with_diagnosis and case.family == "patch" and (case.seed, fold) not in diagnosed
    if not (todo or todo_repair or need_reversed or need_none or need_diag):
        return
    f = Fold(case, fold, digits, {})
    x, y = f.repair_set(bp.REPAIR_FRACTION)
    seed = f.data.train_seed
    records = [{**scores(f.model, f.before, f.trigger, f.data), "method": "none", "seconds": 0.0}] if need_none else []
    layer_scores, seconds, off = {}, {}, {}
    for name in SCORES:
        t0 = time.perf_counter()
        layer_scores[name] = uclc(f.model) if name == "uclc" else peak(f.model, x)
        seconds[name] = round(time.perf_counter() - t0, 4)
    for rule in dict.fromkeys([*todo, *todo_repair]):
        score, layers, u = rule_parts(rule)
        off[rule] = pruned_by(layer_scores[score], layers, u)
        if rule in todo:
            records.append({**scores(pruned_model(f.model, off[rule]), f.before, f.trigger, f.data), "method": rule,
                            "pruned": int(off[rule].sum()), "units": off[rule].nonzero().flatten().tolist(), "seconds": seconds[score]})
    records_so_far = load(out)
    base = records_so_far.get((case.seed, fold, "reversed"))
    if need_reversed:
        t0 = time.perf_counter()
        model, flagged = reversed_repair(f.model, x, y, seed)
        base = {**scores(model, f.before, f.trigger, f.data), "method": "reversed", "flagged": flagged,
                "seconds": round(time.perf_counter() - t0, 2)}
        records.append(base)
    for rule in todo_repair:
        units = off[rule].nonzero().flatten().tolist()
        same = "reversed" if not units else next((m for (s, k, m), r in records_so_far.items() if (s, k) == (case.seed, fold)
                                                   and m.endswith("+reversed") and r.get("units") == units), None)
        if same is not None:  # the same call on the same weights: its record
            records.append({**(records_so_far[case.seed, fold, same] if units else base), "method": f"{rule}+reversed",
                            "pruned": len(units), "units": units, "same_as": same})
            continue
        t0 = time.perf_counter()
        model, flagged = reversed_repair(pruned_model(f.model, off[rule]), x, y, seed)
        records.append({**scores(model, f.before, f.trigger, f.data), "method": f"{rule}+reversed", "pruned": len(units),
                        "units": units, "flagged": flagged, "seconds": round(time.perf_counter() - t0, 2)})
    with out.open("a") as fh:
        for rec in records:
            fh.write(json.dumps({"seed": case.seed, "fold": fold, **rec}) + "\n")
    if need_diag and (rec := diagnose(f, x)) is not None:
        with diag_path.open("a") as fh:
            fh.write(json.dumps({"seed": case.seed, "fold": fold, **rec}) + "\n")
    print(f"{case.name} fold {fold}: {len(records)} records", flush=True)


def pruned_table(cases, path: Path) -> str:
    """Per method, the units pruned per fold model (mean) on the patch and on the clean models, and the fold models
    with any unit pruned."""
    records, family = load(path), {c.seed: c.family for c in cases}
    lines = ["| method | units pruned, patch models (mean) | clean models (mean) | fold models with a unit pruned: patch / clean |",
             "|---|---|---|---|"]
    for m in dict.fromkeys(k[2] for k in records):
        rs = {fam: [r["pruned"] for k, r in records.items() if k[2] == m and family.get(k[0]) == fam and "pruned" in r] for fam in ("patch", "clean")}
        if rs["patch"] or rs["clean"]:
            cells = [f"{sum(v) / len(v):.2f}" if v else "–" for v in rs.values()]
            lines.append(f"| {m} | {cells[0]} | {cells[1]} | {sum(v > 0 for v in rs['patch'])}/{len(rs['patch'])} / "
                         f"{sum(v > 0 for v in rs['clean'])}/{len(rs['clean'])} |")
    return "\n".join(lines)


def diagnosis_table(path: Path) -> str:
    """The ``--diagnose`` records summed up: per score, the median z-score of the most backdoor-carrying unit, how
    often it is the top-scoring unit of all 112, how often it would be pruned at u = 3 / 2, and the mean correlation."""
    if not path.exists():
        return ""
    recs = [json.loads(line) for line in path.read_text().splitlines()]
    lines = [f"{len(recs)} learned fold models; the unit whose ablation lowers ASR most: median drop "
             f"{sorted(r['drop'] for r in recs)[len(recs) // 2]:.2f}, units with a drop > 0.1 (median) {sorted(r['big'] for r in recs)[len(recs) // 2]}",
             "", "| score | its z-score (median) | top of the 112 | z > 3 | z > 2 | corr(ASR drop, z), mean |", "|---|---|---|---|---|---|"]
    for name in SCORES:
        z = sorted(r[name]["z"] for r in recs)
        lines.append(f"| {name} | {z[len(z) // 2]:.2f} | {sum(r[name]['higher'] == 0 for r in recs)}/{len(recs)} | "
                     f"{sum(v > 3 for v in z)}/{len(recs)} | {sum(v > 2 for v in z)}/{len(recs)} | "
                     f"{sum(r[name]['corr'] for r in recs) / len(recs):+.3f} |")
    return "\n".join(lines)


def main() -> None:
    parser = study_parser(__doc__, "clp", "CLP rules followed by the default trigger=None repair")
    parser.add_argument("--rules", default=",".join(RULES), help="CLP rules clp:<score>:<layers>:<u> measured alone ('' for none)")
    parser.add_argument("--diagnose", action="store_true", help="also the ablation diagnosis (known trigger; explains, chooses nothing)")
    args, (rules, repair) = study_lists(parser, {"rules": rule_parts, "repair": rule_parts})
    out = CACHE / f"clp-{args.set}-{args.tag}.jsonl"
    cases = study_folds(args, out, lambda case, fold, digits, done: run_fold(case, fold, digits, rules, repair, args.reversed, out,
                                                                            done, args.diagnose))
    print(summary(cases, out, [m for m in args.table.split(",") if m]))
    print("\n" + pruned_table(cases, out))
    diag = diagnosis_table(out.with_name(out.stem + "-diagnose.jsonl"))
    print("\n" + diag if diag else "")


if __name__ == "__main__":
    main()
