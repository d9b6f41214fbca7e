"""Captum attribution methods by name, run so that they leave no trace on the model or the RNG.

Methods and their defaults: :mod:`lightning_causal.baselines.method_specs`.

A method is given as a name (``"IntegratedGradients"``), as ``"NoiseTunnel(<name>)"`` (SmoothGrad
over any method; the label ``"NoiseTunnel-<name>"`` is accepted too), or as a ``(name, options)``
pair whose options go to Captum's ``attribute`` (for ``NoiseTunnel(...)`` the keys ``nt_type``,
``nt_samples``, ``nt_samples_batch_size`` and ``stdevs`` go to the tunnel, the rest to the method
inside it). Unknown names and options fail, listing the valid ones.

Every call runs the model in eval mode with autograd on (also when the caller is inside
``torch.inference_mode()``, as during Lightning's validation), with the parameters frozen so that
no ``.grad`` is written, and restores each parameter's ``requires_grad``/``.grad`` and each
submodule's ``training`` flag afterwards. Randomised methods (GradientShap, NoiseTunnel,
ShapleyValueSampling) draw from the global RNG inside Captum, so they run under
:func:`~lightning_causal.causal.engine.state.rng_preserved` seeded from a private seed: the caller's
random streams are untouched and results are reproducible.
"""

from __future__ import annotations

import contextlib
import random
import warnings
from collections.abc import Iterator, Mapping
from typing import Any

import numpy as np
import torch
from captum.attr import (
    NoiseTunnel,
)
from torch import Tensor, nn

from lightning_causal.baselines.method_specs import (
    LAYER_METHOD_NAMES,
    LAYER_METHOD_TABLE,
    METHOD_NAMES,
    METHOD_TABLE,
    TUNNEL_DEFAULTS,
    MethodLike,
    MethodSpec,
    resolve_method,
    unknown_name_error,
)
from lightning_causal.causal.engine.ablation import check_baselines, padding_positions
from lightning_causal.causal.engine.batching import rows_per_pass
from lightning_causal.causal.engine.eager import eager_module
from lightning_causal.causal.engine.forward import (
    ForwardArgs,
    OutputSpec,
    check_output_spec,
    dtype_hint,
    select_output,
)
from lightning_causal.causal.engine.groups import group_counts
from lightning_causal.causal.engine.input_sites import input_sites, output_site
from lightning_causal.causal.engine.interventions import resolve_module
from lightning_causal.causal.engine.linked_samples import check_linked_samples
from lightning_causal.causal.engine.noise import warn_separate_noise
from lightning_causal.causal.engine.state import audit_mode, resolve_target, rng_preserved
from lightning_causal.causal.engine.unit_sites import check_site_units
from lightning_causal.causal.engine.units import check_layout_options, resolve_layout, to_units
from lightning_causal.causal.engine.user_frame import outside_package

__all__ = [
    "CaptumForward",
    "METHOD_NAMES",
    "LAYER_METHOD_NAMES",
    "MethodSpec",
    "resolve_method",
    "attribute",
    "layer_attribute",
    "attribution_context",
    "deterministic_warn_only",
    "seeded_rng",
]

SeedLike = torch.Generator | int | None


def seed_of(generator: SeedLike) -> int:
    if generator is None:
        return 0
    if isinstance(generator, torch.Generator):
        return int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    if isinstance(generator, bool) or not isinstance(generator, int):
        raise TypeError(f"Expected argument `generator` to be a torch.Generator, an int seed or None but got {generator!r}")
    return generator


@contextlib.contextmanager
def seeded_rng(seed: int) -> Iterator[None]:
    """Run a block with the global torch, NumPy and ``random`` generators seeded with ``seed`` (Captum
    draws from all of them, e.g. GradientShap's NumPy ``uniform``), then restore their states.

    Examples:
        >>> with seeded_rng(0):
        ...     a = torch.rand(1)
        >>> with seeded_rng(0):
        ...     b = torch.rand(1)
        >>> torch.equal(a, b)
        True
    """
    with rng_preserved():
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        random.seed(seed)
        yield


@contextlib.contextmanager
def deterministic_warn_only() -> Iterator[None]:
    """Inside, ops without a deterministic implementation warn instead of raising when
    ``torch.use_deterministic_algorithms(True)`` is on (as ``Trainer(deterministic=True)`` sets
    it); the setting is restored afterwards, also on exceptions.

    Captum's DeepLift rule for max-pooling calls ``max_unpool2d``, which has no deterministic
    implementation, so DeepLift (and NoiseTunnel(DeepLift)) on a max-pooling CNN would stop a
    deterministic training run. Nothing changes when determinism is off or already warn-only.

    Examples:
        >>> torch.use_deterministic_algorithms(True)
        >>> with deterministic_warn_only():
        ...     inside = torch.is_deterministic_algorithms_warn_only_enabled()
        >>> inside, torch.is_deterministic_algorithms_warn_only_enabled()
        (True, False)
        >>> torch.use_deterministic_algorithms(False)
    """
    if not torch.are_deterministic_algorithms_enabled() or torch.is_deterministic_algorithms_warn_only_enabled():
        yield
        return
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(True, warn_only=False)


@contextlib.contextmanager
def attribution_context(model: nn.Module, seed: int | None = None) -> Iterator[None]:
    """Autograd on (even inside ``torch.inference_mode()``), eval mode, parameters frozen, ops
    without a deterministic implementation warning instead of raising
    (:func:`deterministic_warn_only`); restores every parameter's ``requires_grad`` and
    ``.grad``, the training flags, the determinism setting and, when ``seed`` is given, the
    global RNG state (seeded with ``seed`` inside)."""
    saved = [(p, p.requires_grad, p.grad) for p in model.parameters()]
    rng = seeded_rng(seed) if seed is not None else contextlib.nullcontext()
    try:
        with torch.inference_mode(False), torch.enable_grad(), audit_mode(model, grad=True), rng, deterministic_warn_only():
            for p, _, _ in saved:
                p.requires_grad_(False)
            yield
    finally:
        for p, requires_grad, grad in saved:
            p.requires_grad_(requires_grad)
            p.grad = grad


class CaptumForward(nn.Module):
    """The model as Captum calls it: ``forward(*inputs, *additional_args)``, returning the explained
    tensor ``[N, C]`` (``output=`` selection; outputs ``[N]`` become ``[N, 1]``).

    Captum passes ``additional_forward_args`` positionally and expands their per-sample tensors
    with the inputs (integration steps, noise samples, perturbations); keyword arguments (a
    Mapping) are therefore handed to Captum as trailing positional values and turned back into
    keywords here (:meth:`captum_args`). With ``input_dtype`` set, floating inputs reach the model
    in that dtype: Captum's float32 noise (``NoiseTunnel``, ``GradientShap``) promotes the rows of
    a bfloat16 or float16 model to float32, which the model refuses.

    Examples:
        >>> f = CaptumForward(nn.Linear(3, 2), additional_forward_args=None)
        >>> f(torch.ones(4, 3)).shape, f.captum_args()
        (torch.Size([4, 2]), None)
    """

    def __init__(self, model: nn.Module, *, output: OutputSpec = None, additional_forward_args: Any = None,
                 num_inputs: int = 1) -> None:
        super().__init__()
        self.model = eager_module(model)
        self.output = check_output_spec(output)
        fargs = ForwardArgs(additional_forward_args)
        self._positional, self._keywords = tuple(fargs.args), tuple(fargs.kwargs)
        self._values = (*fargs.args, *fargs.kwargs.values())
        self._num_inputs = num_inputs
        self.input_dtype: torch.dtype | None = None

    def captum_args(self, differentiable: bool = False) -> tuple[Any, ...] | None:
        """What to pass as Captum's ``additional_forward_args`` (``None`` when there are none).

        ``differentiable``: floating point tensors as copies that require grad (no gradient is
        asked of them). DeepLift hooks the input of every nonlinearity for its gradient, and with
        the parameters frozen a branch that reads a forward argument only (the table beside an
        explained image, ``model(image, tab)``) holds no tensor that requires grad: Captum failed on
        "cannot register a hook on a tensor that doesn't require gradient"."""
        if not self._values:
            return None
        if not differentiable:
            return self._values
        return tuple(v.detach().clone().requires_grad_(True) if isinstance(v, Tensor) and v.is_floating_point() else v
                     for v in self._values)

    def forward(self, *args: Any) -> Tensor:
        k, npos = self._num_inputs, len(self._positional)
        inputs, positional, keywords = args[:k], args[k : k + npos], dict(zip(self._keywords, args[k + npos :]))
        if self.input_dtype is not None:
            inputs = tuple(t.to(self.input_dtype) if isinstance(t, Tensor) and t.is_floating_point() else t for t in inputs)
        out = select_output(self.model(*inputs, *positional, **keywords), self.output)
        return out.unsqueeze(1) if out.dim() == 1 else out

    def warn_noise(self, x: Tensor, what: str) -> None:
        """Warn when the model draws noise in eval mode: Captum compares passes that draw it separately
        (:func:`~lightning_causal.causal.engine.noise.warn_separate_noise`)."""
        args = ForwardArgs(self._values, x.shape[0])
        with torch.no_grad():
            warn_separate_noise(lambda *t, rows: self(*t, *args.take(rows)[0]), (x.detach(),), what)

    def rows_per_pass(self, x: Tensor, max_batch_size: int | None) -> int:
        """Rows per pass of the engine's cache-friendly chunk, measured with these arguments."""
        args = ForwardArgs(self._values, x.shape[0])
        return rows_per_pass(self, (x,), max_batch_size, forward=lambda *t, rows: self(*t, *args.take(rows)[0]))


def prepare_inputs(forward: CaptumForward, inputs: Tensor, target: int | Tensor | None, integer_ok: bool = False) -> tuple[Tensor, Tensor]:
    """Clone ``inputs`` as a normal tensor and resolve ``target`` to ``[N]`` indices (token ids
    only for the input-layer methods: ``integer_ok``)."""
    if not isinstance(inputs, Tensor) or inputs.dim() < 2 or inputs.shape[0] == 0:
        raise ValueError(
            f"Expected argument `inputs` to be a tensor [N, ...] with N >= 1 and a feature dimension but got "
            f"{type(inputs).__name__ if not isinstance(inputs, Tensor) else list(inputs.shape)}"
        )
    if not inputs.is_floating_point() and not integer_ok:
        raise TypeError(
            f"Expected argument `inputs` to be a floating point tensor but got dtype {inputs.dtype}; for token ids "
            "use a layer method on the embedding layer, e.g. CaptumBaseline(methods=('LayerIntegratedGradients',), "
            "input_layer='bert.embeddings.word_embeddings', baseline=<[MASK] id>)"
        )
    x = inputs.detach().clone()
    with torch.no_grad():
        try:
            out = forward(x, *(forward.captum_args() or ()))
        except RuntimeError as err:  # float32 inputs of a float64 model: say which argument and what to do, as the estimators do
            hint = dtype_hint(forward.model, (x,), err)
            if hint is None:
                raise
            raise RuntimeError(f"{err}. {hint}") from err
    return x, resolve_target(out, target)


def _tunnel_stdevs(x: Tensor, stdevs: float | None) -> float:
    """SmoothGrad's noise level: 15% of the input range by default (Smilkov et al. 2017)."""
    if stdevs is not None:
        return float(stdevs)
    span = float(x.max() - x.min())
    return 0.15 * span if span > 0 else 0.15


def _captum_baseline(x: Tensor, baseline: Tensor) -> Tensor:
    """A tensor baseline as Captum takes it (shaped like ``x`` or like one sample ``[1, ...]``), from
    any shape :func:`~lightning_causal.causal.engine.ablation.check_baselines` accepts (a 0-dim
    tensor, one sample ``[...]``, ``[1 or N, ...]`` broadcastable to ``x``), as the causal effects take it."""
    b = check_baselines((x,), baseline)[0]
    return b.expand(x.shape) if b.shape[0] == x.shape[0] else b.expand(1, *x.shape[1:])


def _padding_keeps_tokens(model: nn.Module, x: Tensor, baselines: Any, additional_forward_args: Any) -> tuple[Any, Tensor | None]:
    """Token ids ``[N, T]`` with an ``attention_mask`` (or ``lengths``): a baseline that holds each padded
    position's own token, so that the perturbation methods leave padding as it is (attribution exactly 0
    there), as :func:`~lightning_causal.causal.effects.input_effects.input_effects` does. Replacing a pad
    id is no change of the sentence, but it can move what the model reads: Llama and GPT-2 classifiers
    read the last token before the first pad id, RoBERTa counts positions over non-pad tokens. Also
    returns which elements keep their tokens (``None`` for inputs that are no token ids)."""
    if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool or isinstance(baselines, (tuple, list)):
        return baselines, None
    b = torch.as_tensor(baselines, device=x.device)
    if b.is_floating_point() and not bool((b == b.round()).all()):  # no token id: Captum refuses it as before
        return baselines, None
    b = check_baselines((x,), b.to(x.dtype))[0].expand(x.shape)
    padding = padding_positions(x, additional_forward_args, model=model)
    if padding is not None and bool(padding.any()):
        baselines = b = torch.where(padding.expand(x.shape), x, b)
    return baselines, b == x


def _kwargs(spec: MethodSpec, x: Tensor, feature_mask: Tensor | None, baselines: Any, rows: int) -> tuple[dict, dict]:
    """Captum keyword arguments; unset batching knobs are sized to ``rows`` rows per forward pass
    (cache-friendly passes measured faster than Captum's one pass over everything)."""
    meta, kw = METHOD_TABLE[spec.name], dict(spec.options)
    n = x.shape[0]
    tunnel = {key: kw.pop(key) for key in TUNNEL_DEFAULTS if key in kw}
    if spec.noise_tunnel and tunnel["nt_samples_batch_size"] is None:
        tunnel["nt_samples_batch_size"] = max(1, min(tunnel["nt_samples"], rows // n))
    n_eff = n * tunnel["nt_samples_batch_size"] if spec.noise_tunnel else n  # rows the method itself sees
    if meta.baselines and kw.get("baselines") is None:
        kw["baselines"] = _captum_baseline(x, baselines) if isinstance(baselines, Tensor) else baselines
        if spec.name == "GradientShap":  # the constant baseline and the batch: expected gradients (Erion et al. 2021)
            b = torch.as_tensor(baselines, dtype=x.dtype, device=x.device)
            b = b if b.dim() == x.dim() and b.shape[0] > 1 else b.expand_as(x[:1])
            kw["baselines"] = torch.cat([b, x]) if n > 1 else b
    if "internal_batch_size" in kw and kw["internal_batch_size"] is None:
        kw["internal_batch_size"] = max(rows, n_eff)
    if meta.grouped:
        g = int(feature_mask.max()) + 1 if feature_mask is not None else x[0].numel()
        if kw.get("perturbations_per_eval") is None:
            kw["perturbations_per_eval"] = max(1, min(g, rows // n_eff))
        if feature_mask is not None:
            kw["feature_mask"] = feature_mask.to(x.device)
    return kw, tunnel


def attribute(
    model: nn.Module,
    inputs: Tensor,
    method: MethodLike | MethodSpec,
    target: int | Tensor | None = None,
    *,
    feature_mask: Tensor | None = None,
    generator: SeedLike = None,
    baselines: float | Tensor = 0.0,
    max_batch_size: int | None = None,
    options: Mapping[str, Any] | None = None,
    output: OutputSpec = None,
    additional_forward_args: Any = None,
) -> Tensor:
    """Captum attribution of ``method`` for ``target``, shaped like ``inputs``, leaving no trace.

    ``FeatureAblation`` and ``ShapleyValueSampling`` perturb the groups of ``feature_mask`` (each
    element gets its group's value); the gradient methods ignore it.

    Args:
        model: any module mapping ``inputs`` ``[N, ...]`` to ``[N, classes]`` or ``[N]``.
        inputs: one input tensor (a tensor made under ``torch.inference_mode`` is fine).
        method: a name in :data:`METHOD_NAMES`, ``"NoiseTunnel(<name>)"`` or ``(name, options)``.
        target: class index, per-sample indices ``[N]``, or ``None`` (predicted class).
        feature_mask: Captum feature mask (integer group ids broadcastable to ``inputs``).
        generator: private seed (int or ``torch.Generator``) of the randomised methods.
        baselines: reference value of IG, DeepLift, GradientShap and the perturbation methods
            (overridden by an explicit ``baselines`` option). For token ids with an
            ``attention_mask`` in ``additional_forward_args``, the perturbation methods keep the
            padded positions' tokens (attribution exactly 0 there), as the causal effects do.
        max_batch_size: rows per forward pass where the method batches internally
            (``internal_batch_size``, ``perturbations_per_eval``, ``nt_samples_batch_size``, unless
            set in the options); default: the engine's chunk (32 MiB of activations on CPU, the
            memory budget on an accelerator: :func:`~lightning_causal.causal.engine.batching.rows_per_pass`).
        options: more options merged over the method's.
        output: which tensor of the model's return value is explained (see
            :class:`~lightning_causal.causal.engine.forward.Forward`).
        additional_forward_args: Captum's: passed after the inputs (a Mapping as keywords).

    Returns:
        Tensor shaped like ``inputs``. Float64 inputs give float64 attributions; those of
        ``ShapleyValueSampling`` hold float32 rounding (Captum sums its terms in float32: about
        1e-7 relative, far below its sampling error). Half-precision models: Captum returns the
        integrated and sampled methods in float32, the others in the model's dtype; DeepLift runs
        with an ``eps`` float16 can hold (no NaN where an input equals its reference).

    Raises:
        ValueError: unknown method or option, bad inputs or target.

    Examples:
        >>> model = nn.Linear(3, 2)
        >>> attribute(model, torch.ones(4, 3), "IntegratedGradients", target=1).shape
        torch.Size([4, 3])
    """
    spec = resolve_method(method, options)
    if spec.layer:
        raise ValueError(f"Expected a method of the inputs but got the layer method {spec.name!r}; use input_layer_attribute")
    seed = seed_of(generator) if spec.randomised else None
    forward = CaptumForward(model, output=output, additional_forward_args=additional_forward_args)
    with attribution_context(forward.model, seed):
        x, tidx = prepare_inputs(forward, inputs, target, integer_ok=spec.grouped and not spec.noise_tunnel)  # ablation: token ids too
        forward.input_dtype = x.dtype if x.is_floating_point() else None  # the rows Captum builds, back in x's dtype
        # the nodes of one graph given with its edge_index: Captum expands the inputs, not the graph
        check_linked_samples(forward.model, (x,), f"Captum's {spec.label}", output=output,
                             additional_forward_args=additional_forward_args)
        forward.warn_noise(x, f"Captum's {spec.label}")
        kept = None  # token ids: the elements that keep their tokens (padding, special tokens kept by the baseline)
        explicit = spec.options.get("baselines")  # an explicit ``baselines`` option overrides the argument
        if spec.grouped:
            chosen, kept = _padding_keeps_tokens(model, x, baselines if explicit is None else explicit, additional_forward_args)
            baselines = chosen if explicit is None else baselines
        kw, nt = _kwargs(spec, x, feature_mask, baselines, forward.rows_per_pass(x, max_batch_size))
        if spec.grouped and explicit is not None:
            kw["baselines"] = chosen
        kw["additional_forward_args"] = forward.captum_args(differentiable=spec.name == "DeepLift")
        if not spec.grouped:
            x.requires_grad_(True)
        algo = _algorithm(spec.name, forward, x)
        if spec.noise_tunnel:
            nt["stdevs"] = _tunnel_stdevs(x.detach(), nt["stdevs"])
            nt["draw_baseline_from_distrib"] = spec.name == "GradientShap"
            out = NoiseTunnel(algo).attribute(x, target=tidx, **nt, **kw)
        else:
            out = algo.attribute(x, target=tidx, **kw)
    out = out.detach()
    if x.dtype == torch.float64 and out.dtype == torch.float32:  # ShapleyValueSampling sums its terms in float32
        out = out.to(x.dtype)
    if kept is not None:  # a group that changes no token is exactly 0 (Captum's batched passes leave rounding there)
        out = out.masked_fill(_unchanged_groups(x, feature_mask, kept), 0)
    return out


def _algorithm(name: str, forward: CaptumForward, x: Tensor) -> Any:
    """Captum's attribution object of method ``name`` for inputs ``x``. DeepLift's rescale rule
    takes the gradient where ``|Δ input| < eps`` and ``Δ output / Δ input`` elsewhere; Captum's
    ``eps=1e-10`` is 0 in float16, so an input equal to its reference gave 0/0 = NaN attributions:
    ``eps`` is at least the dtype's smallest normal number (float16: 6.1e-5; bfloat16 and wider
    keep 1e-10)."""
    cls = METHOD_TABLE[name].cls
    if name == "DeepLift" and x.is_floating_point() and torch.finfo(x.dtype).tiny > 1e-10:
        return cls(forward, eps=float(torch.finfo(x.dtype).tiny))
    return cls(forward)


def _unchanged_groups(x: Tensor, feature_mask: Tensor | None, kept: Tensor) -> Tensor:
    """Booleans like ``x``: the elements whose group (of ``feature_mask``; one per element without) keeps
    every one of its elements in that sample."""
    if feature_mask is None:
        return kept
    m = feature_mask.to(x.device).long()
    m = m.reshape((1,) * (x.dim() - m.dim()) + tuple(m.shape)).expand(x.shape)
    changed = group_counts(x, m, int(m.max()) + 1, ~kept) > 0  # [N, G]
    return ~changed.gather(1, m.reshape(x.shape[0], -1)).view(x.shape)


def _warn_repeated_layer(module: nn.Module, layer: str, method: str, run: Any) -> None:
    """Warn when ``module`` runs several times in the pass ``run()`` (a shared layer, a cell unrolled
    over time): Captum's layer methods hook one tensor, the last call's, while
    :func:`~lightning_causal.causal.effects.unit_effects.unit_effects` intervenes at every call."""
    calls = [0]
    handle = module.register_forward_hook(lambda *_: calls.__setitem__(0, calls[0] + 1))
    try:
        with torch.no_grad():
            run()
    finally:
        handle.remove()
    if calls[0] > 1:
        warnings.warn(
            f"Module {layer!r} runs {calls[0]} times per forward pass; {method} reads its last call only (Captum's layer "
            "methods hook one output), while unit_effects intervenes on the units at every call, so the two explain "
            "different things. Name a module that runs once (e.g. an nn.Identity applied to the last call's output)",
            UserWarning, stacklevel=outside_package())


def layer_attribute(
    model: nn.Module,
    inputs: Tensor,
    layer: str,
    method: str = "LayerConductance",
    *,
    target: int | Tensor | None = None,
    baselines: float | Tensor = 0.0,
    options: Mapping[str, Any] | None = None,
    reduction: str | None = None,
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
    share of IG's completeness); ``LayerActivation`` averages each channel's activation.

    Args:
        layer: module name from ``model.named_modules()``, or ``"<module>:input"``.
        method: ``"LayerConductance"`` or ``"LayerActivation"``.
        reduction: ``"sum"`` or ``"mean"`` over each unit's positions (default: per method, as above).
        unit_dim, num_heads: where the units are (see ``unit_effects``).
        max_batch_size: rows per forward pass of LayerConductance (default: cache-friendly chunks).

    Examples:
        >>> model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> layer_attribute(model, torch.ones(5, 3), "1", target=0).shape
        torch.Size([5, 4])
    """
    if method not in LAYER_METHOD_TABLE:
        raise unknown_name_error("method", method, list(LAYER_METHOD_NAMES))
    cls, defaults, default_reduction = LAYER_METHOD_TABLE[method]
    reduction = reduction or default_reduction
    if reduction not in ("sum", "mean"):
        raise ValueError(f"Expected argument `reduction` to be 'sum' or 'mean' but got {reduction!r}")
    unknown = sorted(set(options or {}) - set(defaults))
    if unknown:
        raise ValueError(f"Expected options of method {method!r} among {sorted(defaults)} but got unknown {unknown}")
    check_layout_options(unit_dim, num_heads)
    forward = CaptumForward(model, output=output, additional_forward_args=additional_forward_args)
    with input_sites(forward.model, [layer]), attribution_context(forward.model):
        module = resolve_module(forward.model, layer)
        x, tidx = prepare_inputs(forward, inputs, target)
        # the nodes of one graph with its edge_index: refused before the 1-row site checks cut the graph
        check_linked_samples(forward.model, (x,), f"Captum's {method}", output=output,
                             additional_forward_args=additional_forward_args)
        first, fargs = torch.zeros(1, dtype=torch.long, device=x.device), ForwardArgs(forward.captum_args() or (), x.shape[0])
        check_site_units(forward.model, layer, lambda: forward(x[:1], *fargs.take(first)[0]), unit_dim, num_heads,
                         "Pass `unit_dim=-1` for its features (neurons), or `unit_dim=1` to attribute to positions.")
        _warn_repeated_layer(module, layer, method, lambda: forward(x[:1], *fargs.take(first)[0]))
        kw = {**defaults, **(options or {})}
        if kw.get("internal_batch_size", 0) is None:  # LayerConductance needs 2 rows per sample at least
            kw["internal_batch_size"] = max(forward.rows_per_pass(x, max_batch_size), 2 * x.shape[0])
        with output_site(module) as site:  # Captum hooks a tensor: element 0 of a tuple output (an LSTM's)
            if method == "LayerConductance":
                out = cls(forward, site).attribute(x, baselines=baselines, target=tidx,
                                                    additional_forward_args=forward.captum_args(), **kw)
            else:
                out = cls(forward, site).attribute(x, additional_forward_args=forward.captum_args())
    out = out.detach()
    if out.dim() < 2:
        raise ValueError(f"Expected module {layer!r} to output a tensor [N, U, ...] but got shape {list(out.shape)}")
    out = to_units(out, resolve_layout(out.shape, unit_dim, num_heads))
    flat = out.flatten(2) if out.dim() > 2 else out.unsqueeze(2)
    return flat.sum(2) if reduction == "sum" else flat.mean(2)
