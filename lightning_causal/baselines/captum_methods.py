"""Captum attribution methods by name, run so that they leave no trace on the model or the RNG.

Methods and their defaults: :mod:`lightning_causal.baselines.method_specs`.

A method is given as a name (``"IntegratedGradients"``), as ``"NoiseTunnel(<name>)"`` (SmoothGrad
over any method; the label ``"NoiseTunnel-<name>"`` is accepted too), or as a ``(name, options)``
pair whose options go to Captum's ``attribute`` (for ``NoiseTunnel(...)`` the keys ``nt_type``,
``nt_samples``, ``nt_samples_batch_size`` and ``stdevs`` go to the tunnel, the rest to the method
inside it; outside a tunnel ``stdevs`` is GradientShap's own). The tunnel's numbers do not depend on its
batches: its noise is drawn once, as Captum's single batch draws it, and held (:class:`_NoiseDrawnOnce`); one
over GradientShap runs in one batch unless ``nt_samples_batch_size`` is given.
Unknown names and options fail, listing the valid ones. :func:`attribute` runs them on
the inputs; :func:`~lightning_causal.baselines.layer_methods.layer_attribute` (re-exported here)
the layer methods per unit.

Every call runs the model in eval mode with autograd on (also when the caller is inside
``torch.inference_mode()``, as during Lightning's validation), with the parameters frozen so that
no ``.grad`` is written, and restores each parameter's ``requires_grad``/``.grad`` and each
submodule's ``training`` flag afterwards. Randomised methods (GradientShap, NoiseTunnel,
ShapleyValueSampling) draw from the global RNG inside Captum, so they run under
:func:`~lightning_causal.causal.engine.state.rng_preserved` seeded from a private seed: the caller's
random streams are untouched and results are reproducible
(:mod:`lightning_causal.baselines.attribution_context`). The model as Captum calls it:
:mod:`lightning_causal.baselines.captum_forward`.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Mapping
from dataclasses import replace
from typing import Any

import torch
from captum.attr import (
    NoiseTunnel,
)
from captum.attr._utils.batching import _batched_operator
from torch import Tensor, nn

from lightning_causal.baselines.attribution_context import (
    SeedLike,
    attribution_context,
    deterministic_warn_only,
    seed_of,
    seeded_rng,
)
from lightning_causal.baselines.captum_forward import (
    CaptumForward,
    num_samples_of,
    prepare_inputs,
    whole_token_ids,
)
from lightning_causal.baselines.layer_methods import (
    checkpoint_refusal,
    layer_attribute,
    no_gradient_message,
)
from lightning_causal.baselines.method_specs import (
    LAYER_METHOD_NAMES,
    METHOD_NAMES,
    METHOD_TABLE,
    TUNNEL_DEFAULTS,
    MethodLike,
    MethodSpec,
    resolve_method,
)
from lightning_causal.causal.engine.ablation import (
    as_baselines_words,
    check_baselines,
    padding_positions,
)
from lightning_causal.causal.engine.chosen_input import model_name
from lightning_causal.causal.engine.finite import check_finite_value
from lightning_causal.causal.engine.groups import flat_mask, group_counts
from lightning_causal.causal.engine.linked_samples import check_linked_samples
from lightning_causal.causal.engine.output_selection import OutputSpec
from lightning_causal.causal.engine.stacked_rows import rows_alone_checked
from lightning_causal.causal.engine.user_frame import outside_package

# the model as Captum calls it, the attribution context and the layer methods live in their own
# modules; their names stay importable from here (MethodLike, seed_of and prepare_inputs too)
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


class _NoiseDrawnOnce(NoiseTunnel):
    """Captum's ``NoiseTunnel`` whose noise does not depend on ``nt_samples_batch_size``: Captum draws the
    noise of each batch of ``nt_samples`` separately, so the batch size (sized here from the memory
    budget, which differs between machines) changed the numbers of one seed (by 27% of the largest value
    on a digits CNN). Here the noise of all ``nt_samples`` is drawn at the first batch, exactly as Captum's
    single batch (``nt_samples_batch_size=None``) draws it, and each batch takes its share: any batch
    size gives the numbers of Captum's single batch. A method inside that draws (ShapleyValueSampling: one
    permutation for all the rows of a call) draws in each batch what it draws in Captum's single batch: the
    torch RNG is set back, at each batch, to its state after the noise; GradientShap, whose draws are per row,
    cannot be batched so and runs in one batch unless told otherwise (:data:`_ROW_DRAWS`).

    Memory: the passes run in batches, but the ``N x nt_samples`` noisy copies of the inputs are held until
    the last batch has taken its share (:func:`_noisy_copies`). They cannot be drawn batch by batch with the
    same numbers: a batch takes copies of every sample, spread over the whole of Captum's single draw, and
    torch's generators cannot skip ahead in a stream; drawing each copy from a generator of its own would
    bound the memory but give other numbers than Captum's with the same seed."""

    def attribute(self, inputs: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        self._all_samples, self._noisy, self._taken = kwargs.get("nt_samples", 5), None, 0
        try:
            return super().attribute(inputs, **kwargs)
        finally:
            self._noisy = None

    def _add_noise_to_inputs(self, nt_samples_partition: int, inputs: tuple[Tensor, ...], stdevs: Any) -> tuple[Tensor, ...]:
        s = self._all_samples
        if self._noisy is None:  # rows [n * s + j]: sample n's j-th noisy copy, Captum's single-batch layout
            levels = stdevs if isinstance(stdevs, tuple) else (stdevs,) * len(inputs)
            self._noisy = tuple(_noisy_copies(t.detach(), level, s) for t, level in zip(inputs, levels))
            self._after_noise = torch.get_rng_state()  # what the method inside draws from in Captum's single batch
        else:  # ShapleyValueSampling's permutations (shared by every row, drawn on the CPU): those of the first batch
            torch.set_rng_state(self._after_noise)
        start, self._taken = self._taken, self._taken + nt_samples_partition
        part = tuple(t.view(t.shape[0] // s, s, *t.shape[1:])[:, start : self._taken].reshape(-1, *t.shape[1:]).clone()
                     for t in self._noisy)
        return tuple(t.requires_grad_() for t in part) if self.is_gradient_method else part


def _noisy_copies(x: Tensor, stdev: float, copies: int) -> Tensor:
    """Captum's ``NoiseTunnel._add_noise_to_input(x, stdev, copies)``: ``copies`` noisy copies of each sample,
    rows ``[n * copies + j]``, the same numbers (the same ``torch.normal`` draw, of the same float32 level) in one
    buffer of the copies' size. Captum's holds a tensor of the level, the noise and the repeated inputs beside
    the sum: four times the copies' memory at the draw (1182 MB for the 294 MB of 8 copies of 64 float32 inputs
    [3, 224, 224]; here 299 MB)."""
    rows = (x.shape[0] * copies, *x.shape[1:])
    noise = torch.normal(0, torch.tensor(stdev, device=x.device).expand(rows))  # Captum's draw (its level repeated)
    per_sample, x = noise.view(x.shape[0], copies, *x.shape[1:]), x.unsqueeze(1)
    out = per_sample.add_(x) if torch.result_type(per_sample, x) == noise.dtype else x + per_sample  # Captum's x + noise
    return out.view(rows)


#: randomised methods whose draws are per row (GradientShap: a baseline, an α and a noise for every row), which
#: batches of the rows would draw otherwise: inside a tunnel they run in one batch unless ``nt_samples_batch_size``
#: is given (then Captum's tunnel, each batch drawing anew); ShapleyValueSampling draws one permutation for every row
_ROW_DRAWS = frozenset({"GradientShap"})

#: whether this Captum's NoiseTunnel draws its noise in a method that can be replaced (0.9 does; 0.7 draws
#: it inside ``attribute``, and its tunnel then runs in one batch unless ``nt_samples_batch_size`` is given)
_NOISE_DRAWN_ONCE = callable(getattr(NoiseTunnel, "_add_noise_to_inputs", None))


def tunnel_stdevs(x: Tensor, stdevs: float | None, notes: list[str] | None = None) -> float:
    """SmoothGrad's noise level: ``stdevs``, or by default 15% of the range of the inputs ``x`` (Smilkov et al. 2017).

    Captum's ``NoiseTunnel`` takes one level per input tensor, in the input's units: on an image every pixel shares
    them, but on a table ``[N, F]`` whose columns are on scales orders of magnitude apart the default level, set by
    the widest column, buries the narrow ones. Where it is more than 15 times the range of some column that varies
    over ``x``, a ``UserWarning`` names the column: standardise the columns (a model reading ``(x − mean) / sd``), or
    give ``stdevs`` at the scale of the columns that matter.

    Args:
        x: the explained inputs.
        stdevs: the level given, or ``None``.
        notes: where given, the warning's statement is appended to it too (``CaptumBaseline``'s result notes, which
            the TensorBoard text card shows).

    Examples:
        >>> tunnel_stdevs(torch.tensor([[0.0, 2.0]]), None), tunnel_stdevs(torch.zeros(1, 2), 0.5)
        (0.3, 0.5)
        >>> import warnings
        >>> notes = []
        >>> with warnings.catch_warnings():
        ...     warnings.simplefilter("ignore")
        ...     tunnel_stdevs(torch.tensor([[0.0, 1000.0], [1.0, -1000.0]]), None, notes)
        300.0
        >>> notes[0][:125]
        "NoiseTunnel's default noise level stdevs=300, 15% of the range of all the inputs' values: 300 times the range of column 0 (1;"
    """
    if stdevs is not None:
        return float(stdevs)
    span = float(x.max() - x.min())
    level = 0.15 * span if span > 0 else 0.15
    if x.dim() == 2 and x.shape[0] > 1 and x.is_floating_point():  # a table: columns may be in units of their own
        ranges = (x.amax(0) - x.amin(0)).detach().double()
        varying = ranges > 0
        if bool(varying.any()):
            narrow = int(torch.where(varying, ranges, torch.inf).argmin())
            times = level / float(ranges[narrow])
            if times > _TUNNEL_SPAN_RATIO:
                # the level and the column first: a TensorBoard card's note shows its first 160 characters
                message = (f"NoiseTunnel's default noise level stdevs={level:.4g}, 15% of the range of all the inputs' values: "
                           f"{times:.4g} times the range of column {narrow} ({float(ranges[narrow]):.4g}; the columns' ranges "
                           f"run from it to {float(ranges.max()):.4g}), one level for every column (Captum takes one per "
                           "input tensor), so the noisy copies leave that column's values far behind; standardise the "
                           "columns (a model reading (x - mean) / sd), or give the tunnel `stdevs=` at the scale of the "
                           "columns that matter")
                if notes is not None:
                    notes.append(message)
                warnings.warn(message, UserWarning, stacklevel=outside_package())
    return level


#: how many times a column's range over the probe NoiseTunnel's default level (15% of the range of all the values)
#: may be before :func:`tunnel_stdevs` warns (a column 100 times narrower than the widest)
_TUNNEL_SPAN_RATIO = 15.0


def _captum_baseline(x: Tensor, baseline: Tensor) -> Tensor:
    """A tensor baseline as Captum takes it (shaped like ``x`` or like one sample ``[1, ...]``), from
    any shape :func:`~lightning_causal.causal.engine.ablation.check_baselines` accepts (a 0-dim
    tensor, one sample ``[...]``, ``[1 or N, ...]`` broadcastable to ``x``), as the causal effects take it."""
    try:
        b = check_baselines((x,), baseline)[0]
    except (ValueError, TypeError) as err:  # the argument of attribute() is `baselines`, as Captum names it
        raise type(err)(as_baselines_words(str(err))) from None  # and the way out's keyword
    return b.expand(x.shape) if b.shape[0] == x.shape[0] else b.expand(1, *x.shape[1:])


def _explicit_baselines(spec: MethodSpec, x: Tensor, value: Any) -> Tensor:
    """A ``baselines`` option checked as the ``baselines`` argument is, as Captum takes it: for
    GradientShap a distribution ``[B, ...]`` of samples shaped like one input (a number or one sample
    ``[...]``: a distribution of one), finite; for the others a number or a tensor broadcastable to
    ``x`` (:func:`~lightning_causal.causal.engine.ablation.check_baselines`). A wrong shape failed on
    Captum's ``assert`` (gone under ``python -O``) or a torch shape error, a number in GradientShap on
    Captum's "has to be provided in a form of a torch.Tensor", a NaN gave NaN attributions silently."""
    name = f"option `baselines` of method `{spec.label}`"
    value = whole_token_ids(x, value)  # token ids: a whole float is a token id, as the `baselines` argument takes it
    try:
        check_finite_value("baselines", value)
        if spec.name != "GradientShap":
            return _captum_baseline(x, value)
    except (ValueError, TypeError) as err:
        raise type(err)(str(err).replace("argument `baselines`", name, 1).replace("argument `baseline`", name, 1)) from None
    if isinstance(value, bool) or not isinstance(value, (int, float, Tensor)):
        raise TypeError(f"Expected {name} to be a number or a tensor of baseline samples [B, ...] but got {type(value).__name__}")
    b = torch.as_tensor(value, dtype=x.dtype, device=x.device)
    b = b.expand_as(x[:1]) if b.dim() == 0 else b.unsqueeze(0) if b.dim() == x.dim() - 1 else b
    if b.dim() != x.dim() or b.shape[1:] != x.shape[1:] or b.shape[0] == 0:
        raise ValueError(f"Expected {name} to be a number or baseline samples [B, {', '.join(map(str, x.shape[1:]))}] (each "
                         f"shaped like one input) but got shape {list(torch.as_tensor(value).shape)}")
    return b


def _padding_keeps_tokens(model: nn.Module, forward: CaptumForward, x: Tensor, baselines: Any, additional_forward_args: Any,
                          name: str = "argument `baselines`") -> tuple[Any, Tensor | None]:
    """Token ids ``[N, T]`` with an ``attention_mask`` (or ``lengths``): a baseline that holds each padded
    position's own token, so that the perturbation methods leave padding as it is (attribution exactly 0
    there), as :func:`~lightning_causal.causal.effects.input_effects.input_effects` does. Replacing a pad
    id is no change of the sentence, but it can move what the model reads: Llama and GPT-2 classifiers
    read the last token before the first pad id, RoBERTa counts positions over non-pad tokens. Also
    returns which elements keep their tokens (``None`` for inputs that are no token ids)."""
    if x.is_floating_point() or x.is_complex() or x.dtype == torch.bool or isinstance(baselines, (tuple, list)):
        return baselines, None
    b = torch.as_tensor(baselines, device=x.device)
    if b.is_floating_point() and not bool((b == b.round()).all()):  # no token id: refused naming what to give
        _captum_baseline(x, b)  # (it failed inside the model's embedding, "Expected tensor for argument #1 'indices'")
    padding = padding_positions(x, additional_forward_args, model=model)
    # in the ids' dtype (a float tensor 0. failed in the embedding), in the vocabulary (an id beyond it: IndexError there)
    try:
        b = forward.token_baseline(x, b.to(x.dtype), padding).expand(x.shape)
    except ValueError as err:  # named as given: the argument or the option `baselines`
        raise ValueError(as_baselines_words(str(err), name)) from None
    if padding is not None and bool(padding.any()):
        b = torch.where(padding.expand(x.shape), x, b)
    return b, b == x


def _kwargs(spec: MethodSpec, x: Tensor, feature_mask: Tensor | None, baselines: Any, rows: int) -> tuple[dict, dict]:
    """Captum keyword arguments; unset batching knobs are sized to ``rows`` rows per forward pass
    (cache-friendly passes measured faster than Captum's one pass over everything)."""
    meta, kw = METHOD_TABLE[spec.name], dict(spec.options)
    n = x.shape[0]
    # the tunnel's keys; GradientShap's own ``stdevs`` stays with it outside a tunnel (it was dropped: no noise)
    tunnel = {key: kw.pop(key) for key in TUNNEL_DEFAULTS if key in kw} if spec.noise_tunnel else {}
    if "stdevs" in kw:  # GradientShap's: Captum asserts a float (``stdevs=1`` failed there); None: its default, no noise
        kw["stdevs"] = float(kw["stdevs"]) if kw["stdevs"] is not None else 0.0
    if spec.noise_tunnel and tunnel["nt_samples_batch_size"] is None:
        # a method whose draws are per row draws other numbers in batches of the rows: one batch, Captum's default
        one_batch = spec.name in _ROW_DRAWS or not _NOISE_DRAWN_ONCE
        tunnel["nt_samples_batch_size"] = tunnel["nt_samples"] if one_batch else max(1, min(tunnel["nt_samples"], rows // n))
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
            kw["feature_mask"] = feature_mask.to(x.device).contiguous()  # Captum's Shapley sampling views it: no expand
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
        target: class index, per-sample indices ``[N]`` (a tensor or a list of ints, as in Captum), or
            ``None`` (predicted class).
        feature_mask: Captum feature mask (integer group ids broadcastable to ``inputs``).
        generator: private seed (int or ``torch.Generator``) of the randomised methods.
        baselines: reference value of IG, DeepLift, GradientShap and the perturbation methods
            (overridden by an explicit ``baselines`` option, checked as this is; GradientShap's:
            baseline samples ``[B, ...]``, a number standing for one). Token ids take a token id that the
            embeddings reading them can look up. For token ids with an
            ``attention_mask`` in ``additional_forward_args``, the perturbation methods keep the
            padded positions' tokens (attribution exactly 0 there), as the causal effects do.
        max_batch_size: rows per forward pass where the method batches internally
            (``internal_batch_size``, ``perturbations_per_eval``, ``nt_samples_batch_size``, unless
            set in the options; GradientShap's ``N x n_samples`` gradient rows outside a tunnel); default: the engine's chunk (32 MiB of activations on CPU, the
            memory budget on an accelerator: :func:`~lightning_causal.causal.engine.batching.rows_per_pass`).
            A NoiseTunnel holds its ``N x nt_samples`` noisy inputs throughout (its numbers do not depend on the
            batches), and one over GradientShap runs them in one batch unless ``nt_samples_batch_size`` is
            given (docs/methods.md, NoiseTunnel's memory).
        options: more options merged over the method's.
        output: which tensor of the model's return value is explained (see
            :class:`~lightning_causal.causal.engine.forward.Forward`).
        additional_forward_args: Captum's: passed after the inputs (a Mapping as keywords).

    Returns:
        Tensor shaped like ``inputs``. ``GuidedBackprop`` and ``Deconvolution`` change the backward pass of
        ``nn.ReLU`` modules only, as in Captum (a warning where the model holds none). Float64 inputs give float64 attributions; those of
        ``ShapleyValueSampling`` hold float32 rounding (Captum sums its terms in float32: about
        1e-7 relative, far below its sampling error). Half-precision models: Captum returns the
        integrated and sampled methods in float32, the others in the model's dtype; DeepLift runs
        with an ``eps`` float16 can hold (no NaN where an input equals its reference).

    Raises:
        ValueError: unknown method or option, an option value out of range (named with the method),
            bad inputs or target; a gradient method on a model where no gradient flows from the output back to
            the input (a hard threshold, argmax, one_hot, quantized layers, ``torch.no_grad()`` in forward); a model
            whose forward branches on a statistic of the rows Captum stacks in a pass (``if h.mean() > t:``), where a
            pass's first or last row, or one drawn among its inner rows, alone gives other outputs than in the pass
            (:class:`~lightning_causal.causal.engine.stacked_rows.StackedRowsError`, as the causal estimators refuse it);
            a model whose samples read each other's rows (a prototypical network's prototypes from the batch's first
            rows), in the causal estimators' words (``CaptumForward.coupled_rows_refused``).

    Warns:
        UserWarning: a NoiseTunnel without ``stdevs`` on a table ``[N, F]`` whose default level is more than 15 times
            some column's range (:func:`tunnel_stdevs`). This function returns the map only, no notes:
            :class:`~lightning_causal.audits.captum_baseline.CaptumBaseline` puts the same statement in its result's
            ``meta["notes"]`` (with a note where a NoiseTunnel map is ~0 where the method without noise is not, the noise
            likely saturating the model); here, ``tunnel_stdevs(inputs, None, notes)`` appends it to a list
            ``notes`` (and warns), or record the warning with ``warnings.catch_warnings(record=True)``; to tell whether
            the noise flattened a map, compare it with the method's map without the tunnel.

    Examples:
        >>> model = nn.Linear(3, 2)
        >>> attribute(model, torch.ones(4, 3), "IntegratedGradients", target=1).shape
        torch.Size([4, 3])

        The statement of NoiseTunnel's default level on a table of mixed scales, as a note:

        >>> import warnings
        >>> table = torch.tensor([[0.0, 1000.0], [1.0, -1000.0], [0.5, 0.0]])
        >>> notes = []
        >>> with warnings.catch_warnings(record=True) as seen:
        ...     warnings.simplefilter("always")
        ...     level = tunnel_stdevs(table, None, notes)
        ...     amap = attribute(nn.Linear(2, 2), table, "NoiseTunnel(Saliency)", target=0)
        >>> level, notes[0][:45], [str(w.message) for w in seen] == notes * 2
        (300.0, "NoiseTunnel's default noise level stdevs=300,", True)
    """
    spec = resolve_method(method, options)
    if spec.layer:
        raise ValueError(f"Expected a method of the inputs but got the layer method {spec.name!r}; use input_layer_attribute "
                         "(the input layer: word embeddings of token ids) or layer_attribute (a hidden layer's units)")
    check_finite_value("baselines", baselines)  # NaN attributions everywhere (IG's path, the ablated value)
    if feature_mask is not None and isinstance(inputs, Tensor):
        flat_mask(feature_mask, inputs.shape)  # integer, non-negative, broadcastable: else an error inside Captum
    seed = seed_of(generator) if spec.randomised else None
    forward = CaptumForward(model, output=output, additional_forward_args=additional_forward_args,
                            num_samples=num_samples_of(inputs))
    with attribution_context(forward.model, seed), contextlib.ExitStack() as named:
        x, tidx = prepare_inputs(forward, inputs, target, integer_ok=spec.grouped and not spec.noise_tunnel,
                                 what=f"Captum's {spec.label}")  # ablation: token ids too
        named.enter_context(forward.coupled_rows_refused(x, f"Captum's {spec.label}"))  # prototypes from the batch's rows
        forward.input_dtype = x.dtype if x.is_floating_point() else None  # the rows Captum builds, back in x's dtype
        # the nodes of one graph given with its edge_index: Captum expands the inputs, not the graph
        check_linked_samples(forward.model, (x,), f"Captum's {spec.label}", output=output,
                             additional_forward_args=additional_forward_args)
        forward.warn_noise(x, f"Captum's {spec.label}")
        _warn_without_relu_modules(forward.model, spec)
        kept = None  # token ids: the elements that keep their tokens (padding, special tokens kept by the baseline)
        explicit = spec.options.get("baselines")  # an explicit ``baselines`` option overrides the argument
        if explicit is not None:  # checked as the argument is (it reached Captum's asserts and shape errors unchecked)
            explicit = _explicit_baselines(spec, x, explicit)
            spec = replace(spec, options={**spec.options, "baselines": explicit})
        if spec.grouped:
            given = (baselines, "argument `baselines`") if explicit is None else (explicit, f"option `baselines` of method `{spec.label}`")
            chosen, kept = _padding_keeps_tokens(model, forward, x, given[0], additional_forward_args, given[1])
            baselines = chosen if explicit is None else baselines
        rows = forward.rows_per_pass(x, max_batch_size)  # a trial pass when measured: once
        kw, nt = _kwargs(spec, x, feature_mask, baselines, rows)
        if spec.grouped and explicit is not None:
            kw["baselines"] = chosen
        kw["additional_forward_args"] = forward.captum_args(differentiable=spec.name == "DeepLift")
        if not spec.grouped:
            x.requires_grad_(True)
        algo = _algorithm(spec.name, forward, x)
        if spec.name == "GradientShap" and not spec.noise_tunnel:  # its N x n_samples rows: in passes of the budget's rows
            algo.gradient_func = _in_batches(algo.gradient_func, rows)
        try:
            if spec.noise_tunnel:
                nt["stdevs"] = tunnel_stdevs(x.detach(), nt["stdevs"])
                nt["draw_baseline_from_distrib"] = spec.name == "GradientShap"
                tunnel = NoiseTunnel(algo) if spec.name in _ROW_DRAWS else _NoiseDrawnOnce(algo)
            with _stacked_rows_checked(spec, forward.model):  # each pass Captum stacks: its end rows and an inner one alone too
                out = tunnel.attribute(x, target=tidx, **nt, **kw) if spec.noise_tunnel else algo.attribute(x, target=tidx, **kw)
        except RuntimeError as err:  # torch's "element 0 of tensors does not require grad", said of no input or method
            refusal = _refusal(err, spec, forward, x)
            if refusal is None:
                raise
            raise refusal from err
    out = out.detach()
    if x.dtype == torch.float64 and out.dtype == torch.float32:  # ShapleyValueSampling sums its terms in float32
        out = out.to(x.dtype)
    if kept is not None:  # a group that changes no token is exactly 0 (Captum's batched passes leave rounding there)
        out = out.masked_fill(_unchanged_groups(x, feature_mask, kept), 0)
    return out


#: what each method stacks in a pass, as the stacked-rows refusal names it (NoiseTunnel's: its noisy copies)
_STACKED = {"IntegratedGradients": "interpolated inputs", "GradientShap": "sampled points", "DeepLift": "inputs and baselines",
            "FeatureAblation": "perturbed copies", "ShapleyValueSampling": "perturbed copies"}

#: the causal estimators' way out: they check their own stacked rows and refuse the same model unless a pass is one row
_ESTIMATOR = "in passes of one row (input_effects with `max_batch_size=1`)"


def _way_out(spec: MethodSpec) -> str:
    """The way out of the stacked-rows refusal of ``spec`` besides a per-row forward: one sample per call in passes of
    one row, where that makes every pass one row (DeepLift runs each sample beside its baseline in one pass whatever
    ``max_batch_size``; a NoiseTunnel over GradientShap its noisy copies and GradientShap's sampled points, unless told
    otherwise)."""
    if spec.name == "DeepLift":
        return ("explain with another method: DeepLift runs each sample beside its baseline in one pass whatever "
                "`max_batch_size` (IntegratedGradients of one sample per call, `inputs[i:i + 1]`, with `max_batch_size=1`), "
                f"or with the causal estimators {_ESTIMATOR}")
    options = (" and options `nt_samples_batch_size=1, n_samples=1` (a NoiseTunnel over GradientShap runs its noisy "
               "copies and sampled points in one pass otherwise)" if spec.noise_tunnel and spec.name in _ROW_DRAWS else "")
    return (f"explain one sample per call (`inputs[i:i + 1]`) with `max_batch_size=1` (CaptumBaseline: a Probe of one "
            f"sample){options}, passes of one row (slow), or explain with the causal estimators {_ESTIMATOR}")


def _stacked_rows_checked(spec: MethodSpec, model: nn.Module) -> contextlib.AbstractContextManager[None]:
    """The stacked-rows check of the engine (:func:`~lightning_causal.causal.engine.stacked_rows.rows_alone_checked`)
    over Captum's passes of ``spec``: each pass of two rows or more that Captum sends :class:`CaptumForward` (interpolated
    inputs, perturbed copies, sampled points, noisy copies, the samples themselves) runs its first and last rows (and an inner one) alone
    too, and a model that takes another branch on the stacked rows (control flow on a batch statistic) is refused as the
    causal estimators refuse it; a model that draws (MC dropout) is not compared."""
    rows = "noisy copies" if spec.noise_tunnel else _STACKED.get(spec.name, "inputs")
    return rows_alone_checked(f"Captum's {spec.label}", model=model, rows=rows, way_out=_way_out(spec))


def _in_batches(gradient_func: Any, rows: int) -> Any:
    """``gradient_func`` (Captum's ``compute_gradients``) over batches of at most ``rows`` rows, by Captum's own
    ``_batched_operator`` (IntegratedGradients' ``internal_batch_size``). GradientShap has no such knob: it runs its
    ``N x n_samples`` rows (each a noisy copy, a drawn baseline and a drawn point between them) in one pass. Every
    draw is made before the gradients are taken, so the numbers are those of the one pass."""

    def batched(forward_fn: Any, inputs: Any, target_ind: Any = None, additional_forward_args: Any = None) -> Any:
        with torch.enable_grad():  # inside Captum's no_grad tunnel: its batching warns of inputs that seem gradient-free
            return _batched_operator(gradient_func, inputs, additional_forward_args, target_ind, rows, forward_fn=forward_fn)

    return batched


#: what explains the inputs without a gradient
_PERTURBATIONS_WORK = ("FeatureAblation and ShapleyValueSampling perturb the input and need no gradient (as the causal "
                       "effects, input_effects)")


def _refusal(err: RuntimeError, spec: MethodSpec, forward: CaptumForward, x: Tensor) -> ValueError | None:
    """What to say for ``err``, raised inside Captum's ``spec`` (``None``: raise it as it is): a checkpoint's refusal
    (:func:`~lightning_causal.baselines.layer_methods.checkpoint_refusal`), or no gradient reaching the input. A reentrant
    checkpoint refuses the check's ``torch.autograd.grad`` too (DeepLift's and GuidedBackprop's module hooks fail first,
    on the segment's outputs computed under ``no_grad``)."""
    try:
        refusal = checkpoint_refusal(err, spec.label, None, forward.model, _PERTURBATIONS_WORK)
        if refusal is None and not spec.grouped and not _gradient_reaches_input(forward, x):
            refusal = ValueError(no_gradient_message(spec.label, None, forward.model, _PERTURBATIONS_WORK))
    except RuntimeError as check_err:
        refusal = checkpoint_refusal(check_err, spec.label, None, forward.model, _PERTURBATIONS_WORK)
        if refusal is None:
            raise
    return refusal


def _gradient_reaches_input(forward: CaptumForward, x: Tensor) -> bool:
    """Whether autograd carries the output of ``forward`` back to ``x`` (the parameters are frozen by
    :func:`attribution_context`: a graph to the output is one from ``x``)."""
    z = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        out = forward(z, *(forward.captum_args() or ()))
        return out.requires_grad and torch.autograd.grad(out.sum(), z, allow_unused=True)[0] is not None


def _warn_without_relu_modules(model: nn.Module, spec: MethodSpec) -> None:
    """GuidedBackprop and Deconvolution change the backward pass of ``nn.ReLU`` modules only (Captum's hooks):
    on a model without one (``torch.relu``/``F.relu`` in ``forward``, GELU, SiLU) their map is the plain
    gradient, silently; say so. DeepLift's rescale rule likewise runs on nonlinearity modules only: a graph
    that runs them as operations (``torch.export``) gets gradient x (input - baseline), said so too."""
    if spec.name in ("GuidedBackprop", "Deconvolution") and not any(isinstance(m, nn.ReLU) for m in model.modules()):
        warnings.warn(
            f"Captum's {spec.label} overrides the backward pass of nn.ReLU modules only and {model_name(model)} holds "
            f"none (a functional relu or another activation): its map is the plain gradient, Saliency with abs=False",
            UserWarning, stacklevel=outside_package())
    if spec.name == "DeepLift":
        functional = _graph_nonlinearities(model)
        if functional and not any(isinstance(m, _DEEPLIFT_MODULES) for m in model.modules()):
            warnings.warn(
                f"Captum's {spec.label} applies its rescale rule to nonlinearity modules only (nn.ReLU, nn.Sigmoid, "
                f"nn.Tanh, max pooling, ...) and {model_name(model)} runs them as operations of its graph ({functional[0]}"
                f"{', ...' if len(functional) > 1 else ''}: a torch.export'ed or traced model): its map is the gradient "
                "times (input - baseline), InputXGradient from the baseline; explain the eager model for DeepLift",
                UserWarning, stacklevel=outside_package())


_DEEPLIFT_MODULES = (nn.ReLU, nn.ELU, nn.LeakyReLU, nn.Sigmoid, nn.Tanh, nn.Softplus, nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d,
                     nn.Softmax)  # captum.attr._core.deep_lift.SUPPORTED_NON_LINEAR
_NONLINEAR_OPS = ("relu", "elu", "sigmoid", "tanh", "softplus", "max_pool", "softmax", "gelu", "silu")


def _graph_nonlinearities(model: nn.Module) -> list[str]:
    """The nonlinear operations that the ``torch.fx`` graphs in ``model`` call as functions (``aten.relu.default``
    of a ``torch.export``'ed model), where no module hook of Captum's sees them."""
    return [str(node.target) for m in model.modules() if isinstance(m, torch.fx.GraphModule) for node in m.graph.nodes
            if node.op == "call_function" and any(op in str(node.target) for op in _NONLINEAR_OPS)]


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
