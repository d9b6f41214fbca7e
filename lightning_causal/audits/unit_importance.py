"""UnitImportanceAudit: counterfactual importance of each unit of chosen layers."""

from __future__ import annotations

import copy
import functools
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from torch import Tensor, nn

from lightning_causal.audits.base import Audit, AuditResult, Probe, check_layer_rows, layer_names
from lightning_causal.audits.input_effects import real_mean
from lightning_causal.audits.options import (
    check_target,
    check_unit_name_count,
    check_unit_names,
    first_row_outputs,
    warn_predicted_class_of_regression,
)
from lightning_causal.audits.top_share import add_top_share, note_non_finite_samples
from lightning_causal.causal.effects.shared_units import SHARED_PATH
from lightning_causal.causal.effects.unit_effects import (
    METHODS,
    UnitMethod,
    check_interventions,
    unit_effects,
)
from lightning_causal.causal.engine.ablation import padded_steps
from lightning_causal.causal.engine.batching import remembered_fit
from lightning_causal.causal.engine.checks import check_choice, check_int
from lightning_causal.causal.engine.eager import named_modules
from lightning_causal.causal.engine.forward import OutputSpec
from lightning_causal.causal.engine.input_sites import check_site
from lightning_causal.causal.engine.interventions import (
    Intervention,
    MeanOf,
    Patch,
    Resample,
    Scale,
    SetTo,
    Zero,
)
from lightning_causal.causal.engine.layer_calls import calls_counted
from lightning_causal.causal.engine.ranking import largest_k
from lightning_causal.causal.engine.unit_sites import SiteFacts, named_unit_kind
from lightning_causal.causal.engine.units import per_layer_layouts

__all__ = ["UnitImportanceAudit"]

PerLayer = int | Mapping[str, int] | None


def _generator_states(intervention: Intervention | Sequence[Intervention] | None) -> list[Tensor | None]:
    """The state of each :class:`Resample`'s generator (``None`` for other interventions)."""
    ivs = [] if intervention is None else [intervention] if isinstance(intervention, Intervention) else list(intervention)
    return [iv.generator.get_state() if isinstance(iv, Resample) else None for iv in ivs]


def _replayed(intervention: Intervention | Sequence[Intervention] | None, states: list[Tensor | None]) -> Any:
    """``intervention`` with each :class:`Resample` copied onto a generator restarted from ``states``
    (the same donors at every run; the caller's object is left as it is)."""
    if intervention is None or not any(s is not None for s in states):
        return intervention
    ivs = [intervention] if isinstance(intervention, Intervention) else list(intervention)
    fresh = []
    for iv, state in zip(ivs, states):
        if state is not None:
            iv = copy.copy(iv)
            iv.generator = torch.Generator(device=iv.generator.device)
            iv.generator.set_state(state)
        fresh.append(iv)
    return fresh[0] if isinstance(intervention, Intervention) else fresh


def do_meta(intervention: Intervention | Sequence[Intervention] | None) -> dict[str, Any]:
    """What the importance bars say was done to a unit: ``{"do": ":= 0"}`` for ``Zero()`` (the default), ``":= 2"``
    for ``SetTo(2.0)`` (``":= set values"`` for a tensor), ``":= mean"`` for ``MeanOf``, ``":= resampled"`` for
    ``Resample``, ``"× 0.5"`` for ``Scale(0.5)`` (do(h_u := 0.5 h_u)); a do-grid of ``K >= 2`` interventions adds
    ``{"do_grid": K}`` (its importance is the mean range of the interventional curve, CARE's, not a mean |effect|),
    with ``{"do": ":= a"}`` where each sets the unit to a value (``SetTo``, ``Zero``) and ``"× a"`` where each scales
    it; an intervention of one's own, a subclass of a built-in one (whose ``values`` may set anything) or a grid of
    mixed kinds: no ``do``.

    Args:
        intervention: the audit's intervention (``None``: ``Zero()``), or a list of them (a do-grid).

    Examples:
        >>> do_meta(None), do_meta(Scale(0.5)), do_meta([SetTo(-1.0), SetTo(2.0)]), do_meta([Zero(), Scale(2.0)])
        ({'do': ':= 0'}, {'do': '× 0.5'}, {'do_grid': 2, 'do': ':= a'}, {'do_grid': 2})
    """
    ivs = [Zero()] if intervention is None else [intervention] if isinstance(intervention, Intervention) else list(intervention)
    kinds = {type(iv) for iv in ivs}  # the type itself: a subclass's values are its own
    if len(ivs) > 1:
        grid: dict[str, Any] = {"do_grid": len(ivs)}
        said = ":= a" if kinds <= {SetTo, Zero} else "× a" if kinds == {Scale} else None
        return {**grid, "do": said} if said else grid
    iv = ivs[0]
    if type(iv) is SetTo:
        return {"do": f":= {iv.value.item():g}" if iv.value.numel() == 1 else ":= set values"}
    if type(iv) is Scale:
        return {"do": f"× {iv.factor:g}"}
    words = {Zero: ":= 0", MeanOf: ":= mean", Resample: ":= resampled"}
    return {"do": words[type(iv)]} if type(iv) in words else {}


class UnitImportanceAudit(Audit):
    """Counterfactual importance of conv filters, neurons or attention heads (Debbi 2021; CARE).

    For each layer, ``importance_u = E_x |f_t(x) − f_t(x | do(h_u := a))|`` over the probe, with
    ``a`` given by ``intervention`` (default zero). Reports the importance vector per layer
    (histograms, bar figures, drift), the top-k units, the largest importance (``<layer>/top1_importance``; NaN where
    a unit's importance is NaN, as the top share and ``InputEffectAudit``'s ``max_abs_effect``, the note of non-finite
    values naming the samples that made it: ``AuditEarlyStopping`` on it stops there under ``check_finite=True`` and
    says so) and the share of the top-k in the total
    (``<layer>/top{k}_share``, k: ``top_k``; at most all units but one are summed, the share of all of them being always 1:
    a layer of 8 units gives ``top10_share`` of its 7 strongest, said in ``meta["top_shares"]`` and the text card; the tag
    keeps ``top_k`` whatever the width, so a layer grown or pruned between audits keeps its series:
    :func:`~lightning_causal.audits.top_share.add_top_share`);
    ``meta`` records how each layer was computed (``path/<layer>``: the prefix cache's path;
    ``exact_units/<layer>`` with a screen; ``calls/<layer>`` for a layer that runs several times per forward pass, a
    shared encoder or a block applied repeatedly, whose units are set at every call, as the audit's notes and the text
    card say; ``unreached/<layer>``: the probe samples that neither a unit of the layer nor all of them set at once
    change, an exit taken before it, each counting 0 in the means, with a note of the top unit's importance over the
    others) and what was done to each unit (``do``, ``do_grid``: :func:`do_meta`,
    which the bar figures' value axis names: ``mean |effect| of do(unit := 0)``).

    Args:
        layers: module names from ``model.named_modules()``.
        top_k: number of top units per layer in the table.
        intervention: the do-intervention (default ``Zero()``; a list for a CARE do-grid). A
            :class:`~lightning_causal.causal.Resample` draws the same donors at every run of the
            audit (its generator restarts, for each layer, from its state when the audit was built):
            two runs on the same weights give the same numbers, the dry run at set-up moves nothing,
            and the epochs of a fit compare the same donors.
        target: class to explain; ``None`` = the predicted class.
        name: tag of the audit (default ``"unit_importance"``).
        unit_dim: the dimension that indexes units, one for all layers or a mapping layer -> dim
            (``-1`` for the neurons of ``[N, T, D]`` hidden states); default 1, refused at set-up
            where the layer's features are last (dimension 1 would be positions; see ``unit_effects``). Of a
            convolution (``nn.Conv1d``, ..., channels first) ``-1`` ranks its positions, not its channels: a note
            says so and the bars call them ``position``.
        num_heads: split the unit dimension into heads, for all layers or per layer (a mapping).
        method: ``"exact"`` or ``"attribution"`` (first-order estimate, one backward pass).
        screen: rank units by the estimate and intervene exactly on this many per layer only.
        output: which tensor of the model's return value to explain, as in
            :func:`~lightning_causal.causal.unit_effects`.
        additional_forward_args: extra forward arguments, as in
            :func:`~lightning_causal.causal.unit_effects` (per-sample forward arguments follow their
            rows); a probe's own ``additional_forward_args`` are used when none is given here.
        unit_names: names of the units of some layers, ``{layer: [name of unit 0, ...]}``, one per unit (the
            tokens of a tabular transformer, ``unit_dim=1``: ``["[CLS]", "age", ..., "sex"]``): the ``name`` of each
            row of ``top_units/<layer>``, ``meta["unit_names/<layer>"]`` and the bar figures' labels; a count other than
            the layer's units is a ``ValueError`` at the first run (the dry run at set-up).

    Examples:
        >>> import torch
        >>> from lightning_causal.models import MLP
        >>> r = UnitImportanceAudit(["net.1"], top_k=3).run(MLP(4), Probe(torch.randn(8, 4)))
        >>> r.vectors["importance/net.1"].shape, len(r.tables["top_units/net.1"]), r.meta["path/net.1"]
        (torch.Size([32]), 3, 'fx')
    """

    takes_every_input = True  # a probe of several inputs is explained over all of them (CausalAuditCallback's `explain=` leaves it)

    def __init__(
        self,
        layers: Sequence[str],
        top_k: int = 10,
        intervention: Intervention | Sequence[Intervention] | None = None,
        *,
        target: int | None = None,
        unit_dim: PerLayer = None,
        num_heads: PerLayer = None,
        method: UnitMethod = "exact",
        screen: int | None = None,
        output: OutputSpec = None,
        additional_forward_args: Any = None,
        name: str | None = None,
        unit_names: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        super().__init__(name, output=output)
        layers = layer_names(layers)
        self.unit_names = check_unit_names(unit_names, layers)
        check_int("top_k", top_k, minimum=1)
        if intervention is not None:
            if any(isinstance(iv, Patch) for iv in check_interventions(intervention)):
                raise ValueError(
                    "Expected argument `intervention` to hold no Patch: its source rows are paired with the samples "
                    "of one call, and the audit's probe is drawn by the callback; call "
                    "unit_effects(model, corrupted, layer, Patch(source)) on the paired inputs instead")
        self.layers, self.top_k, self.intervention, self.target = list(layers), top_k, intervention, check_target(target)
        self._donors = _generator_states(intervention)
        self.unit_dim, self.num_heads = per_layer_layouts(unit_dim, num_heads, self.layers)
        self.method = check_choice("method", method, METHODS)
        self.screen = check_int("screen", screen, minimum=1, none_ok=True)
        if screen is not None and method != "exact":
            raise ValueError(f"Expected argument `screen` to be None with method={method!r}")
        self.additional_forward_args = additional_forward_args

    def validate(self, model: nn.Module, probe: Probe) -> None:
        """Check the layers: modules of ``model``, each returning one row per sample in a pass of the whole probe
        (at set-up, before the dry run of 2 samples: an expert of a mixture that both samples were routed to
        returns them both, and would stop the fit at the first audit, when the probe's other samples go elsewhere);
        a layer whose rows every sample shares (a zero-shot classifier's text tower over its class prompts) is taken,
        each unit set in every shared row (:mod:`~lightning_causal.causal.effects.shared_units`).

        Args:
            model: the model the audit explains.
            probe: the probe (its inputs and forward arguments run in one pass, in eval mode, leaving no trace).

        Raises:
            ValueError: a layer is no module of ``model``, or returns fewer rows than the probe's samples.
        """
        for layer in self.layers:
            check_site(model, layer)
        check_layer_rows(model, probe, self.layers, self.additional_forward_args, shared_ok=True)

    def run(self, model: nn.Module, probe: Probe, *, max_batch_size: int | None = None) -> AuditResult:
        with remembered_fit():  # one block for every layer: what the model is (a padded target) is said once
            return self._run(model, probe, max_batch_size)

    def _run(self, model: nn.Module, probe: Probe, max_batch_size: int | None) -> AuditResult:
        result = AuditResult(self.name, meta=do_meta(self.intervention))
        afa = self.additional_forward_args
        if afa is None:
            afa = getattr(probe, "additional_forward_args", None)
        if self.target is None:
            warn_predicted_class_of_regression(f"UnitImportanceAudit {self.name!r}", probe.labels,
                                               first_row_outputs(model, Probe(probe.inputs, probe.labels, afa), self.output),
                                               model=model, output=self.output)
        xs = probe.inputs if isinstance(probe.inputs, tuple) else (probe.inputs,)
        steps = functools.cache(lambda: padded_steps(xs, afa, model=model))  # read once, where a layer's units are positions
        for layer in self.layers:
            eff, info = unit_effects(
                model, probe.inputs, layer, _replayed(self.intervention, self._donors), target=self.target, max_batch_size=max_batch_size,
                output=self.output, additional_forward_args=afa, unit_dim=self.unit_dim[layer],
                num_heads=self.num_heads[layer], method=self.method, screen=self.screen, return_info=True,
            )
            real = _real_positions(eff, info.site, self.unit_dim[layer], self.num_heads[layer], steps)
            imp, mean = real_mean(eff.abs(), real), real_mean(eff, real)  # positions as units: over the samples holding them
            note_non_finite_samples(result, eff, f"the unit effects of layer {layer!r}")  # which samples made NaN importances
            k = min(self.top_k, imp.numel())
            top_values, top_units = largest_k(imp, k)  # equal importances (dead units): lower unit id first
            total = float(imp.sum())
            result.vectors[f"importance/{layer}"] = imp
            result.scalars[f"{layer}/top1_importance"] = float(imp.max())  # NaN where a unit's is (top_values put it last)
            add_top_share(result, f"{layer}/", top_values, total, self.top_k, imp.numel())
            rows = [{"unit": int(u), "importance": float(imp[u]), "mean_effect": float(mean[u])} for u in top_units.tolist()]
            names = self.unit_names.get(layer)
            if names is not None:  # a feature token's column, a head's role: in the table, the card and the bars
                check_unit_name_count(names, layer, imp.numel(), f"unit_dim={self.unit_dim[layer]}, num_heads={self.num_heads[layer]}")
                result.meta[f"unit_names/{layer}"] = list(names)
                for row in rows:
                    row["name"] = names[row["unit"]]
            result.meta[f"path/{layer}"] = info.path
            _note_unreached(result, layer, eff, imp, real, lambda value, layer=layer: unit_effects(
                model, probe.inputs, layer, SetTo(value), target=self.target, max_batch_size=max_batch_size,
                output=self.output, additional_forward_args=afa, unit_dim=self.unit_dim[layer] or 1, num_heads=1))
            if info.read_positions:  # the modules after the layer run at the read positions only
                result.meta[f"read_positions/{layer}"] = list(info.read_positions)
            if info.linear_updates:  # the linear layers reading it answered by the update
                result.meta[f"linear_updates/{layer}"] = list(info.linear_updates)
            if info.path == SHARED_PATH:  # rows every sample shares: each unit set in all of them at once
                result.meta.setdefault("notes", []).append(info.reason)
            if info.calls > 1:  # a shared module: each unit is set at every call, which the bars do not show
                result.meta[f"calls/{layer}"] = info.calls
                result.meta.setdefault("notes", []).append(
                    f"{layer} runs several times per forward pass ({calls_counted(info.calls)}): each unit is set at "
                    "every call (an nn.Identity "
                    "per call names one: docs/your_model.md, 'Layers in functional code')")
            kind = named_unit_kind(info.site, self.unit_dim[layer], self.num_heads[layer])
            if kind == "position":  # channels first: not its neurons
                source = info.site.channels_source
                module = type(named_modules(model)[source]).__name__
                layout = "[N, C, ...] with its channels in dimension 1"
                what = (f"{layer} is an nn.{module}, whose output is {layout}" if source == layer else
                        f"{layer} is the input of nn.{module} {source!r}, {layout}" if layer.endswith(":input") else
                        # a block's output (a residual block's sum) is laid out as the last such layer inside it
                        f"{layer} is a block laid out as nn.{module} {source!r} inside it, {layout}"
                        if source.startswith(f"{layer}.") else f"{layer} carries the output of nn.{module} {source!r}, {layout}")
                result.meta.setdefault("notes", []).append(
                    f"{what}: unit_dim={self.unit_dim[layer]} ranks its positions (time steps of a sequence), not its "
                    f"channels; unit_dim=1 (the default) ranks the channels")
            if kind is not None:  # what the figures call a unit
                result.meta[f"unit_kind/{layer}"] = kind
            if self.screen is not None or self.method != "exact":  # mark which values are estimates
                result.meta[f"exact_units/{layer}"] = info.units[info.exact].tolist()
                for row in rows:
                    row["exact"] = bool(info.exact[row["unit"]])
            result.tables[f"top_units/{layer}"] = rows
        return result


def _real_positions(eff: Tensor, site: SiteFacts | None, unit_dim: int | None, num_heads: int | None,
                    padded: Callable[[], Tensor | None]) -> Tensor | None:
    """``[N, U]`` booleans, the samples in which each unit is a real position, where the units are the positions of a
    layer's output ``[N, T, ...]`` (``unit_dim=1`` named, no heads) as long as the padded input (an ``attention_mask`` or
    ``lengths``: the nodes of padded graphs, the tokens of padded sentences); else ``None``. A padded position's effect
    is 0 by design (the model masks it): counted, it diluted the importance of a node slot that few graphs hold (slot 9
    of graphs of 5 to 10 nodes ranked at a fifth of its mean over the graphs that have it). Not a channels-first output
    ``[N, C, T]`` (``site.channels_first``: a ``Conv1d``'s), whose dimension 1 holds channels even where ``C`` equals the
    padded length. ``padded()``: the probe's padded steps ``[N, T]`` (:func:`~..causal.engine.ablation.padded_steps`),
    read once for all the layers."""
    if (site is None or unit_dim != 1 or num_heads is not None or site.channels_first or len(site.shape) < 3
            or eff.dim() != 2 or eff.shape[1] != site.shape[1]):
        return None
    steps = padded()
    if steps is None or tuple(steps.shape) != tuple(eff.shape) or not bool(steps.any()):
        return None
    return ~steps.to(eff.device)


def _note_unreached(result: AuditResult, layer: str, eff: Tensor, imp: Tensor, real: Tensor | None,
                    whole: Callable[[float], Tensor]) -> None:
    """Where ``layer`` changes some probe samples' outputs in no way (an exit taken before the layer, a block or expert
    their route skips), says how many: the importances ``imp`` are means over every sample (each position over the
    samples holding it, ``real``: :func:`_real_positions`), those counting 0; the note gives the top unit's importance
    over the samples the layer changes too.

    A sample no unit changes is unreached only where setting all the layer's units at once, to 1 and then to -1
    (``whole(value)``: its effects ``[N, 1]``, the unit dimension one head, one pass of the probe each, run only where
    some row is all 0), changes nothing either: a ReLU layer all 0 for a sample, a pre-activation whose units are all
    negative, or effects below a bfloat16 logit's rounding give a row of 0 for a sample the layer does reach."""
    n, zero = eff.shape[0], (eff == 0).all(1)  # a NaN row is no 0 row
    for value in (1.0, -1.0):
        if not 0 < int(zero.sum()) < n:
            return
        zero &= (whole(value) == 0).all(1).to(zero.device)
    unreached = int(zero.sum())
    if not 0 < unreached < n:
        return
    result.meta[f"unreached/{layer}"] = unreached
    u = int(imp.argmax())  # the note's first words hold its numbers: the text card cuts a long note
    changed = ~zero if real is None else real[:, u] & ~zero  # the samples imp[u] averages that the layer changes
    shown = float(real_mean(eff[:, u:u + 1].abs(), changed[:, None])[0])
    held = n if real is None else int(real[:, u].sum())  # the samples imp[u] averages
    each = "" if real is None else " holding its position"
    other = held - int(changed.sum())  # of those, the ones it does not reach; of the whole probe where unreached differs
    among = "" if other == unreached else f" holding it ({unreached} of the probe's {n} samples in all)"
    result.meta.setdefault("notes", []).append(
        f"{layer}: its top unit's importance is {shown:.3g} over the {int(changed.sum())} probe samples{each} "
        f"it changes, {float(imp[u]):.3g} over all {held}{each}: neither a unit of it nor all of them set at once changes the other "
        f"{other}{among} (an exit taken before it, a block or expert their route skips), each counting 0 in the importances")
