"""BTI-DBF's unlearning (Xu, Liu, Chen, Wang, Zhang, Li, ICLR 2024, "Towards Reliable and Efficient Backdoor Trigger
Inversion via Decoupling Benign Features") as a detection-free repair, on the protocol's development fold models only
(issue 17).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/backdoor_bti.py --set dev|dev2 [--cases 0-11,16-17] [--folds 0,1,2,3,4]
        [--methods bti:1:kd1,...] [--ft] [--tag bti] [--summary-only] [--table METHOD,...]

(RESULTS.md, "BTI-DBF's unlearning, development sets only", gives the commands of the recorded runs.)

A study, not package API and not a default. The test set is refused: nothing here was chosen to be measured on it.

The ``trigger=None`` misses are backdoors Neural Cleanse does not flag: its per-class search and its flag rule find
nothing to suppress. BTI-DBF inverts a trigger without a target class and without a flag. The fold model is split at
``pool2`` (``conv2``'s pooled output, 128 features, :func:`features`) into ``h(x)`` and the rest ``g``:

1. **Benign features** (:func:`benign_mask`). A mask ``m`` in [0, 1] over the 128 features is learned on the clean
   repair set (the model frozen, Adam 0.1, 200 full-batch steps) so that ``g(m * h)`` keeps the true label and
   ``g((1 - m) * h)`` does not: ``CE(g(m h), y) - log(1 - p_y(g((1 - m) h))) + LAM * mean(m)``.
2. **Trigger inversion** (:func:`invert`). A generator ``G(x) = clip(x + tanh(net(x)), 0, 1)`` (three 3x3 convolutions,
   16 channels; sample-specific, as the paper's) is trained (Adam 5e-2, 300 full-batch steps) to keep the benign
   features and move the others: ``||m (h(G x) - h x)|| - BETA ||(1 - m)(h(G x) - h x)|| + MU relu(||G x - x||_1 - TAU)``.
   The images it makes should carry the backdoor: the features clean images do not use.
3. **Unlearning** (:func:`bti_unlearn`, BTI-DBF(U)). ``ROUNDS`` rounds of: steps 1-2 on the current model, then
   ``REPAIR_EPOCHS / ROUNDS`` epochs of the protocol's loop (``backdoor_peers.repair_with_terms`` without terms: Adam
   4e-3, batch 32) on ``CE(f(x), y) + w CE(f(G x), y)``: the generated images keep their true labels. ``kd<k>`` (not
   BTI-DBF's; tried to spare clean accuracy, as the default term's hold does) adds ``k KL(f0(x) || f(x))`` against the
   frozen pre-repair model ``f0`` on the clean rows.

``bti:<w>[:kd<k>]`` names a setting; the generator's constants (``BETA``, ``LAM``, ``TAU``, ``MU``, ``ROUNDS``) were
fixed on the prototype's fold models (RESULTS). ``ft`` (``--ft``) is plain fine-tuning at the protocol's setting. Each
record (one per fold and method, in ``bench_backdoor_protocol.py``'s format, so ``benchmarks/backdoor_report.pooled``
pools them) also has ``found``: on a poisoned fold, the share of the held-out non-target images that the *first*
generator (on the pre-repair model) sends to the case's target, i.e. whether the inversion found the backdoor, and
``flip``: the share of held-out images (non-target on a poisoned fold) that first generator moves off their label.
``cpu`` is the process CPU seconds of the repair. Records go to ``benchmarks/.backdoor_cache/bti-<set>-<tag>.jsonl``
(resumed where a run stopped); fold models are read from ``benchmarks/.backdoor_cache/models`` and trained as
``bench_backdoor_protocol.py`` does where missing.
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
from benchmarks.backdoor_rnp import fold_records, trigger_free_study  # noqa: E402
from benchmarks.backdoor_seam import kd_loss  # noqa: E402
from benchmarks.bench_backdoor_protocol import Fold  # noqa: E402

METHODS = ("bti:1", "bti:1:kd1")
#: the generator's trade-off between moving the non-benign features and keeping the benign ones
BETA = 4.0
#: the benign mask's sparsity weight
LAM = 0.5
#: the L1 size (in pixels of full contrast) a generated image may differ from its source by, and the penalty's weight
TAU, MU = 6.0, 5.0
#: inversion-unlearning rounds (the protocol's 20 epochs split among them)
ROUNDS = 4


def method_parts(method: str) -> tuple[float, float]:
    """``(w, kd)`` of ``bti:<w>[:kd<k>]``; a ValueError naming the method and the form otherwise."""
    parts = method.split(":")
    try:
        if parts[0] != "bti" or len(parts) not in (2, 3) or (len(parts) == 3 and not parts[2].startswith("kd")):
            raise ValueError
        w, kd = float(parts[1]), float(parts[2][2:]) if len(parts) == 3 else 0.0
        if not (w > 0 and kd >= 0):
            raise ValueError
    except (ValueError, IndexError):
        raise ValueError(f"Expected each method to be bti:<w>[:kd<k>] with w > 0 and k >= 0 (e.g. {METHODS[1]}) but "
                         f"got {method!r}") from None
    return w, kd


def features(model: nn.Module, x: Tensor) -> Tensor:
    """The DigitsCNN's hidden features at ``pool2``, flattened (``[N, 128]``)."""
    h = model.pool1(model.relu1(model.bn1(model.conv1(x))))
    return model.flatten(model.pool2(model.relu2(model.conv2(h))))


def head(model: nn.Module, h: Tensor) -> Tensor:
    """The rest of the DigitsCNN from :func:`features`' output: ``head(model, features(model, x)) == model(x)``."""
    return model.fc2(model.dropout(model.relu3(model.fc1(h))))


def benign_mask(model: nn.Module, x: Tensor, y: Tensor, lam: float = LAM, steps: int = 200, lr: float = 0.1) -> Tensor:
    """BTI-DBF's decoupling: a mask over :func:`features` whose kept part keeps the label ``y`` and whose rest does not
    (the module docstring, step 1); the model is not trained."""
    with torch.no_grad():
        h = features(model, x)
    logit = torch.zeros(h.shape[1], requires_grad=True)
    opt = torch.optim.Adam([logit], lr=lr)
    for _ in range(steps):
        m = logit.sigmoid()
        kept = F.cross_entropy(head(model, h * m), y)
        rest = head(model, h * (1 - m)).softmax(1).gather(1, y[:, None]).squeeze(1)
        loss = kept - (1 - rest).clamp_min(1e-6).log().mean() + lam * m.mean()
        (logit.grad,) = torch.autograd.grad(loss, [logit])  # the model's .grad left as found
        opt.step()
    return logit.detach().sigmoid()


class Generator(nn.Module):
    """``G(x) = clip(x + tanh(net(x)), 0, 1)``, ``net`` three 3x3 convolutions (``width`` channels)."""

    def __init__(self, width: int = 16) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(1, width, 3, padding=1), nn.ReLU(), nn.Conv2d(width, width, 3, padding=1),
                                 nn.ReLU(), nn.Conv2d(width, 1, 3, padding=1))

    def forward(self, x: Tensor) -> Tensor:
        return (x + torch.tanh(self.net(x))).clamp(0, 1)


def invert(model: nn.Module, x: Tensor, m: Tensor, seed: int, steps: int = 300, lr: float = 5e-2) -> Generator:
    """A generator trained on ``x`` to keep the benign features ``m`` of ``model`` and move the others (the module
    docstring, step 2), in eval mode with its gradients off; ``model``'s parameters are left as they were."""
    torch.manual_seed(seed)
    gen = Generator()
    grads = [p.requires_grad for p in model.parameters()]
    for p in model.parameters():
        p.requires_grad_(False)
    try:
        with torch.no_grad():
            h = features(model, x)
        opt = torch.optim.Adam(gen.parameters(), lr=lr)
        for _ in range(steps):
            xg = gen(x)
            d = features(model, xg) - h
            size = (xg - x).abs().flatten(1).sum(1)
            loss = (d * m).norm(dim=1).mean() - BETA * (d * (1 - m)).norm(dim=1).mean() + MU * F.relu(size - TAU).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
    finally:
        for p, g in zip(model.parameters(), grads):
            p.requires_grad_(g)
    return gen.eval().requires_grad_(False)


def bti_loss(gen: Generator, w: float, ref: nn.Module | None, kd: float):
    """``repair_with_terms``' ``extra``: ``w CE(f(G x), y)`` on the step's batch, plus ``kd KL(ref(x) || f(x))``
    (``backdoor_seam.kd_loss``) where ``ref`` is given and ``kd > 0``."""
    hold = kd_loss(ref, kd) if ref is not None and kd > 0 else None

    def extra(model: nn.Module, x: Tensor, y: Tensor) -> Tensor:
        with torch.no_grad():
            xg = gen(x)
        loss = w * F.cross_entropy(model(xg), y)
        return loss if hold is None else loss + hold(model, x, y)

    return extra


def bti_unlearn(model: nn.Module, x: Tensor, y: Tensor, w: float, kd: float, seed: int, epochs: int = bp.REPAIR_EPOCHS,
                rounds: int = ROUNDS, steps: tuple[int, int] = (200, 300)) -> tuple[nn.Module, Generator]:
    """The repaired copy of ``model`` (``rounds`` of inversion and unlearning, the module docstring, step 3) in eval
    mode, and the first round's generator (made on ``model`` itself); ``model`` is left untouched. ``steps``: those of
    :func:`benign_mask` and :func:`invert`."""
    if epochs % rounds:
        raise ValueError(f"Expected epochs to be a multiple of rounds={rounds} but got epochs={epochs}")
    ref = copy.deepcopy(model).eval() if kd > 0 else None
    current, first = copy.deepcopy(model).eval(), None
    for r in range(rounds):
        gen = invert(current, x, benign_mask(current, x, y, steps=steps[0]), seed + r, steps=steps[1])
        first = gen if first is None else first
        current = peers.repair_with_terms(current, [], x, y, epochs // rounds, seed + 10 * r, lr=bp.REPAIR_LR,
                                          extra=bti_loss(gen, w, ref, kd))
    return current, first


def found(f: Fold, gen: Generator) -> dict:
    """What the first generator does to the pre-repair model on the held-out fold: ``flip`` (the share moved off
    their label; non-target images on a poisoned fold) and, on a poisoned fold, ``found`` (the share sent to the
    target)."""
    keep = f.data.y_eval != f.trigger.target if f.trigger is not None else torch.ones_like(f.data.y_eval, dtype=torch.bool)
    with torch.no_grad():
        pred = f.model(gen(f.data.x_eval[keep])).argmax(1)
    out = {"flip": round((pred != f.data.y_eval[keep]).float().mean().item(), 4)}
    if f.trigger is not None:
        out["found"] = round((pred == f.trigger.target).float().mean().item(), 4)
    return out


def run_fold(case: bp.Case, fold: int, digits, methods: list[str], out: Path, done: set) -> None:
    """Every missing record of one fold model."""

    def per_fold(f: Fold, x: Tensor, y: Tensor, seed: int):
        def repaired(m: str) -> tuple[nn.Module, dict]:
            model, gen = bti_unlearn(f.model, x, y, *method_parts(m), seed)
            return model, found(f, gen)

        return repaired

    fold_records(case, fold, digits, methods, out, done, per_fold)


def main() -> None:
    trigger_free_study(__doc__, "bti", "BTI-DBF", METHODS, "bti: settings (see the docstring)", method_parts, run_fold)


if __name__ == "__main__":
    main()
