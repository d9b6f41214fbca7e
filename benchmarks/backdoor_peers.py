"""Repairs compared side by side in the backdoor protocol: our term and its peers, all on the same
clean repair set.

- :func:`repair_with_terms`: ``CausalRepairModule``'s objective (task cross-entropy + weighted
  terms) in a plain loop, Adam (``lr``; the protocol passes ``REPAIR_LR``), batch 32 (the module's own ``objective``, without a Trainer:
  a Trainer costs about a second per fit, thousands of fits here); no term = plain fine-tuning.
- :func:`nc_unlearning`: Neural Cleanse's mitigation (Wang et al. 2019): fine-tune on the repair
  set with 20% of it stamped with the reversed trigger, true labels kept; the model is returned
  unchanged when nothing is flagged (as BackdoorBench does).
- :func:`fine_pruning`: Fine-Pruning (Liu et al. 2018): prune the last conv layer's channels in
  increasing order of their mean activation on clean data while the clean accuracy stays within
  4 points, then fine-tune with the pruned channels held at zero.
- :func:`anp`: Adversarial Neuron Pruning (Wu & Wang 2021): per-neuron masks learned under
  adversarial multiplicative neuron perturbations (eps 0.4, one signed step, trade-off 0.2, SGD
  0.2 with momentum 0.9), then neurons whose mask is below 0.2 pruned; no fine-tuning.
- :func:`fst`: Feature Shift Tuning (Min et al. 2023): the output layer re-initialised, then the
  whole model fine-tuned with ``CE + alpha * <w, w_0>`` (``w_0`` the output layer's weight before
  repair), ``w`` projected back to ``w_0``'s norm after every step.
- :func:`universal_perturbation` (with ``repair_with_terms(universal=...)``): I-BAU's min-max (Zeng et al.
  2022), ``min_theta max_{||delta||_2 <= eps} CE(f(clip(x + delta)), y)`` over one perturbation shared by the
  batch, solved by alternating steps (a few projected gradient-ascent steps on ``delta``, then one model step
  on the clean loss plus ``weight`` times the perturbed loss), not by I-BAU's implicit hypergradient.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn
from torch.nn import functional as F
from torch.nn.utils import prune

from lightning_causal.causal.backdoor.feature_shift import Contrast
from lightning_causal.causal.backdoor.neural_cleanse import neural_cleanse
from lightning_causal.causal.backdoor.triggers import Trigger
from lightning_causal.repair.base import RepairTerm
from lightning_causal.repair.module import CausalRepairModule


def _batches(n: int, epochs: int, batch: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        perm = torch.randperm(n, generator=g)
        yield from perm.split(batch)


def repair_with_terms(model: nn.Module, terms: Sequence[RepairTerm], x: Tensor, y: Tensor, epochs: int, seed: int,
                      setup: bool = True, lr: float = 1e-3, batch: int = 32,
                      shift: tuple[str, float] | None = None,
                      universal: tuple[float, int, float] | None = None,
                      extra: Callable[[nn.Module, Tensor, Tensor], Tensor] | None = None,
                      schedule: Callable[[int, int], float] | None = None,
                      sgd: float | None = None) -> nn.Module:
    """A repaired copy of ``model``: ``CausalRepairModule(model, terms).objective`` minimised by Adam
    (``sgd=momentum``: SGD with that momentum and weight decay 5e-4) at ``lr``, or at ``schedule(step, total)``
    before each of the ``total`` steps, over ``epochs`` shuffled passes of ``(x, y)``; terms are set up on ``x``
    (up to 512 rows) first
    unless ``setup=False`` (terms already set up on this model). ``shift=(head, alpha)`` adds
    :func:`fst`'s feature shift: ``head`` re-initialised, ``alpha * <w, w_0>``, norm projection.
    ``universal=(eps, steps, weight)`` adds ``weight * CE(f(clip(x + delta)), y)`` with ``delta`` from
    :func:`universal_perturbation` on the step's batch (I-BAU's min-max, alternating). ``extra(model, x, y)``
    adds a loss of the model being repaired on the step's batch (``benchmarks/backdoor_sau.py``'s unlearning)."""
    module = CausalRepairModule(copy.deepcopy(model).train(), list(terms), lr=lr)
    if setup:
        first = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
        for term in module.terms:
            term.setup(module.model, x[first][:512])
    layer, w0, alpha = None, None, 0.0
    if shift is not None:
        layer, w0, alpha = _reinit_head(module.model, shift[0], seed), None, shift[1]
        w0 = layer.w0
    params = module.model.parameters()
    opt = torch.optim.Adam(params, lr=lr) if sgd is None else torch.optim.SGD(params, lr=lr, momentum=sgd, weight_decay=5e-4)
    g = torch.Generator().manual_seed(seed + 2)
    total = epochs * -(-len(y) // batch)
    for step, idx in enumerate(_batches(len(y), epochs, batch, seed)):
        if schedule is not None:
            for group in opt.param_groups:
                group["lr"] = schedule(step, total)
        loss, _ = module.objective((x[idx], y[idx]))
        if universal is not None:
            eps, steps, weight = universal
            delta = universal_perturbation(module.model, x[idx], y[idx], eps, steps, g)
            loss = loss + weight * F.cross_entropy(module.model((x[idx] + delta).clamp(0, 1)), y[idx])
        if extra is not None:
            loss = loss + extra(module.model, x[idx], y[idx])
        if layer is not None:
            loss = loss + alpha * (layer.weight * w0).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if layer is not None:
            with torch.no_grad():
                layer.weight.mul_(w0.norm() / layer.weight.norm())
    return module.model.eval()


def universal_perturbation(model: nn.Module, x: Tensor, y: Tensor, eps: float, steps: int,
                           generator: torch.Generator) -> Tensor:
    """One perturbation ``delta`` (``x[0]``'s shape) with ``||delta||_2 <= eps`` that raises the batch's
    cross-entropy: a random start in the ball, then ``steps`` normalised gradient-ascent steps of
    ``2.5 * eps / steps``, each projected back onto the ball; inputs clipped to [0, 1]."""
    delta = torch.randn(x.shape[1:], generator=generator)
    delta = delta * (0.1 * eps / delta.norm())
    for _ in range(steps):
        delta.requires_grad_(True)
        loss = F.cross_entropy(model((x + delta).clamp(0, 1)), y)
        (grad,) = torch.autograd.grad(loss, delta)
        with torch.no_grad():
            delta = delta + (2.5 * eps / steps) * grad / grad.norm().clamp_min(1e-12)
            delta = delta * (eps / delta.norm()).clamp(max=1.0)
    return delta.detach()


def _fine_tune(model: nn.Module, x: Tensor, y: Tensor, epochs: int, seed: int, lr: float = 1e-3, batch: int = 32) -> nn.Module:
    model.train()
    opt = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=lr)
    for idx in _batches(len(y), epochs, batch, seed):
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
    return model.eval()


def nc_unlearning(model: nn.Module, triggers: Sequence[Trigger], x: Tensor, y: Tensor, epochs: int, seed: int,
                  share: float = 0.2, lr: float = 1e-3) -> nn.Module:
    """Neural Cleanse's unlearning: ``share`` of the repair rows carry a reversed trigger (the
    flagged classes' triggers in turn), labels unchanged; fine-tune on that set."""
    if not triggers:
        return copy.deepcopy(model).eval()
    order = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed + 1))
    stamped = order[: round(share * len(y))]
    xs = x.clone()
    with torch.no_grad():
        for k, trig in enumerate(triggers):
            rows = stamped[k :: len(triggers)]
            xs[rows] = trig.apply(x[rows])
    return _fine_tune(copy.deepcopy(model), xs, y, epochs, seed, lr=lr)


def _accuracy(model: nn.Module, x: Tensor, y: Tensor) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


def fine_pruning(model: nn.Module, x: Tensor, y: Tensor, epochs: int, seed: int, layer: str = "conv2",
                 max_drop: float = 0.04, lr: float = 1e-3) -> tuple[nn.Module, int]:
    """Fine-Pruning of ``layer``'s output channels; returns the repaired model and the number pruned."""
    model = copy.deepcopy(model).eval()
    conv = model.get_submodule(layer)
    acts = []
    handle = conv.register_forward_hook(lambda m, i, o: acts.append(F.relu(o).mean((0, 2, 3))))
    with torch.no_grad():
        base = float((model(x).argmax(1) == y).float().mean())
    handle.remove()
    order = acts[0].argsort().tolist()  # most dormant first
    keep = torch.ones(conv.out_channels)
    pruned = 0
    for ch in order[:-1]:
        trial = keep.clone()
        trial[ch] = 0
        handle = conv.register_forward_hook(lambda m, i, o, t=trial: o * t.view(1, -1, 1, 1))
        acc = _accuracy(model, x, y)
        handle.remove()
        if acc < base - max_drop:
            break
        keep, pruned = trial, pruned + 1
    prune.custom_from_mask(conv, "weight", keep.view(-1, 1, 1, 1).expand_as(conv.weight).clone())
    prune.custom_from_mask(conv, "bias", keep.clone())
    return _fine_tune(model, x, y, epochs, seed, lr=lr), pruned


def _neuron_layers(model: nn.Module) -> list[nn.Module]:
    return [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Linear))][:-1]  # not the output layer


def anp(model: nn.Module, x: Tensor, y: Tensor, seed: int, iterations: int = 500, batch: int = 128, eps: float = 0.4,
        alpha: float = 0.2, lr: float = 0.2, threshold: float = 0.2) -> tuple[nn.Module, int]:
    """Adversarial Neuron Pruning; returns the pruned model and the number of neurons pruned.

    Each neuron's output ``h = w·x + b`` becomes ``(m + δ)(h − b) + (1 + ξ) b`` with ``δ, ξ`` in
    ``[−eps, eps]`` (one signed ascent step from a uniform start) and the mask ``m`` in [0, 1];
    minimise ``alpha · CE(m) + (1 − alpha) · CE(m, δ, ξ)`` over ``m``."""
    model = copy.deepcopy(model).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    layers = _neuron_layers(model)
    masks = [torch.ones(m.weight.shape[0], requires_grad=True) for m in layers]
    noise = [torch.zeros(m.weight.shape[0], requires_grad=True) for m in layers]
    noise_b = [torch.zeros(m.weight.shape[0], requires_grad=True) for m in layers]
    state = {"perturb": False}

    def hook(k: int):
        def fn(mod, inp, out):
            shape = (1, -1) + (1,) * (out.dim() - 2)
            b = mod.bias.view(shape)
            if state["perturb"]:
                return (masks[k] + noise[k]).view(shape) * (out - b) + (1 + noise_b[k]).view(shape) * b
            return masks[k].view(shape) * (out - b) + b
        return fn

    handles = [m.register_forward_hook(hook(k)) for k, m in enumerate(layers)]
    g = torch.Generator().manual_seed(seed)
    mask_opt = torch.optim.SGD(masks, lr=lr, momentum=0.9)
    try:
        for _ in range(iterations):
            idx = torch.randint(len(y), (batch,), generator=g)
            xb, yb = x[idx], y[idx]
            with torch.no_grad():
                for t in noise + noise_b:
                    t.uniform_(-eps, eps, generator=g)
            state["perturb"] = True
            grads = torch.autograd.grad(F.cross_entropy(model(xb), yb), noise + noise_b)
            with torch.no_grad():
                for t, gr in zip(noise + noise_b, grads):
                    t.add_(eps * gr.sign()).clamp_(-eps, eps)  # one signed ascent step on the loss
            loss_rob = F.cross_entropy(model(xb), yb)
            state["perturb"] = False
            loss = alpha * F.cross_entropy(model(xb), yb) + (1 - alpha) * loss_rob
            mask_opt.zero_grad(set_to_none=True)
            loss.backward()
            mask_opt.step()
            with torch.no_grad():
                for m in masks:
                    m.clamp_(0, 1)
    finally:
        for h in handles:
            h.remove()
    pruned = 0
    with torch.no_grad():
        for mod, m in zip(layers, masks):
            off = m < threshold
            mod.weight[off] = 0
            mod.bias[off] = 0
            pruned += int(off.sum())
    return model, pruned


def _reinit_head(model: nn.Module, head: str, seed: int) -> nn.Module:
    """``model``'s ``head`` re-initialised (seeded), scaled to its old weight's norm; the old weight
    is kept as the layer's attribute ``w0``."""
    layer = model.get_submodule(head)
    w0 = layer.weight.detach().clone()
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        layer.reset_parameters()
    with torch.no_grad():
        layer.weight.mul_(w0.norm() / layer.weight.norm())
    layer.w0 = w0
    return layer


def fst(model: nn.Module, x: Tensor, y: Tensor, epochs: int, seed: int, head: str = "fc2", alpha: float = 0.2,
        lr: float = 1e-3, batch: int = 32) -> nn.Module:
    """Feature Shift Tuning: re-initialise ``head`` (a ``nn.Linear``, seeded by ``seed``), fine-tune
    every parameter on ``CE(f(x), y) + alpha * <w, w_0>`` and keep ``||w|| = ||w_0||`` by projection."""
    model = copy.deepcopy(model).train()
    layer = _reinit_head(model, head, seed)
    w0 = layer.w0
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    for idx in _batches(len(y), epochs, batch, seed):
        loss = F.cross_entropy(model(x[idx]), y[idx]) + alpha * (layer.weight * w0).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            layer.weight.mul_(w0.norm() / layer.weight.norm())
    return model.eval()


def differential_detection(model: nn.Module, x: Tensor, y: Tensor, epochs: int, seed: int, alpha: float = 0.2,
                           lr: float = 1e-3):
    """Neural Cleanse (default options) on the library's ``Contrast`` of ``model`` and its :func:`fst`
    repair: a trigger moves the backdoored model to its target and not the shifted one; a class's
    natural feature moves both."""

    shifted = fst(model, x, y, epochs, seed, alpha=alpha, lr=lr)
    first = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    diff = Contrast(copy.deepcopy(model).eval(), shifted.eval())
    for p in diff.parameters():
        p.requires_grad_(False)
    return neural_cleanse(diff, x[first][:512], int(y.max()) + 1)
