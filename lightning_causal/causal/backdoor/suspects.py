"""Which classes and which hidden units carry a backdoor: the MAD anomaly index (Neural Cleanse's
outlier test) and CARE-style suspect units (Sun et al. 2022)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, get_args

import torch
from torch import Tensor, nn

from lightning_causal.causal.backdoor.triggers import (
    Trigger,
    _check_model,
    _check_target,
    _logits,
    _RowsOf,
)
from lightning_causal.causal.effects.unit_effects import unit_effects
from lightning_causal.causal.engine.checks import check_choice, check_float, check_int, check_type
from lightning_causal.causal.engine.forward import Forward, OutputSpec
from lightning_causal.causal.engine.input_sites import check_site
from lightning_causal.causal.engine.interventions import SetTo, capture
from lightning_causal.causal.engine.state import audit_mode
from lightning_causal.causal.engine.unit_sites import check_unit_dimension
from lightning_causal.causal.engine.units import (
    Layout,
    check_layout_options,
    resolve_layout,
    to_units,
)

__all__ = ["MAD_CONSISTENCY", "anomaly_scale", "mad_anomaly_index", "SuspectUnits", "suspect_units"]

#: Consistency constant of the median absolute deviation: 1.4826·MAD estimates σ for normal data.
MAD_CONSISTENCY = 1.4826
#: Consistency constant of the mean absolute deviation: √(π/2)·mean|v − med| estimates σ for normal data
#: (E|Z| = √(2/π)); the scale when the MAD is 0 (Iglewicz & Hoaglin's modified z-score).
MEAN_AD_CONSISTENCY = math.sqrt(math.pi / 2)
AnomalySide = Literal["low", "high", "both"]
_SIDES = get_args(AnomalySide)


def mad_anomaly_index(values: Tensor, side: AnomalySide = "low") -> Tensor:
    """Robust z-scores by the median absolute deviation (Neural Cleanse's anomaly index).

    .. math:: I_c = \\frac{\\operatorname{med}(v) − v_c}{1.4826 \\cdot \\operatorname{med}_j |v_j − \\operatorname{med}(v)|}

    ``side="low"`` (Neural Cleanse: a backdoor target has an anomalously *small* trigger norm)
    is positive below the median; ``"high"`` flips the sign (units with large effects);
    ``"both"`` is ``|v − med| / (1.4826·MAD)``. The median of an even count is the mean of the
    two middle values (as ``numpy.median``). If ``MAD = 0`` (more than half the values equal the median) the scale falls back
    to ``√(π/2) × mean |v − med|`` (1.2533: ``E|Z| = √(2/π)``, so it estimates σ for normal data as 1.4826·MAD
    does; Iglewicz & Hoaglin's modified z-score), and to 1 if that is 0 too, so the index stays finite.
    An index ``>= 2`` flags an outlier (Wang et al. 2019).

    Args:
        values: at least 2 finite values ``[K]``.
        side: ``"low"``, ``"high"`` or ``"both"``, as above.

    Raises:
        ValueError: fewer than 2 values, non-finite values, unknown ``side``.

    Examples:
        >>> mad_anomaly_index(torch.tensor([1.0, 10.0, 11.0, 12.0, 13.0]))
        tensor([ 6.7449,  0.6745,  0.0000, -0.6745, -1.3490])
    """
    check_choice("side", side, _SIDES)
    if not isinstance(values, Tensor) or values.dim() != 1 or values.numel() < 2:
        raise ValueError(f"Expected argument `values` to be a 1-D tensor of at least 2 values but got {getattr(values, 'shape', type(values))}")
    if not torch.isfinite(values).all():
        raise ValueError("Expected argument `values` to be finite but it holds NaN or infinity")
    v = values.double()
    dev = v - v.quantile(0.5)
    scale, _ = _scale(dev)
    z = {"low": -dev, "high": dev, "both": dev.abs()}[side] / scale + 0.0  # + 0.0: no negative zeros
    return z.to(values.dtype if values.is_floating_point() else torch.get_default_dtype())


def _scale(dev: Tensor) -> tuple[Tensor, str]:
    """The scale of :func:`mad_anomaly_index` for deviations from the median ``dev``, and its name."""
    scale = MAD_CONSISTENCY * dev.abs().quantile(0.5)
    if scale > 0:
        return scale, "1.4826·MAD"
    scale = MEAN_AD_CONSISTENCY * dev.abs().mean()  # not 1.4826, the median's constant: σ units either way
    return (scale, "1.2533·mean|v − med|") if scale > 0 else (torch.ones((), dtype=dev.dtype), "1")


def anomaly_scale(values: Tensor) -> str:
    """Which σ :func:`mad_anomaly_index` divides ``values``' deviations from their median by, as the figures name it:
    ``"1.4826·MAD"``; ``"1.2533·mean|v − med|"`` where the MAD is 0 (more than half the values equal the median);
    ``"1"`` where every value is the median.

    Args:
        values: at least 2 finite values ``[K]``, as :func:`mad_anomaly_index` takes them.

    Raises:
        ValueError: as :func:`mad_anomaly_index`.

    Examples:
        >>> anomaly_scale(torch.tensor([1.0, 10.0, 11.0, 12.0, 13.0])), anomaly_scale(torch.tensor([1.0, 5.0, 5.0, 5.0]))
        ('1.4826·MAD', '1.2533·mean|v − med|')
    """
    mad_anomaly_index(values)  # the same checks
    v = values.double()
    return _scale(v - v.quantile(0.5))[1]


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

    Examples:
        >>> import torch
        >>> score = torch.tensor([0.1, 0.2, 3.0, 0.15, 0.12])  # unit 2 carries the trigger's effect
        >>> s = SuspectUnits("conv2", score, score, torch.zeros(5), mad_anomaly_index(score, side="high"))
        >>> s.ranking(), s.flagged
        ([2, 1, 3, 4, 0], [2])
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


class _CallMeans:
    """Each unit's mean over samples and positions of a layer's output (units-first ``[N, U, ...]``), averaged over the
    layer's calls in a forward pass: a ``capture`` ``keep`` that reduces each call as it arrives, so that what is
    kept is a sum ``[U]`` and a count, not every call's output (a GRU cell unrolled over 200 steps, a backbone run on
    each view of a test-time-augmentation wrapper). The first call is checked (:func:`check_unit_dimension`, at least 2
    units) and fixes the layout of every call; ``widths`` is each call's unit count (the calls of another width are
    not summed: :func:`suspect_units` refuses them).

    Examples:
        >>> means = _CallMeans("h", None, None)
        >>> _ = means("h", torch.tensor([[1.0, 2.0], [3.0, 4.0]])), means("h", torch.tensor([[5.0, 6.0], [7.0, 8.0]]))
        >>> means.mean(), means.widths
        (tensor([4., 5.]), [2, 2])
    """

    def __init__(self, layer: str, unit_dim: int | None, num_heads: int | None) -> None:
        self.layer, self.unit_dim, self.num_heads = layer, unit_dim, num_heads
        self.layout: Layout | None = None
        self.restart()

    def restart(self) -> None:
        """Forget the calls (the layout found stays: the triggered pass is read in the clean pass's)."""
        self.total: Tensor | None = None
        self.summed = 0
        self.widths: list[int] = []

    def __call__(self, _name: str, h: Tensor) -> Tensor:
        if self.layout is None:
            check_unit_dimension(self.layer, h.shape)
            self.layout = resolve_layout(h.shape, self.unit_dim, self.num_heads)
            if self.layout.num_units < 2:
                raise ValueError(f"Expected layer {self.layer!r} to output [N, U, ...] with at least 2 units but got {list(h.shape)}")
        self.widths.append(resolve_layout(h.shape, self.unit_dim, self.num_heads).num_units)
        if self.widths[-1] != self.layout.num_units:
            return h.new_zeros(())
        u = to_units(h, self.layout)
        mean = u.mean([0] + list(range(2, u.dim())))
        self.total = mean if self.total is None else self.total + mean
        self.summed += 1
        return mean

    def mean(self) -> Tensor:
        """The units' means ``[U]``, averaged over the calls; refused where the layer did not run in the pass (on the
        triggered inputs, where it ran on the clean ones: a block the model skips for some inputs)."""
        if self.total is None:
            raise ValueError(f"Expected layer {self.layer!r} to run in the model's forward pass of the triggered inputs, "
                             "as it ran in that of the clean ones, but it did not (a block the model skips for some "
                             "inputs, an early exit): name a layer the model runs on every input")
        return self.total / self.summed


def _do_grid(lo: Tensor, hi: Tensor, num_values: int) -> list[SetTo]:
    """``num_values`` per-unit values from each unit's mean on clean inputs ``lo`` to its mean on triggered inputs
    ``hi`` (``[U]`` each, as :class:`_CallMeans` reads them)."""
    return [SetTo(lo + (hi - lo) * a) for a in torch.linspace(0, 1, num_values).tolist()]


def suspect_units(
    model: nn.Module,
    x_clean: Tensor,
    trigger: Trigger,
    layer: str,
    *,
    num_values: int = 8,
    threshold: float = 3.0,
    max_batch_size: int | None = None,
    unit_dim: int | None = None,
    num_heads: int | None = None,
    output: OutputSpec = None,
    additional_forward_args: Any = None,
) -> SuspectUnits:
    """Units of ``layer`` that carry the backdoor: causal effect on the target logit on triggered
    versus clean inputs (CARE, Sun et al. 2022), flagged by a MAD outlier test.

    For each unit ``u`` the do-grid ``a_1..a_K`` spans the range over which the trigger moves
    it, from its mean on clean inputs ``x`` to its mean on triggered inputs ``T(x)`` (means over
    samples and positions, and over the calls of a layer that runs several times per forward pass, whose every call
    is set: one module used at places of other widths is refused; a conv channel is set to ``a`` everywhere). The
    effect on an input
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
        layer: module name; its output is ``[N, U, ...]`` with U >= 2 (or as ``unit_dim`` and
            ``num_heads`` say).
        num_values: grid size K (>= 2).
        threshold: anomaly index that flags a unit.
        max_batch_size: rows per forward pass.
        unit_dim: the dimension of the layer's output that indexes units, as in
            :func:`~lightning_causal.causal.effects.unit_effects.unit_effects` (default 1; ``-1``
            for the neurons of a ``[N, T, D]`` hidden state).
        num_heads: split the unit dimension into this many contiguous heads (a unit is a head).
        output: which tensor of the return value holds the logits, as in
            :func:`~lightning_causal.causal.backdoor.triggers.attack_success_rate`.
        additional_forward_args: extra forward arguments, as in
            :func:`~lightning_causal.causal.backdoor.triggers.attack_success_rate`.

    Examples:
        >>> model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2))
        >>> t = Trigger(torch.tensor([0.0, 1.0]), torch.tensor([0.0, 3.0]), target=1)
        >>> su = suspect_units(model, torch.rand(6, 2, generator=torch.Generator().manual_seed(0)), t, "1")
        >>> su.score.shape, len(su.ranking())
        (torch.Size([3]), 3)
    """
    _check_model(model)
    check_type("trigger", trigger, Trigger)
    check_int("num_values", num_values, minimum=2)
    check_float("threshold", threshold, minimum=0.0, open_min=True)
    check_layout_options(unit_dim, num_heads)
    check_site(model, layer)
    x_trig = trigger.apply(x_clean).detach()
    options = {"output": output, "additional_forward_args": additional_forward_args}
    fwd = Forward(model, num_samples=x_clean.shape[0], **options)
    means = _CallMeans(layer, unit_dim, num_heads)  # every call's units: a backbone run on each view of a test-time-
    with audit_mode(model):  # augmentation wrapper, a cell unrolled over time; reduced as they arrive, their outputs not kept
        _check_target(trigger, _logits(model, x_clean[:1], None, _RowsOf(fwd, torch.zeros(1, dtype=torch.long))).shape[1])
        with capture(model, [layer], keep=means, warn_repeats=False, warn_unreached=False):
            fwd.raw(x_clean)
            widths, lo = means.widths, means.mean() if means.widths else None
            means.restart()
            fwd.raw(x_trig)
    if not widths:
        raise ValueError(f"Expected layer {layer!r} to run in the model's forward pass but it did not (a module whose "
                         "weights the model uses in functional code, such as the out_proj of torch.nn.MultiheadAttention, "
                         "never runs; that out_proj's input is the site '<attention>.out_proj:input')")
    if len(set(widths)) > 1:  # one module used at places of other widths (a ReLU after convolutions of 8 and 16 channels)
        raise ValueError(f"Expected every call of layer {layer!r} to output the same units, as the do-grid sets them at "
                         f"every call, but it runs {len(widths)} times per forward pass with {widths} units: name a "
                         "module used at one place (or an nn.Identity put there)")
    # the grid's values are set at every call (unit_effects), so it spans the units' means over every call
    grid = _do_grid(lo, means.mean(), num_values)  # type: ignore[arg-type]
    effects = [
        unit_effects(model, xs, layer, grid, target=trigger.target, max_batch_size=max_batch_size,
                     unit_dim=unit_dim, num_heads=num_heads, **options).mean(0)
        for xs in (x_trig, x_clean)
    ]
    score = effects[0]
    return SuspectUnits(layer, score, effects[0], effects[1], mad_anomaly_index(score, side="high"), float(threshold))
