"""Repairs of the classes that contrastive detection alone flags (issue 17, development cases
only; see RESULTS, "Repairing what the contrast alone flags").

Before this study, ``BackdoorSuppressionTerm(contrast=True)`` suppressed a class flagged on the
contrast only with the contrast's reversed trigger, and searched its support grown by one pixel
every step, like any flagged trigger. Some of these repairs cost the target class its accuracy. This study repairs each
fold model whose flags are contrast-only in several ways and prints Δ clean accuracy and ASR per
fold and variant:

- ``asis``: what ``contrast=True`` does;
- ``noregion``: no region search for contrast-only triggers (the binarised stamp only);
- ``csearch``: the region searched for the stamp that raises the *contrast*
  ``log p_f − log p_shifted`` of the target instead of ``log p_f``;
- ``fsd`` / ``fsdc``: on stamped and searched rows, unlearning and path measured against the
  feature-shifted copy (KL to its prediction; the path counts only a rise above
  ``max(p_t(x), p_t^{shifted}(T(x)))``), region searched on the model / on the contrast;
- ``cc<k>`` / ``pc<k>``: the contrast trigger completed (reversed again to a 0.99 rate, mask
  confined to its support grown by ``k`` pixels) on the contrast / on the model, no region
  search; ``cc<k>r``: the completed trigger with the region search around it; ``cc<k>rc``: the same
  with the contrast search.

The variants are made by replacing the set-up term's triggers, regions and loss parts on a copy
(study code). ``pc1`` is what ``contrast=True`` does since this study.

    PYTHONPATH=$PWD .venv/bin/python benchmarks/study_contrast_repair.py [--folds dev:6:0,dev2:12:0,...] [--variants asis,noregion]
"""

from __future__ import annotations

import copy
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from benchmarks import backdoor_peers as peers  # noqa: E402
from benchmarks import backdoor_protocol as bp  # noqa: E402
from benchmarks.bench_backdoor_protocol import Fold, fold_case, scores, study_main  # noqa: E402
from lightning_causal.causal.backdoor.feature_shift import Contrast, feature_shifted  # noqa: E402
from lightning_causal.causal.backdoor.reverse import reverse_trigger  # noqa: E402
from lightning_causal.causal.engine.forward import Forward  # noqa: E402
from lightning_causal.repair.backdoor import BackdoorSuppressionTerm, binarized  # noqa: E402
from lightning_causal.repair.backdoor_triggers import grown_mask, search_regions  # noqa: E402

# the fold models of both development sets whose only flags come from the contrast, in the seven
# cases whose pooled figures contrast=True moved most (every fold of those cases was run)
FOLDS = ("dev:6:0,dev:8:1,dev:8:3,dev2:4:1,dev2:6:1,dev2:6:2,dev2:6:3,dev2:12:0,dev2:12:1,dev2:12:2,dev2:12:3,"
         "dev2:16:1,dev2:16:2,dev2:16:3,dev2:17:1,dev2:17:2")
VARIANTS = "asis,noregion,csearch,fsd,fsdc,cc1,cc2,cc1r,cc1rc,pc1"


def contrast_search(term: BackdoorSuppressionTerm, shifted: torch.nn.Module) -> None:
    """Region rows searched for the stamp that raises the contrast's target entry."""
    def rows(model, x, targets):
        if term._generator is None:
            term._generator = torch.Generator().manual_seed(term.seed)
        return search_regions(Forward(Contrast(model, shifted)), x, term.regions, targets, term._range,
                              term.adversarial_steps, term._generator)
    term.adversarial_rows = rows


def against_shifted(term: BackdoorSuppressionTerm, shifted: torch.nn.Module) -> None:
    """Unlearning and path on stamped / searched rows measured against the shifted copy."""
    seen: dict = {}
    stamp, search = term.stamp, term.adversarial_rows

    def stamped(x):
        seen.update(stamped=stamp(x), unlearn=0, path=0)
        return seen["stamped"]

    def searched(model, x, targets):
        seen["searched"] = search(model, x, targets)
        return seen["searched"]

    def rows_of(part):
        rows = seen["stamped"] if seen[part] == 0 else seen["searched"]
        seen[part] += 1
        return rows

    def unlearn(out_t, y, idx):
        with torch.no_grad():
            ref = shifted(rows_of("unlearn")[: out_t.shape[0]]).log_softmax(1)
        return (ref.exp() * (ref - out_t.log_softmax(1))).sum(1).mean()

    def path(out_c, out_t, acts, keep, idx, n):
        with torch.no_grad():
            floor = torch.maximum(out_c.softmax(1).gather(1, idx), shifted(rows_of("path")).softmax(1).gather(1, idx))
        return ((out_t.softmax(1).gather(1, idx) - floor).squeeze(1).clamp_min(0) * keep).sum() / n

    term.stamp, term.adversarial_rows, term._unlearn, term._path = stamped, searched, unlearn, path


def as_before(term: BackdoorSuppressionTerm, plain: list[int], only: list[int]) -> BackdoorSuppressionTerm:
    """A copy of the set-up ``term`` as ``contrast=True`` set it up before this study: every flagged
    class's reversed trigger (the contrast's for contrast-only classes) binarised, each with its
    support grown by ``adversarial_region`` searched (the term's defaults otherwise)."""
    term = copy.deepcopy(term)
    raw = [(term.contrast_detection if c in only else term.detection).triggers[c] for c in sorted(plain + only)]
    term.regions = [grown_mask(term._support(t), term.adversarial_region).amax(0, keepdim=True) for t in raw]
    term.triggers = [binarized(t, term.binarize, term.box_fill) for t in raw]
    return term


def variant(term: BackdoorSuppressionTerm, name: str, plain: list[int], only: list[int], shifted, x) -> BackdoorSuppressionTerm | None:
    """A copy of ``term`` (set up as before the study, :func:`as_before`) changed as ``name`` says
    (None: not defined for mixed flags)."""
    term = as_before(term, plain, only)
    flagged = sorted(plain + only)
    if name == "asis":
        return term
    if name == "noregion":  # triggers with a region first (the regions pair with the first triggers)
        order = [i for i, c in enumerate(flagged) if c not in only] + [i for i, c in enumerate(flagged) if c in only]
        regions = [term.regions[i] for i, c in enumerate(flagged) if c not in only]
        term.triggers, term.regions = [term.triggers[i] for i in order], regions
        return term
    if plain:  # the other variants change every flagged trigger: defined for contrast-only folds
        return None
    if name == "csearch":
        contrast_search(term, shifted)
    elif name in ("fsd", "fsdc"):
        if name == "fsdc":
            contrast_search(term, shifted)
        against_shifted(term, shifted)
    elif name.startswith(("cc", "pc")):
        pixels = int(name[2])
        model = Contrast(term.reference, shifted) if name.startswith("cc") else term.reference
        triggers = []
        for c in only:
            base = term.contrast_detection.triggers[c]
            support = term._support(base)
            done = reverse_trigger(model, x, c, region=grown_mask(support, pixels), target_asr=0.99,
                                   generator=torch.Generator().manual_seed(0))
            triggers.append(binarized(done, term.binarize, term.box_fill))
        term.triggers = triggers
        term.regions = [grown_mask(term._support(t), 1).amax(0, keepdim=True) for t in triggers] if name.endswith(("r", "rc")) else []
        if name.endswith("rc"):
            contrast_search(term, shifted)
    else:
        raise ValueError(f"unknown variant {name!r}")
    return term


def run_fold(spec: str, names: list[str], digits) -> None:
    case, fold = fold_case(spec)
    f = Fold(case, fold, digits, {"contrast": True})
    term = f.reversed_term(bp.REPAIR_FRACTION)
    plain = term.detection.flagged
    only = [c for c in term.contrast_detection.flagged if c not in plain]
    print(f"{case.name} fold {fold}: plain flags {plain}, contrast-only {only}", flush=True)
    if not only:
        return
    x, y = f.repair_set(bp.REPAIR_FRACTION)
    first = torch.randperm(len(x), generator=torch.Generator().manual_seed(f.data.train_seed))
    x_setup = x[first][:512]  # what the bench's set-up reads
    shifted = feature_shifted(f.model, x_setup, 10, generator=torch.Generator().manual_seed(term.seed))
    for name in names:
        changed = variant(term, name, plain, only, shifted, x_setup)
        if changed is None:
            print(f"  {name}: not defined with plain flags", flush=True)
            continue
        model = peers.repair_with_terms(f.model, [changed], x, y, bp.REPAIR_EPOCHS, f.data.train_seed, setup=False, lr=f.lr)
        s = scores(model, f.before, f.trigger, f.data)
        delta = (s["correct"] - int(f.before.sum())) / s["n"] * 100
        with torch.no_grad():
            pred = model(f.data.x_eval).argmax(1)
        own = [float((pred[f.data.y_eval == c] == c).float().mean()) * 100 for c in only]
        print(f"  {name}: delta {delta:+.2f} asr {s['asr_hits'] / s['asr_n'] * 100:.1f}% target-class accuracy "
              f"{', '.join(f'{a:.1f}' for a in own)}", flush=True)


def main() -> None:
    study_main(__doc__, FOLDS, VARIANTS, run_fold)


if __name__ == "__main__":
    main()
