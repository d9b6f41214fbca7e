"""Captum's layer methods per unit of a hidden layer: :func:`layer_attribute`.

``LayerConductance``, ``LayerIntegratedGradients``, ``LayerGradientXActivation`` and ``LayerActivation`` on the units that
:func:`~lightning_causal.causal.effects.unit_effects.unit_effects` intervenes on (channels, neurons,
heads; ``unit_dim``/``num_heads``; ``"<module>:input"`` sites), run in the
:func:`~lightning_causal.baselines.attribution_context.attribution_context` of every Captum method.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Mapping
from typing import Any, Literal

import torch
from torch import Tensor, nn

from lightning_causal.baselines.attribution_context import attribution_context
from lightning_causal.baselines.captum_forward import CaptumForward, num_samples_of, prepare_inputs
from lightning_causal.baselines.method_specs import (
    LAYER_METHOD_NAMES,
    LAYER_METHOD_TABLE,
    LayerMethod,
    check_option_values,
    unknown_name_error,
)
from lightning_causal.baselines.reaching_calls import check_last_call_reaches
from lightning_causal.causal.engine.ablation import as_baselines_words
from lightning_causal.causal.engine.chosen_input import model_name
from lightning_causal.causal.engine.finite import check_finite_value
from lightning_causal.causal.engine.folded_rows import check_site_units_named
from lightning_causal.causal.engine.forward_args import ForwardArgs
from lightning_causal.causal.engine.gradient_cuts import gradient_cut_causes
from lightning_causal.causal.engine.input_sites import input_sites, output_site
from lightning_causal.causal.engine.interventions import resolve_module
from lightning_causal.causal.engine.linked_samples import check_linked_samples
from lightning_causal.causal.engine.output_selection import OutputSpec
from lightning_causal.causal.engine.stacked_rows import rows_alone_checked
from lightning_causal.causal.engine.units import check_layout_options, resolve_layout, to_units
from lightning_causal.causal.engine.user_frame import outside_package

__all__ = ["checkpoint_refusal", "layer_attribute", "repeated_calls", "repeated_layer_warning"]


def repeated_calls(module: nn.Module, run: Any, run_all: Any = None) -> tuple[int, torch.dtype | None, bool]:
    """How many times ``module`` runs in the pass ``run()``, the dtype of its last call's output (element 0 of a tuple,
    the tensor Captum hooks; ``None`` for another value) and whether every call returned the same value; where ``run``
    is one row's pass and its calls are alike, ``run_all`` (every row) decides that: calls equal on one row only (a
    palindrome read forwards and reversed, one token repeated) are not alike."""
    calls: list[Any] = [0, None]
    first: list[Tensor] = []
    alike = [True]

    def seen(_m: nn.Module, _i: Any, out: Any) -> None:
        head = out[0] if isinstance(out, (tuple, list)) and out else out
        calls[:] = [calls[0] + 1, head.dtype if isinstance(head, Tensor) else None]
        if not isinstance(head, Tensor):
            return
        if not first:
            first.append(head.detach().clone())
        elif alike[0]:
            alike[0] = head.shape == first[0].shape and bool(torch.equal(head, first[0]))

    def count(pass_: Any) -> None:
        handle = module.register_forward_hook(seen)
        try:
            with torch.no_grad():
                pass_()
        finally:
            handle.remove()

    count(run)
    result = calls[0], calls[1]
    if result[0] > 1 and alike[0] and run_all is not None:
        calls[0], first[:] = 0, []
        count(run_all)
    return result[0], result[1], alike[0]


def repeated_layer_warning(layer: str, calls: int, method: str) -> None:
    """The warning of a layer that runs ``calls`` times per pass, read at its last call by Captum's ``method``."""
    warnings.warn(
        f"Module {layer!r} runs {calls} times per forward pass; {method} reads its last call only (Captum's layer "
        "methods hook one output), while unit_effects intervenes on the units at every call, so the two explain "
        "different things. Name a module that runs once (e.g. an nn.Identity applied to the last call's output)",
        UserWarning, stacklevel=outside_package())


def _last_call_decides(module: nn.Module, run: Any) -> bool:
    """Whether the pass ``run()`` gives the same output with every call of ``module`` returning one value as with its
    last call alone returning it, at the last call's own output (the end of Captum's path: ``f(x)`` must come back), at
    zeros and at the last call's output moved by one: then what Captum's LayerIntegratedGradients integrates (its hook
    replaces every call's output) is the model read at the last call, as for a module run once (one activation module
    applied at each layer of a chain, whose earlier outputs reach the output through its last call only). A pass that
    fails with every call replaced (calls of other shapes) is no such model. ``run`` runs every row: on one row, a skip
    path that a ReLU closes there would pass for none; at one point off the path, a path a threshold closes there."""
    with output_site(module) as site:  # element 0 of a tuple, the tensor Captum replaces
        seen: list[Tensor] = []
        handle = site.register_forward_hook(lambda _m, _i, out: seen.append(out.detach()))
        try:
            with torch.no_grad():
                plain = run()
        finally:
            handle.remove()
        if not seen or not seen[-1].is_floating_point():
            return True
        last = seen[-1]

        def replaced(value: Tensor, every: bool) -> Any:
            count = [0]

            def hook(_m: nn.Module, _i: Any, _out: Any) -> Tensor | None:
                count[0] += 1
                return value if every or count[0] == len(seen) else None

            handle = site.register_forward_hook(hook)
            try:
                with torch.no_grad():
                    return run()
            finally:
                handle.remove()

        for value in (last, torch.zeros_like(last), last + 1.0):
            only_last = plain if value is last else replaced(value, every=False)  # the model's own failure: raised
            try:
                every = replaced(value, every=True)
            except Exception:  # noqa: BLE001 - an earlier call of another shape cannot take the last one's value
                return False
            if not (isinstance(only_last, Tensor) and isinstance(every, Tensor) and only_last.shape == every.shape
                    and bool(torch.allclose(only_last, every, rtol=0, atol=0, equal_nan=True))):  # 0/0 in both
                return False
    return True


def _warn_repeated_layer(module: nn.Module, layer: str, method: str, run: Any, run_all: Any) -> torch.dtype | None:
    """Warn when ``module`` runs several times in the pass ``run()`` (a shared layer, a cell unrolled
    over time): Captum's layer methods hook one tensor, the last call's, while
    :func:`~lightning_causal.causal.effects.unit_effects.unit_effects` intervenes at every call. Returns the dtype of its
    last call's output (element 0 of a tuple, the tensor Captum hooks; ``None`` for another value), so that a complex
    layer is refused before Captum's passes run.

    LayerIntegratedGradients is refused instead where the calls return different values (a block applied to its own
    output, an ODE function at each solver stage) that reach the output otherwise than through the last call: Captum's
    hook puts its interpolated values of the last call's output in place of the output of *every* call, so it integrates
    another model, one whose every call returns the last call's value (its attributions sum to that model's change, not
    to ``f_t(x) - f_t(b)``). Calls that return the same value (one module applied twice to the same tensor) leave the
    model as it was, and so does replacing the earlier calls of a chain (one activation module applied at each layer,
    :func:`_last_call_decides`, on every row, ``run_all``): those are only warned about, the answer being the last
    call's."""
    calls, dtype, alike = repeated_calls(module, run, run_all if method == "LayerIntegratedGradients" else None)
    if calls > 1 and method == "LayerIntegratedGradients" and not alike and not _last_call_decides(module, run_all):
        raise ValueError(
            f"Expected layer {layer!r} to run once per forward pass for Captum's LayerIntegratedGradients, but it runs "
            f"{calls} times and its calls return different values that reach the output otherwise than through its last "
            "call (a block applied to its own output, an ODE function at every solver stage, one activation module used "
            "by layers of other shapes or beside a skip connection): Captum puts its interpolated values of the last "
            "call's output in place of the output of every call, so it would explain another model, whose every call "
            "returns the last call's value (its attributions do not sum to f(x) - f(baseline)). Name a module that runs "
            "once (give each place its own module, or apply an nn.Identity to one call's output), or use "
            "'LayerConductance' or 'LayerGradientXActivation', which read the last call without replacing the others; "
            "unit_effects sets each unit at every call")
    if calls > 1:
        repeated_layer_warning(layer, calls, method)
    return dtype


def _token_baselines(forward: CaptumForward, x: Tensor, baselines: Any) -> Tensor:
    """The baseline of token ids ``x`` as Captum's LayerIntegratedGradients takes it (inputs filled with the token,
    ``[N, T]``), checked as a token id of the vocabulary of the embeddings that read ``x``."""
    try:
        b = forward.token_baseline(x, baselines)
    except (ValueError, TypeError) as err:  # the argument is `baselines` here
        raise type(err)(as_baselines_words(str(err))) from None
    return torch.broadcast_to(b, x.shape).contiguous()


#: what explains a hidden layer without a gradient
UNIT_EFFECTS_WORK = "unit_effects (method='exact') intervenes on the layer's units and needs no gradient"
#: torch's words where no gradient reaches the tensor Captum differentiates with respect to (LayerConductance's: the
#: second, a layer the output does not depend on through autograd)
_NO_GRADIENT = ("does not require grad and does not have a grad_fn", "appears to not have been used in the graph")


def no_gradient_message(method: str, layer: str | None, model: nn.Module, works: str = UNIT_EFFECTS_WORK) -> str:
    """The refusal of a gradient method on a model where no gradient flows from the output back to ``layer`` (torch's
    "element 0 of tensors does not require grad" inside Captum), or back to the input (``layer=None``); ``works``:
    what explains it instead."""
    where, reach = ((f"layer {layer!r} (or the inputs)", "none reaches it: the forward cuts it after the layer") if layer
                    else ("its input", "no gradient reaches the input: the forward cuts it"))
    causes = gradient_cut_causes(model, quantized_after="", more=REENTRANT_SEGMENT if layer else "")
    return (f"Captum's {method} takes the gradient of the output of {model_name(model)} with respect to {where}, and "
            f"{reach} ({causes}), so a gradient method has nothing to explain it with. {works}")


#: a cause of no gradient reaching a layer: a reentrant checkpoint runs its segment under no_grad
REENTRANT_SEGMENT = ("a torch.utils.checkpoint(..., use_reentrant=True) segment holding the layer (use_reentrant=False, or "
                     "checkpointing only while training, lets gradients through)")
#: how a model checkpoints only while training, as Hugging Face's ``gradient_checkpointing_enable()`` does
TRAINING_ONLY = ("checkpoint only while training (`h = checkpoint(block, h, use_reentrant=...) if self.training else block(h)`, "
                 "as Hugging Face's gradient_checkpointing_enable() does: the audits run the model in eval mode)")


def checkpoint_refusal(err: RuntimeError, method: str, layer: str | None, model: nn.Module, works: str) -> ValueError | None:
    """The refusal of a Captum gradient method that ``torch.utils.checkpoint`` stopped inside Captum (``None`` for
    another error ``err``): a reentrant checkpoint (``use_reentrant=True``) refuses ``torch.autograd.grad``, which every
    Captum gradient method calls; a non-reentrant one recomputes its segment in the backward pass without the hook
    Captum's LayerIntegratedGradients and LayerGradientXActivation put on a ``layer`` inside it, and torch refuses
    the recomputation. Both name the method, the layer and the ways that work; ``works``: what explains it instead.

    Args:
        err: the error raised inside Captum.
        method: the Captum method's name.
        layer: the layer attributed to (``None``: the inputs).
        model: the model.
        works: what explains the model without a gradient (or without a hook on the layer).

    Examples:
        >>> err = RuntimeError("When use_reentrant=True, torch.utils.checkpoint is incompatible with .grad() ...")
        >>> print(checkpoint_refusal(err, "Saliency", None, nn.Linear(2, 2), "FeatureAblation needs none."))  # doctest: +ELLIPSIS
        Captum's Saliency takes gradients with torch.autograd.grad, which a torch.utils.checkpoint(..., use_reentrant=True) ...
        >>> checkpoint_refusal(RuntimeError("shape mismatch"), "Saliency", None, nn.Linear(2, 2), "") is None
        True
    """
    text = str(err)
    if "torch.utils.checkpoint" not in text:
        return None
    first = text.strip().splitlines()[0] if text.strip() else type(err).__name__
    if "use_reentrant=True" in text:
        return ValueError(
            f"Captum's {method} takes gradients with torch.autograd.grad, which a torch.utils.checkpoint(..., "
            f"use_reentrant=True) segment in the forward pass of {model_name(model)} refuses (torch: {first!r}). "
            f"Checkpoint with use_reentrant=False (the same numbers as without checkpointing) or {TRAINING_ONLY}. {works}")
    where = f"layer {layer!r}" if layer else "a layer"
    return ValueError(
        f"Captum's {method} replaces or hooks the output of {where} and takes gradients through it, but the layer runs "
        f"inside a torch.utils.checkpoint segment of {model_name(model)}, whose backward pass recomputes the segment "
        f"without Captum's hook, and torch refused the recomputation ({first!r}). LayerConductance and LayerActivation "
        "give the numbers of the model without checkpointing there; or name the checkpointed module itself (its output "
        f"leaves the segment), or {TRAINING_ONLY}. {works}")


def _stacked_rows_checked(method: str, layer: str, model: nn.Module) -> contextlib.AbstractContextManager[None]:
    """The engine's stacked-rows check (:func:`~lightning_causal.causal.engine.stacked_rows.rows_alone_checked`) over
    the passes Captum sends :class:`CaptumForward` for ``method`` on ``layer``, as ``attribute`` opens it for the methods
    of the inputs: LayerConductance's interpolated inputs, LayerIntegratedGradients' interpolated layer values (whose
    hook puts the whole pass's values in place of the layer's output: a row run alone takes its row of them,
    :attr:`CaptumForward.replaced_site`), the samples of LayerGradientXActivation and LayerActivation."""
    if method in ("LayerConductance", "LayerIntegratedGradients"):
        rows = "interpolated inputs" if method == "LayerConductance" else "interpolated layer values"
        way_out = ("explain the layer with the causal estimators in passes of one row (unit_effects on it with "
                   "`max_batch_size=1`: they refuse the model in passes of more): LayerConductance runs two interpolated "
                   "inputs of a sample in one pass at least, whatever `max_batch_size`" if method == "LayerConductance" else
                   "explain one sample per call (`inputs[i:i + 1]`) with `max_batch_size=1` (passes of one row, slow), "
                   "or with the causal estimators in passes of one row (unit_effects on the layer with `max_batch_size=1`)")
    else:
        rows, way_out = "inputs", ("explain one sample per call (`inputs[i:i + 1]`; CaptumBaseline: a Probe of one "
                                   "sample), or with the causal estimators in passes of one row (unit_effects on the "
                                   "layer with `max_batch_size=1`)")
    return rows_alone_checked(f"Captum's {method} on {layer!r}", model=model, rows=rows, way_out=way_out)


def layer_attribute(
    model: nn.Module,
    inputs: Tensor,
    layer: str,
    method: LayerMethod = "LayerConductance",
    *,
    target: int | Tensor | None = None,
    baselines: float | Tensor = 0.0,
    options: Mapping[str, Any] | None = None,
    reduction: Literal["sum", "mean"] | None = None,
    max_batch_size: int | None = None,
    output: OutputSpec = None,
    additional_forward_args: Any = None,
    unit_dim: int | None = None,
    num_heads: int | None = None,
) -> Tensor:
    """Captum attribution of each unit (channel, neuron or head) of ``layer``: ``[N, U]``, to set
    beside :func:`~lightning_causal.causal.effects.input_effects.unit_effects` (the same units:
    ``unit_dim``/``num_heads`` as there, refused by default where the features are last; a
    ``"<module>:input"`` site).

    ``LayerConductance`` (Dhamdhere et al. 2018) sums over each channel's positions (the layer's
    share of IG's completeness); ``LayerIntegratedGradients`` (IG in the layer's activations, from
    those of the input baseline: Σ_u = f_t(x) − f_t(b) up to quadrature) and ``LayerGradientXActivation``
    (h · ∂f_t/∂h) sum too; ``LayerActivation`` averages each channel's activation.

    Args:
        model: the model.
        inputs: one input ``[N, ...]``; token ids for every method but LayerConductance (which integrates along
            the inputs): LayerIntegratedGradients then takes ``baselines`` as a token id (``[MASK]``).
        layer: module name from ``model.named_modules()``, or ``"<module>:input"``.
        method: a name in :data:`LAYER_METHOD_NAMES`: ``"LayerConductance"``, ``"LayerActivation"``,
            ``"LayerIntegratedGradients"`` or ``"LayerGradientXActivation"`` (Captum's, on ``layer``).
        reduction: ``"sum"`` or ``"mean"`` over each unit's positions (default: per method, as above).
        unit_dim: the dimension that indexes the units (see ``unit_effects``).
        num_heads: split the unit dimension into this many heads (see ``unit_effects``).
        max_batch_size: rows per forward pass of LayerConductance (two rows of a sample at least) and
            LayerIntegratedGradients (default: cache-friendly chunks).
        target: class index, per-sample indices ``[N]``, or ``None`` (the predicted class).
        baselines: the baseline of the input of LayerConductance and LayerIntegratedGradients (a number or
            a tensor broadcastable to ``inputs``).
        options: keyword options of the Captum method (only its own: the allowed names are listed in the
            error; ``n_steps`` and ``internal_batch_size`` positive ints).
        output: which tensor of the model's return value is explained, as in
            :class:`~lightning_causal.causal.engine.forward.Forward`.
        additional_forward_args: extra forward arguments, as in
            :class:`~lightning_causal.causal.engine.forward.Forward`.

    A complex layer (``torch.fft`` modes) is refused by the gradient methods, whose complex product of gradient and
    activation is not the first-order change ``Re(conj(g)·d)`` (``unit_effects(..., method="attribution")`` gives it);
    ``LayerActivation`` averages its complex values.

    A layer that runs several times per forward pass (a shared layer, a weight-tied block, an ODE function at every
    solver stage) is read at its last call by Captum's layer methods, with a ``UserWarning`` (``unit_effects`` sets each
    unit at every call). ``LayerIntegratedGradients`` is refused there (``ValueError``) where the calls return
    different values: Captum puts its interpolated values of the last call in place of every call's output, which
    explains another model.

    Each pass Captum stacks (LayerConductance's interpolated inputs, LayerIntegratedGradients' interpolated layer values,
    the samples of LayerGradientXActivation and LayerActivation) runs its end rows and an inner one alone too (the
    engine's stacked-rows check, as ``attribute`` runs it): a model whose forward branches on a statistic of its batch
    (``if h.mean() > t:``) is refused, ``ValueError``; so is one whose samples read each other's rows (a prototypical
    network's prototypes from the batch), in the causal estimators' words.

    Examples:
        >>> model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> layer_attribute(model, torch.ones(5, 3), "1", target=0).shape
        torch.Size([5, 4])
    """
    if method not in LAYER_METHOD_TABLE:
        raise unknown_name_error("method", method, list(LAYER_METHOD_NAMES))
    cls, defaults, default_reduction = LAYER_METHOD_TABLE[method]
    reduce: str = reduction or default_reduction  # the per-method default (LAYER_METHOD_TABLE)
    if reduce not in ("sum", "mean"):
        raise ValueError(f"Expected argument `reduction` to be 'sum' or 'mean' but got {reduce!r}")
    unknown = sorted(set(options or {}) - set(defaults))
    if unknown:
        raise ValueError(f"Expected options of method {method!r} among {sorted(defaults)} but got unknown {unknown}")
    check_option_values(method, options or {})
    check_layout_options(unit_dim, num_heads)
    check_finite_value("baselines", baselines)  # NaN attributions everywhere
    if method == "LayerConductance" and isinstance(inputs, Tensor) and not inputs.is_floating_point():
        raise TypeError(f"Expected floating point inputs for LayerConductance but got dtype {inputs.dtype}: it integrates along "
                        "the inputs, which token ids cannot take; 'LayerIntegratedGradients' integrates in the layer's "
                        "activations (from those of a baseline token), 'LayerGradientXActivation' takes none")
    forward = CaptumForward(model, output=output, additional_forward_args=additional_forward_args,
                            num_samples=num_samples_of(inputs))
    with input_sites(forward.model, [layer]), attribution_context(forward.model), contextlib.ExitStack() as named:
        module = resolve_module(forward.model, layer)
        # token ids: the layer methods that take no gradient of the inputs run on them, as Captum's do (they were refused)
        x, tidx = prepare_inputs(forward, inputs, target, integer_ok=True, what=f"Captum's {method}")
        named.enter_context(forward.coupled_rows_refused(x, f"Captum's {method}"))  # prototypes from the batch's rows
        if not x.is_floating_point() and method == "LayerIntegratedGradients":
            baselines = _token_baselines(forward, x, baselines)
        # the nodes of one graph with its edge_index: refused before the 1-row site checks cut the graph
        check_linked_samples(forward.model, (x,), f"Captum's {method}", output=output,
                             additional_forward_args=additional_forward_args)
        first, fargs = torch.zeros(1, dtype=torch.long, device=x.device), ForwardArgs(forward.captum_args() or (), x.shape[0])
        check_site_units_named(forward.model, layer, lambda xi, r: forward(*xi, *fargs.take(r)[0]), (x,), unit_dim, num_heads,
                               "Pass `unit_dim=-1` for its features (neurons), or `unit_dim=1` to attribute to positions.")
        dtype = _warn_repeated_layer(module, layer, method, lambda: forward(x[:1], *fargs.take(first)[0]),
                                     lambda: forward(x, *(forward.captum_args() or ())))
        if dtype is not None and dtype.is_complex and method != "LayerActivation":  # before Captum's passes
            raise ValueError(
                f"Expected a real output of layer {layer!r} for Captum's {method}, but it is complex ({dtype}: a Fourier "
                "layer's modes): Captum multiplies autograd's gradient g = df/dRe + i df/dIm by the activation's change d as "
                "complex numbers, and the real part of g·d is not the first-order change of the output, Re(conj(g)·d) (its "
                "sign flips where the output reads the imaginary part). Use unit_effects(..., method='attribution'), which "
                "gives Re(conj(g)·d), or method='exact', or name a layer whose output is real (the irfft after the modes)")
        if method != "LayerActivation":  # the calls of a pass with gradients, which Captum's gradient methods read
            one = x[:1].detach().requires_grad_() if x.is_floating_point() else x[:1]
            check_last_call_reaches(module, layer, method, lambda: forward(one, *fargs.take(first)[0]))
        kw = {**defaults, **(options or {})}
        if kw.get("internal_batch_size", 0) is None:  # LayerConductance needs 2 rows per sample at least
            least = 2 * x.shape[0] if method == "LayerConductance" else x.shape[0]
            kw["internal_batch_size"] = max(forward.rows_per_pass(x, max_batch_size), least)
        # Captum hooks a tensor: element 0 of a tuple output (an LSTM's); each pass's end rows and an inner one alone too
        with output_site(module) as site, _stacked_rows_checked(method, layer, forward.model):
            forward.replaced_site = site if method == "LayerIntegratedGradients" else None  # Captum replaces its output
            try:
                if method in ("LayerConductance", "LayerIntegratedGradients"):
                    out = cls(forward, site).attribute(x, baselines=baselines, target=tidx,
                                                        additional_forward_args=forward.captum_args(), **kw)
                elif method == "LayerGradientXActivation":
                    out = cls(forward, site).attribute(x, target=tidx, additional_forward_args=forward.captum_args())
                else:
                    out = cls(forward, site).attribute(x, additional_forward_args=forward.captum_args())
            except RuntimeError as err:
                refusal = checkpoint_refusal(err, method, layer, forward.model, UNIT_EFFECTS_WORK)
                if refusal is not None:
                    raise refusal from err
                if not any(m in str(err) for m in _NO_GRADIENT):
                    raise
                raise ValueError(no_gradient_message(method, layer, forward.model)) from err
    out = out.detach()
    if out.dim() < 2:
        raise ValueError(f"Expected module {layer!r} to output a tensor [N, U, ...] but got shape {list(out.shape)}")
    out = to_units(out, resolve_layout(out.shape, unit_dim, num_heads))
    flat = out.flatten(2) if out.dim() > 2 else out.unsqueeze(2)
    return flat.sum(2) if reduce == "sum" else flat.mean(2)
