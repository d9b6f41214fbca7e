"""The layer causal map (TRACER): how input interventions propagate through the layers, with
layers that respond alike merged into one causal node.

Every input group ``g`` of every sample ``x`` is set to the baseline (``do(x_g := b)``, all
``G * N`` interventions batched), and the change of each layer's activation is recorded:
``Δ_L(g, x) = h_L(x) - h_L(x | do(x_g := b))``. The rows ``(g, x)`` of ``Δ_L`` are the layer's
*response profile*; two layers are compared by the linear CKA of their profiles (Kornblith et al.
2019), and contiguous layers whose CKA is at least ``threshold`` merge into one node.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from lightning_causal.causal.engine.ablation import (
    check_baselines,
    input_padding,
    step_positions,
    unpadded_masks,
)
from lightning_causal.causal.engine.batching import rows_per_pass
from lightning_causal.causal.engine.checks import check_float, check_int, check_seed
from lightning_causal.causal.engine.chosen_input import model_name
from lightning_causal.causal.engine.forward import Forward, OutputSpec
from lightning_causal.causal.engine.groups import check_feature_mask, num_groups
from lightning_causal.causal.engine.intervention_hooks import RepeatedCallsWarning
from lightning_causal.causal.engine.interventions import resolve_module
from lightning_causal.causal.engine.linked_samples import check_linked_samples, failed_rows_named
from lightning_causal.causal.engine.noise import GeneratorWatch, common_noise
from lightning_causal.causal.engine.padded_reads import explained_target
from lightning_causal.causal.engine.prefix_cache import check_samples_independent
from lightning_causal.causal.engine.probe_warnings import ProbeContentsWarning
from lightning_causal.causal.engine.stacked_rows import rows_alone_checked
from lightning_causal.causal.engine.state import as_tuple, audit_mode
from lightning_causal.causal.engine.token_ids import (
    check_special_tokens,
    check_token_baselines,
    embedding_readers,
    keep_special_tokens,
)
from lightning_causal.causal.engine.user_frame import outside_package
from lightning_causal.causal.structure.cka import (
    CKA_ROUNDING,  # noqa: F401 - kept importable from here
    MIN_CKA_ROWS,
    gram_cka,
    linear_cka,
    merge_contiguous,
    unmoved_layers,
    without_rounding_profiles,
)
from lightning_causal.causal.structure.default_layers import NO_TENSOR, default_layer_choice
from lightning_causal.causal.structure.functional_layers import FUNCTIONAL, OWN_WEIGHTS
from lightning_causal.causal.structure.layer_activations import (
    BROADCAST,
    EXTRA_STEPS,
    NOT_SAMPLES_FIRST,
    activations_alone,
    clean_activations,
    conv_layouts,
    real_positions_only,
    seeded_clean_activations,
    steps_layout,
    unaligned_positions,
)
from lightning_causal.causal.structure.layer_trace import (
    REROUTED,
    distinct_samples,
    input_change,
    real_rows,
    row_subset,
    trace_interventions,
)
from lightning_causal.causal.structure.output_path import (
    UNUSED,
    off_output_path,
    warn_off_output_path,
)

__all__ = ["LayerCausalMap", "layer_causal_map", "linear_cka"]

INPUT, OUTPUT = "<input>", "<output>"


@dataclass
class LayerCausalMap:
    """Result of :func:`layer_causal_map`.

    Attributes:
        layers: the layers in forward order.
        cka: ``[L, L]`` linear CKA of the layers' response profiles.
        nodes: node id -> the contiguous layers merged into it, in order; ``<input>`` and ``<output>``
            (no layers) open and close the chain. A merged node is named ``first..last``.
        edges: ``(source, target, weight)`` along the chain ``input -> node ... -> output``;
            ``weight`` = relative response of the target node (see :func:`layer_causal_map`).
        edge_stats: parallel to ``edges``: ``gain`` (relative response of the target over that of
            the source; infinite where only the target responds, NaN where neither does) and
            ``cka`` (between the source's last and the target's first layer).
        response: relative response of each layer ``[L]``.
        group_effects: node id -> mean ``||Δ||`` per input group ``[G]`` at its first layer, as its ``s`` (the output: mean ``|δ_g|``)
            over the samples in which the group holds an element (padding excluded; 0 where it holds none).
        threshold: the merge threshold.
        meta: ``groups``, ``samples``, ``input_response``, ``output_response``; ``left_out`` (default
            layers only: leaf layer -> why the explained output does not read it, such as a layer before a
            ReLU that no probe sample activates, warned about; another output's head; a layer computed in functional
            code outside every layer read, keyed by its call, ``"F.conv2d in DynamicFilter.forward"`` ->
            ``functional_layers.FUNCTIONAL``, warned about; a module of yours that returns such a call's output, a layer
            that applies its weights in functional code, keyed by its name -> ``functional_layers.OWN_WEIGHTS``, warned
            about with the ``layers=`` that maps it) and ``unmoved``
            (the layers no intervention moves: relative response 0, CKA NaN, warned about); ``rerouted`` (default
            layers only: a layer left out as it runs on some rows only once inputs are intervened on, whose
            ``left_out`` entry is that category, -> what it did on the first pass of intervened rows where it did not
            return one row per row, e.g. ``"returned [3, 2] for a pass of 12 intervened rows"`` or ``"did not run for
            a pass of 12 intervened rows"``; empty where none); ``last_call``: each layer that runs several times per
            forward pass (a shared encoder, a block applied repeatedly) -> its calls per pass: its response, CKA and place
            in the chain are those of its last call (empty where none).

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> with torch.no_grad():
        ...     _ = model[1].weight.copy_(2 * torch.eye(4)); _ = model[1].bias.zero_()
        >>> x = torch.randn(16, 4, generator=torch.Generator().manual_seed(0))
        >>> m = layer_causal_map(model, x, torch.tensor([[0, 1, 2, 3]]))
        >>> m.layers, m.cka.shape, [(source, target) for source, target, _ in m.edges]
        (['0', '1', '3'], torch.Size([3, 3]), [('<input>', '0..1'), ('0..1', '3'), ('3', '<output>')])
        >>> bool(torch.isclose(m.response[0], m.response[1]))  # layer 1 = 2 * layer 0: the same relative response
        True
    """

    layers: list[str]
    cka: Tensor
    nodes: dict[str, list[str]]
    edges: list[tuple[str, str, float]]
    edge_stats: list[dict[str, float]]
    response: Tensor
    group_effects: dict[str, Tensor] = field(default_factory=dict)
    threshold: float = 0.9
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able export (``kind = "layer_map"``; NaN/inf written as strings)."""

        def num(v: float) -> float | str:
            return float(v) if math.isfinite(float(v)) else str(float(v))

        return {
            "kind": "layer_map",
            "layers": list(self.layers),
            "cka": [[num(v) for v in row] for row in self.cka.tolist()],
            "response": [num(v) for v in self.response.tolist()],
            "threshold": float(self.threshold),
            "nodes": [{"id": k, "layers": list(v), "group_effects": [num(g) for g in self.group_effects[k].tolist()]}
                      if k in self.group_effects else {"id": k, "layers": list(v)} for k, v in self.nodes.items()],
            "edges": [{"source": s, "target": t, "weight": num(w), **{k: num(v) for k, v in st.items()}}
                      for (s, t, w), st in zip(self.edges, self.edge_stats)],
            "meta": dict(self.meta),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> LayerCausalMap:
        """Inverse of :meth:`to_dict`.

        Args:
            data: a dict from :meth:`to_dict` (``kind == "layer_map"``).
        """
        if not isinstance(data, dict) or data.get("kind") != "layer_map":
            raise ValueError("Expected argument `data` to be a dict from LayerCausalMap.to_dict() (kind 'layer_map')")
        fl = lambda seq: [float(v) for v in seq]  # noqa: E731
        nodes = {n["id"]: list(n["layers"]) for n in data["nodes"]}
        groups = {n["id"]: torch.tensor(fl(n["group_effects"])) for n in data["nodes"] if "group_effects" in n}
        edges = [(e["source"], e["target"], float(e["weight"])) for e in data["edges"]]
        stats = [{k: float(v) for k, v in e.items() if k not in ("source", "target", "weight")} for e in data["edges"]]
        cka = torch.tensor([fl(r) for r in data["cka"]], dtype=torch.float64)
        return cls(list(data["layers"]), cka, nodes, edges, stats, torch.tensor(fl(data["response"]), dtype=torch.float64),
                   groups, float(data["threshold"]), dict(data.get("meta", {})))


def _check(model, threshold, max_rows, seed) -> None:
    if not isinstance(model, nn.Module):
        raise TypeError(f"Expected argument `model` to be a torch.nn.Module but got {type(model)}")
    check_float("threshold", threshold, minimum=0.0, maximum=1.0)
    check_int("max_rows", max_rows, minimum=MIN_CKA_ROWS, none_ok=True)  # 2 rows: every CKA is 1
    check_seed(seed)


def layer_causal_map(
    model: nn.Module,
    inputs: Tensor | tuple[Tensor, ...],
    feature_mask: Tensor | tuple[Tensor, ...] | None = None,
    layers: Sequence[str] | None = None,
    *,
    threshold: float = 0.9,
    baseline: float | Tensor = 0.0,
    target: int | Tensor | None = None,
    max_batch_size: int | None = None,
    max_rows: int | None = 1024,
    seed: int = 0,
    output: OutputSpec = None,
    additional_forward_args: Any = None,
    special_tokens: Sequence[int] = (),
) -> LayerCausalMap:
    """TRACER's layer causal map: intervene on each input group, trace the change through the layers.

    For every group ``g`` and sample ``x``, ``Δ_L(g, x) = h_L(x) - h_L(x | do(x_g := b))`` is
    recorded at every layer (``G * N`` rows, batched; a row whose group already holds the baseline on its sample,
    such as a zero pixel of a background with the default baseline 0, changes no input element: its ``Δ`` is exactly
    0 and it is not run, except for a model that draws noise in eval mode, see
    :func:`~lightning_causal.causal.structure.layer_trace.moving_input_rows`). Layers are compared by
    :func:`linear_cka` (Kornblith et al. 2019) of their profiles ``[G*N, D_L]`` (computed exactly from the centred Gram
    matrices of at most ``max_rows`` rows, a random subset drawn by a private generator when
    there are more); contiguous layers with CKA >= ``threshold`` with every member of
    the current node merge into it. The *relative response* of a layer is
    ``s_L = E||Δ_L(g, x)|| / E||h_L(x)||``; the edge into a node carries its ``s`` (how much of
    the intervention reaches it) and the ``gain`` ``s_target / s_source``. The output node uses the
    target logit (``s = E|δ_g(x)| / E|f_t(x)|``), the input node the inputs themselves.

    Args:
        model: any module; ``output`` selects the ``[N, outputs]`` tensor it returns.
        inputs: a tensor ``[N, ...]`` or a tuple of tensors.
        feature_mask: integer group ids broadcastable to the inputs (Captum's convention);
            ``None``: one group per element.
        layers: module names, each once (sorted into forward order; a module that runs several times per pass
            is read at its last call and placed there, with a ``UserWarning`` and ``meta["last_call"]``). Default
            (:func:`~lightning_causal.causal.structure.default_layers.default_layers`): the repeated
            blocks of the model when they run as a chain (the residual stream: ``vit.layers.<i>``,
            ``bert.encoder.layer.<i>``, ``model.layers.<i>`` of a Llama, ``encoder.layers.<i>`` of an
            ``nn.TransformerEncoder``, a ResNet's blocks), since the layers inside a block do not (q,
            k and v run side by side); otherwise (plain CNNs, MLPs) every leaf module with
            parameters that runs in the forward pass with one row per sample (those whose outputs
            do not hold the samples first, ``[T, N, ...]`` or an expert's rows, are left out with a ``UserWarning``)
            and that the explained output reads (the heads of a multi-head model's other outputs
            are left out: :func:`~lightning_causal.causal.structure.output_path.off_output_path`;
            so is a layer nothing of which reaches the output on the probe, such as one before a ReLU
            that no probe sample activates, with a ``UserWarning`` naming it; so is a layer that returns fewer
            rows once an intervention reroutes them, an expert of a mixture that every probe sample took, with a
            ``UserWarning``; ``meta["left_out"]`` holds them with why, ``meta["rerouted"]`` what such an expert returned
            on how many intervened rows). Named layers must hold the samples on dimension 0, also on a pass of two
            probe samples; named layers the explained output does not read are warned about. A layer
            no intervention moves (after a dead ReLU) stays in the map with ``s = 0`` and NaN CKA, with
            a ``UserWarning`` naming it (``meta["unmoved"]``).
        threshold: merge threshold on the CKA, in ``[0, 1]``.
        baseline: the intervention value ``b``. Padded positions (a zero ``attention_mask`` or the
            steps past ``lengths`` in ``additional_forward_args``, see
            :func:`~lightning_causal.causal.engine.ablation.padding_positions`) keep their values,
            as in :func:`~lightning_causal.causal.effects.input_effects.input_effects`, and a layer
            output ``[N, T, ...]`` over the input's positions is read at the real ones only (``Δ_L``,
            ``h_L`` and the CKA leave the padded positions' hidden states out): the same sentences
            padded to another length give the same map.
        target: class whose logit gives the per-group output effects ``|δ_g|`` (``None``: predicted).
        max_batch_size: rows per forward pass.
        max_rows: rows ``(g, x)`` of the profiles entering the CKA (``None``: all; at least 3, as with 2 every CKA
            is 1). Their activation
            changes are kept until the end, outside the memory budget of a forward pass:
            ``max_rows`` times the summed widths of the layers (a CNN on 3x96x96 images with
            layers of 295k, 147k and 295k values: about 3 GiB in float32 at 1024 rows, and one
            layer's copy while its Gram matrix is made); the Gram matrices grow with its square.
            Lower it for large layers.
        seed: seed of the private generator of the row subset.
        special_tokens: token ids no intervention replaces (``</s>`` of BART and T5 classifiers,
            which must read it; see :func:`~lightning_causal.causal.effects.input_effects.input_effects`):
            they keep their tokens, and a group of special tokens only is no row of the map.
        output: which tensor of the model's return value to explain (see
            :class:`~lightning_causal.causal.engine.forward.Forward`).
        additional_forward_args: extra forward arguments (see
            :class:`~lightning_causal.causal.engine.forward.Forward`).

    Returns:
        :class:`LayerCausalMap`.

    Examples:
        >>> model = nn.Sequential(nn.Linear(4, 4), nn.Linear(4, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> with torch.no_grad():
        ...     _ = model[1].weight.copy_(2 * torch.eye(4)); _ = model[1].bias.zero_()
        >>> x = torch.randn(16, 4, generator=torch.Generator().manual_seed(0))
        >>> list(layer_causal_map(model, x, torch.tensor([[0, 1, 2, 3]])).nodes)
        ['<input>', '0..1', '3', '<output>']
    """
    _check(model, threshold, max_rows, seed)
    if layers is not None and not isinstance(layers, str) and (
            not isinstance(layers, Sequence) or not all(isinstance(name, str) for name in layers)):
        hint = (f"; a baseline is given by keyword: layer_causal_map(model, inputs, feature_mask, baseline={layers!r}) "
                "(input_effects takes it fourth)" if isinstance(layers, (int, float, Tensor)) else "")
        raise TypeError(f"Expected argument `layers` (the fourth positional argument) to be a module name or a sequence of "
                        f"them but got {layers!r}{hint}")
    xs = as_tuple(inputs)
    masks = check_feature_mask(xs, feature_mask)
    bases = check_baselines(xs, baseline)
    g, n = num_groups(masks), xs[0].shape[0]
    forward = Forward(model, output=output, additional_forward_args=additional_forward_args, num_samples=n, as_matrix=True)
    model = forward.model
    names = None if layers is None else ([layers] if isinstance(layers, str) else list(layers))
    if names is not None and not names:
        raise ValueError(f"Expected argument `layers` to name at least one module but got {layers!r}")
    for name in names or ():
        resolve_module(model, name)
    twice = sorted({name for name in names or () if names.count(name) > 1})
    if twice:  # each name's hook counted a call: the map warned that the module runs twice per pass
        raise ValueError(f"Expected argument `layers` to name each module once but got {twice} more than once")
    pads = input_padding(xs, additional_forward_args, model=model)  # of the input the argument describes
    padding = next((p for p in pads or () if p is not None), None)
    if padding is not None and bool(padding.any()):  # padded positions keep their values: no group holds them
        masks = unpadded_masks(xs, masks, pads, g)
    masks = keep_special_tokens(xs, masks, check_special_tokens(special_tokens), g)  # kept tokens: in no group, no row
    with audit_mode(model), rows_alone_checked("layer_causal_map", model=model), warnings.catch_warnings():
        # said once, by clean_activations, with where the map places such a module
        warnings.simplefilter("ignore", RepeatedCallsWarning)
        # the nodes of one graph as samples: refused from passes of every row, before any pass of fewer rows
        check_linked_samples(model, xs, "A layer causal map", output=output, additional_forward_args=additional_forward_args)
        # a model that reads its whole batch (prototypes from its first rows) fails in a pass of fewer rows: named
        with failed_rows_named(forward, xs, "A layer causal map"), GeneratorWatch() as clean_pass:  # no pass of its own
            left_out: dict[str, str] = {}
            if names is None:
                names, left_out = default_layer_choice(forward, xs)
                if not names:  # nothing the default could read: say so, not that the `layers` never given were empty
                    # a scripted or torch.export'ed part, whose layers run in its graph and are no default layers
                    compiled = [(f"TorchScript module {n!r}, which no hook reaches", "scripted")
                                if isinstance(m, torch.jit.ScriptModule) else
                                (f"torch.export'ed module {n!r}, whose graph never calls them", "exported")
                                for n, m in model.named_modules()
                                if n and isinstance(m, torch.jit.ScriptModule | torch.fx.GraphModule)]
                    where = (f" (its layers lie in the {compiled[0][0]}: audit the eager module that was {compiled[0][1]})"
                             if compiled else "; name the layers with `layers=`")
                    raise ValueError(f"Expected the model {model_name(model)} to hold a module with parameters that the "
                                     f"default layers read, but it holds none{where}")
            else:
                warn_off_output_path(off_output_path(forward, xs, names))
            # the clean pass only: which embeddings read token ids, how a module's convolution reads its input
            with embedding_readers(model, xs) as readers, conv_layouts(forward.model, names) as layouts:
                repeated: dict[str, int] = {}  # a module that runs several times per pass: read at its last call
                out, acts = clean_activations(forward, xs, names, named=layers is not None, left_out=left_out, calls=repeated)
        # a model that draws noise in eval mode: common random numbers, the clean pass again from the blocks' seeds
        noise = common_noise(forward, model, xs, lambda: rows_per_pass(model, xs, max_batch_size, forward=forward),
                             drew=clean_pass.moved)
        if noise is not None:
            out, acts = seeded_clean_activations(forward, xs, list(acts), noise)
        steps = step_positions(padding)  # [N, T] of a batch-first input; None for a channels-first one's frames
        real_positions = None if steps is None else ~steps
        # numbers only: a forward taking gradients itself (forces -dE/dx) records a graph under no_grad, which the map's
        # statistics, computed after audit_mode, would carry (torch warns at float() of them)
        out = out.detach()
        # a Conv1d's [N, C, T]: its steps on dimension 2, not its channels
        dims, tied = steps_layout(forward.model, acts, None if real_positions is None else real_positions.shape[1], layouts)
        _warn_unaligned(unaligned_positions(acts, real_positions, dims), acts, real_positions, dims)
        if real_positions is not None and not bool(real_positions.all()):  # padding laid on a dimension the shapes do not tell
            _warn_tied(tied, acts, real_positions.shape[1])
        acts = {a: real_positions_only(h.detach(), real_positions, dims.get(a, 1)) for a, h in acts.items()}
        check_token_baselines(xs, bases, readers, pads)
        check_samples_independent(forward, xs, out, "A layer causal map", one_row=noise is None and max_batch_size == 1 and n > 1)
        if noise is None and max_batch_size == 1 and n > 1:  # the intervened rows run alone: the clean samples too
            out, acts = activations_alone(forward, xs, list(acts), calls=repeated, what="the layer map", whole=out)
            out = out.detach()
            acts = {a: real_positions_only(h.detach(), real_positions, dims.get(a, 1)) for a, h in acts.items()}
        order = list(acts)
        tidx, f0 = explained_target(forward, xs, out, target, "A layer causal map")
        real = real_rows(xs, masks, g)
        keep = row_subset(g * n, max_rows, seed, xs[0].device, real)
        rerouted: dict[str, str] | None = None if layers is not None else {}  # default layers run on some rows only
        grams, norms, logit_delta, in_delta = trace_interventions(forward, xs, masks, bases, acts, out, tidx, keep, max_batch_size,
                                                     real_positions, noise, rerouted, dims)
        if rerouted:
            order = [a for a in order if a not in rerouted]
            _warn_rerouted(rerouted, order)
            left_out |= dict.fromkeys(rerouted, REROUTED)
    cka = gram_cka([grams[a] for a in order])
    distinct = distinct_samples(xs)  # copies of one sample repeat its rows: they add none to the comparison
    rows = min(int(keep.sum()), g * distinct)
    if rows < MIN_CKA_ROWS:  # every 2-row centred Gram matrix is one matrix up to scale: CKA 1 for any two layers
        warnings.warn(
            f"layer_causal_map compares layers by the CKA of their responses over {rows} distinct intervention row(s) (input "
            f"groups x distinct samples, {g} x {distinct}); with fewer than {MIN_CKA_ROWS} every CKA is 1 (2 rows: any two "
            "layers) or undefined (1 row), so it is left undefined (NaN) and no layers merge: pass more (different) samples or "
            "more feature groups", ProbeContentsWarning, stacklevel=outside_package())
        cka = torch.full_like(cka, math.nan)
    response = torch.stack([norms[a][real].mean() / acts[a].reshape(n, -1).norm(dim=1).mean().clamp_min(1e-12) for a in order]).double()
    cka = without_rounding_profiles(cka, response, [acts[a].dtype for a in order])
    groups = merge_contiguous(cka, float(threshold))
    f_t = f0.abs().mean()
    lm = _build(order, cka, response, groups, norms, logit_delta, in_delta, f_t, xs, g, n, float(threshold), real, pads)
    _warn_left_out({a: why for a, why in left_out.items() if why not in (UNUSED, REROUTED, NOT_SAMPLES_FIRST, BROADCAST, NO_TENSOR, FUNCTIONAL, OWN_WEIGHTS)}, n)  # another output's head: nothing to say; the others warned of
    unmoved = [a for a, dead in zip(order, unmoved_layers(response, [acts[a].dtype for a in order])) if dead]
    if unmoved:
        warnings.warn(
            f"No input intervention moves the layers {unmoved} on the {n} probe samples (relative response 0): no unit "
            "before them is active on the probe (a dead ReLU), or the explained input does not feed them (a branch of "
            "forward arguments or constants only); their CKA is undefined (NaN) and "
            "they merge with no layer (the map's meta['unmoved'] lists them)", ProbeContentsWarning, stacklevel=outside_package())
    lm.meta.update(left_out=dict(left_out), unmoved=unmoved, rerouted=dict(rerouted or {}),
                   last_call={a: repeated[a] for a in order if a in repeated})
    return lm


def _warn_tied(names: list[str], acts: dict[str, Tensor], t: int) -> None:
    """Warn that the padding of the layers ``names`` (:func:`~.layer_activations.steps_layout`'s ``tied``) is laid on dimension 1 by
    default, their shapes holding the input's ``t`` steps on dimensions 1 and 2 alike, and name the ways out."""
    if not names:
        return
    warnings.warn(
        f"layer_causal_map: the outputs of {_outputs_shown(names, acts)} hold the input's {t} steps (or a few more) on dimensions 1 and 2 alike, "
        "and their modules say nothing of their layout, so their padded steps are zeroed on dimension 1, as for a "
        "[N, T, D] output; where a layer's steps lie on dimension 2 (an activation after a Conv1d, [N, C, T] with C "
        "close to T; a module of one's own holding a Conv1d that reads neither its input nor the input transposed) its "
        "channels are zeroed instead. Name the convolution itself in `layers=`, or pad the probe to a length that no "
        f"channel count of these layers is within {EXTRA_STEPS} of",
        UserWarning, stacklevel=outside_package())


def _outputs_shown(names: list[str], acts: dict[str, Tensor]) -> str:
    """The first 4 of the layers ``names`` with the shapes of their outputs, ``'conv' [N, 8, 10]``, as the warnings show them."""
    return ", ".join(f"{a!r} [N, {', '.join(map(str, acts[a].shape[1:]))}]" for a in names[:4]) + (" ..." if len(names) > 4 else "")


def _warn_rerouted(rerouted: dict[str, str], kept: list[str]) -> None:
    """Warn that the default layers leave out ``rerouted``: layers that returned one row per probe sample on the
    clean pass (every sample took them: an expert of a mixture that the router gives every probe sample) but fewer
    once an intervention sent rows elsewhere; refuse the map where no layer is left."""
    shown = "; ".join(f"{a!r} {why}" for a, why in list(rerouted.items())[:6]) + (" ..." if len(rerouted) > 6 else "")
    if not kept:
        raise ValueError(f"Expected a default layer that runs on every intervened row, but none does: {shown}. "
                         "Name modules that run on every row with `layers=` (e.g. where the experts' outputs are combined)")
    warnings.warn(
        f"The layer map leaves the layers {list(rerouted)} out of its default layers: they ran on every probe sample "
        f"but not on every row once inputs were intervened on ({shown}): an expert of a mixture that every probe sample "
        "was routed to, or a branch; the map holds the layers that run on every row (the map's meta['left_out'] lists "
        "them, meta['rerouted'] what each returned)", ProbeContentsWarning, stacklevel=outside_package())


def _warn_left_out(blocked: dict[str, str], n: int) -> None:
    """Warn that the default layers leave out ``blocked``: layers the explained output uses but does not read on
    the ``n`` probe samples (a dead ReLU after them), which a user would otherwise miss in the map."""
    if blocked:
        warnings.warn(
            f"The layer map leaves the layers {list(blocked)} out of its default layers: the explained output does not "
            f"read them on the {n} probe samples (a zero gradient, and noise added to their outputs leaves it unchanged): "
            "no unit after them is active on the probe (a dead ReLU: a bias below what the inputs reach), or they compute "
            "an output beside the explained one that `output=` slices off; name them in `layers=` to map them all the same "
            "(the map's meta['left_out'] lists them)", ProbeContentsWarning, stacklevel=outside_package())


def _real_input_norm(x: Tensor, padding: Tensor | None) -> Tensor:
    """``||x||`` per sample over its real positions (``padding``: booleans broadcastable to ``x``):
    the padded positions never change, and counted they made the input's relative response, and
    the gain of the edge out of ``<input>``, depend on the length the probe is padded to."""
    if padding is None:
        return input_change(x)
    pad = padding.to(x.device).expand(x.shape)
    if x.is_floating_point() or x.is_complex():
        return input_change(torch.where(pad, torch.zeros((), dtype=x.dtype, device=x.device), x.detach()))
    return (~pad).reshape(x.shape[0], -1).sum(1).float().sqrt()  # token ids seen one-hot: √(real tokens)


def _build(order, cka, response, groups, norms, logit_delta, in_delta, f_t, xs, g, n, threshold, real, pads=None) -> LayerCausalMap:
    held = real.view(g, n)  # group-major: does group g hold an element of sample s (not padding only)?
    per_group = lambda rows: (torch.where(held, rows.view(g, n), 0).sum(1) / held.sum(1).clamp_min(1)).double()  # noqa: E731
    ids = [order[grp[0]] if len(grp) == 1 else f"{order[grp[0]]}..{order[grp[-1]]}" for grp in groups]
    nodes = {INPUT: [], **{i: [order[j] for j in grp] for i, grp in zip(ids, groups)}, OUTPUT: []}
    x_norm = torch.stack([_real_input_norm(x, None if pads is None else pads[i]) for i, x in enumerate(xs)]).norm(dim=0).mean().clamp_min(1e-12)
    s_in = float(in_delta[real].mean() / x_norm)
    s_out = float(logit_delta[real].mean() / f_t.clamp_min(1e-12))
    effects = {INPUT: per_group(in_delta), OUTPUT: per_group(logit_delta)}
    heads = [(INPUT, s_in, None)] + [(i, float(response[grp[0]]), grp) for i, grp in zip(ids, groups)] + [(OUTPUT, s_out, None)]
    for i, grp in zip(ids, groups):
        effects[i] = per_group(norms[order[grp[0]]])
    edges, stats = [], []
    for (src, s_src, g_src), (dst, s_dst, g_dst) in zip(heads, heads[1:]):
        tail = float(response[g_src[-1]]) if g_src is not None else s_src
        # nothing reaches the source: an infinite gain where the target still moves (a skip around it), else undefined
        st = {"gain": s_dst / tail if tail > 0 else (math.inf if s_dst > 0 else math.nan)}
        if g_src is not None and g_dst is not None:
            st["cka"] = float(cka[g_src[-1], g_dst[0]])
        edges.append((src, dst, s_dst))
        stats.append(st)
    return LayerCausalMap(order, cka, nodes, edges, stats, response, effects, threshold,
                          {"groups": g, "samples": n, "input_response": s_in, "output_response": s_out})


def _warn_unaligned(names: list[str], acts: dict[str, Tensor], real: Tensor | None, dims: dict[str, int]) -> None:
    """Warn of layers whose outputs hold a few positions more than the padded input (:func:`unaligned_positions`); of
    a channels-first one (``dims``: a ``Conv1d``'s ``[N, C, T + k]``), its steps."""
    if not names:  # none without padding (unaligned_positions)
        return
    t = real.shape[1]
    if convs := [a for a in names if a in dims]:
        warnings.warn(
            f"layer_causal_map: the outputs of {_outputs_shown(convs, acts)} hold more steps (dimension 2) than the input's {t} (a Conv1d padded by k - 1 on both sides, whose last "
            "k - 1 steps a causal model cuts off), so the input's padding cannot be laid on them: their padded steps, which "
            "move when a real step does, count in the responses and the CKA, and the map depends on the length the probe "
            "is padded to. Name a module that returns the steps the model keeps (a causal convolution module whose "
            "forward returns `self.conv(x)[..., :T]`), or pad the steps on the left only (`F.pad(x, (k - 1, 0))` before "
            "a Conv1d of padding=0)", UserWarning, stacklevel=outside_package())
    if not (names := [a for a in names if a not in dims]):
        return
    shown = ", ".join(f"{a!r} [N, {acts[a].shape[1]}, ...]" for a in names[:4]) + (" ..." if len(names) > 4 else "")
    warnings.warn(
        f"layer_causal_map: the outputs of {shown} hold more positions than the input's {t} (a virtual node or a [CLS] "
        "token added inside forward), so the input's padding cannot be laid on them: their padded positions' hidden "
        "states, which move when a real position does (a padded query still attends to the real keys), count in the "
        "responses and the CKA, and the map depends on the length the probe is padded to. Zero the padded positions' "
        "hidden states in the output of each layer read (`return h * keep[..., None]` at the end of its forward, the "
        "virtual node kept), or add the extra position to the input itself, marked real in `attention_mask`", UserWarning, stacklevel=outside_package())
