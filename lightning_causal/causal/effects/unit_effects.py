"""Counterfactual importance of hidden units: the effect of do(h_u := a) on the target output for
each unit u (conv channel, neuron or attention head) of a layer (Debbi 2021; CARE, Sun et al. 2022),
exact or screened by first-order attribution patching (AtP, Kramár et al. 2024)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args, overload

import torch
from torch import Tensor, nn

from lightning_causal.causal.effects.rounding_effects import (
    ROUNDED_ROWS,
    rounded_size,
    warn_rounding_effects,
)
from lightning_causal.causal.effects.shared_units import (
    SHARED_PATH,
    SHARED_REASON,
    check_shared_interventions,
    shared_unit_effects,
)
from lightning_causal.causal.effects.unit_attribution import attribution_estimates
from lightning_causal.causal.effects.unit_rows import moving_rows, unit_rows
from lightning_causal.causal.engine.batching import map_rows, rows_per_pass
from lightning_causal.causal.engine.checks import check_choice, check_int
from lightning_causal.causal.engine.folded_rows import (
    check_folded_interventions,
    check_sample_major,
    shared_rows,
    unfolded_intervention,
)
from lightning_causal.causal.engine.forward import Forward, OutputSpec
from lightning_causal.causal.engine.input_sites import input_sites
from lightning_causal.causal.engine.interventions import (
    Intervention,
    Patch,
    Resample,
    Zero,
    capture,
)
from lightning_causal.causal.engine.linked_samples import check_linked_samples, failed_rows_named
from lightning_causal.causal.engine.noise import CommonNoise, noise_warned
from lightning_causal.causal.engine.padded_reads import explained_target
from lightning_causal.causal.engine.prefix_cache import PrefixCache, prefix_cache
from lightning_causal.causal.engine.sample_independence import same_outputs
from lightning_causal.causal.engine.stacked_rows import rows_alone_checked
from lightning_causal.causal.engine.state import (
    as_tuple,
    audit_mode,
    gather_target,
    model_devices,
    rnn_backward,
)
from lightning_causal.causal.engine.unit_interventions import repeated_patch_error
from lightning_causal.causal.engine.unit_sites import SiteFacts, check_site_units
from lightning_causal.causal.engine.units import (
    Layout,
    check_layout_options,
    resolve_layout,
    selected_units,
)
from lightning_causal.causal.engine.unmoved_rows import map_moving

__all__ = ["unit_effects", "check_interventions", "UnitEffectsInfo", "METHODS", "UnitMethod"]

Inputs = Tensor | tuple[Tensor, ...]
Target = int | Tensor | None
UnitMethod = Literal["exact", "attribution", "atp"]
METHODS: tuple[UnitMethod, ...] = get_args(UnitMethod)  # the values `method` takes, for the checks


def check_interventions(intervention: Intervention | Sequence[Intervention]) -> list[Intervention]:
    """``intervention`` as a non-empty list of interventions that select the same ``units`` in one layout.

    Args:
        intervention: an :class:`~lightning_causal.causal.engine.unit_interventions.Intervention` or a
            sequence of them (a do-grid).
    """
    if isinstance(intervention, type) and issubclass(intervention, Intervention):
        raise TypeError(f"Expected argument `intervention` to be an Intervention or a non-empty list of them but got the class "
                        f"{intervention.__name__}: pass an instance, e.g. {intervention.__name__}(...)")
    try:
        ivs = [intervention] if isinstance(intervention, Intervention) else list(intervention)
    except TypeError:  # not iterable: a number, a function
        ivs = []
    if not ivs or not all(isinstance(iv, Intervention) for iv in ivs):
        raise TypeError(f"Expected argument `intervention` to be an Intervention or a non-empty list of them but got {intervention!r}")
    units = {tuple(iv.units) if iv.units is not None else None for iv in ivs}
    if len(units) != 1:
        raise ValueError("Expected all interventions of a do-grid to select the same `units`")
    if len({(iv.unit_dim, iv.num_heads) for iv in ivs}) != 1:
        raise ValueError("Expected all interventions of a do-grid to share one unit layout (`unit_dim`, `num_heads`)")
    return ivs


@dataclass
class UnitEffectsInfo:
    """How :func:`unit_effects` computed its result (``return_info=True``).

    Attributes:
        path: how the suffix ran: ``"fx"`` (torch.fx split with cached live values), ``"hooks"``
            (module-hook split), ``"full"`` (full forward passes) or ``"shared"`` (rows every sample shares, a
            zero-shot classifier's text tower: each unit set in every shared row, full passes of the probe,
            :mod:`~lightning_causal.causal.effects.shared_units`).
        reason: why faster paths were not taken (``""`` when none was refused).
        method: ``"exact"``, ``"attribution"`` or ``"atp"``.
        units: the unit indices of the result's columns ``[U]``.
        exact: ``[U]`` bool, which columns hold exact interventional effects (the others hold the
            first-order estimate): all for ``method="exact"`` without a screen, none for the
            estimates, the ``screen`` highest-ranked for a screen.
        estimate: the first-order estimates ``[N, U]`` when they were computed, else ``None``.
        layout: where the units are (``dim``, ``unit_size``, ``num_units``).
        read_positions: the modules after the layer that ran at the positions the output reads
            only, one line each (a sequence classifier's last layer; empty on the full path).
        linear_updates: the ``nn.Linear`` layers and convolutions reading the layer's output that were answered as
            their probe output plus the changed units' share (MLP neurons, a CNN's channels; empty on the full
            path and for units wider than an eighth of the layer, of a convolution group's input channels:
            :mod:`~..engine.linear_update`).
        calls: how many times the layer runs in one forward pass (a shared encoder, a block applied repeatedly: more
            than 1, and every call is intervened on).
        site: what the checks' pass of one sample found about the layer
            (:class:`~lightning_causal.causal.engine.unit_sites.SiteFacts`: its layout, the module whose channels it
            carries, whether it is complex), from which :func:`~..engine.unit_sites.named_unit_kind` names its units.
    """

    path: str
    reason: str
    method: UnitMethod
    units: Tensor
    exact: Tensor
    estimate: Tensor | None
    layout: Layout
    read_positions: tuple[str, ...] = ()
    linear_updates: tuple[str, ...] = ()
    calls: int = 1
    site: SiteFacts | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-able summary (the estimate left out)."""
        return {
            "path": self.path,
            "reason": self.reason,
            "method": self.method,
            "num_units": int(self.units.numel()),
            "exact_units": self.units[self.exact].tolist(),
            "unit_dim": self.layout.dim,
            "unit_size": self.layout.unit_size,
            "read_positions": list(self.read_positions),
            "linear_updates": list(self.linear_updates),
            "calls": self.calls,
        }


def _value_alone(cache: PrefixCache, forward: Forward, xs: tuple[Tensor, ...], layer: str, clean: Tensor) -> None:
    """Refuse, at ``max_batch_size=1``, a layer whose value in the whole probe's pass (``cache.value``, from which the
    rows alone run: the hook split and the linear update keep that pass's values) is not each sample's own: the layer's
    output of each sample run alone (a pass each, :func:`~lightning_causal.causal.structure.layer_activations.activations_alone`,
    as the layer map's and the causal graph's clean passes; at its first call, the one the cache holds, where it runs
    more than once a pass, ``act(act(h))``) must match it to the probe check's 1%
    (:func:`~lightning_causal.causal.engine.sample_independence.same_outputs`), and so must each sample's output alone
    and ``clean``, its row run alone from the cache (a value the cache keeps besides the layer's). A model branching on
    its batch's statistic before the layer gave the whole probe's value the batch's branch, and every row alone started
    from it: a third of the per-sample model's effects, silently (0.13 off on a layer called twice, whose calls were not
    compared), where the probe's check named one row a pass as the way out. A branch after the layer's first call runs
    in the rows alone: answered."""
    from lightning_causal.causal.structure.layer_activations import (
        activations_alone,  # structure reads effects: not at import
    )

    starts: list[int] = []  # where each sample's calls begin in ``seen``
    with _every_call(forward.model, layer) as seen:
        out, _ = activations_alone(forward, xs, [layer], before=lambda _k: starts.append(len(seen)))
    first = [seen[k] for k in starts] if seen else []  # every sample alone calls it (else skipped_modules_error)
    compared = [(f"the output of {layer!r} for each sample run alone to be what the whole probe's pass gives it, as "
                 f"unit_effects with `max_batch_size=1` runs every row alone from that pass's value of the layer",
                 torch.cat(first), cache.value)] if first else []
    compared.append((f"each row that unit_effects with `max_batch_size=1` runs alone from the whole probe's pass's value "
                     f"of {layer!r} to give its sample's output run alone", clean, out))
    for expected, alone, whole in compared:
        if alone.shape != whole.shape:
            continue
        diff, same = same_outputs(alone, whole)
        if not same:
            raise ValueError(
                f"Expected {expected}, but they differ (max |difference| {diff:.3g}): the forward depends on its batch "
                f"before {layer!r} (a branch on a batch statistic), so each row alone would start from the batch's "
                f"branch; make the forward per-sample (`torch.where` per row), or explain one sample per call "
                f"(`unit_effects(model, x[i:i + 1], {layer!r}, ...)`)")


@contextlib.contextmanager
def _every_call(model: nn.Module, layer: str) -> Iterator[list[Tensor]]:
    """The outputs of module ``layer`` at every call during the block, in order (copies, as ``capture`` reads them);
    none where ``layer`` names no module."""
    seen: list[Tensor] = []
    with contextlib.ExitStack() as stack:
        with contextlib.suppress(AttributeError, KeyError, ValueError):
            stack.enter_context(capture(model, [layer], keep=lambda _name, v: seen.append(v) or v, warn_repeats=False,
                                        warn_unreached=False))
        yield seen


def _exact_effects(cache: PrefixCache, ivs: list[Intervention], units: Tensor, layout: Layout, tidx: Tensor,
                   max_batch_size: int | None, noise: CommonNoise | None = None, clean: Tensor | None = None,
                   fold: int = 1) -> Tensor:
    """``[N, U]``: one suffix row per (intervention, unit, sample), chunked to the memory budget
    (with ``noise``: blocks of samples from their seeds, compared with ``clean``, the clean outputs
    of the same seeds).

    Rows that leave the layer's output as it is, bit for bit (:func:`~..unit_rows.moving_rows`: ``Zero()`` on a
    ReLU neuron at 0 on that sample, where the cache edits its cached value only, exact interventions only; never
    with ``noise`` or ``fold > 1``) are not run: their curve value is the clean output, their effect exactly 0."""
    h = cache.value
    n, nu, k = h.shape[0], units.numel(), len(ivs)

    def evaluate(idx: Tensor) -> Tensor:
        edit, s = unit_rows(ivs, units, layout, n, idx=idx, fold=fold)
        return gather_target(cache(edit, s), tidx[s])

    if noise is not None:
        curve = noise.rows(k * nu, lambda b, s: evaluate(b * n + s), h.device).view(k, nu, n)
    else:  # moving_rows: None on full passes (noise, folded rows) too; the rows left unrun give the clean output
        clean_rows = gather_target(cache.output if clean is None else clean, tidx).expand(k * nu, n).reshape(-1)
        moving = moving_rows(cache, ivs, units, layout)
        curve = map_moving(moving, cache.rows_per_pass(max_batch_size), evaluate, clean_rows, h.device).view(k, nu, n)
    if k == 1:
        return (gather_target(cache.output if clean is None else clean, tidx).unsqueeze(0) - curve[0]).T.contiguous()
    return (curve.max(0).values - curve.min(0).values).T.contiguous()


def _check_options(method: UnitMethod, screen: int | None, unit_dim: int | None, num_heads: int | None) -> None:
    check_choice("method", method, METHODS)
    check_int("screen", screen, minimum=1, none_ok=True)
    if screen is not None and method != "exact":
        raise ValueError(f"Expected argument `screen` to be None with method={method!r} (a screen runs exact interventions)")
    check_layout_options(unit_dim, num_heads)


def _exact_rows_per_sample(ivs: list[Intervention], shape: tuple[int, ...], method: UnitMethod, screen: int | None) -> int:
    """The exact suffix rows each probe sample will run (0 for the first-order estimates alone)."""
    if method != "exact":
        return 0
    num_units = len(ivs[0].units) if ivs[0].units is not None else resolve_layout(shape, ivs[0].unit_dim, ivs[0].num_heads).num_units
    return len(ivs) * (num_units if screen is None else min(screen, num_units))


# the return type follows `return_info`: a tensor, or (tensor, info) with return_info=True
@overload
def unit_effects(
    model: nn.Module,
    inputs: Inputs,
    layer: str,
    intervention: Intervention | Sequence[Intervention] | None = None,
    *,
    target: Target = None,
    max_batch_size: int | None = None,
    use_suffix: bool = True,
    output: OutputSpec = None,
    additional_forward_args: Any = None,
    unit_dim: int | None = None,
    num_heads: int | None = None,
    method: UnitMethod = "exact",
    screen: int | None = None,
    return_info: Literal[False] = False,
) -> Tensor: ...


@overload
def unit_effects(
    model: nn.Module,
    inputs: Inputs,
    layer: str,
    intervention: Intervention | Sequence[Intervention] | None = None,
    *,
    target: Target = None,
    max_batch_size: int | None = None,
    use_suffix: bool = True,
    output: OutputSpec = None,
    additional_forward_args: Any = None,
    unit_dim: int | None = None,
    num_heads: int | None = None,
    method: UnitMethod = "exact",
    screen: int | None = None,
    return_info: Literal[True],
) -> tuple[Tensor, UnitEffectsInfo]: ...


@overload
def unit_effects(
    model: nn.Module,
    inputs: Inputs,
    layer: str,
    intervention: Intervention | Sequence[Intervention] | None = None,
    *,
    target: Target = None,
    max_batch_size: int | None = None,
    use_suffix: bool = True,
    output: OutputSpec = None,
    additional_forward_args: Any = None,
    unit_dim: int | None = None,
    num_heads: int | None = None,
    method: UnitMethod = "exact",
    screen: int | None = None,
    return_info: bool = False,
) -> Tensor | tuple[Tensor, UnitEffectsInfo]: ...


def unit_effects(
    model: nn.Module,
    inputs: Inputs,
    layer: str,
    intervention: Intervention | Sequence[Intervention] | None = None,
    *,
    target: Target = None,
    max_batch_size: int | None = None,
    use_suffix: bool = True,
    output: OutputSpec = None,
    additional_forward_args: Any = None,
    unit_dim: int | None = None,
    num_heads: int | None = None,
    method: UnitMethod = "exact",
    screen: int | None = None,
    return_info: bool = False,
) -> Tensor | tuple[Tensor, UnitEffectsInfo]:
    """Counterfactual importance of each unit (conv channel, neuron or attention head) of ``layer``.

    .. math:: e_u(x) = f_t(x) - f_t(x \\mid do(h_u := a))

    (Debbi 2021; CARE, Sun et al. 2022). With a do-grid (a list of ``SetTo`` interventions) the
    effect is CARE's range of the interventional curve, ``max_a f_t(x|do(h_u:=a)) − min_a f_t(x|do(h_u:=a))``.

    The network prefix runs once (:func:`~lightning_causal.causal.engine.prefix_cache.cache_prefix`);
    only the suffix runs on the batch expanded with one unit intervened per copy, with every value
    that crosses the layer (skip connections, attention masks) cached and taken by row. Models
    ``torch.fx`` cannot trace (Hugging Face) are split with module hooks; full forward passes
    remain for what neither path can split. The numbers are the same on every path. Rows whose
    intervention leaves the unit as it is on that sample, bit for bit (``Zero()`` on a ReLU neuron at
    0), are not run where that is exact (:func:`~lightning_causal.causal.effects.unit_rows.moving_rows`):
    their effect is exactly 0. A model that
    draws random numbers in eval mode (MC dropout kept on) runs full passes with common random
    numbers, each sample drawing one noise in its clean and intervened passes, with a
    ``UserWarning`` (:mod:`~lightning_causal.causal.engine.noise`).

    ``method="atp"`` returns the first-order estimate ``ê_u = Σ_{i∈u} (h_i − a_i) ∂f_t/∂h_i``
    (attribution patching, Kramár et al. 2024) from one forward and one backward pass through the
    suffix. ``method="attribution"`` takes the same first-order step at the input ``z`` of the
    first module after the layer that mixes units, with the unit-local operations in between
    (batch norm, activations, pooling) computed exactly for every row:
    ``ê_u = Σ_i (z_i(h) − z_i(h|do(h_u := a))) ∂f_t/∂z_i`` (both coincide where the layer feeds
    such a module directly; :mod:`~lightning_causal.causal.effects.unit_attribution`).
    ``screen=m`` ranks the units by the mean ``|ê_u|`` (``"attribution"``) over the samples and
    runs exact interventions on the ``m`` highest only: their columns are exact, the others hold
    the estimate (``info.exact`` marks which).
    The estimates follow autograd: a ``UserWarning`` names the layer when a check on two rows finds
    that autograd misses part of the output's dependence on it (a detached branch, a
    straight-through estimator; :mod:`~lightning_causal.causal.effects.gradient_check`).

    Args:
        model: any module; ``output`` selects the ``[N, classes]`` (or ``[N]``) tensor it returns, as in
            :func:`~lightning_causal.causal.effects.input_effects.input_effects`.
        inputs: a tensor ``[N, ...]`` or a tuple of tensors, as in
            :func:`~lightning_causal.causal.effects.input_effects.input_effects`.
        layer: module name from ``model.named_modules()``; a module that returns a tuple (Hugging
            Face attention) is intervened on element 0. ``"<module>:input"`` names the module's
            first positional input (:mod:`~lightning_causal.causal.engine.input_sites`; e.g. the
            heads of ``transformers`` 5 attention, ``"...self_attn.o_proj:input"``). A layer that
            folds ``k`` rows per sample into the batch (OPT's ``fc1`` on ``[N·T, D]``) is intervened
            on in all of a sample's rows, on full passes, exact ``Zero``/``SetTo``/``Scale`` only
            (:mod:`~lightning_causal.causal.engine.folded_rows`). A layer whose rows every sample shares (a
            zero-shot classifier's text tower over its ``C`` class prompts, ``[C, ...]`` in every pass) has each
            unit set in every shared row, one pass of the probe per unit and chunk, exact ``Zero``/``SetTo``/
            ``Scale``/``MeanOf`` only (:mod:`~lightning_causal.causal.effects.shared_units`).
        intervention: an :class:`Intervention` (default ``Zero()``) or a list (do-grid); its
            ``units`` restrict the units evaluated.
        unit_dim: the dimension of the layer's output that indexes units (default 1; ``-1`` for the
            neurons of ``[N, T, D]`` hidden states). The default is refused, with a ``ValueError``
            naming ``unit_dim``, where one sample's forward pass shows that the layer's features
            are last (the ``[N, T, D]`` output of a linear, embedding, normalisation, attention or
            recurrent layer, of a block of them, or of an activation applied to one): dimension 1
            would be positions there. ``unit_dim=1`` asks for positions on purpose.
        num_heads: split the unit dimension (the last one if ``unit_dim`` is not given) into this
            many contiguous heads; a unit is then a head (``[N, T, H * d]`` self-attention outputs).
            Without ``unit_dim`` it is refused on a convolution's ``[N, C, H, W]`` (the last
            dimension is the width): ``unit_dim=1`` takes groups of channels as units.
        method: ``"exact"`` (interventions), ``"attribution"`` or ``"atp"`` (first-order estimates).
        screen: with ``method="exact"``, the number of units (ranked by the estimate) to intervene on.
        use_suffix: set ``False`` to force full forward passes.
        return_info: also return a :class:`UnitEffectsInfo` (path taken, exact columns, estimate): a
            ``bool``, so that type checkers know the return type (``True``: the tuple, ``False``: the tensor).
        target: class index, per-sample indices ``[N]``, or ``None`` (the predicted class), as in
            :func:`~lightning_causal.causal.effects.input_effects.input_effects`.
        max_batch_size: rows per forward pass, as in
            :func:`~lightning_causal.causal.effects.input_effects.input_effects`.
        output: which tensor of the model's return value to explain, as in
            :func:`~lightning_causal.causal.effects.input_effects.input_effects`.
        additional_forward_args: extra forward arguments, as in
            :func:`~lightning_causal.causal.effects.input_effects.input_effects`.

    Returns:
        Tensor ``[N, U]`` (``U`` = number of selected units), or ``(Tensor, UnitEffectsInfo)``.

    Examples:
        >>> model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
        >>> with torch.no_grad():
        ...     _ = model[0].weight.copy_(torch.eye(2)); _ = model[0].bias.zero_()
        ...     _ = model[2].weight.copy_(torch.tensor([[3.0, -1.0]])); _ = model[2].bias.zero_()
        >>> unit_effects(model, torch.tensor([[1.0, 2.0]]), "1")
        tensor([[ 3., -2.]])
        >>> effects, info = unit_effects(model, torch.tensor([[1.0, 2.0]]), "1", method="attribution", return_info=True)
        >>> effects, info.path, info.exact.tolist()
        (tensor([[ 3., -2.]]), 'fx', [False, False])
    """
    if not isinstance(return_info, bool):  # the overloads type the result by it: 1 or None would lie
        raise TypeError(f"Expected argument `return_info` to be a bool but got {return_info!r}")
    if not isinstance(use_suffix, bool):  # a string is truthy: use_suffix="no" or "False" ran the suffix passes
        raise TypeError(f"Expected argument `use_suffix` to be a bool but got {use_suffix!r}")
    xs = as_tuple(inputs)
    ivs = check_interventions(intervention if intervention is not None else Zero())
    _check_options(method, screen, unit_dim, num_heads)
    ivs = [iv.with_layout(unit_dim, num_heads) for iv in ivs]
    forward = Forward(model, output=output, additional_forward_args=additional_forward_args, num_samples=xs[0].shape[0])
    # the first-order estimates backpropagate: autograd must work even under a caller's inference_mode
    needs_grad = method != "exact" or screen is not None
    with torch.inference_mode(False) if needs_grad else contextlib.nullcontext(), audit_mode(forward.model), \
            rows_alone_checked(f"unit_effects on {layer!r}", [iv.generator for iv in ivs if isinstance(iv, Resample)],
                               forward.model), \
            rnn_backward(forward.model, needs_grad), input_sites(forward.model, [layer]):
        # the nodes of one graph as samples: refused from passes of every row, before the passes of fewer rows below
        check_linked_samples(forward.model, xs, f"Intervening on {layer!r}", output=output,
                             additional_forward_args=additional_forward_args)
        one = torch.zeros(1, dtype=torch.long, device=xs[0].device)
        site = check_site_units(forward.model, layer, lambda: forward(*(x[:1] for x in xs), rows=one), ivs[0].unit_dim,
                                ivs[0].num_heads, "Pass `unit_dim=-1` for its features (neurons), or `unit_dim=1` to intervene on positions.",
                                folded=True)
        fold = site.shape[0]  # rows per sample: > 1 where the layer folds positions into the batch (OPT's fc1)
        run = lambda xi, r: forward(*xi, rows=r)  # noqa: E731 - the probe rows r of inputs xi

        def shared(rows: Tensor, scale: float | None = None) -> Tensor | tuple[Tensor, UnitEffectsInfo]:
            """Rows every sample shares (a zero-shot classifier's text tower over its class prompts, a hypernetwork's
            one row), ``rows`` as two samples gave them: each unit set in all of them
            (:mod:`~lightning_causal.causal.effects.shared_units`); ``scale``: the model's noise, where already read
            (and warned of)."""
            check_shared_interventions(layer, ivs, site.shape, method, screen)
            with failed_rows_named(forward, xs, f"Intervening on {layer!r}"):
                scale = noise_warned(forward, xs) if scale is None else scale
                effects, units, layout, calls = shared_unit_effects(
                    forward, xs, layer, ivs, site.shape, target, rows_per_pass(forward.model, xs, max_batch_size, forward=forward),
                    bool(scale), rows)
            info = UnitEffectsInfo(SHARED_PATH, SHARED_REASON.format(layer=layer, rows=site.shape[0]), method, units,
                                   torch.ones(units.numel(), dtype=torch.bool), None, layout, calls=calls, site=site)
            return (effects, info) if return_info else effects

        # the layout first: a [T, N, ...] layer (batch_first=False) is no fold, and its message says so; rows every
        # sample shares (a zero-shot classifier's text tower over its class prompts) are set in every shared row
        rows = check_sample_major(layer, run, forward.model, xs, fold, shared_ok=True) if fold > 1 else None
        if rows is not None:
            return shared(rows)
        if fold > 1:
            check_folded_interventions(layer, ivs, fold, method, screen)
            ivs = [unfolded_intervention(iv) for iv in ivs]
        # passes of fewer rows than the probe run from here: a model that reads its whole batch fails in them
        with failed_rows_named(forward, xs, f"Intervening on {layer!r}"):
            scale = noise_warned(forward, xs)  # a model that draws noise runs full passes with common random numbers
            try:
                cache = prefix_cache(forward, xs, layer, path="auto" if use_suffix and not scale else "full",
                                     rows_per_sample=_exact_rows_per_sample(ivs, (1, *site.shape) if fold > 1 else site.shape, method, screen),
                                     fold=fold, one_row=max_batch_size == 1 and fold == 1)
            except ValueError:  # one row for the whole probe (a hypernetwork's weights from one task embedding)?
                if fold > 1 or site.shape[0] != 1 or xs[0].shape[0] < 2 or \
                        (rows := shared_rows(layer, run, forward.model, xs)) is None:
                    raise
                cache = None
        if cache is None:
            return shared(rows, scale)
        if cache.calls > 1 and any(isinstance(iv, Patch) for iv in ivs):
            raise repeated_patch_error(layer, cache.calls)
        noise, clean = None, cache.output
        if scale:
            cache.reason = "the model draws random numbers in eval mode: full passes with common random numbers"
            noise = CommonNoise(xs[0].shape[0], cache.rows_per_pass(max_batch_size), model_devices(forward.model))
            clean = noise.clean(lambda s: forward(*(x[s] for x in xs), rows=s), xs[0].device)
        elif max_batch_size == 1 and fold == 1 and xs[0].shape[0] > 1:  # the suffix rows run alone: the clean ones too
            clean = map_rows(xs[0].shape[0], 1, lambda s: cache(lambda h: h, s), xs[0].device)  # (input_effects' clean_target)
            _value_alone(cache, forward, xs, layer, clean)  # the rows alone start from each sample's own value of the layer
        layout = ivs[0].layout(cache.value)
        units = selected_units(ivs[0].units, layout, layer, cache.value.device)
        # a padded position explained is said once per block (an audit's layers share the model's output and target)
        tidx, _ = explained_target(forward, xs, clean, target, f"Intervening on {layer!r}", gathered=cache.output,
                                   once="padded_target")
        estimate = None
        exact = torch.full((units.numel(),), method == "exact", dtype=torch.bool)
        if method != "exact" or screen is not None:
            estimator = "attribution" if method == "exact" else method
            estimate = attribution_estimates(cache, ivs, units, layout, target_idx=tidx, max_batch_size=max_batch_size, estimator=estimator)
        if method != "exact":
            effects = estimate
        elif screen is not None and screen < units.numel():
            chosen = estimate.abs().mean(0).topk(screen).indices.sort().values
            exact = torch.zeros_like(exact)
            exact[chosen.cpu()] = True
            effects = estimate.clone()
            effects[:, chosen] = _exact_effects(cache, ivs, units[chosen], layout, tidx, max_batch_size, noise, clean, fold)
        else:
            effects = _exact_effects(cache, ivs, units, layout, tidx, max_batch_size, noise, clean, fold)
            # an SAE's error term cancelling its latents, on a residual stream of large values (the rounding's size)
            few = torch.arange(min(ROUNDED_ROWS, xs[0].shape[0]), device=cache.value.device)
            warn_rounding_effects(layer, effects, gather_target(clean, tidx), None if noise is not None or fold > 1 or
                                  cache.records_gradients else lambda: rounded_size(
                                      forward.model, lambda edit: gather_target(cache(edit, few), tidx[few])))
    if not return_info:
        return effects
    # the first-order estimates run no intervened rows: no layer was answered by the update then
    ran_rows = bool(exact.any())
    updates = tuple(cache.linear.describe(layout.dim, layout.unit_size)) if ran_rows else ()
    return effects, UnitEffectsInfo(cache.path, cache.reason, method, units, exact, estimate, layout,
                                    tuple(cache.reads.describe()), updates, max(1, cache.calls), site)
