"""Backdoor analysis: triggers, attack success rate, Neural Cleanse reverse engineering and
CARE-style suspect units.

A *trigger* stamps a pattern ``p`` through a mask ``m`` onto an input, ``x' = (1 − m)·x + m·p``
(BadNets, Gu et al. 2017; the trigger model of Neural Cleanse, Wang et al. 2019). A backdoored
model maps stamped inputs to the trigger's ``target`` class whatever their content.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from lightning_causal.causal._batching import check_max_batch_size, map_rows, rows_per_pass
from lightning_causal.causal._state import audit_mode, frozen_params
from lightning_causal.causal.effects import unit_effects
from lightning_causal.causal.interventions import SetTo, capture, resolve_module

__all__ = [
    "MAD_CONSISTENCY",
    "Trigger",
    "attack_success_rate",
    "trigger_effect",
    "mad_anomaly_index",
    "ReversedTriggers",
    "neural_cleanse",
    "reverse_engineer_triggers",
    "SuspectUnits",
    "suspect_units",
]

#: Consistency constant of the median absolute deviation: 1.4826·MAD estimates σ for normal data.
MAD_CONSISTENCY = 1.4826
_SIDES = ("low", "high", "both")


class Trigger:
    """A stamp ``x' = (1 − m)·x + m·p`` that a backdoored model maps to class ``target``.

    Args:
        mask: values in ``[0, 1]``, shaped like one input or broadcastable to it (e.g. ``[1, H, W]``
            for images ``[N, C, H, W]``: one mask shared by the channels).
        pattern: the stamped values, broadcastable to one input.
        target: the class the backdoor leads to (an int ``>= 0``).

    Raises:
        TypeError: ``mask``/``pattern`` not floating tensors, ``target`` not an int.
        ValueError: mask outside ``[0, 1]``, non-finite values, ``mask`` and ``pattern`` not
            broadcastable to each other, ``target < 0``.

    Examples:
        >>> t = Trigger(torch.tensor([0.0, 1.0]), torch.tensor([9.0, 9.0]), target=3)
        >>> t.apply(torch.tensor([[1.0, 2.0]]))
        tensor([[1., 9.]])
    """

    def __init__(self, mask: Tensor, pattern: Tensor | float, target: int) -> None:
        if not isinstance(mask, Tensor) or not mask.is_floating_point():
            raise TypeError(f"Expected argument `mask` to be a floating-point tensor but got {getattr(mask, 'dtype', type(mask))}")
        pattern = torch.as_tensor(pattern, dtype=mask.dtype, device=mask.device) if not isinstance(pattern, Tensor) else pattern
        if not pattern.is_floating_point():
            raise TypeError(f"Expected argument `pattern` to be a floating-point tensor but got {pattern.dtype}")
        if isinstance(target, bool) or not isinstance(target, int):
            raise TypeError(f"Expected argument `target` to be an int class index but got {target!r}")
        if target < 0:
            raise ValueError(f"Expected argument `target` to be a class index >= 0 but got {target}")
        if mask.numel() == 0 or not torch.isfinite(mask).all() or mask.min() < 0 or mask.max() > 1:
            raise ValueError("Expected argument `mask` to be a non-empty tensor with values in [0, 1]")
        if not torch.isfinite(pattern).all():
            raise ValueError("Expected argument `pattern` to be finite but it holds NaN or infinity")
        try:
            torch.broadcast_shapes(mask.shape, pattern.shape)
        except RuntimeError as err:
            raise ValueError(
                f"Expected arguments `mask` {list(mask.shape)} and `pattern` {list(pattern.shape)} to be broadcastable"
            ) from err
        self.mask, self.pattern, self.target = mask.detach(), pattern.detach(), target

    def check(self, x: Tensor) -> None:
        """Raise ``ValueError`` unless ``x`` is a batch ``[N, ...]`` this trigger can be stamped on."""
        if not isinstance(x, Tensor) or x.dim() < 2 or not x.is_floating_point():
            raise ValueError(f"Expected a floating-point batch of inputs [N, ...] but got {getattr(x, 'shape', type(x))}")
        sample = tuple(x.shape[1:])
        try:
            ok = torch.broadcast_shapes(self.mask.shape, self.pattern.shape, sample) == sample
        except RuntimeError:
            ok = False
        if not ok:
            raise ValueError(
                f"Expected the trigger's `mask` {list(self.mask.shape)} and `pattern` {list(self.pattern.shape)} "
                f"to broadcast to one input of shape {list(sample)}"
            )

    def apply(self, x: Tensor) -> Tensor:
        """``(1 − m)·x + m·p`` for every row of the batch ``x`` (differentiable in ``x``)."""
        self.check(x)
        m = self.mask.to(device=x.device, dtype=x.dtype)
        return (1 - m) * x + m * self.pattern.to(device=x.device, dtype=x.dtype)

    @property
    def norm(self) -> float:
        """``|m|_1``, the size of the trigger."""
        return float(self.mask.abs().sum())

    def to(self, device: torch.device | str) -> Trigger:
        """A copy on ``device``."""
        return Trigger(self.mask.to(device), self.pattern.to(device), self.target)

    def __repr__(self) -> str:
        return f"Trigger(mask={list(self.mask.shape)}, |m|_1={self.norm:.3g}, target={self.target})"


def _check_model(model: nn.Module) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"Expected argument `model` to be a torch.nn.Module but got {type(model)}")


def _logits(model: nn.Module, x: Tensor, max_batch_size: int | None) -> Tensor:
    """``model(x)`` in chunks (call inside ``audit_mode``); checks a ``[N, C]`` output."""
    rows = rows_per_pass(model, (x,), max_batch_size)
    out = map_rows(x.shape[0], rows, lambda idx: model(x[idx]), x.device)
    if out.dim() != 2 or out.shape[1] < 2:
        raise ValueError(f"Expected the model to return class logits [N, C] with C >= 2 but got {list(out.shape)}")
    return out


def _check_target(trigger: Trigger, num_classes: int) -> None:
    if not isinstance(trigger, Trigger):
        raise TypeError(f"Expected argument `trigger` to be a Trigger but got {type(trigger)}")
    if trigger.target >= num_classes:
        raise ValueError(f"Expected the trigger's `target` in [0, {num_classes - 1}] for a {num_classes}-class model but got {trigger.target}")


def attack_success_rate(
    model: nn.Module, x: Tensor, y: Tensor, trigger: Trigger, max_batch_size: int | None = None
) -> float:
    """Share of triggered inputs classified as the target, over inputs whose true class is not it.

    .. math:: ASR = \\frac{|\\{i : y_i \\ne t,\\ \\arg\\max f(T(x_i)) = t\\}|}{|\\{i : y_i \\ne t\\}|}

    Args:
        model: a classifier returning logits ``[N, C]`` (run in eval mode, no gradient).
        x: inputs ``[N, ...]``.
        y: true classes ``[N]``.
        trigger: the :class:`Trigger`.
        max_batch_size: rows per forward pass.

    Raises:
        ValueError: shapes that do not match, no input outside the target class, target out of range.

    Examples:
        >>> model = nn.Linear(2, 2, bias=False)
        >>> _ = model.weight.data.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        >>> t = Trigger(torch.tensor([0.0, 1.0]), torch.tensor([0.0, 5.0]), target=1)
        >>> attack_success_rate(model, torch.tensor([[1.0, 0.0], [9.0, 0.0], [0.0, 1.0]]), torch.tensor([0, 0, 1]), t)
        0.5
    """
    _check_model(model)
    trigger.check(x) if isinstance(trigger, Trigger) else _check_target(trigger, 2)
    if not isinstance(y, Tensor) or y.dim() != 1 or y.shape[0] != x.shape[0] or y.is_floating_point():
        raise ValueError(f"Expected argument `y` to be integer classes [{x.shape[0]}] but got {getattr(y, 'shape', type(y))}")
    keep = y != trigger.target
    if not keep.any():
        raise ValueError(f"Expected at least one input whose true class is not the target {trigger.target}")
    with audit_mode(model):
        out = _logits(model, trigger.apply(x[keep]), check_max_batch_size(max_batch_size))
    _check_target(trigger, out.shape[1])
    return float((out.argmax(1) == trigger.target).float().mean())


def trigger_effect(model: nn.Module, x: Tensor, trigger: Trigger, max_batch_size: int | None = None) -> Tensor:
    """Per-sample causal effect of stamping the trigger on the target logit,
    ``f_t(T(x)) − f_t(x)`` ``[N]``; its mean is the trigger's ACE (do(trigger) vs do(no trigger)).

    Examples:
        >>> t = Trigger(torch.tensor([0.0, 1.0]), torch.tensor([0.0, 5.0]), target=1)
        >>> trigger_effect(nn.Identity(), torch.tensor([[1.0, 2.0]]), t)
        tensor([3.])
    """
    _check_model(model)
    if not isinstance(trigger, Trigger):
        raise TypeError(f"Expected argument `trigger` to be a Trigger but got {type(trigger)}")
    with audit_mode(model):
        both = _logits(model, torch.cat([x, trigger.apply(x)]), check_max_batch_size(max_batch_size))
    _check_target(trigger, both.shape[1])
    n = x.shape[0]
    return both[n:, trigger.target] - both[:n, trigger.target]


def mad_anomaly_index(values: Tensor, side: str = "low") -> Tensor:
    """Robust z-scores by the median absolute deviation (Neural Cleanse's anomaly index).

    .. math:: I_c = \\frac{\\operatorname{med}(v) − v_c}{1.4826 \\cdot \\operatorname{med}_j |v_j − \\operatorname{med}(v)|}

    ``side="low"`` (Neural Cleanse: a backdoor target has an anomalously *small* trigger norm)
    is positive below the median; ``"high"`` flips the sign (units with large effects);
    ``"both"`` is ``|v − med| / (1.4826·MAD)``. The median of an even count is the mean of the
    two middle values (as ``numpy.median``). If ``MAD = 0`` the scale falls back to
    ``1.4826 × mean |v − med|`` (and to 1 if that is 0 too), so the index stays finite.
    An index ``>= 2`` flags an outlier (Wang et al. 2019).

    Raises:
        ValueError: fewer than 2 values, non-finite values, unknown ``side``.

    Examples:
        >>> mad_anomaly_index(torch.tensor([1.0, 10.0, 11.0, 12.0, 13.0]))
        tensor([ 6.7449,  0.6745,  0.0000, -0.6745, -1.3490])
    """
    if side not in _SIDES:
        raise ValueError(f"Expected argument `side` to be one of {_SIDES} but got {side!r}")
    if not isinstance(values, Tensor) or values.dim() != 1 or values.numel() < 2:
        raise ValueError(f"Expected argument `values` to be a 1-D tensor of at least 2 values but got {getattr(values, 'shape', type(values))}")
    if not torch.isfinite(values).all():
        raise ValueError("Expected argument `values` to be finite but it holds NaN or infinity")
    v = values.double()
    med = v.quantile(0.5)
    dev = v - med
    scale = MAD_CONSISTENCY * dev.abs().quantile(0.5)
    if scale == 0:
        scale = MAD_CONSISTENCY * dev.abs().mean()
    scale = scale if scale > 0 else torch.ones((), dtype=v.dtype)
    z = {"low": -dev, "high": dev, "both": dev.abs()}[side] / scale + 0.0  # + 0.0: no negative zeros
    return z.to(values.dtype if values.is_floating_point() else torch.get_default_dtype())


@dataclass
class ReversedTriggers:
    """Result of :func:`neural_cleanse`.

    Attributes:
        triggers: one reverse-engineered :class:`Trigger` per class (``triggers[c].target == c``).
        anomaly_index: ``[C]`` MAD anomaly index of the mask norms (positive = smaller than usual).
        mask_norms: ``[C]`` ``|m_c|_1`` of each returned mask.
        attack_rates: ``[C]`` attack success rate of each returned trigger on the inputs
            (those not already predicted as the class).
        lambdas: ``[C]`` final weight of the mask norm.
        threshold: the flagging threshold.
    """

    triggers: list[Trigger]
    anomaly_index: Tensor
    mask_norms: Tensor
    attack_rates: Tensor
    lambdas: Tensor
    threshold: float = 2.0
    flagged: list[int] = field(init=False)

    def __post_init__(self) -> None:
        order = self.anomaly_index.argsort(descending=True).tolist()
        self.flagged = [c for c in order if float(self.anomaly_index[c]) >= self.threshold]




def _positive_int(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"Expected argument `{name}` to be a positive int but got {value!r}")
    return value


def _positive_float(value: object, name: str, upper: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0 or (upper is not None and value > upper):
        allowed = f"in (0, {upper}]" if upper is not None else "positive"
        raise ValueError(f"Expected argument `{name}` to be a {allowed} number but got {value!r}")
    return float(value)


@dataclass
class _Config:
    steps: int
    lr: float
    init_lambda: float
    target_asr: float
    batch_size: int
    patience: int
    lo: float
    hi: float


def _squash(theta: Tensor) -> Tensor:
    return (torch.tanh(theta) + 1) / 2


def _optimise_classes(model: nn.Module, x: Tensor, pred: Tensor, cls: Tensor, theta_m: Tensor, theta_p: Tensor,
                      batches: Tensor, cfg: _Config) -> tuple[Tensor, Tensor, Tensor]:
    """Neural Cleanse for the classes ``cls`` at once; returns the best (mask, pattern, lambda)."""
    k, b = cls.numel(), batches.shape[1]
    theta_m, theta_p = theta_m.clone().requires_grad_(True), theta_p.clone().requires_grad_(True)
    opt = torch.optim.Adam([theta_m, theta_p], lr=cfg.lr, betas=(0.5, 0.9))
    lam = torch.full((k,), cfg.init_lambda, device=x.device)
    up = torch.zeros(k, dtype=torch.long, device=x.device)
    down = torch.zeros_like(up)
    best_m, best_p = _squash(theta_m).detach().clone(), _squash(theta_p).detach().clone()
    best_norm = torch.full((k,), float("inf"), device=x.device)
    labels = cls.repeat_interleave(b)
    for step in range(cfg.steps):
        idx = batches[step]
        keep = (pred[idx].unsqueeze(0) != cls.unsqueeze(1)).float()  # [k, b]: not already the class
        m, p = _squash(theta_m), cfg.lo + (cfg.hi - cfg.lo) * _squash(theta_p)
        xt = (1 - m.unsqueeze(1)) * x[idx].unsqueeze(0) + m.unsqueeze(1) * p.unsqueeze(1)
        out = model(xt.reshape(k * b, *x.shape[1:]))
        ce = F.cross_entropy(out, labels, reduction="none").view(k, b)
        norm = m.flatten(1).sum(1)
        loss = ((ce * keep).sum(1) / keep.sum(1).clamp_min(1) + lam * norm).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            hit = (out.argmax(1).view(k, b) == cls.unsqueeze(1)).float()
            asr = (hit * keep).sum(1) / keep.sum(1).clamp_min(1)
            ok = asr >= cfg.target_asr
            better = ok & (norm < best_norm)
            best_m[better], best_p[better], best_norm[better] = m[better], p[better], norm[better]
            up, down = torch.where(ok, up + 1, 0), torch.where(ok, 0, down + 1)
            lam = torch.where(up >= cfg.patience, lam * 1.5, torch.where(down >= cfg.patience, lam / 1.5**1.5, lam))
            up, down = torch.where(up >= cfg.patience, 0, up), torch.where(down >= cfg.patience, 0, down)
    never = torch.isinf(best_norm)  # never reached the target rate: keep the last trigger
    with torch.no_grad():
        best_m[never] = _squash(theta_m)[never]
        best_p[never] = (cfg.lo + (cfg.hi - cfg.lo) * _squash(theta_p))[never]
    return best_m, best_p, lam


def _check_reverse_args(x: Tensor, num_classes: int, steps: int, lr: float, init_lambda: float, target_asr: float,
                        batch_size: int, patience: int, generator: torch.Generator | None) -> None:
    if not isinstance(x, Tensor) or x.dim() < 2 or x.shape[0] == 0 or not x.is_floating_point():
        raise ValueError(f"Expected argument `x` to be a non-empty floating-point batch [N, ...] but got {getattr(x, 'shape', type(x))}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
        raise ValueError(f"Expected argument `num_classes` to be an int >= 2 but got {num_classes!r}")
    _positive_int(steps, "steps"), _positive_int(batch_size, "batch_size"), _positive_int(patience, "patience")
    _positive_float(lr, "lr"), _positive_float(init_lambda, "init_lambda"), _positive_float(target_asr, "target_asr", 1.0)
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"Expected argument `generator` to be a torch.Generator but got {type(generator)}")


def _input_range(x: Tensor, input_range: tuple[float, float] | None) -> tuple[float, float]:
    if input_range is None:
        lo, hi = float(x.min()), float(x.max())
        return (lo, hi) if hi > lo else (lo, lo + 1.0)
    if not isinstance(input_range, (tuple, list)) or len(input_range) != 2 or not float(input_range[0]) < float(input_range[1]):
        raise ValueError(f"Expected argument `input_range` to be None or a pair (low, high) with low < high but got {input_range!r}")
    return float(input_range[0]), float(input_range[1])


def _init_theta(shape: tuple[int, ...], g: torch.Generator, device: torch.device) -> Tensor:
    """Parameters whose squashed value is uniform on (0, 1) (Neural Cleanse's random start)."""
    return torch.atanh((2 * torch.rand(shape, generator=g) - 1) * 0.99).to(device)


def _final_rates(model: nn.Module, x: Tensor, pred: Tensor, masks: Tensor, patterns: Tensor, rows: int) -> Tensor:
    """``[C]`` attack rate of each class's trigger on the inputs not already predicted as that class."""
    n, c = x.shape[0], masks.shape[0]

    def evaluate(idx: Tensor) -> Tensor:
        cls, s = idx // n, idx % n
        xt = (1 - masks[cls]) * x[s] + masks[cls] * patterns[cls]
        return (model(xt).argmax(1) == cls).float()

    hit = map_rows(c * n, rows, evaluate, x.device).view(c, n)
    keep = (pred.unsqueeze(0) != torch.arange(c, device=x.device).unsqueeze(1)).float()
    return (hit * keep).sum(1) / keep.sum(1).clamp_min(1)


def neural_cleanse(
    model: nn.Module,
    x: Tensor,
    num_classes: int,
    steps: int = 300,
    lr: float = 0.1,
    init_lambda: float = 1e-3,
    target_asr: float = 0.99,
    batch_size: int = 64,
    patience: int = 10,
    threshold: float = 2.0,
    input_range: tuple[float, float] | None = None,
    generator: torch.Generator | None = None,
    max_batch_size: int | None = None,
) -> ReversedTriggers:
    """Reverse-engineer the smallest trigger of every class and flag anomalously small ones
    (Neural Cleanse, Wang et al. 2019).

    For each class ``c``, with ``m_c = (tanh θ_m + 1)/2`` (one mask shared by the channels) and
    ``p_c = lo + (hi − lo)(tanh θ_p + 1)/2``, Adam (β = (0.5, 0.9)) minimises

    .. math:: \\mathbb{E}_x\\, CE\\big(f((1 − m_c)\\,x + m_c\\,p_c),\\ c\\big) + λ_c \\lVert m_c \\rVert_1

    over inputs not already predicted as ``c``. ``λ_c`` starts at ``init_lambda``; after
    ``patience`` consecutive steps at or above ``target_asr`` it is multiplied by 1.5, after
    ``patience`` steps below divided by 1.5^1.5. The smallest mask reaching ``target_asr`` is kept
    (the last one if none did). The anomaly index of the norms (:func:`mad_anomaly_index`,
    positive = small) flags classes at ``>= threshold``: a backdoor target needs a much smaller
    trigger than the other classes.

    All classes are optimised together: one forward pass of ``C × batch_size`` rows per step
    (classes split into groups of ``max_batch_size // batch_size`` if ``max_batch_size`` is set;
    the random draws are the same either way). Deterministic for a given ``generator`` (default:
    seed 0); the global RNG is never used. The model runs in eval mode with its parameters'
    ``requires_grad`` off (no ``.grad`` is created) and every flag restored afterwards. Gradients
    are enabled inside, so this also works under ``torch.no_grad``/``inference_mode``.

    Args:
        model: classifier returning logits ``[N, num_classes]``.
        x: clean inputs ``[N, ...]`` (images ``[N, C, H, W]`` get a ``[1, H, W]`` mask).
        num_classes: number of classes (``>= 2``).
        steps: optimisation steps. lr: Adam learning rate. init_lambda: initial ``λ``.
        target_asr: attack rate a trigger must reach. batch_size: inputs per step and class.
        patience: steps before ``λ`` changes. threshold: anomaly index that flags a class.
        input_range: ``(low, high)`` of the pattern (default: the range of ``x``).
        generator: private random generator. max_batch_size: rows per forward pass.

    Returns:
        :class:`ReversedTriggers`.

    Examples:
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
        >>> res = neural_cleanse(model, torch.rand(8, 1, 2, 2, generator=torch.Generator().manual_seed(0)), 3, steps=5)
        >>> len(res.triggers), res.triggers[2].target, res.anomaly_index.shape
        (3, 2, torch.Size([3]))
    """
    _check_model(model)
    _check_reverse_args(x, num_classes, steps, lr, init_lambda, target_asr, batch_size, patience, generator)
    _positive_float(threshold, "threshold")
    mbs = check_max_batch_size(max_batch_size)
    lo, hi = _input_range(x, input_range)
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    n, dev = x.shape[0], x.device
    b = min(batch_size, mbs) if mbs is not None else batch_size
    cfg = _Config(steps, float(lr), float(init_lambda), float(target_asr), b, patience, lo, hi)
    mshape = (1, *x.shape[2:]) if x.dim() >= 3 else tuple(x.shape[1:])
    with torch.inference_mode(False):
        x = x.detach().clone()
        batches = torch.randint(n, (steps, b), generator=g).to(dev)
        theta_m = _init_theta((num_classes, *mshape), g, dev).to(x.dtype)
        theta_p = _init_theta((num_classes, *x.shape[1:]), g, dev).to(x.dtype)
        with audit_mode(model, grad=True), frozen_params(model), torch.enable_grad():
            with torch.no_grad():
                pred = _logits(model, x, mbs)
            if pred.shape[1] != num_classes:
                raise ValueError(f"Expected argument `num_classes` to match the model's {pred.shape[1]} outputs but got {num_classes}")
            pred = pred.argmax(1)
            per_pass = num_classes if mbs is None else max(1, mbs // b)
            parts = [
                _optimise_classes(model, x, pred, cls, theta_m[cls], theta_p[cls], batches, cfg)
                for cls in torch.arange(num_classes, device=dev).split(per_pass)
            ]
            masks, patterns, lambdas = (torch.cat(t).detach() for t in zip(*parts))
            with torch.no_grad():
                rates = _final_rates(model, x, pred, masks, patterns, mbs or rows_per_pass(model, (x,)))
    norms = masks.flatten(1).sum(1)
    triggers = [Trigger(masks[c], patterns[c], c) for c in range(num_classes)]
    return ReversedTriggers(triggers, mad_anomaly_index(norms), norms, rates, lambdas, float(threshold))


def reverse_engineer_triggers(
    model: nn.Module,
    x: Tensor,
    num_classes: int,
    steps: int = 300,
    lr: float = 0.1,
    init_lambda: float = 1e-3,
    target_asr: float = 0.99,
    generator: torch.Generator | None = None,
    max_batch_size: int | None = None,
    **kwargs: object,
) -> tuple[list[Trigger], Tensor]:
    """Neural Cleanse's per-class triggers and anomaly indices; see :func:`neural_cleanse`
    (which also returns the norms, attack rates and flagged classes). A class is flagged at an
    index ``>= 2``.

    Examples:
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
        >>> triggers, index = reverse_engineer_triggers(model, torch.ones(4, 1, 2, 2), 2, steps=3)
        >>> [t.target for t in triggers], index.shape
        ([0, 1], torch.Size([2]))
    """
    res = neural_cleanse(model, x, num_classes, steps, lr, init_lambda, target_asr, generator=generator,
                         max_batch_size=max_batch_size, **kwargs)  # type: ignore[arg-type]
    return res.triggers, res.anomaly_index


@dataclass
class SuspectUnits:
    """Result of :func:`suspect_units` for one layer.

    Attributes:
        layer: the module name.
        score: ``[U]`` the suspicion score (``effect_triggered``).
        effect_triggered: ``[U]`` mean CARE effect on triggered inputs.
        effect_clean: ``[U]`` mean CARE effect on clean inputs.
        anomaly_index: ``[U]`` MAD anomaly index of ``score`` (positive = larger than usual).
        threshold: the flagging threshold.
        flagged: units with index ``>= threshold``, largest score first.
    """

    layer: str
    score: Tensor
    effect_triggered: Tensor
    effect_clean: Tensor
    anomaly_index: Tensor
    threshold: float = 2.0
    flagged: list[int] = field(init=False)

    def __post_init__(self) -> None:
        self.flagged = [u for u in self.ranking() if float(self.anomaly_index[u]) >= self.threshold]

    def ranking(self) -> list[int]:
        """All units, largest score first."""
        return self.score.argsort(descending=True, stable=True).tolist()


def _do_grid(h_clean: Tensor, h_trig: Tensor, num_values: int) -> list[SetTo]:
    """``num_values`` per-unit values from each unit's mean on clean inputs to its mean on
    triggered inputs (means over samples and positions; ``h`` is ``[N, U, ...]``)."""
    dims = [0] + list(range(2, h_clean.dim()))
    lo, hi = h_clean.mean(dims), h_trig.mean(dims)
    return [SetTo(lo + (hi - lo) * a) for a in torch.linspace(0, 1, num_values).tolist()]


def suspect_units(
    model: nn.Module,
    x_clean: Tensor,
    trigger: Trigger,
    layer: str,
    num_values: int = 8,
    threshold: float = 3.0,
    max_batch_size: int | None = None,
) -> SuspectUnits:
    """Units of ``layer`` that carry the backdoor: causal effect on the target logit on triggered
    versus clean inputs (CARE, Sun et al. 2022), flagged by a MAD outlier test.

    For each unit ``u`` the do-grid ``a_1..a_K`` spans the range over which the trigger moves
    it, from its mean on clean inputs ``x`` to its mean on triggered inputs ``T(x)`` (means over
    samples and positions; a conv channel is set to ``a`` everywhere). The effect on an input
    set ``S`` is the range of the interventional curve of the target logit, averaged over ``S``:

    .. math:: e_S(u) = \\mathbb{E}_{x \\in S}\\big[\\max_k f_t(x \\mid do(h_u := a_k)) − \\min_k f_t(x \\mid do(h_u := a_k))\\big]

    ``score_u = e_{T(x)}(u)``, the effect on the triggered inputs (where the backdoor acts);
    ``e_x(u)`` on clean inputs is reported beside it. A unit scores high only if the trigger
    shifts it *and* the shift moves the target logit: a mediator of the trigger's effect. Units
    with ``mad_anomaly_index(score, side="high") >= threshold`` are flagged (default 3: most units
    are not moved by the trigger at all, so the MAD is small and 2 flags too many in wide layers).

    Args:
        model: the classifier.
        x_clean: clean inputs ``[N, ...]``.
        trigger: the (known or reverse-engineered) trigger.
        layer: module name; its output is ``[N, U, ...]`` with U >= 2.
        num_values: grid size K (>= 2).
        threshold: anomaly index that flags a unit.
        max_batch_size: rows per forward pass.

    Examples:
        >>> model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2))
        >>> t = Trigger(torch.tensor([0.0, 1.0]), torch.tensor([0.0, 3.0]), target=1)
        >>> su = suspect_units(model, torch.rand(6, 2, generator=torch.Generator().manual_seed(0)), t, "1")
        >>> su.score.shape, len(su.ranking())
        (torch.Size([3]), 3)
    """
    _check_model(model)
    if not isinstance(trigger, Trigger):
        raise TypeError(f"Expected argument `trigger` to be a Trigger but got {type(trigger)}")
    if isinstance(num_values, bool) or not isinstance(num_values, int) or num_values < 2:
        raise ValueError(f"Expected argument `num_values` to be an int >= 2 but got {num_values!r}")
    _positive_float(threshold, "threshold")
    resolve_module(model, layer)
    x_trig = trigger.apply(x_clean).detach()
    with audit_mode(model), capture(model, [layer]) as acts:
        _check_target(trigger, _logits(model, x_clean[:1], None).shape[1])
        model(x_clean)
        h_clean = acts[layer]
        model(x_trig)
        h_trig = acts[layer]
    if h_clean.dim() < 2 or h_clean.shape[1] < 2:
        raise ValueError(f"Expected layer {layer!r} to output [N, U, ...] with at least 2 units but got {list(h_clean.shape)}")
    grid = _do_grid(h_clean, h_trig, num_values)
    effects = [
        unit_effects(model, xs, layer, grid, target=trigger.target, max_batch_size=max_batch_size).mean(0)
        for xs in (x_trig, x_clean)
    ]
    score = effects[0]
    return SuspectUnits(layer, score, effects[0], effects[1], mad_anomaly_index(score, side="high"), float(threshold))
