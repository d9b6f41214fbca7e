"""Backdoor analysis: triggers, attack success rate, the MAD anomaly index and CARE-style suspect
units (Neural Cleanse reverse engineering: :mod:`lightning_causal.causal.neural_cleanse`).

A *trigger* stamps a pattern ``p`` through a mask ``m`` onto an input, ``x' = (1 − m)·x + m·p``
(BadNets, Gu et al. 2017; the trigger model of Neural Cleanse, Wang et al. 2019). A backdoored
model maps stamped inputs to the trigger's ``target`` class whatever their content.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import Tensor, nn

from lightning_causal.causal._batching import check_max_batch_size, map_rows, rows_per_pass
from lightning_causal.causal._state import audit_mode
from lightning_causal.causal.effects import unit_effects
from lightning_causal.causal.interventions import SetTo, capture, resolve_module

__all__ = [
    "MAD_CONSISTENCY",
    "Trigger",
    "attack_success_rate",
    "trigger_effect",
    "mad_anomaly_index",
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
