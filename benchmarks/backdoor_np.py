"""Neural Polarizer (NPD; Zhu, Wei, Zha, Wu, NeurIPS 2023, "Neural Polarizer: A Lightweight and Effective Backdoor
Defense via Purifying Poisoned Features") as a detection-free repair, on the protocol's development fold models only
(issue 17).

    PYTHONPATH=$PWD .venv/bin/python benchmarks/backdoor_np.py --set dev|dev2 [--cases 0-11,16-17] [--folds 0,1,2,3,4]
        [--methods np:pool1:50:0.01:3,...] [--ft] [--tag np] [--summary-only] [--table METHOD,...]

(RESULTS.md, "Neural Polarizer, development sets only", gives the commands of the recorded runs.)

A study, not package API and not a default. The test set is refused: nothing here was chosen to be measured on it.

The fold model stays frozen. A *polarizer* is inserted after one of its layers: a 1x1 convolution over the layer's
channels, started at the identity, followed by a ``BatchNorm2d`` kept in eval mode throughout (the paper's ``convbn``
layer; its statistics stay at mean 0, variance 1, so it is a per-channel scale and shift and the polarizer starts at the
identity). The paper's code differs here: it runs the warm-up below with the ``BatchNorm2d`` in train mode, so its
polarizer leaves the warm-up standardising each channel by the repair set's running statistics, not at the identity
(not rerun that way on the fold models). Only the polarizer is trained, on the fold's clean 10% repair set (143-144
images), by the paper's bi-level objective; at every step, on the batch ``(x, y)``:

1. **Inner: a targeted adversarial perturbation** (a stand-in for the unknown trigger). The target ``T`` of each image
   is the polarized model's most likely class other than ``y``. From ``delta = 0``, at most ``steps`` signed-gradient
   steps of ``step`` (per pixel) *descend* ``CE(f(clip(x + delta)), T)``, each projected onto the L2 ball of radius
   ``bound`` per image; the steps stop early once more than 60% of the batch reaches its target.
2. **Outer: the polarizer's step** (SGD, momentum 0.9, weight decay 5e-4) on
   ``CE(f(x), y) + 0.4 CE(f(x'), y) + 0.4 mean -log(1 - p(c'|x')) + 0.4 mean -log(1 - p(T|x'))``,
   ``x' = clip(x + delta)`` and ``c'`` the most likely class of ``x'`` other than ``y``: clean images stay right, the
   perturbed ones go back to their class and lose their confidence on the attack's and on any other wrong class.

Before that, 5 warm-up epochs of plain SGD at 1e-4 on the clean cross-entropy (the paper's code, but with the
``BatchNorm2d`` in eval mode: see above).

``np:<after>:<epochs>:<lr>:<bound>`` inserts the polarizer after the module ``after`` of the ``DigitsCNN`` (``pool1``:
16 channels at 4x4, the input of ``conv2``; ``pool2``: 32 channels at 2x2, the input of ``fc1``) and trains it
``epochs`` shuffled passes of batch 32 at ``lr``, with the L2 bound ``bound``. What comes from the paper (its
``config/defense/npd`` settings for PreActResNet-18 on CIFAR-10, in BackdoorBench): the layer, the losses and their
weights (1, 0.4, 0.4, 0.4), SGD at 0.01 with momentum 0.9 and weight decay 5e-4, 50 epochs, the warm-up, 2 inner steps
of 0.1 per pixel, the L2 bound 3.0 in [0, 1] pixel units (the digits are in the same units; a fully stamped 9-pixel
patch changes an image by at most 3 in L2). Scaled: the batch is the protocol's 32 (the paper's 128 is nearly the whole
repair set here), so 50 epochs are 250 steps (the paper's 1,000); the layer is the input of the last convolution
(``pool1``: the paper puts it before ``layer4.1.conv1``, inside the last stage) or of the first linear layer
(``pool2``: after the last convolution). The paper's ``target`` is the highest non-true logit of the polarized model,
as here; its second loss uses the clean prediction, here the label (the repair set's images are the model's training
images: they agree).

Each record (one per fold and method, in ``bench_backdoor_protocol.py``'s format, so ``benchmarks/backdoor_report.pooled``
pools them) also has ``fit`` (the repair set's accuracy), ``moved`` (``||W - I||_F`` of the 1x1 convolution), ``reach``
(the share of the last epoch's perturbed images that reached their target ``T``, before the step) and ``trace``: after
every 10 epochs, the held-out fold's correct images and (on a poisoned fold) ASR hits. ``ft`` (``--ft``) is the
protocol's plain fine-tuning. ``cpu`` is the process CPU seconds of the repair. Records go to
``benchmarks/.backdoor_cache/np-<set>-<tag>.jsonl`` (resumed where a run stopped); fold models are read from
``benchmarks/.backdoor_cache/models`` and trained as ``bench_backdoor_protocol.py`` does where missing.
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
from benchmarks.backdoor_mcr import along_table  # noqa: E402
from benchmarks.backdoor_rnp import fold_records, study_parser, trigger_free_study  # noqa: E402
from benchmarks.bench_backdoor_protocol import CACHE, Fold, scores  # noqa: E402

METHODS = ("np:pool1:50:0.01:3", "np:pool2:50:0.01:3")
FORM = "np:<after>:<epochs>:<lr>:<bound>"
AFTER = ("pool1", "pool2")
WEIGHTS = (1.0, 0.4, 0.4, 0.4)
INNER_STEPS, INNER_STEP, REACHED = 2, 0.1, 0.6
WARM_EPOCHS, WARM_LR = 5, 1e-4
TRACE_EVERY = 10


def method_parts(method: str) -> tuple[str, int, float, float]:
    """``(after, epochs, lr, bound)`` of ``np:<after>:<epochs>:<lr>:<bound>`` (``after`` in :data:`AFTER`); a ValueError
    naming the method and the form otherwise."""
    parts = method.split(":")
    try:
        if parts[0] != "np" or len(parts) != 5 or parts[1] not in AFTER:
            raise ValueError
        epochs, lr, bound = int(parts[2]), float(parts[3]), float(parts[4])
        if epochs < 1 or not lr > 0 or not bound > 0:
            raise ValueError
    except (ValueError, IndexError):
        raise ValueError(f"Expected each method to be {FORM} (after one of {', '.join(AFTER)}; e.g. {METHODS[0]}) but "
                         f"got {method!r}") from None
    return parts[1], epochs, lr, bound


def polarizer(channels: int) -> nn.Sequential:
    """The paper's ``convbn`` polarizer: a bias-free 1x1 convolution started at the identity, then a ``BatchNorm2d``
    (eval mode: its fresh statistics make it a per-channel scale and shift, started at ~1 and 0)."""
    conv = nn.Conv2d(channels, channels, 1, bias=False)
    with torch.no_grad():
        conv.weight.copy_(torch.eye(channels).view(channels, channels, 1, 1))
    return nn.Sequential(conv, nn.BatchNorm2d(channels)).eval()


def polarized(model: nn.Module, after: str) -> tuple[nn.Module, nn.Sequential]:
    """A frozen copy of ``model`` (eval mode, no parameter of its own trained) with a :func:`polarizer` after the module
    ``after`` (its output's channels), and the polarizer; ``model`` is left untouched."""
    net = copy.deepcopy(model).eval()
    for p in net.parameters():
        p.requires_grad_(False)
    parent, _, name = after.rpartition(".")
    holder = net.get_submodule(parent) if parent else net
    inner = getattr(holder, name)
    with torch.no_grad():  # one digit-shaped probe gives the layer's channels
        probe: list[Tensor] = []
        handle = inner.register_forward_hook(lambda mod, inp, out: probe.append(out))
        try:
            net(torch.zeros(1, *bp.INPUT_SHAPE))
        finally:
            handle.remove()
    plug = polarizer(probe[0].shape[1])
    setattr(holder, name, nn.Sequential(inner, plug))
    return net.eval(), plug


def targeted_perturbation(model: nn.Module, x: Tensor, target: Tensor, bound: float, steps: int = INNER_STEPS,
                          step: float = INNER_STEP, reached: float = REACHED) -> Tensor:
    """The inner problem (the module docstring, 1): ``clip(x + delta)`` after at most ``steps`` signed steps of ``step``
    descending ``CE(model(clip(x + delta)), target)``, ``||delta_i||_2 <= bound`` per image, stopped once more than
    ``reached`` of the batch is classified as its ``target``; detached."""
    delta = torch.zeros_like(x)
    for _ in range(steps):
        delta.requires_grad_(True)
        loss = F.cross_entropy(model((x + delta).clamp(0, 1)), target)
        (grad,) = torch.autograd.grad(loss, delta)
        with torch.no_grad():
            delta = delta - step * grad.sign()
            norm = delta.flatten(1).norm(dim=1).view(-1, *[1] * (x.dim() - 1))
            delta = delta * (bound / norm.clamp_min(1e-12)).clamp(max=1.0)
            if (model((x + delta).clamp(0, 1)).argmax(1) == target).float().mean() > reached:
                break
    return (x + delta).clamp(0, 1).detach()


def wrong_top(logits: Tensor, y: Tensor) -> Tensor:
    """Each row's most likely class other than its label ``y``."""
    return logits.detach().scatter(1, y[:, None], float("-inf")).argmax(1)


def np_loss(model: nn.Module, x: Tensor, y: Tensor, xa: Tensor, target: Tensor) -> Tensor:
    """The outer objective (the module docstring, 2) of the batch ``(x, y)``, its perturbed copy ``xa`` and the
    attack's targets."""
    clean, adv = F.cross_entropy(model(x), y), model(xa)
    p = adv.softmax(1)

    def away(c: Tensor) -> Tensor:  # mean -log(1 - p(c | x')), as the paper's code bounds it
        return -(1.0001 - p.gather(1, c[:, None]).squeeze(1) + 1e-12).log().mean()

    w1, w2, w3, w4 = WEIGHTS
    return w1 * clean + w2 * F.cross_entropy(adv, y) + w3 * away(wrong_top(adv, y)) + w4 * away(target)


def train_polarizer(model: nn.Module, after: str, x: Tensor, y: Tensor, epochs: int, lr: float, bound: float, seed: int,
                    batch: int = 32, every=None) -> tuple[nn.Module, dict]:
    """The polarized copy of ``model`` (:func:`polarized`) with its polarizer trained on ``(x, y)`` (the module
    docstring), and ``{"moved", "reach"}``; ``every(epoch, net)`` is called after every :data:`TRACE_EVERY` epochs."""
    net, plug = polarized(model, after)
    warm = torch.optim.SGD(plug.parameters(), lr=WARM_LR)
    for idx in peers._batches(len(y), WARM_EPOCHS, batch, seed + 5):
        loss = F.cross_entropy(net(x[idx]), y[idx])
        warm.zero_grad(set_to_none=True)
        loss.backward()
        warm.step()
    opt = torch.optim.SGD(plug.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    per_epoch = -(-len(y) // batch)
    hits = seen = 0
    for k, idx in enumerate(peers._batches(len(y), epochs, batch, seed)):
        xb, yb = x[idx], y[idx]
        with torch.no_grad():
            target = wrong_top(net(xb), yb)
        xa = targeted_perturbation(net, xb, target, bound)
        if k >= (epochs - 1) * per_epoch:
            with torch.no_grad():
                hits, seen = hits + int((net(xa).argmax(1) == target).sum()), seen + len(yb)
        loss = np_loss(net, xb, yb, xa, target)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if every is not None and (k + 1) % (TRACE_EVERY * per_epoch) == 0:
            every((k + 1) // per_epoch, net)
    eye = torch.eye(plug[0].weight.shape[0])
    return net.eval(), {"moved": round(float((plug[0].weight.detach().flatten(1) - eye).norm()), 4),
                        "reach": round(hits / max(seen, 1), 4)}


def run_fold(case: bp.Case, fold: int, digits, methods: list[str], out: Path, done: set) -> None:
    """Every missing record of one fold model."""

    def per_fold(f: Fold, x: Tensor, y: Tensor, seed: int):
        def repaired(m: str) -> tuple[nn.Module, dict]:
            after, epochs, lr, bound = method_parts(m)
            trace: list[list[int]] = []

            def every(epoch: int, net: nn.Module) -> None:
                sc = scores(net, f.before, f.trigger, f.data)
                trace.append([epoch, sc["correct"], *([sc["asr_hits"]] if "asr_hits" in sc else [])])

            model, extra = train_polarizer(f.model, after, x, y, epochs, lr, bound, seed, every=every)
            return model, {"fit": round(peers._accuracy(model, x, y), 4), **extra, "trace": trace}

        return repaired

    fold_records(case, fold, digits, methods, out, done, per_fold)


def trace_table(cases, path: Path) -> str:
    """For each method and each reading of its ``trace``, the study summary's figures of the polarizer after that many
    epochs (``backdoor_mcr.along_table``'s pooling)."""
    return along_table(cases, path, key="trace", label=lambda m, epoch: f"{m} after {epoch:>2} epochs",
                       head="polarizer read")


def main() -> None:
    trigger_free_study(__doc__, "np", "NP", METHODS, "np: settings (see the docstring)", method_parts, run_fold)
    args = study_parser(__doc__, "np", "").parse_known_args()[0]
    cases = {"dev": bp.DEV_CASES, "dev2": bp.DEV2_CASES}[args.set]
    print("\nThe polarizers, read every 10 epochs (pooled as above):\n")
    print(trace_table(cases, CACHE / f"np-{args.set}-{args.tag}.jsonl"))


if __name__ == "__main__":
    main()
