"""Counterfactual explanations: the smallest change of an input that makes the model predict a
chosen class (Wachter et al. 2017; TRACER's contrastive explanations of misclassifications).

All inputs are optimised at once as one batch, each with its own loss weight and its own best
valid counterfactual so far.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn

from lightning_causal.causal.engine.ablation import padding_positions
from lightning_causal.causal.engine.checks import check_float, check_int
from lightning_causal.causal.engine.finite import check_finite_samples
from lightning_causal.causal.engine.forward import Forward, OutputSpec
from lightning_causal.causal.engine.gradient_cuts import (
    FLAT_STEPS,
    gradient_cut_causes,
    not_float_input,
)
from lightning_causal.causal.engine.input_kinds import check_input_kinds
from lightning_causal.causal.engine.leaf_gradients import LeafGradients
from lightning_causal.causal.engine.noise import warn_separate_noise
from lightning_causal.causal.engine.padded_reads import explained_target
from lightning_causal.causal.engine.per_sample_results import per_sample_mappings
from lightning_causal.causal.engine.sample_independence import check_samples_independent
from lightning_causal.causal.engine.state import (
    audit_mode,
    frozen_params,
    rng_preserved,
    rnn_backward,
)
from lightning_causal.causal.engine.token_ids import INDEX_DTYPES
from lightning_causal.causal.engine.user_frame import outside_package
from lightning_causal.causal.structure.counterfactual_refine import (
    DiscreteFeatures,
    check_discrete,
    polish,
)

__all__ = ["CounterfactualSettings", "Counterfactuals", "OutsideBoundsWarning", "counterfactual_explanation"]


class OutsideBoundsWarning(UserWarning):
    """The warning that inputs lie outside a counterfactual search's ``bounds`` (:func:`warn_outside_bounds`).

    Its own category, so that it can be filtered by what it is rather than by its wording, e.g.
    ``warnings.filterwarnings("ignore", category=OutsideBoundsWarning)``; a ``UserWarning``, so filters of
    those catch it too.
    """


@dataclass(frozen=True)
class CounterfactualSettings:
    """The optimisation of :func:`counterfactual_explanation`.

    Args:
        l1: weight of the L1 proximity term (sparse changes).
        l2: weight of the squared L2 proximity term.
        steps: optimisation steps.
        lr: Adam's learning rate.
        margin: the hinge's margin ``κ`` in logits.
        weight: initial weight ``λ`` of the prediction term.
        growth: factor of the ``λ`` schedule (> 1).
        init_noise: standard deviation of a random start ``δ_0`` (0: start at ``x``); an input the model
            already gives the target class (inside ``bounds``) keeps ``x`` either way.
        polish: Newton steps after the search (0: none) towards the minimum of the proximity cost: each
            the cheapest change under the decision margin linearised at the current point (for
            ``l2 = 0`` all of it on the features of largest gradient first); a step's point replaces
            the best one only if valid and cheaper.

    Examples:
        >>> CounterfactualSettings(steps=0)
        Traceback (most recent call last):
        ...
        ValueError: Expected argument `steps` to be a positive int but got 0
    """

    l1: float = 0.1
    l2: float = 0.01
    steps: int = 300
    lr: float = 0.01
    margin: float = 0.1
    weight: float = 1.0
    growth: float = 2.0
    init_noise: float = 0.0
    polish: int = 5

    def __post_init__(self) -> None:
        check_int("steps", self.steps, minimum=1)
        check_int("polish", self.polish, minimum=0)
        check_float("lr", self.lr, minimum=0.0, open_min=True)
        for name in ("l1", "l2", "margin", "weight", "init_noise"):
            check_float(name, getattr(self, name), minimum=0.0)
        check_float("growth", self.growth, minimum=1.0, open_min=True)


@dataclass
class Counterfactuals:
    """Result of :func:`counterfactual_explanation` (one row per input).

    Attributes:
        inputs: the original inputs ``[N, ...]``.
        counterfactuals: ``x'`` (equal to the input where no counterfactual was found).
        target: the requested classes ``[N]``.
        success: ``[N]`` whether the model predicts ``target`` for ``x'``.
        l1: ``||x' - x||_1`` ``[N]`` (0 where unsuccessful).
        l2: ``||x' - x||_2`` ``[N]`` (0 where unsuccessful).
        sparsity: fraction of the input elements changed ``[N]``.
        predicted: the model's class for ``x'`` ``[N]``.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> model = nn.Linear(2, 2, bias=False)
        >>> _ = model.weight.data.copy_(torch.eye(2))  # class 1 where x_2 > x_1
        >>> cf = counterfactual_explanation(model, torch.tensor([[1.0, 0.0]]), 1, CounterfactualSettings(steps=100, lr=0.05))
        >>> cf.counterfactuals.round(decimals=2), round(cf.l1.item(), 2), round(cf.l2.item(), 2)  # nearest: (0.5, 0.5)
        (tensor([[0.5000, 0.5000]]), 1.0, 0.71)
    """

    inputs: Tensor
    counterfactuals: Tensor
    target: Tensor
    success: Tensor
    l1: Tensor
    l2: Tensor
    sparsity: Tensor
    predicted: Tensor

    @property
    def delta(self) -> Tensor:
        """``x' - x``."""
        return self.counterfactuals - self.inputs

    def summary(self) -> dict[str, float]:
        """Success rate and the mean L1 / L2 distance and sparsity over the successful rows."""
        ok = self.success
        n_ok = int(ok.sum())
        mean = (lambda v: float(v[ok].double().mean())) if n_ok else (lambda v: float("nan"))
        return {"success_rate": n_ok / ok.numel(), "l1": mean(self.l1), "l2": mean(self.l2),
                "sparsity": mean(self.sparsity)}




def check_bound_pair(bounds: object, dtype: torch.dtype = torch.float64, device: torch.device | str | None = None) -> tuple[Tensor, Tensor]:
    """``bounds`` as tensors ``(low, high)``: a pair of numbers or tensors of broadcastable shapes
    with ``low <= high`` everywhere (their shape against an input: :func:`check_bounds`).

    Args:
        bounds: ``(low, high)``, each a number or a tensor.
        dtype: the dtype of the returned tensors.
        device: their device; ``None``: a tensor's own, the default device for a number.
    """
    if not isinstance(bounds, tuple) or len(bounds) != 2:
        raise ValueError(f"Expected argument `bounds` to be None or a tuple (low, high) but got {type(bounds).__name__} {bounds!r}")
    lo, hi = (torch.as_tensor(b, dtype=dtype, device=device) for b in bounds)
    for side, t in (("low", lo), ("high", hi)):
        if bool(t.isnan().any()):  # NaN compares false: the clamp would turn the search's inputs into NaN
            raise ValueError(f"Expected argument `bounds` to hold no NaN (use -inf/inf for no bound) but its {side} holds "
                             f"{int(t.isnan().sum())} NaN")
    try:
        below = bool((lo > hi).any())
    except RuntimeError as err:
        raise ValueError(f"Expected argument `bounds` low and high of broadcastable shapes but got {list(lo.shape)} and "
                         f"{list(hi.shape)}") from err
    if below:
        lo_b, hi_b = torch.broadcast_tensors(lo, hi)
        bad = (lo_b > hi_b).nonzero()[0].tolist()
        where = f" at index {bad}" if bad else ""
        raise ValueError(f"Expected argument `bounds` to satisfy low <= high everywhere but got low {lo_b[tuple(bad)].item():g} > "
                         f"high {hi_b[tuple(bad)].item():g}{where} ({int((lo_b > hi_b).sum())} of {lo_b.numel()} elements)")
    return lo, hi


def check_bounds(bounds: tuple | None, x: Tensor, *, per_input: bool = False) -> tuple[Tensor, Tensor]:
    """``(low, high)`` broadcast to one input ``x[:1]`` (``None``: unbounded), or with ``per_input``
    bounds of each input ``[N, ...]`` where either has a first dimension of ``N`` (> 1) matched against the inputs.

    Args:
        bounds: ``(low, high)`` as in :func:`check_bound_pair`, each broadcastable to one input (with
            ``per_input``: or to the inputs ``[N, ...]``), or ``None``.
        x: the inputs ``[N, ...]``.
        per_input: whether bounds may differ between inputs (e.g. ``low = x`` on a column that may only rise).
    """
    if bounds is None:
        return torch.full_like(x[:1], -torch.inf), torch.full_like(x[:1], torch.inf)
    lo, hi = check_bound_pair(bounds, x.dtype, x.device)
    try:
        return torch.broadcast_to(lo, x[:1].shape), torch.broadcast_to(hi, x[:1].shape)
    except RuntimeError as err:
        if per_input:
            try:
                return torch.broadcast_to(lo, x.shape), torch.broadcast_to(hi, x.shape)
            except RuntimeError:
                pass
        shapes = f"one input {list(x.shape[1:])}" + (f" or to the inputs {list(x.shape)}" if per_input else "")
        raise ValueError(f"Expected argument `bounds` broadcastable to {shapes} but got low of shape "
                         f"{list(lo.shape)} and high of shape {list(hi.shape)}") from err


def _mutable(mask: Tensor | None, x: Tensor) -> Tensor:
    if mask is None:
        return torch.ones_like(x[:1], dtype=torch.bool)
    if not isinstance(mask, Tensor):
        raise TypeError(f"Expected argument `mask` to be None or a tensor but got {type(mask)}")
    try:
        return torch.broadcast_to(mask.to(x.device).bool(), x.shape)
    except RuntimeError as err:
        raise ValueError(f"Expected argument `mask` broadcastable to the inputs {list(x.shape)} but got {list(mask.shape)}") from err


def warn_outside_bounds(x: Tensor, mutable: Tensor, lo: Tensor, hi: Tensor, *, rows: Tensor | None = None,
                        what: str = "inputs", names: Sequence[str] | None = None, stacklevel: int = 3) -> None:
    """Warn where a mutable feature of an input lies outside ``bounds``: every point the search scores is
    projected inside, so the counterfactual moves it there whether the model needs it or not, and
    ``l1``/``l2`` count that move (an input of the target class already gets a nonzero change). The
    warning's category is :class:`OutsideBoundsWarning`.

    Args:
        x: the inputs ``[N, ...]``.
        mutable: the mutable features, broadcastable to ``x``.
        lo: the lower bounds, broadcastable to ``x``.
        hi: the upper bounds, broadcastable to ``x``.
        rows: the index each row is known by (a probe's: ``[N]``); ``None``: its position.
        what: what the rows are, for the message.
        names: the features' names (``x.flatten(1)``'s columns); ``None``: their index.
        stacklevel: as in :func:`warnings.warn`.
    """
    outside = (mutable & ((x < lo) | (x > hi))).flatten(1)
    if not outside.any():
        return
    i, j = outside.nonzero()[0].tolist()
    lo_f, hi_f = lo.expand_as(x).flatten(1), hi.expand_as(x).flatten(1)
    row = i if rows is None else int(rows[i])
    feature = f"feature {j}" if names is None else f"feature {j} ({names[j]})"
    warnings.warn(
        f"{int(outside.any(1).sum())} of {len(x)} {what} lie outside `bounds` on mutable features (first: row {row}, {feature} "
        f"holds {float(x.flatten(1)[i, j]):g}, bounds [{float(lo_f[i, j]):g}, {float(hi_f[i, j]):g}]): their counterfactuals move "
        "those features inside the bounds whether the model needs it or not, and l1/l2 count that move; widen `bounds` to hold "
        "the inputs (bounds of each input, e.g. torch.minimum(low, x)) or freeze those features with `mask`", OutsideBoundsWarning,
        stacklevel=stacklevel)


def check_scale(scale: object, x: Tensor) -> Tensor | None:
    """``scale`` (each feature's unit of cost) as a tensor broadcastable to ``x``, positive and finite;
    ``None`` stays ``None``.

    Args:
        scale: ``None`` or a tensor broadcastable to one input ``x[:1]`` or to the inputs ``x``.
        x: the inputs ``[N, ...]``.
    """
    if scale is None:
        return None
    if not isinstance(scale, Tensor):
        raise TypeError(f"Expected argument `scale` to be None or a tensor of each feature's unit of cost but got "
                        f"{type(scale).__name__}")
    s = scale.to(device=x.device, dtype=x.dtype)
    for shape in (x[:1].shape, x.shape):
        try:
            s = torch.broadcast_to(s, shape)
            break
        except RuntimeError:
            continue
    else:
        raise ValueError(f"Expected argument `scale` broadcastable to one input {list(x.shape[1:])} or to the inputs "
                         f"{list(x.shape)} but got {list(scale.shape)}")
    bad = ~(torch.isfinite(s) & (s > 0))
    if bad.any():
        where = bad.flatten(1).nonzero()[0].tolist()
        raise ValueError(f"Expected argument `scale` to be positive and finite (each feature's unit of cost, e.g. its MAD; "
                         f"a feature that must not change is `mask` 0) but got {float(s.flatten(1)[tuple(where)]):g} at "
                         f"feature {where[1]}")
    return s


def _margin_loss(logits: Tensor, target: Tensor, margin: float) -> Tensor:
    """Hinge on the target logit margin: ``max(0, max_{c != t} z_c - z_t + margin)`` per row.

    The largest rival is read at its ``argmax`` (the first one, as ``max(1)``'s index; the gradient goes to it
    alone, as ``max(1)``'s): ``max(1)`` enters torch's thread pool even on ``[N, 3]``, and with the threads
    contended (another busy process on a 2-core machine) a call waited about 0.5 ms, against 3 µs here."""
    z_t = logits.gather(1, target.view(-1, 1)).squeeze(1)
    rivals = logits.scatter(1, target.view(-1, 1), -torch.inf)
    others = rivals.gather(1, rivals.argmax(1, keepdim=True)).squeeze(1)
    return (others - z_t + margin).clamp_min(0.0)


#: the way to counterfactuals of item or token ids in bags, which the search cannot move (no gradient, no values between
#: them): the same model on each bag's counts (docs/your_model.md, 'Token inputs'); CounterfactualAudit's refusal too
ITEM_COUNTERFACTUALS = (
    "for ids in bags (an nn.EmbeddingBag's items, a bag of words), which items to remove to flip a decision is a search "
    "over each bag's counts [N, V], the same model read through them (`counts @ bag.weight` for "
    "nn.EmbeddingBag(mode='sum', padding_idx=0)), with `bounds=(0, counts)` (items only removed) and `integer=` every "
    "column (docs/your_model.md, 'Which items to remove to flip a decision')"
)


def counterfactual_explanation(
    model: nn.Module,
    inputs: Tensor,
    target_class: int | Tensor,
    settings: CounterfactualSettings | None = None,
    *,
    mask: Tensor | None = None,
    bounds: tuple[float | Tensor, float | Tensor] | None = None,
    categorical: Sequence[Sequence[int]] | None = None,
    integer: Sequence[int] | Tensor | None = None,
    scale: Tensor | None = None,
    generator: torch.Generator | None = None,
    output: OutputSpec = None,
    additional_forward_args: Any = None,
) -> Counterfactuals:
    """The smallest change ``δ`` that makes ``model`` predict ``target_class`` (Wachter et al. 2017).

    .. math:: \\min_δ \\; λ_i \\max(0, \\max_{c≠t} z_c(x+δ) - z_t(x+δ) + κ) + l_1 \\|δ\\|_1 + l_2 \\|δ\\|_2^2

    optimised for all inputs at once: Adam on the smooth part, then the L1 proximal step in Adam's
    diagonal metric (soft-thresholding by ``lr * l1 / (sqrt(v_hat) + eps)``; proximal gradient as
    in the elastic-net scheme of Chen et al. 2018, EAD), which gives exact zeros and so sparse
    counterfactuals. Only the features selected by ``mask`` change
    (the others keep their exact values) and ``x + δ`` is projected into ``bounds`` after every
    step. Every ``steps // 20`` steps the weight ``λ_i`` of each input without a valid counterfactual
    is multiplied by ``growth`` (Wachter's schedule on λ). The result keeps, per input, the valid
    counterfactual (predicted class = target) of smallest ``l1 ||δ||_1 + l2 ||δ||_2^2`` seen;
    ``settings.polish`` Newton steps then move it towards the minimum of that cost (each the exact
    minimiser under the decision margin linearised at the current point; kept only if valid and cheaper).

    Tabular inputs may declare ``categorical`` one-hot groups and ``integer`` features: the search
    moves them continuously (one-hot columns inside ``[0, 1]``), but every point it keeps is first
    projected (each group one-hot at its largest entry, integers rounded into ``bounds``) and its
    class and cost are those of the projected point, checked with a plain forward pass: the result
    is exactly one-hot and integral, and an input whose projected points never reach the target is
    reported as failed (``x' = x``). Polishing also tries the switches of the k groups of largest
    linearised gain from the input's own categories (k = 0..G), and rounds the integers of each step
    both up and down. Without them, features that hold only 0 and 1 in every row (0/1 spike trains, binary flags;
    half or more of the features that vary over the rows) move to fractions no input takes: a ``UserWarning`` says so,
    with how many counterfactuals still reach their class rounded back to 0/1, and names ``integer=`` with ``bounds=(0, 1)``.

    Runs in eval mode; the parameters' ``requires_grad`` is switched off meanwhile and restored
    (their ``.grad`` is never touched); no global RNG is used. Every input is searched in one batch, so a model whose
    output for an input depends on the other inputs of its batch (scores centred over the batch, attention across its
    rows) is refused (``ValueError``, :func:`~lightning_causal.causal.engine.sample_independence.check_samples_independent`):
    an input's class there is not its class alone, and a change of nothing could pass for a counterfactual.

    Args:
        model: a classifier; ``output`` selects its logits ``[N, classes]``.
        inputs: a floating point tensor ``[N, ...]``.
        target_class: the class to reach, an int or ``[N]`` indices.
        settings: :class:`CounterfactualSettings` (proximity weights, steps, learning rate, ...).
        mask: mutable features (nonzero = may change), broadcastable to ``inputs``.
        bounds: ``(low, high)`` scalars or tensors broadcastable to one input, or to the inputs ``[N, ...]``
            (bounds of each input: ``low = x`` on a column lets it only rise, a monotone constraint
            such as age or education; ``high = x`` lets it only fall).
            A mutable feature of an input outside them warns: the search moves it inside, needed or not.
        categorical: one-hot groups, each >= 2 column indices of ``inputs.flatten(1)`` (a sequence, array or tensor)
            (e.g. ``[[3, 4, 5]]``: one feature of three categories); every input must be one-hot
            there, ``bounds`` must allow 0 and 1, and ``mask`` 0 on a column keeps that category
            from being switched on (on the input's own category: the group never changes).
        integer: integer features: column indices of ``inputs.flatten(1)`` (a sequence, array or
            integer tensor), or a boolean tensor broadcastable to one input (``True``: integer); the
            inputs must be integral there and ``bounds`` hold an integer.
        scale: each feature's unit of cost, positive, broadcastable to one input or to the inputs (e.g.
            each column's median absolute deviation, as Wachter et al.): the cost becomes
            ``l1 Σ |δ_j| / s_j + l2 Σ (δ_j / s_j)²``, so that columns in different units compete in
            comparable steps; ``None``: 1 (each column in its own units). The result's ``l1`` and ``l2``
            stay in the inputs' units.
        generator: private generator for ``settings.init_noise``.
        output: which tensor of the model's return value holds the logits (see
            :class:`~lightning_causal.causal.engine.forward.Forward`).
        additional_forward_args: extra forward arguments (see
            :class:`~lightning_causal.causal.engine.forward.Forward`).

    Returns:
        :class:`Counterfactuals`.

    Examples:
        >>> model = nn.Linear(2, 2, bias=False)
        >>> _ = model.weight.data.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0]]))
        >>> cf = counterfactual_explanation(model, torch.tensor([[1.0, 0.0]]), 1, CounterfactualSettings(steps=200, lr=0.05))
        >>> bool(cf.success[0]), int(cf.predicted[0])
        (True, 1)
    """
    settings = settings if settings is not None else CounterfactualSettings()
    if not isinstance(settings, CounterfactualSettings):
        raise TypeError(f"Expected argument `settings` to be a CounterfactualSettings but got {type(settings).__name__}")
    if target_class is None:
        raise ValueError("Expected argument `target_class` to be a class index or a tensor of indices but got None")
    check_input_kinds("inputs", inputs)  # a PackedSequence, a sparse or nested tensor: the way to a dense one
    if not isinstance(inputs, Tensor) or not inputs.is_floating_point():
        got = (f"dtype {inputs.dtype} ({not_float_input(inputs.dtype, 'interventions: input_effects, average_causal_effect')}"
               f"{'; ' + ITEM_COUNTERFACTUALS if inputs.dtype in INDEX_DTYPES else ''})"
               if isinstance(inputs, Tensor) else type(inputs).__name__)
        raise TypeError(f"Expected argument `inputs` to be a floating tensor [N, D, ...] but got {got}")
    if inputs.dim() < 2:  # the shape, not the dtype, is what is wrong: say so
        raise ValueError(f"Expected argument `inputs` to be a floating tensor [N, D, ...] (samples, then features) but got shape "
                         f"{list(inputs.shape)}; for one value per sample pass x.unsqueeze(1) to a model that reads [N, 1]")
    forward = Forward(model, output=output, additional_forward_args=additional_forward_args, num_samples=inputs.shape[0])
    with torch.inference_mode(False), audit_mode(forward.model), rnn_backward(forward.model), frozen_params(forward.model):
        warn_separate_noise(forward, (inputs.detach(),), "counterfactual_explanation")
        x = inputs.detach().clone()  # a normal tensor even if `inputs` was made under inference_mode
        lo, hi = check_bounds(bounds, x, per_input=True)  # made here, not under a caller's inference_mode: autograd saves them
        mutable = _mutable(mask, x)
        padding = padding_positions(x, additional_forward_args, model=forward.model)  # padded nodes, steps: never changed
        if padding is not None:
            mutable = mutable & ~padding.to(x.device)
        discrete = check_discrete(categorical, integer, x, lo, hi, padding)
        warn_outside_bounds(x, mutable, lo, hi)  # after the checks: a refused call says only why
        unit = check_scale(scale, x)
        if discrete is not None and discrete.groups:  # the one-hot columns move inside [0, 1]
            onehot = discrete.fixed(x[0].numel(), x.device).view_as(x[0])
            lo, hi = torch.where(onehot, lo.clamp_min(0.0), lo), torch.where(onehot, hi.clamp_max(1.0), hi)
        logits = forward(x)
        if not isinstance(logits, Tensor) or logits.dim() != 2 or logits.shape[1] < 2:
            shape = tuple(logits.shape) if isinstance(logits, Tensor) else type(logits).__name__
            raise ValueError(f"Expected a classifier returning logits [N, classes >= 2] but the model returned {shape}")
        # target_class names the columns, whichever is the largest (the words of target=None would be wrong); said
        # once a block (CounterfactualAudit checks first, in its own words, and the search runs no second cut pass)
        target, _ = explained_target(forward, (x,), logits.detach(), target_class,
                                     "The counterfactual search (counterfactual_explanation)", name="target_class",
                                     why="`target_class=` names them", once="padded_target", differences=False)
        # every input's search runs in one batch: an input's class there must be its class alone
        with rng_preserved():  # its passes leave the search's draws (an MC-dropout model's) as they were
            check_samples_independent(forward, (x,), logits.detach(), "The counterfactual search (counterfactual_explanation)",
                                      alone_route=False)
        rows = logits.detach()  # a NaN row has no decision to flip: its argmax (0) read as a success, silently
        check_finite_samples((x,), rows.masked_fill(torch.isfinite(rows), 0.0).sum(1))
        best, best_cost, last = _optimise(forward, x, target, mutable, (lo, hi), settings, generator, discrete, unit)
        if settings.polish:
            polish(forward, x, target, mutable, (lo, hi), discrete, (settings.l1, settings.l2), torch.where(
                torch.isfinite(best_cost).view(-1, *[1] * (x.dim() - 1)), best, last), best, best_cost, settings.polish,
                scale=unit)
        with torch.no_grad():
            predicted = forward(best).argmax(1)
            if discrete is None:
                _warn_fractional_binary(forward, x, best, target, predicted == target)
    delta = (best - x).flatten(1)
    success = predicted == target
    return Counterfactuals(x, best, target, success, delta.abs().sum(1), delta.norm(dim=1),
                           (delta != 0).double().mean(1), predicted)  # shares as exact as a float holds them: 8/360, not 0.022222223


def _warn_fractional_binary(forward: Forward, x: Tensor, best: Tensor, target: Tensor, success: Tensor) -> None:
    """Warn where the inputs hold only 0 and 1 at some features in every row (0/1 spike trains, binary flags), such
    features taking both values making half or more of those that vary over the rows (not grey levels in [0, 1], of
    which a few pixels are 0 or 1 in every row of a small probe; one input: at every feature), and the successful counterfactuals set some of those
    features to fractions, which no input takes: the search moves every feature continuously unless ``integer=`` names
    them. Says how many of those counterfactuals still reach their class with the features rounded back to 0/1 (one
    pass of the model)."""
    flat, found = x.flatten(1), best.flatten(1)
    binary = ((flat == 0) | (flat == 1)).all(0)
    varying = (flat != flat[:1]).any(0)  # a 0/1 feature that varies takes both values
    if x.shape[0] < 2 and not bool(binary.all()):
        return  # one input (the usual call) varies nowhere: warned where it holds only 0 and 1, a spike train's events
    if x.shape[0] >= 2 and 2 * int((binary & varying).sum()) < max(int(varying.sum()), 1):
        return  # 0/1 features are not half of those that vary: grey levels 0..1 (digits / 16) at 0 or 1 by chance
    moved = found[:, binary]
    fractional = (moved != 0) & (moved != 1) & success.view(-1, 1)
    if not bool(fractional.any()):
        return
    rounded = found.clone()
    rounded[:, binary] = moved.clamp(0, 1).round()
    kept = (forward(rounded.view_as(x)).argmax(1) == target) & success
    rows = success & fractional.any(1)
    example = float(moved[fractional][0])
    warnings.warn(
        f"The counterfactual search (counterfactual_explanation) moved inputs that hold only 0 and 1 in every one of the "
        f"{x.shape[0]} rows ({int(binary.sum())} of {flat.shape[1]} features: 0/1 events, binary flags) to fractions "
        f"({int(fractional.sum())} values, e.g. {example:.3g}) in {int(rows.sum())} of its {int(success.sum())} successful "
        f"counterfactuals, which no input takes; rounded back to 0/1, {int((kept & rows).sum())} of those "
        f"{int(rows.sum())} still reach their target class. To search over 0/1 values, pass those features as "
        + ("`integer=` (a boolean mask of one input, `torch.ones_like(x[0], dtype=torch.bool)` for every feature) with "
           "`bounds=(0, 1)` " if bool(binary.all()) else
           "`integer=` (a boolean mask of one input: `((x == 0) | (x == 1)).all(0)` marks them) with bounds 0 and 1 there "
           "(`bounds=` of per-feature tensors, the other features' own) ")
        + "(one-hot groups: `categorical=`; CounterfactualAudit takes the same `integer=`, `categorical=` and `bounds=`)",
        UserWarning, stacklevel=3)


def _project(x: Tensor, delta: Tensor, mutable: Tensor, lo: Tensor, hi: Tensor) -> Tensor:
    """``x + δ`` inside the bounds, with the immutable features exactly ``x``."""
    return torch.where(mutable, torch.maximum(torch.minimum(x + delta, hi), lo), x)


def _projector(x: Tensor, mutable: Tensor, lo: Tensor, hi: Tensor) -> Callable[[Tensor], Tensor]:
    """:func:`_project` for these ``x``, ``mutable`` and bounds as a function of ``δ``, without the operations
    that change nothing: the clamp to an infinite bound (``min(v, inf) = v``, also for ``-0.0``; NaN stays
    NaN) and the choice where every feature is mutable. The same values and gradients, up to three fewer
    operations for each of the search's two projections a step."""
    upper, lower = bool((hi != torch.inf).any()), bool((lo != -torch.inf).any())
    every = bool(mutable.all())

    def project(delta: Tensor) -> Tensor:
        v = x + delta
        if upper:
            v = torch.minimum(v, hi)
        if lower:
            v = torch.maximum(v, lo)
        return v if every else torch.where(mutable, v, x)

    return project


class _Adam:
    """``torch.optim.Adam(params=[δ], lr=lr)``'s update with its defaults (betas (0.9, 0.999), eps 1e-8, no
    weight decay, no amsgrad) written out: the same operations in the same order as torch's single-tensor
    Adam (``_single_tensor_adam``, what it runs on CPU; on CUDA it defaults to its foreach kernels of the same
    formulas), so the same numbers, without the optimizer's per-step machinery (profiler record, dynamo graph
    breaks, ``param_groups`` walk, ``zero_grad``): a sixth of a small MLP's step on one thread. No
    ``torch.optim`` call also means no import of ``torch._dynamo`` (a second or more) by the search."""

    betas, eps = (0.9, 0.999), 1e-8

    def __init__(self, delta: Tensor, lr: float) -> None:
        self.delta, self.lr, self.step = delta, lr, 0
        self.exp_avg, self.exp_avg_sq = torch.zeros_like(delta), torch.zeros_like(delta)

    @torch.no_grad()
    def update(self, grad: Tensor) -> None:
        """One step of ``δ`` along ``grad``."""
        beta1, beta2 = self.betas
        self.step += 1
        self.exp_avg.lerp_(grad, 1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        step = float(self.step)  # torch keeps the count in a float32 tensor and reads it with .item(): exact here
        step_size = self.lr / (1 - beta1 ** step)
        denom = (self.exp_avg_sq.sqrt() / (1 - beta2 ** step) ** 0.5).add_(self.eps)
        self.delta.addcdiv_(self.exp_avg, denom, value=-step_size)

    def soft_threshold(self, tau: float | Tensor) -> Tensor:
        """The L1 proximal step in Adam's metric: ``δ`` soft-thresholded by ``tau / (sqrt(v_hat) + eps)`` per
        element, so that elements with small gradients (little use for the prediction) are zeroed."""
        if not isinstance(tau, Tensor) and tau == 0:
            return self.delta
        v_hat = self.exp_avg_sq / (1 - self.betas[1] ** float(self.step))
        return torch.sign(self.delta) * (self.delta.abs() - tau / (v_hat.sqrt() + self.eps)).clamp_min(0.0)


def _decoding(forward: Forward, x: Tensor) -> str:
    """``", or a detector's decoding ..."`` where the model returns one result per image (a detector's dicts after its
    threshold and non-maximum suppression: constants where no box passes), else ``""``; one pass, on a refusal's path."""
    try:
        with torch.no_grad():
            raw = forward.raw(x)
    except Exception:  # noqa: BLE001 - a hint only: the refusal or warning it joins speaks for itself
        return ""
    if not per_sample_mappings(raw):
        return ""
    return (", or a detector's decoding: its scores are constants where no box passes the threshold (0 for a missed "
            "object), so search the dense heads' logits before the decoding (docs/your_model.md, 'Object detectors')")


def _check_input_gradient(forward: Forward, logits: Tensor, delta: Tensor, grads: LeafGradients, x: Tensor) -> None:
    """The search follows the gradient of the logits with respect to the change ``delta`` of the inputs:
    refuse a model whose logits have none (quantized layers, whose ops torch runs without a gradient
    even where the output requires one; a ``.detach()`` or ``torch.no_grad()`` in its forward): its
    search would only shrink the change, then fail inside torch's autograd. One backward pass (two where
    the gradient is 0: a model whose gradient is 0 at every sample, ``torch.round`` of its activations, is
    warned about, its search never leaving the inputs)."""
    if logits.requires_grad:
        with torch.enable_grad():
            grad = grads.grad(logits.sum(), delta, retain_graph=True, allow_unused=True)
            if grad is not None and not bool(grad.any()):  # the sum may cancel (logits [z, -z]): the classes weighed apart
                weights = torch.arange(1, logits.shape[1] + 1, device=logits.device, dtype=logits.dtype)
                grad = grads.grad((logits * weights).sum(), delta, retain_graph=True)
                if not bool(grad.any()):
                    warnings.warn(
                        f"counterfactual_explanation: the gradient of the model's output with respect to its inputs is 0 at "
                        f"every one of the {len(logits)} samples ({FLAT_STEPS} of its activations without a "
                        "straight-through gradient, or ReLUs off at every sample), so the "
                        "gradient search cannot leave the inputs: every sample ends without a counterfactual (success "
                        "False), which says nothing of the model's decisions. Search the model without the step (the float "
                        f"model it approximates){_decoding(forward, x)}, or use interventions (input_effects, "
                        "average_causal_effect)", UserWarning, stacklevel=outside_package())
        if grad is not None:
            return
    cause = gradient_cut_causes(forward.model, quantized_after="; search the float model that was quantized")
    raise ValueError(f"Expected the model's output to have a gradient with respect to its inputs, which the counterfactual "
                     f"search follows, but it has none: the forward cuts it ({cause}{_decoding(forward, x)}; interventions need no gradient: "
                     "input_effects, average_causal_effect)")


def _optimise(forward: Forward, x: Tensor, target: Tensor, mutable: Tensor, box: tuple[Tensor, Tensor],
              s: CounterfactualSettings, generator: torch.Generator | None,
              discrete: DiscreteFeatures | None, unit: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """The best valid (projected) point, its cost (inf: none found) and the last projected point; ``unit``:
    each feature's unit of cost (``None``: 1).

    Each step is one forward and one backward pass of the model (with ``discrete``, one more forward pass of
    the projected point) and a few operations on ``[N, ...]`` tensors: the state stays on the device (no
    ``.item()``, no boolean indexing), and what does not change between steps is computed once."""
    (lo, hi), (l1, l2, margin, weight, growth) = box, (s.l1, s.l2, s.margin, s.weight, s.growth)
    steps, lr, init_noise = s.steps, s.lr, s.init_noise
    n = x.shape[0]
    project = _projector(x, mutable, lo, hi)
    snap = discrete.projector(x, mutable) if discrete is not None else None  # onto the one-hot groups and integers
    delta0 = torch.zeros_like(x)
    if init_noise > 0:
        delta0 = init_noise * torch.randn(x.shape, generator=generator or torch.Generator().manual_seed(0)).to(x)
    delta = (_project(x, delta0, mutable, lo, hi) - x).requires_grad_(True)
    opt = _Adam(delta, lr)
    tau = lr * l1 if unit is None else lr * l1 / unit  # the L1 step's threshold, in Adam's metric below
    lam = torch.full((n,), float(weight), device=x.device, dtype=x.dtype)
    best, best_cost = x.clone(), torch.full((n,), torch.inf, device=x.device, dtype=x.dtype)
    found = torch.zeros(n, dtype=torch.bool, device=x.device)
    if init_noise > 0:  # a random start never visits x itself: an input of the target class inside the bounds keeps δ = 0
        with torch.no_grad():
            found = (forward(x).argmax(1) == target) & (_project(x, torch.zeros_like(x), mutable, lo, hi) == x).flatten(1).all(1)
        best_cost[found] = 0.0
    period = max(1, steps // 20)
    row = (-1, *[1] * (x.dim() - 1))  # a row's flag against its input
    grads = LeafGradients(forward.model)  # a reentrant checkpoint decided at the first step, not walked for at each

    def loss_of(logits: Tensor, change: Tensor) -> Tensor:
        return (lam * _margin_loss(logits, target, margin)).sum() + l2 * change.pow(2).sum()

    def loss_again() -> Tensor:  # the step's pass again, where torch refused its .grad() (LeafGradients)
        xc = project(delta)
        return loss_of(forward(xc), xc - x if unit is None else (xc - x) / unit)

    for step in range(steps + 1):
        with torch.enable_grad():
            xc = project(delta)
            logits = forward(xc)
            change = xc - x if unit is None else (xc - x) / unit
        if step == 0:
            _check_input_gradient(forward, logits, delta, grads, x)
        with torch.no_grad():  # bookkeeping on the current (projected) point: the best valid counterfactual so far
            if discrete is None:
                xd, valid, d = xc.detach(), logits.argmax(1) == target, change.detach().flatten(1)
            else:
                xd = snap(xc)
                valid = forward(xd).argmax(1) == target
                d = (xd - x).flatten(1) if unit is None else ((xd - x) / unit).flatten(1)
            cost = l1 * d.abs().sum(1) + l2 * d.pow(2).sum(1)
            better = valid & (cost < best_cost)
            best, best_cost = torch.where(better.view(row), xd, best), torch.where(better, cost, best_cost)
            found |= valid
            if step > 0 and step % period == 0:
                lam = torch.where(found, lam, lam * growth)
        if step == steps:
            break
        with torch.enable_grad():
            grad = grads.grad(loss_of(logits, change), delta, again=loss_again)
        opt.update(grad)
        with torch.no_grad():
            delta.copy_(project(opt.soft_threshold(tau)) - x)
    return best, best_cost, xd.detach()
