"""Captum's layer methods on the output of an input layer (the word embeddings of token ids),
reduced to the inputs' positions so that they compare with the causal token effects.

``LayerIntegratedGradients`` integrates along the path from the embeddings of the baseline tokens
to those of the input (Sundararajan et al. 2017, on the layer as Captum's BERT tutorial does);
``LayerGradientXActivation`` multiplies the embeddings by their gradient; ``LayerFeatureAblation``
replaces a group's embeddings by the baseline token's (it equals
``input_effects(..., input_layer=...)`` exactly). The layer's attribution ``[N, T, D]`` is summed
over the trailing dimensions (``LayerFeatureAblation``: every element already carries its
group's value, so its mean), giving one value per input position ``[N, T]``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor, nn

from lightning_causal.baselines.captum_forward import num_samples_of, whole_token_ids
from lightning_causal.baselines.captum_methods import (
    CaptumForward,
    attribution_context,
    prepare_inputs,
    seed_of,
)
from lightning_causal.baselines.layer_methods import (
    checkpoint_refusal,
    no_gradient_message,
    repeated_calls,
    repeated_layer_warning,
)
from lightning_causal.baselines.method_specs import (
    INPUT_LAYER_METHOD_NAMES,
    METHOD_TABLE,
    MethodLike,
    MethodSpec,
    resolve_method,
)
from lightning_causal.causal.effects.input_layer import layer_reference
from lightning_causal.causal.engine.ablation import check_baselines
from lightning_causal.causal.engine.forward import Forward, OutputSpec
from lightning_causal.causal.engine.forward_args import ForwardArgs
from lightning_causal.causal.engine.interventions import capture, resolve_module
from lightning_causal.causal.engine.linked_samples import check_linked_samples
from lightning_causal.causal.engine.stacked_rows import rows_alone_checked

__all__ = ["input_layer_attribute"]


def _layer_reference(forward: CaptumForward, x: Tensor, layer: str, baseline: int | Tensor, args: Any) -> Tensor:
    """The layer's output on the input filled with the baseline token (per sample)."""
    core = Forward(forward.model, output=forward.output, additional_forward_args=args, num_samples=x.shape[0])
    with torch.no_grad(), capture(core.model, [layer]) as acts:
        core(x)
    return layer_reference(core, x, acts[layer], layer, baseline=baseline)


def _check_one_call(module: nn.Module, layer: str, method: str, run: Any, run_all: Any) -> None:
    """An input layer read more than once per pass: refused where its calls return different values (the embedding
    read again on other ids, ``emb(ids.flip(1))``): Captum's layer methods hook one output, the last call's, and
    LayerIntegratedGradients and LayerFeatureAblation put their values in place of every call's output, so the
    attributions of the input positions would be another call's, or another model's. Calls of one value (the same ids
    embedded twice) leave the model as it was: warned about only. ``run`` is one row's pass, ``run_all`` every row's
    (calls alike on the first row only, a palindrome read both ways, are not alike)."""
    calls, _, alike = repeated_calls(module, run, run_all)
    if calls > 1 and not alike:
        raise ValueError(
            f"Expected input layer {layer!r} to run once per forward pass for Captum's {method}, but it runs {calls} times "
            "and its calls return different values (the embedding read again on other ids: reversed, or another forward "
            "argument's, a decoder's): Captum's layer methods hook one output, the last call's (LayerIntegratedGradients "
            "and LayerFeatureAblation put their values in place of every call's output), so the attributions of the input "
            "positions would be another call's or another model's. Embed the ids once in forward and reuse the embeddings "
            "(flip those), give the other ids an nn.Embedding of their own that shares the weight (`self.dec_emb.weight = "
            "self.emb.weight`), or explain the inputs with input_effects, which sets each token at every read")
    if calls > 1:
        repeated_layer_warning(layer, calls, method)


def input_layer_attribute(
    model: nn.Module,
    inputs: Tensor,
    layer: str,
    method: MethodLike | MethodSpec,
    *,
    target: int | Tensor | None = None,
    feature_mask: Tensor | None = None,
    generator: torch.Generator | int | None = None,
    baseline: int | Tensor = 0,
    max_batch_size: int | None = None,
    options: Mapping[str, Any] | None = None,
    output: OutputSpec = None,
    additional_forward_args: Any = None,
) -> Tensor:
    """Captum layer attribution of ``layer``'s output (the word embeddings) reduced to the input
    positions: a tensor shaped like ``inputs`` (token ids ``[N, T]``), leaving no trace.

    Args:
        model: any module taking ``inputs`` (and ``additional_forward_args``).
        inputs: token ids ``[N, T]`` (or any input whose ``layer`` output starts with its shape).
        layer: module name of the input layer, e.g. ``"bert.embeddings.word_embeddings"``.
        method: a name in :data:`~lightning_causal.baselines.method_specs.INPUT_LAYER_METHOD_NAMES`
            or ``(name, options)``.
        target: class index, per-sample indices ``[N]``, or ``None`` (predicted class).
        feature_mask: groups of the input positions (``LayerFeatureAblation`` ablates them).
        generator: private seed of randomised methods.
        baseline: the baseline token id (pad or ``[MASK]``): Captum's ``baselines`` are inputs
            filled with it; ``LayerFeatureAblation`` uses its layer output. A ``baselines`` option
            (Captum's name) overrides it and is checked as it is (a token id of the vocabulary).
        max_batch_size: rows per forward pass of ``LayerIntegratedGradients`` (``internal_batch_size``);
            ``LayerFeatureAblation`` runs one group per pass (``perturbations_per_eval=1``: Captum
            0.9 fails on per-sample targets with more; a larger one given in ``options`` is taken for one
            target for every sample and refused, with why, for per-sample targets that differ).
        options: more options merged over the method's.
        output: which tensor of the model's return value to explain (see
            :class:`~lightning_causal.causal.engine.forward.Forward`).
        additional_forward_args: extra forward arguments (see
            :class:`~lightning_causal.causal.engine.forward.Forward`; an attention mask is expanded
            with the inputs by Captum).

    Raises:
        ValueError: not an input-layer method, a layer whose output does not start with the input's shape; a model whose
            forward branches on a statistic of its batch (each pass Captum stacks runs its end rows and an inner one
            alone too: the engine's stacked-rows check, a row alone taking its row of the layer values Captum puts in
            place of the layer's output), or whose samples read each other's rows (a prototypical network's prototypes
            from the batch), in the causal estimators' words.

    Examples:
        >>> model = nn.Sequential(nn.Embedding(6, 2), nn.Flatten(), nn.Linear(6, 2))
        >>> input_layer_attribute(model, torch.tensor([[1, 2, 3]]), "0", "LayerGradientXActivation", target=0).shape
        torch.Size([1, 3])
    """
    spec = resolve_method(method, options)
    if not spec.layer:
        raise ValueError(f"Expected argument `method` to be one of {list(INPUT_LAYER_METHOD_NAMES)} (a layer method of the input "
                         f"layer) but got {spec.label!r}; the methods of the inputs themselves: attribute(model, inputs, method)")
    seed = seed_of(generator) if spec.randomised else None
    forward = CaptumForward(model, output=output, additional_forward_args=additional_forward_args,
                            num_samples=num_samples_of(inputs))
    module = resolve_module(forward.model, layer)
    with attribution_context(forward.model, seed), contextlib.ExitStack() as named:
        x, tidx = prepare_inputs(forward, inputs, target, integer_ok=True, what=f"Captum's {spec.label}")
        named.enter_context(forward.coupled_rows_refused(x, f"Captum's {spec.label}"))  # prototypes from the batch's rows
        # the nodes of one graph with its edge_index: Captum expands the inputs, not the graph
        check_linked_samples(forward.model, (x,), f"Captum's {spec.label}", output=output,
                             additional_forward_args=additional_forward_args)
        # an explicit ``baselines`` option overrides the argument, checked as it is (it reached Captum unchecked: 3.5 ran
        # as token 3, an id beyond the vocabulary or a 0-dim tensor failed on IndexError; LayerFeatureAblation dropped it)
        explicit = spec.options.get("baselines")
        if explicit is not None:
            baseline = whole_token_ids(x, explicit)
        try:  # token ids: one outside the vocabulary would fail deep inside Captum's passes
            b = check_baselines((x,), baseline)[0] if x.is_floating_point() else forward.token_baseline(x, baseline)
        except (ValueError, TypeError) as err:
            if explicit is None:
                raise
            raise type(err)(str(err).replace("argument `baseline`", f"option `baselines` of method `{spec.label}`", 1)) from None
        kw = dict(spec.options)
        kw.pop("baselines", None)
        rows = forward.rows_per_pass(x, max_batch_size)
        if kw.get("internal_batch_size", 0) is None:
            kw["internal_batch_size"] = max(rows, x.shape[0])
        if spec.grouped:
            ref = _layer_reference(forward, x, layer, baseline, additional_forward_args)
            mask = feature_mask if feature_mask is not None else torch.arange(x[0].numel()).view(1, *x.shape[1:])
            kw["layer_mask"] = mask.to(x.device).view(*mask.shape, *[1] * (ref.dim() - mask.dim()))
            kw["layer_baselines"] = ref
            if kw.get("perturbations_per_eval") is None:  # Captum 0.9's layer ablation mis-sizes per-sample targets above 1
                kw["perturbations_per_eval"] = 1
            elif kw["perturbations_per_eval"] > 1:  # it failed on Captum's assert "Tensor target dimension ... is not valid"
                if bool((tidx != tidx[0]).any()):
                    raise ValueError(
                        f"Expected option `perturbations_per_eval` of method `{spec.label}` to be None or 1 with per-sample "
                        f"targets but got {kw['perturbations_per_eval']}: Captum's LayerFeatureAblation runs the model on the "
                        "inputs while it ablates several copies of the layer, and takes one target for every sample only; "
                        "leave it unset (one group per pass) or give one target")
                tidx = int(tidx[0])  # one target for every sample: Captum's batched passes take it as an int
        elif METHOD_TABLE[spec.name].baselines:
            kw["baselines"] = torch.broadcast_to(b, x.shape).contiguous()
        # Captum's hook puts the pass's layer values (interpolated, ablated) in place of the layer's output: a row alone
        # takes its row of them; each pass runs its end rows and an inner one alone too (the engine's stacked-rows check)
        forward.replaced_site = module if spec.name in _STACKED else None
        _check_one_call(module, layer, spec.label, lambda: forward(x[:1], *ForwardArgs(forward.captum_args() or (), x.shape[0])
                                                                   .take(torch.zeros(1, dtype=torch.long, device=x.device))[0]),
                        lambda: forward(x, *(forward.captum_args() or ())))
        try:
            with _stacked_rows_checked(spec, layer, forward.model):
                out = METHOD_TABLE[spec.name].cls(forward, module).attribute(x, target=tidx, additional_forward_args=forward.captum_args(), **kw)
        except RuntimeError as err:  # a step after the layer cuts the gradient (torch's "element 0 ... grad_fn")
            works = ("LayerFeatureAblation and the causal effects (input_effects(..., input_layer=...)) perturb the layer and "
                     "need no gradient")
            refusal = checkpoint_refusal(err, spec.label, layer, forward.model, works)
            if refusal is not None:
                raise refusal from err
            if "does not require grad and does not have a grad_fn" not in str(err):
                raise
            raise ValueError(no_gradient_message(spec.label, layer, forward.model, works)) from err
    out = out.detach()
    if out.dim() < x.dim() or out.shape[: x.dim()] != x.shape:
        raise ValueError(f"Expected module {layer!r} to output a tensor that starts with the input's shape {list(x.shape)} "
                         f"but got {list(out.shape)}")
    flat = out.reshape(*x.shape, -1)
    return flat.mean(-1) if spec.grouped else flat.sum(-1)


#: what each input-layer method stacks in a pass, as the stacked-rows refusal names it
_STACKED = {"LayerIntegratedGradients": "interpolated layer values", "LayerFeatureAblation": "ablated copies"}


def _stacked_rows_checked(spec: MethodSpec, layer: str, model: nn.Module) -> contextlib.AbstractContextManager[None]:
    """The engine's stacked-rows check (:func:`~lightning_causal.causal.engine.stacked_rows.rows_alone_checked`) over
    the passes Captum sends :class:`CaptumForward` for ``spec`` on the input layer ``layer``: a model whose forward
    branches on a statistic of its batch is refused, as ``attribute`` and ``layer_attribute`` refuse it."""
    return rows_alone_checked(
        f"Captum's {spec.label} on {layer!r}", model=model, rows=_STACKED.get(spec.name, "inputs"),
        way_out=("explain one sample per call (`inputs[i:i + 1]`) with `max_batch_size=1` (passes of one row, slow), or "
                 "with the causal token effects in passes of one row (input_effects(..., input_layer=...) with "
                 "`max_batch_size=1`)"))
