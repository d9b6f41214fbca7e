"""The checks of :class:`~lightning_causal.audits.captum_baseline.CaptumBaseline`'s arguments that need more
than one line: its ``methods`` and ``method_options`` resolved to method specs (:func:`resolve_methods`),
and what token-id inputs require (:func:`check_token_options`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor, nn

from lightning_causal.audits.category_codes import category_codes
from lightning_causal.baselines.captum_methods import MethodLike, MethodSpec, resolve_method
from lightning_causal.causal.engine.ablation import (
    TOKEN_BASELINE_ADVICE,
    check_baselines,
    shown_baseline,
)
from lightning_causal.causal.engine.chosen_input import model_name
from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.gradient_cuts import float_reading
from lightning_causal.causal.engine.state import audit_mode
from lightning_causal.causal.engine.token_ids import INDEX_DTYPES

if TYPE_CHECKING:
    from lightning_causal.audits.base import Probe
    from lightning_causal.audits.captum_baseline import CaptumBaseline

__all__ = ["check_token_options", "resolve_methods"]


def resolve_methods(methods: Sequence[MethodLike], method_options: Mapping[str, Mapping[str, Any]] | None) -> list[MethodSpec]:
    """The specs of ``methods`` (names, ``"NoiseTunnel(<name>)"``, ``(name, options)`` pairs, or one of
    them alone) with ``method_options`` merged over their options (keyed by a method's label or, for a
    tunnel, by ``"NoiseTunnel(<name>)"`` as well).

    Raises:
        ValueError: no method, an unknown method or option, a key of ``method_options`` naming no
            method, or a method named twice.
    """
    if isinstance(methods, (str, tuple)) and len(methods) == 2 and isinstance(methods[1], Mapping):
        methods = [methods]  # a single (name, options) pair
    elif isinstance(methods, str):
        methods = [methods]
    if not methods:
        raise ValueError("Expected argument `methods` to name at least one Captum method but got none")
    specs = [_resolve_entry(m) for m in methods]
    extra = _label_keys(method_options or {})
    unknown = sorted(set(extra) - {s.label for s in specs} - {s.name for s in specs if not s.noise_tunnel})
    if unknown:
        raise ValueError(f"Expected keys of `method_options` among {[s.label for s in specs]} but got {unknown}")
    resolved = [resolve_method(s, extra.get(s.label, extra.get(s.name) if not s.noise_tunnel else None)) for s in specs]
    labels = [s.label for s in resolved]
    if len(set(labels)) != len(labels):
        raise ValueError(f"Expected argument `methods` to name each method once but got {labels}")
    return resolved


def _label_keys(method_options: Mapping[str, Mapping[str, Any]]) -> dict[Any, Mapping[str, Any]]:
    """``method_options`` keyed by labels: ``"NoiseTunnel(<name>)"``, the spelling ``methods`` takes, is the
    label ``"NoiseTunnel-<name>"`` (it was refused as naming no method)."""
    out: dict[Any, Mapping[str, Any]] = {}
    for key, value in method_options.items():
        label = f"NoiseTunnel-{key[len('NoiseTunnel('):-1]}" if isinstance(key, str) and key.startswith("NoiseTunnel(") and key.endswith(")") else key
        if label in out:
            raise ValueError(f"Expected each method once among the keys of `method_options` but got {label!r} twice "
                             f"(as {label!r} and as 'NoiseTunnel(...)')")
        out[label] = value
    return out


def _resolve_entry(method: Any) -> MethodSpec:
    """:func:`resolve_method` for one entry of ``CaptumBaseline(methods=...)``: its errors name
    ``methods`` (the parameter the user passed), not the core's ``method``."""
    try:
        return resolve_method(method)
    except (ValueError, TypeError) as err:
        raise type(err)(str(err).replace("argument `method`", "each entry of argument `methods`", 1)) from None


def _reading_embeddings(model: nn.Module, probe: Probe | None) -> list[str]:
    """The names of ``model``'s embeddings (``nn.Embedding``, ``nn.EmbeddingBag``) that look up the explained input
    (``probe``'s first) as it is (its values, also where the model casts them, ``x.long()``), seen on up to 16 clean rows
    of ``probe`` in eval mode without gradient (the model's state and random streams restored), in the order they run;
    without a probe, or where that pass fails (it is refused elsewhere, in the model's words), every ``nn.Embedding``
    the model holds, in the order of registration."""
    held = [name for name, m in model.named_modules() if isinstance(m, nn.Embedding)]
    if probe is None:
        return held
    sub = probe.subset(slice(0, 16))
    x = sub.first
    found: list[str] = []

    def recorder(name: str):  # noqa: ANN202
        def hook(_module: nn.Module, args: tuple) -> None:
            idx = args[0] if args else None
            if (isinstance(idx, Tensor) and idx.numel() == x.numel() and not idx.is_floating_point()
                    and torch.equal(idx.reshape(-1).long(), x.reshape(-1).long()) and name not in found):
                found.append(name)
        return hook

    handles = [m.register_forward_pre_hook(recorder(name)) for name, m in model.named_modules()
               if isinstance(m, (nn.Embedding, nn.EmbeddingBag))]
    try:
        with audit_mode(model), torch.no_grad():
            Forward(model, num_samples=len(sub), **sub.forward_options).raw(x)
    except Exception:  # noqa: BLE001 - the pass is the audit's to refuse, in its own words
        return held
    finally:
        for h in handles:
            h.remove()
    return found


def check_token_options(audit: CaptumBaseline, x: Tensor, model: nn.Module | None = None, probe: Probe | None = None) -> None:
    """What token ids ``x`` ``[N, T]`` need: an integer baseline (a token id), methods that take no
    gradient with respect to the inputs, and no continuous perturbations. Of the integers that no embedding takes as
    indices (``x.dtype`` not int64/int32, :data:`~lightning_causal.causal.engine.token_ids.INDEX_DTYPES`: uint8 pixels,
    int8/int16 samples, bool masks), which the model casts inside, the messages name floats or perturbation methods
    instead, and an integer tensor baseline (a per-pixel reference image) is taken as well as an int: pixels' and
    samples' baselines are checked, and refused, by the engine's
    :func:`~lightning_causal.causal.engine.ablation.check_baselines`, which the causal effects run. ``model``: the
    model explained, whose own embedding that reads ``x`` (seen on rows of ``probe``, whose first input ``x`` is; every
    ``nn.Embedding`` without it) the refusal of gradient methods names as ``input_layer=`` (a model none of whose
    embeddings reads it, a denoiser reading its timesteps through a sinusoidal embedding, is told of perturbation methods)."""
    dtype = x.dtype
    cast = dtype not in INDEX_DTYPES  # pixels, samples or masks that the model casts inside: no token ids
    gradient = [s.label for s in audit.specs if not s.layer and not s.grouped]
    if cast and gradient:
        raise ValueError(
            f"Expected argument `methods` to hold perturbation methods for {dtype} inputs (uint8 pixels, int8/int16 samples "
            f"or bool masks the model casts inside) but got the gradient methods {gradient}, which need float inputs: read the probe as "
            f"floats, `unpack_batch=lambda batch: (batch[0].float(), batch[1], None)` (a model that casts inside, "
            f"{float_reading(dtype)}, reads them the same), or use methods such as ('FeatureAblation', "
            "'ShapleyValueSampling')")
    b = audit.baseline
    # pixels and masks also take an integer tensor broadcastable to the inputs (a per-pixel reference image): the
    # stability perturbation keeps each element that equals its own baseline element, as it keeps a scalar's
    integer_tensor = isinstance(b, Tensor) and not (b.is_floating_point() or b.is_complex())
    one_int = isinstance(b, int) or integer_tensor and b.numel() == 1
    if cast and dtype != torch.bool:  # pixels or samples: refused now, in the engine's words (what such inputs take)
        check_baselines((x,), b)
    elif cast and not (isinstance(b, int) or integer_tensor):  # masks: not the default 0.0 either
        raise ValueError(f"Expected argument `baseline` to be an int for {dtype} inputs (masks) but got {shown_baseline(b)}: False or "
                         "True (0 or 1), e.g. `baseline=False` (the mask off), or a bool or integer tensor of them "
                         "broadcastable to the inputs")
    if not cast and (isinstance(b, bool) or not one_int):
        raise ValueError(f"Expected argument `baseline` to be a token id (an int: pad or [MASK]) for token inputs but got "
                         f"{shown_baseline(b)}: {TOKEN_BASELINE_ADVICE}; for integer codes, a reference code; with `input_layer=` too, as Captum's layer methods "
                         "take their baselines as inputs")
    if gradient:
        # the example names the user's own `input_layer` where given (a model of its own nests BERT: 'model.bert....'),
        # else the model's embedding that reads the explained input (not another input's: a denoiser's timestep table)
        embeddings = [] if model is None else _reading_embeddings(model, probe)
        codes = "" if embeddings or audit.input_layer else category_codes(model, probe)
        if codes:  # a table's category codes, a column per embedding: a layer method's attributions map to no column
            raise ValueError(
                f"Expected argument `methods` to hold methods that integer inputs support but got the gradient methods "
                f"{gradient}, which need float inputs; the explained input holds category codes, each column looked up "
                f"by an embedding of its own ({codes}), whose layer attributions belong to one column each: use "
                "perturbation methods, e.g. CaptumBaseline(methods=('FeatureAblation', 'ShapleyValueSampling'), "
                "baseline=0, settings=CompareSettings(token_pool='position')) (`baseline=` a reference code, a real "
                "category: the attributions are against it)")
        if model is not None and not embeddings and not audit.input_layer:  # integers read otherwise: no layer to name
            raise ValueError(
                f"Expected argument `methods` to hold methods that integer inputs support but got the gradient methods "
                f"{gradient}, which need float inputs; {model_name(model)} holds no nn.Embedding that reads the explained "
                "input, for Captum's layer methods (integers read otherwise, e.g. a denoiser's timesteps through a "
                "sinusoidal embedding): use perturbation methods, e.g. CaptumBaseline(methods=('FeatureAblation', "
                "'ShapleyValueSampling'))")
        layer = audit.input_layer or (embeddings[0] if embeddings else "bert.embeddings.word_embeddings")
        given = f" (`input_layer={layer!r}` is given, but these methods take gradients of the token ids)" if audit.input_layer else ""
        raise ValueError(
            f"Expected argument `methods` to hold methods that token ids support but got the gradient methods {gradient}"
            f"{given}; use layer methods on the embeddings, e.g. CaptumBaseline(methods=('LayerIntegratedGradients',), "
            f"input_layer={layer!r})"
        )
    if audit.settings.token_pool == "probe" and (codes := category_codes(model, probe)):
        raise ValueError(  # codes of one column put in another: an index past its embedding (a device-side assert on a
            # GPU) or, of columns of as many levels, another column's code, in silence
            f"Expected `settings.token_pool='position'` for category codes but got 'probe': the stability would replace "
            f"codes by codes drawn from every column, while each column is looked up by an embedding of its own ({codes}); "
            "pass `settings=CompareSettings(token_pool='position')` (each column's codes drawn from other rows of it)")
    if audit.settings.reference_metrics:
        raise ValueError("Expected no `settings.reference_metrics` for token inputs (they perturb inputs continuously)")
    if audit.layers and audit.settings.layer_method == "LayerConductance":  # the others run on token ids, as Captum's do
        raise ValueError("Expected `settings.layer_method` other than 'LayerConductance' for the `layers` of token inputs: it "
                         "integrates along the inputs, which token ids cannot take; use CompareSettings(layer_method="
                         "'LayerIntegratedGradients') (integrated in the layer's activations from those of the baseline token), "
                         "'LayerGradientXActivation' or 'LayerActivation'")
