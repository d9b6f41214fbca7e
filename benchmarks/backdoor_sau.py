"""Shared Adversarial Unlearning (SAU; Wei, Zhang, Zhang, Wu, Zha, NeurIPS 2023, "Shared Adversarial Unlearning:
Backdoor Mitigation by Unlearning Shared Adversarial Examples") as a detection-free repair, alone and beside the default
``trigger=None`` term, on the protocol's development fold models only (issue 17).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/backdoor_sau.py --set dev|dev2 [--cases 0-11,16-17] [--folds 0,1,2,3,4]
        [--methods sau:l1-9:5:0.1,rsau:l1-9:5:0.1,...] [--reversed] [--ft] [--tag sau] [--summary-only]
        [--table METHOD,...]

(RESULTS.md, "Shared Adversarial Unlearning, development sets only", gives the commands of the recorded runs.)

A study, not package API and not a default. The test set is refused: nothing here was chosen to be measured on it.

For each fold model (``benchmarks/.backdoor_cache/models``, trained as ``bench_backdoor_protocol.py`` does where
missing), the repair is the protocol's (the fold's clean 10% repair set, 143-144 images; 20 epochs, Adam 4e-3, batch
32; ``backdoor_peers.repair_with_terms``) with, at every step, SAU's unlearning loss on the step's batch:

1. **Shared adversarial examples.** From the batch ``(x, y)``, a perturbed copy ``x'`` found by ``steps`` projected
   signed-gradient ascent steps on ``0.01 * (CE(f(x'), y) + CE(f0(x'), y)) + mean log sum_{c != y} p_f(c|x') p_f0(c|x')``
   (SAU's attack: both the model being repaired ``f`` and the frozen pre-repair model ``f0`` fooled, *to the same wrong
   class*; the second part is the log-probability that they agree on a wrong label). The budget, per image:
   - ``linf<eps>``: SAU's own, ``||x' - x||_inf <= eps`` (random start in the box; step ``2.5 eps / steps``);
   - ``l1-<k>``: a patch-like budget for the protocol's stamps, ``x' = (1 - m) x + m p`` with a mask ``m`` in [0, 1]
     of ``|m|_1 <= k`` pixels and a pattern ``p`` in [0, 1] (a random start of ``k / 2`` pixels of mask and a random
     binary pattern; steps 0.2 on ``m``, 0.5 on ``p``; ``m`` clipped to [0, 1] then scaled down to ``k``).
2. **Unlearning.** ``weight * sum_i s_i * -log(1 - p_f(c0_i | x'_i)) / B`` where ``c0_i = argmax f0(x'_i)``, and
   ``s_i`` is 1 on the *shared* examples (``argmax f(x'_i) == c0_i != y_i``) and 0 elsewhere (SAU's loss; ``f``'s
   gradient flows, ``f0`` is fixed). Option letters after the weight change ``s_i`` (not SAU's; tried here to spare
   clean models): ``u`` multiplies it by the share of the batch's shared examples that go to ``c0_i`` relative to the
   most common wrong class (a backdoor sends many images to one class; natural adversarial examples spread); ``c``
   keeps only the shared examples that ``f0`` puts at ``c0_i`` with probability >= 0.9.

Methods recorded (one record per fold and method, in ``bench_backdoor_protocol.py``'s format, so
``benchmarks/backdoor_report.pooled`` pools them): ``none`` (before), ``sau:<budget>:<steps>:<weight>[:<letters>]``
(plain fine-tuning plus the unlearning; no detection), ``rsau:...`` (the same beside the default ``trigger=None`` term,
``BackdoorSuppressionTerm()`` set up on the model as the protocol does, its flags recorded), ``reversed`` (``--reversed``:
that term alone, the protocol's row) and ``ft`` (``--ft``: plain fine-tuning). ``cpu`` is the process CPU seconds of
the repair (the ``rsau``/``reversed`` term's Neural Cleanse set-up is counted once, in the first of them). Records go to
``benchmarks/.backdoor_cache/sau-<set>-<tag>.jsonl`` (resumed where a run stopped).
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import backdoor_peers as peers  # noqa: E402
from benchmarks import backdoor_protocol as bp  # noqa: E402
from benchmarks.backdoor_rnp import fold_records, method_study, study_folds, summary  # noqa: E402
from benchmarks.bench_backdoor_protocol import CACHE, Fold, reversed_term  # noqa: E402

METHODS = ("sau:linf0.1:5:1", "sau:l1-9:5:0.1", "rsau:l1-9:5:0.1")


def method_parts(method: str) -> tuple[bool, str, float, int, float, str]:
    """``(beside_term, kind, budget, steps, weight, letters)`` of ``sau:<budget>:<steps>:<weight>[:<letters>]`` or
    ``rsau:...`` (``<budget>`` is ``linf<eps>`` or ``l1-<k>``; ``<letters>`` from ``uc``); a ValueError naming the
    method and the form otherwise."""
    parts = method.split(":")
    try:
        if parts[0] not in ("sau", "rsau") or len(parts) not in (4, 5):
            raise ValueError
        kind = "l1" if parts[1].startswith("l1-") else "linf" if parts[1].startswith("linf") else ""
        budget = float(parts[1][3:] if kind == "l1" else parts[1][4:])
        steps, weight, letters = int(parts[2]), float(parts[3]), parts[4] if len(parts) == 5 else ""
        if not kind or budget <= 0 or steps < 1 or weight < 0 or set(letters) - set("uc"):
            raise ValueError
    except (ValueError, IndexError):
        raise ValueError(f"Expected each method to be sau:<linf<eps>|l1-<k>>:<steps>:<weight>[:<letters u, c>] or "
                         f"rsau:... (e.g. {METHODS[1]}) but got {method!r}") from None
    return parts[0] == "rsau", kind, budget, steps, weight, letters


def shared_examples(model: nn.Module, ref: nn.Module, x: Tensor, y: Tensor, kind: str, budget: float, steps: int,
                    g: torch.Generator) -> Tensor:
    """SAU's shared adversarial examples of the batch (the module docstring, step 1), detached; ``model`` is run in
    eval mode and left in the mode it had."""
    was = model.training
    model.eval()
    wrong = ~F.one_hot(y, ref(x[:1]).shape[1]).bool()
    if kind == "linf":
        delta = (torch.rand(x.shape, generator=g) * 2 - 1) * budget
        pert = [delta]
        make = lambda: (x + pert[0]).clamp(0, 1)  # noqa: E731
    else:
        m = torch.rand((len(x), 1, *x.shape[2:]), generator=g)
        m = m * (0.5 * budget / m.sum((1, 2, 3), keepdim=True))
        p = (torch.rand((len(x), *x.shape[1:]), generator=g) > 0.5).float()
        pert = [m, p]
        make = lambda: (1 - pert[0]) * x + pert[0] * pert[1]  # noqa: E731
    try:
        for _ in range(steps):
            for t in pert:
                t.requires_grad_(True)
            xa = make()
            lo, lo0 = model(xa), ref(xa)
            agree = (lo.softmax(1) * lo0.softmax(1) * wrong).sum(1).clamp_min(1e-12).log()
            obj = 0.01 * (F.cross_entropy(lo, y) + F.cross_entropy(lo0, y)) + agree.mean()
            grads = torch.autograd.grad(obj, pert)
            with torch.no_grad():
                if kind == "linf":
                    pert[0] = (pert[0] + (2.5 * budget / steps) * grads[0].sign()).clamp(-budget, budget)
                else:
                    m = (pert[0] + 0.2 * grads[0].sign()).clamp(0, 1)
                    pert[0] = m * (budget / m.sum((1, 2, 3), keepdim=True).clamp_min(1e-12)).clamp(max=1.0)
                    pert[1] = (pert[1] + 0.5 * grads[1].sign()).clamp(0, 1)
        with torch.no_grad():
            return make()
    finally:
        model.train(was)


def unlearning_loss(model: nn.Module, ref: nn.Module, xa: Tensor, y: Tensor, letters: str) -> Tensor:
    """SAU's loss on the shared examples ``xa`` (the module docstring, step 2), mean over the batch."""
    with torch.no_grad():
        p0 = ref(xa).softmax(1)
        conf, c0 = p0.max(1)
    logits = model(xa)
    s = ((logits.argmax(1) == c0) & (c0 != y)).float()
    if "c" in letters:
        s = s * (conf >= 0.9).float()
    if "u" in letters and s.sum() > 0:
        counts = torch.bincount(c0, weights=s, minlength=logits.shape[1])
        s = s * counts[c0] / counts.max()
    p = logits.softmax(1).gather(1, c0[:, None]).squeeze(1)
    return (s * -(1 - p).clamp_min(1e-12).log()).sum() / len(y)


def sau_loss(ref: nn.Module, kind: str, budget: float, steps: int, weight: float, letters: str, seed: int):
    """``repair_with_terms``' ``extra``: ``weight`` times the unlearning loss of the step's batch's shared examples
    against the frozen pre-repair model ``ref``."""
    g = torch.Generator().manual_seed(seed + 3)

    def extra(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        xa = shared_examples(model, ref, x, y, kind, budget, steps, g)
        return weight * unlearning_loss(model, ref, xa, y, letters)

    return extra


def frozen(model: nn.Module) -> nn.Module:
    ref = copy.deepcopy(model).eval()
    for p in ref.parameters():
        p.requires_grad_(False)
    return ref


def run_fold(case: bp.Case, fold: int, digits, methods: list[str], out: Path, done: set) -> None:
    """Every missing record of one fold model (the trigger=None term reversed once a fold, for every rsau: method)."""

    def per_fold(f: Fold, x: Tensor, y: Tensor, seed: int):
        term, ref = None, frozen(f.model)

        def repaired(m: str) -> tuple[nn.Module, dict]:
            nonlocal term
            extra: dict = {}
            beside, kind, budget, steps, weight, letters = method_parts(m) if m != "reversed" else (True, "", 0, 0, 0.0, "")
            terms = []
            if beside:
                if term is None:
                    term = reversed_term(f.model, x, seed, {})
                terms, extra["flagged"] = [copy.deepcopy(term)], [t.target for t in term.triggers]
            loss = None if m == "reversed" else sau_loss(ref, kind, budget, steps, weight, letters, seed)
            return peers.repair_with_terms(f.model, terms, x, y, bp.REPAIR_EPOCHS, seed, setup=False, lr=bp.REPAIR_LR,
                                           extra=loss), extra

        return repaired

    fold_records(case, fold, digits, methods, out, done, per_fold)


def main() -> None:
    parser, args, methods = method_study(__doc__, "sau", "not used by this study (refused): name rsau: methods in --methods",
                                         METHODS, "sau:/rsau: methods (see the docstring)", method_parts)
    if args.repair:
        parser.error(f"--repair is not used by this study (the unlearning beside the trigger=None term is an rsau: "
                     f"method in --methods) but got {args.repair!r}")
    methods = [*(["reversed"] if args.reversed else []), *methods]
    out = CACHE / f"sau-{args.set}-{args.tag}.jsonl"
    cases = study_folds(args, out, lambda case, fold, digits, done: run_fold(case, fold, digits, methods, out, done))
    print(summary(cases, out, [m for m in args.table.split(",") if m]))


if __name__ == "__main__":
    main()
