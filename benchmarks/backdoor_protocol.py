"""The pre-registered protocol of the backdoor benchmark (issue 17): cases, folds, data, targets.

Two sets of cases, drawn once by :func:`draw_cases` and written out below as literals:

- ``DEV_CASES`` (seeds 100-117): the development set. Every default, rule and method change is
  chosen on it, as often as needed. ``DEV2_CASES`` (seeds 200-223, added later): more
  development cases, for rules that need more models (e.g. false alarms).
- ``TEST_CASES`` (seeds 1000-1029): the test set. It was committed in its own commit before
  anything was measured on it, it is never tuned on, and it is measured once per change of
  defaults. ``TEST_SET_SHA256`` pins it (``tests/benchmarks/test_backdoor_protocol.py``).

A case is one attack setting: a trigger (family ``patch``: an irregular stamp of 1-9 white or
black pixels from :data:`SHAPES` in a corner, at an edge, in the centre or anywhere; family
``blended``: uniform noise blended into the whole image at 10-20% opacity, Chen et al. 2017),
a target class, a poisoning rate (1% or 10% of the training images) and a seed; ``clean`` cases
train on clean data (false alarms, no-op repair).

Evaluation, fixed before the test set was measured:

- **Folds.** The 1,797 scikit-learn digits are split into :data:`FOLDS` = 5 folds by a fixed
  permutation (seed 0). For each case and fold, a ``DigitsCNN`` is trained (``fit_classifier``,
  20 epochs) on the other 4 folds (1,437-1,438 images), poisoned at the case's rate, and
  evaluated on the held-out fold (359-360 images). A case's figures pool its 5 folds: every
  digit is evaluated exactly once (1,797 images; ASR over the images whose class is not the
  target).
- **Repair data.** The defender holds a clean random share of the fold's training images
  (:data:`REPAIR_FRACTION`, 10% = 143-144 images; 5% and 20% for the robustness rows; the
  subsets are nested). Repair runs :data:`REPAIR_EPOCHS` epochs (10 and 30 for the robustness
  rows), Adam at :data:`REPAIR_LR`, batch 32 (``CausalRepairModule``'s objective); every peer
  fine-tunes at the same rate. The rate was 1e-3 for the first two test measurements (v1, v2)
  and 4e-3 from v3 on: chosen on the development cases (1e-3, 2e-3, 4e-3, 8e-3 on ``DEV_CASES``,
  confirmed against 1e-3 on ``DEV2_CASES``), twice the rate the models were trained with.
- **Counting.** Repair targets are counted per case (pooled folds); per-fold figures (359
  images each) are reported beside them. Detection is counted per fold model: a patch model
  counts if its backdoor was learned (ASR >= 50% before repair); a clean model raises a false
  alarm if any class is flagged.
- **Targets** (:data:`TARGETS`): repaired ASR <= 2% on >= 95% of cases; clean-accuracy drop <= 1
  point on >= 90% of cases and <= 0.5 point on average; patch triggers flagged on >= 90% of
  learned patch models with <= 1 false alarm in the 20 clean models, under the default rule;
  ``trigger=None`` repair of a clean model loses <= 0.5 point (pooled per clean case). The
  repair targets are counted for the default term with the known trigger on every poisoned case,
  and with ``trigger=None`` on the patch cases (blended triggers are Neural Cleanse's blind spot:
  their ``trigger=None`` rows are reported, not counted).
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass

import torch
from torch import Tensor

from lightning_causal.causal.backdoor.triggers import Trigger
from lightning_causal.datasets.poisoning import blended_trigger, poison, shape_trigger

FOLDS = 5
SPLIT_SEED = 0
TRAIN_EPOCHS = 20
REPAIR_FRACTION = 0.1
REPAIR_FRACTIONS = (0.05, 0.1, 0.2)
REPAIR_EPOCHS = 20
REPAIR_EPOCH_GRID = (10, 20, 30)
REPAIR_LR = 4e-3
LEARNED_ASR = 0.5
TARGETS = {"asr": 0.02, "asr_share": 0.95, "drop": 1.0, "drop_share": 0.90, "mean_drop": 0.5,
           "flag_share": 0.90, "false_alarms": 1, "clean_drop": 0.5}
INPUT_SHAPE = (1, 8, 8)

#: Patch stamps by name: ``X`` stamps 1.0 (white), ``o`` 0.0 (black), ``.`` is not part of the trigger.
SHAPES = {
    "dot1": "X", "pair2": "XX", "vpair2": "X/X", "diag2": "X./.X", "line3": "XXX", "vline3": "X/X/X",
    "ell3": "XX/X.", "diag3": "X../.X./..X", "square4": "XX/XX", "tee4": "XXX/.X.", "cross5": "X.X/.X./X.X",
    "plus5": ".X./XXX/.X.", "corner5": "XXX/X../X..", "rect6": "XXX/XXX", "vrect6": "XX/XX/XX",
    "h7": "X.X/XXX/X.X", "ring8": "XXX/X.X/XXX", "square9": "XXX/XXX/XXX", "checker9": "XoX/oXo/XoX",
}
_BY_PIXELS = {n: [k for k, v in SHAPES.items() if sum(ch in "Xo" for ch in v) == n] for n in range(1, 10)}
_WHERE = ("corner", "edge", "centre", "anywhere")


@dataclass(frozen=True)
class Case:
    """One attack setting (see the module docstring); unused fields are ``None``."""

    family: str
    seed: int
    target: int | None = None
    rate: float = 0.0
    shape: str | None = None
    position: tuple[int, int] | None = None
    where: str | None = None
    opacity: float | None = None
    pattern_seed: int | None = None

    @property
    def name(self) -> str:
        if self.family == "patch":
            return f"{self.shape}@{self.position[0]},{self.position[1]}→{self.target} {self.rate:.0%} s{self.seed}"  # type: ignore[index]
        if self.family == "blended":
            return f"blend{self.opacity:.2f}→{self.target} {self.rate:.0%} s{self.seed}"
        return f"clean s{self.seed}"

    def trigger(self) -> Trigger | None:
        """The case's trigger (``None`` for a clean case)."""
        if self.family == "patch":
            return shape_trigger(INPUT_SHAPE, SHAPES[self.shape], self.position, self.target)  # type: ignore[index, arg-type]
        if self.family == "blended":
            return blended_trigger(INPUT_SHAPE, self.opacity, target=self.target, seed=self.pattern_seed)  # type: ignore[arg-type]
        return None


def _position(rng: random.Random, where: str, h: int, w: int, size: int = 8) -> tuple[int, int]:
    if where == "corner":
        return rng.choice([(0, 0), (0, size - w), (size - h, 0), (size - h, size - w)])
    if where == "edge":
        side = rng.choice(["top", "bottom", "left", "right"])
        if side in ("top", "bottom"):
            return (0 if side == "top" else size - h, rng.randint(1, size - w - 1))
        return (rng.randint(1, size - h - 1), 0 if side == "left" else size - w)
    if where == "centre":
        return ((size - h) // 2 + rng.randint(0, (size - h) % 2), (size - w) // 2 + rng.randint(0, (size - w) % 2))
    return (rng.randint(0, size - h), rng.randint(0, size - w))


def draw_cases(seed: int, n_patch: int, n_blended: int, n_clean: int, first_seed: int) -> tuple[Case, ...]:
    """How the case lists were drawn: patch ``i`` has ``1 + i % 9`` pixels (a random shape of
    that size), placement ``_WHERE[i % 4]`` and rate 1% / 10% alternating; blended cases take
    opacities 0.10/0.15/0.20 (0.10/0.20 for 4 cases) and rates 1% then 10%; targets and patterns
    are random."""
    rng, out = random.Random(seed), []
    for i in range(n_patch):
        shape = rng.choice(_BY_PIXELS[1 + i % 9])
        rows = SHAPES[shape].split("/")
        where = _WHERE[i % 4]
        pos = _position(rng, where, len(rows), len(rows[0]))
        out.append(Case("patch", first_seed + i, rng.randrange(10), (0.01, 0.1)[i % 2], shape, pos, where))
    levels = (0.1, 0.15, 0.2) if n_blended % 3 == 0 else (0.1, 0.2)
    for i in range(n_blended):
        opacity, rate = levels[i % len(levels)], (0.01, 0.1)[(i // len(levels)) % 2]
        pattern_seed, target = rng.randrange(1000), rng.randrange(10)
        out.append(Case("blended", first_seed + n_patch + i, target, rate, opacity=opacity, pattern_seed=pattern_seed))
    out += [Case("clean", first_seed + n_patch + n_blended + i) for i in range(n_clean)]
    return tuple(out)


def _patch(seed: int, target: int, rate: float, shape: str, position: tuple[int, int], where: str) -> Case:
    return Case("patch", seed, target, rate, shape, position, where)


def _blend(seed: int, target: int, rate: float, opacity: float, pattern_seed: int) -> Case:
    return Case("blended", seed, target, rate, opacity=opacity, pattern_seed=pattern_seed)


#: Development set: ``draw_cases(17, 12, 4, 2, 100)``. Tune on these.
DEV_CASES = (
    _patch(100, 5, 0.01, "dot1", (7, 0), "corner"),
    _patch(101, 8, 0.1, "vpair2", (6, 6), "edge"),
    _patch(102, 3, 0.01, "ell3", (3, 3), "centre"),
    _patch(103, 6, 0.1, "tee4", (6, 5), "anywhere"),
    _patch(104, 6, 0.01, "plus5", (5, 0), "corner"),
    _patch(105, 3, 0.1, "rect6", (0, 2), "edge"),
    _patch(106, 8, 0.01, "h7", (2, 3), "centre"),
    _patch(107, 1, 0.1, "ring8", (5, 5), "anywhere"),
    _patch(108, 1, 0.01, "checker9", (5, 5), "corner"),
    _patch(109, 6, 0.1, "dot1", (7, 6), "edge"),
    _patch(110, 6, 0.01, "diag2", (3, 3), "centre"),
    _patch(111, 5, 0.1, "ell3", (4, 0), "anywhere"),
    _blend(112, 7, 0.01, 0.1, 51),
    _blend(113, 9, 0.01, 0.2, 383),
    _blend(114, 0, 0.1, 0.1, 792),
    _blend(115, 6, 0.1, 0.2, 888),
    Case("clean", 116),
    Case("clean", 117),
)

#: Second development set, added (2026-12-02, after the first test measurement) to choose the
#: detection rule on more models: 18 patch cases and 6 clean ones (30 clean fold models for the
#: false-alarm side). Tune on these too; never on the test set.
DEV2_CASES = draw_cases(29, 18, 0, 6, 200)

#: Test set: ``draw_cases(1717, 20, 6, 4, 1000)``. Never tuned on (see the module docstring).
TEST_CASES = (
    _patch(1000, 3, 0.01, "dot1", (0, 7), "corner"),
    _patch(1001, 3, 0.1, "pair2", (0, 5), "edge"),
    _patch(1002, 7, 0.01, "vline3", (3, 4), "centre"),
    _patch(1003, 7, 0.1, "tee4", (1, 2), "anywhere"),
    _patch(1004, 7, 0.01, "plus5", (0, 0), "corner"),
    _patch(1005, 2, 0.1, "vrect6", (0, 1), "edge"),
    _patch(1006, 6, 0.01, "h7", (2, 2), "centre"),
    _patch(1007, 6, 0.1, "ring8", (1, 1), "anywhere"),
    _patch(1008, 8, 0.01, "checker9", (5, 5), "corner"),
    _patch(1009, 0, 0.1, "dot1", (7, 6), "edge"),
    _patch(1010, 0, 0.01, "vpair2", (3, 4), "centre"),
    _patch(1011, 4, 0.1, "vline3", (1, 2), "anywhere"),
    _patch(1012, 0, 0.01, "square4", (0, 0), "corner"),
    _patch(1013, 1, 0.1, "plus5", (0, 1), "edge"),
    _patch(1014, 0, 0.01, "rect6", (3, 2), "centre"),
    _patch(1015, 7, 0.1, "h7", (5, 5), "anywhere"),
    _patch(1016, 7, 0.01, "ring8", (0, 0), "corner"),
    _patch(1017, 8, 0.1, "checker9", (5, 2), "edge"),
    _patch(1018, 9, 0.01, "dot1", (4, 4), "centre"),
    _patch(1019, 2, 0.1, "vpair2", (0, 3), "anywhere"),
    _blend(1020, 7, 0.01, 0.1, 950),
    _blend(1021, 8, 0.01, 0.15, 773),
    _blend(1022, 4, 0.01, 0.2, 438),
    _blend(1023, 2, 0.1, 0.1, 687),
    _blend(1024, 5, 0.1, 0.15, 462),
    _blend(1025, 1, 0.1, 0.2, 707),
    Case("clean", 1026),
    Case("clean", 1027),
    Case("clean", 1028),
    Case("clean", 1029),
)


def cases_digest(cases: tuple[Case, ...]) -> str:
    """SHA-256 of the cases as canonical JSON (field order fixed, no spaces)."""
    text = json.dumps([asdict(c) for c in cases], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


TEST_SET_SHA256 = "586bbf1e98fe68fd2a01f6714b93e701c586b76e7e7c267ec289a8ea5aa7bd02"


def load_all_digits() -> tuple[Tensor, Tensor]:
    """All 1,797 digits ``[N, 1, 8, 8]`` in [0, 1] and their labels."""
    from sklearn.datasets import load_digits

    data = load_digits()
    return torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0, torch.tensor(data.target, dtype=torch.long)


def fold_indices(n: int, folds: int = FOLDS, seed: int = SPLIT_SEED) -> list[Tensor]:
    """``folds`` disjoint index sets covering ``range(n)`` (a fixed permutation cut in order)."""
    perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    return list(perm.tensor_split(folds))


@dataclass
class FoldData:
    """What one fold of one case trains, repairs and evaluates on."""

    x_train: Tensor  # poisoned training images (the 4 other folds)
    y_train: Tensor
    x_clean: Tensor  # the same images unpoisoned (the defender's repair data is drawn from these)
    y_clean: Tensor
    x_eval: Tensor  # the held-out fold
    y_eval: Tensor
    repair_order: Tensor  # a permutation of the training rows; the first share is the repair set
    train_seed: int


def fold_data(case: Case, fold: int, digits: tuple[Tensor, Tensor]) -> FoldData:
    """Training data (poisoned at the case's rate), evaluation fold and repair order of ``fold``."""
    x, y = digits
    parts = fold_indices(len(y))
    held = parts[fold]
    train = torch.cat([p for k, p in enumerate(parts) if k != fold])
    xt, yt = x[train], y[train]
    seed = case.seed * 10 + fold
    trig = case.trigger()
    xp, yp = (xt, yt) if trig is None else poison(xt, yt, trig, case.rate, generator=torch.Generator().manual_seed(seed))[:2]
    order = torch.randperm(len(yt), generator=torch.Generator().manual_seed(seed + 7))
    return FoldData(xp, yp, xt, yt, x[held], y[held], order, seed)


def repair_rows(data: FoldData, fraction: float) -> Tensor:
    """The defender's clean repair set: the first ``round(fraction · N)`` rows of the fixed order
    (nested across fractions)."""
    return data.repair_order[: round(fraction * len(data.y_clean))]
