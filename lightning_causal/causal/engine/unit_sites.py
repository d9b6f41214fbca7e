"""What one forward pass tells about a layer before its units are intervened on: whether its
output is already projected (so that ``num_heads`` slices are not heads,
:func:`~lightning_causal.causal.engine.head_sites.check_head_site`)
and whether its features are its last dimension (so that the default units, dimension 1, would be
the positions of a ``[N, T, D]`` output, :func:`check_default_units`).

Both read :func:`inspect_site`: every module of the model records the tensor it returns during
one pass (e.g. on one sample), and the layer's output and input are matched to them by storage.

Examples:
    >>> model = nn.Sequential(nn.Embedding(10, 4), nn.Linear(4, 6), nn.GELU())
    >>> site = inspect_site(model, "2", lambda: model(torch.zeros(1, 3, dtype=torch.long)))
    >>> site.features_last, site.projected
    (True, False)
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.modules.conv import _ConvNd
from torch.nn.modules.instancenorm import _InstanceNorm
from torch.nn.modules.pooling import (
    _AdaptiveAvgPoolNd,
    _AdaptiveMaxPoolNd,
    _AvgPoolNd,
    _LPPoolNd,
    _MaxPoolNd,
)
from torch.nn.utils.rnn import PackedSequence

from lightning_causal._compat import functorch_wrapped, module_hooks_fire
from lightning_causal.causal.engine.eager import named_modules
from lightning_causal.causal.engine.input_sites import InputSite
from lightning_causal.causal.engine.kept_attributes import tensor_dicts
from lightning_causal.causal.engine.quantized import check_not_quantized
from lightning_causal.causal.engine.units import unit_kind

__all__ = ["PACKED_HINT", "SiteFacts", "scalar_parameter_hint", "check_default_units", "check_not_vmapped", "check_rows_at_sites", "check_samples_first", "check_site_units",
           "cached_output_hint", "check_unit_dimension", "channel_count", "declared_widths", "first_tensor", "folded_hint", "functional_layer_hint", "holds_tensors_only", "inspect_site", "is_model_output",
           "lays_channels_first", "named_unit_kind", "returns_packed", "tuple_reader", "unread_element_refusal"]

#: what to name instead of a module that returns a ``PackedSequence`` (:func:`returns_packed`)
PACKED_HINT = ("it returns a PackedSequence (a recurrent layer run on pack_padded_sequence), whose hidden states are "
               "not one tensor [N, T, H]. Name a module that reads them as a tensor, e.g. the input of the layer applied "
               "to the last hidden state ('head:input'), or unpack them (pad_packed_sequence) in a submodule and name it")


def returns_packed(value: object) -> bool:
    """Whether a module's return value is a ``PackedSequence`` or a tuple or list led by one (``nn.GRU``'s
    ``(PackedSequence, h_n)``): no tensor of one row per sample (:data:`PACKED_HINT`)."""
    return isinstance(value, PackedSequence) or (isinstance(value, (tuple, list)) and bool(value)
                                                 and isinstance(value[0], PackedSequence))

#: Layers whose output is ``[N, ..., D]`` with the features last (a ``[N, T, D]`` sequence of
#: ``D``-dimensional vectors); Hugging Face's ``Conv1D`` (GPT-2) and norms are matched by name.
_FEATURES_LAST = (nn.Linear, nn.Bilinear, nn.Embedding, nn.LayerNorm, nn.MultiheadAttention, nn.RNNBase)
#: Layers that mix or normalise channels, whose output is ``[N, C, ...]``: a block holding one is no features-last one.
_CONVOLVES = (_ConvNd, _BatchNorm, _InstanceNorm, nn.GroupNorm)
#: Layers whose output is ``[N, C, ...]`` with the channels first: those and the pools (of three or more dimensions),
#: which keep their input's channels (not counted against features last: a pool inside a block says nothing of it).
_CHANNELS_FIRST = (*_CONVOLVES, _MaxPoolNd, _AvgPoolNd, _AdaptiveAvgPoolNd, _AdaptiveMaxPoolNd, _LPPoolNd)


#: torch's normalisations over features: ``nn.LayerNorm`` and, from torch 2.4, ``nn.RMSNorm`` (a subclass of either, whatever
#: its name, mixes features as they do)
_FEATURE_NORMS = (nn.LayerNorm, *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()))


def _mixes_features(module: nn.Module) -> bool:
    """A linear layer (``nn.Linear``, Hugging Face's ``Conv1D``) or a normalisation over features (torch's, a subclass
    of one, or a class named so)."""
    name = type(module).__name__
    return isinstance(module, (nn.Linear, *_FEATURE_NORMS)) or name == "Conv1D" or name.endswith(("LayerNorm", "RMSNorm"))


def _features_last(module: nn.Module, out: Tensor | None = None) -> bool:
    """Whether ``module`` gives its features last, read from its class and, for a layer normalisation, from ``out`` (its
    output, or the input it reads): a normalisation gives its features last only where it normalises the last
    dimension (:func:`_normalises_last`)."""
    if not (isinstance(module, _FEATURES_LAST) or _mixes_features(module)):
        return False
    return out is None or _normalises_last(module, out)


def _norm_width(module: nn.Module) -> int | None:
    """The number of features a layer normalisation of one dimension normalises (its ``normalized_shape``, or its weight's
    length), else ``None`` (a linear layer, whose weight is a matrix, a norm over several dimensions)."""
    shape = getattr(module, "normalized_shape", None)
    if isinstance(shape, (tuple, list, torch.Size)):
        return int(shape[0]) if len(shape) == 1 else None
    if isinstance(shape, int):
        return shape
    weight = getattr(module, "weight", None)
    return int(weight.shape[0]) if isinstance(weight, Tensor) and weight.dim() == 1 else None


def channel_count(module: nn.Module, side: str = "out_channels") -> int | None:
    """The channel count ``module`` declares: a convolution's ``out_channels`` (``side``: ``"in_channels"`` for its
    input's), a channel normalisation's ``num_features`` (batch, instance) or ``num_channels`` (group); else ``None``.

    Examples:
        >>> channel_count(nn.Conv1d(3, 8, 1)), channel_count(nn.Conv1d(3, 8, 1), "in_channels"), channel_count(nn.ReLU())
        (8, 3, None)
    """
    count = getattr(module, side, None) or getattr(module, "num_features", None) or getattr(module, "num_channels", None)
    return count if isinstance(count, int) else None


def declared_widths(module: nn.Module, out: Tensor | None = None) -> dict[str, int | None]:
    """What ``module``'s class declares of its output's widths: ``"channels"``, the channel count of a layer that mixes
    or normalises channels (a convolution, a batch, instance or group normalisation: :func:`channel_count`);
    ``"features"``, the width of a layer that gives its features last (``out_features``, ``embedding_dim``, Hugging
    Face's ``nf``, a layer normalisation's width; ``None`` where it declares none; a normalisation read from ``out``, its
    output or input, gives its features last only where it normalises the last dimension); neither for another layer.

    Examples:
        >>> declared_widths(nn.Conv1d(3, 8, 1)), declared_widths(nn.Linear(3, 5)), declared_widths(nn.ReLU())
        ({'channels': 8}, {'features': 5}, {})
    """
    widths: dict[str, int | None] = {}
    if isinstance(module, _CONVOLVES):
        widths["channels"] = channel_count(module)
    if _features_last(module, out):
        widths["features"] = next((w for w in (getattr(module, "out_features", None), getattr(module, "embedding_dim", None),
                                               getattr(module, "nf", None)) if isinstance(w, int)), None) or _norm_width(module)
    return widths


def _layout_by_widths(module: nn.Module, t: Tensor) -> bool | None:
    """What the widths of ``t`` (a layer normalisation's output, or its input: same shape) and the class say of
    :func:`_normalises_last`, or ``None`` where only the output's statistics can (:func:`_statistics_say_last`)."""
    width = _norm_width(module)
    if width is None or t.dim() < 3 or t.is_complex():
        return True
    last, first = t.shape[-1] == width, t.shape[1] == width
    if last != first:
        return last
    layout = getattr(module, "data_format", None)  # ConvNeXt's own LayerNorm, Hugging Face's ConvNextLayerNorm say it
    if last and isinstance(layout, str) and layout in ("channels_first", "channels_last"):
        return layout == "channels_last"
    torch_norm = next((c for c in type(module).__mro__ if c in _FEATURE_NORMS), None)
    if not last or torch_norm is None or type(module).forward is torch_norm.forward:
        # torch's own norm, and a norm of a library's or your own on nn.Module (Hugging Face's RMSNorm, a Gemma-style
        # (1 + weight) scale the statistics below would misread), normalise the last dimension
        return True
    return None


def _statistics_say_last(module: nn.Module, out: Tensor) -> bool:
    """Which of dimension 1 and the last, equally wide, a subclass of torch's ``nn.LayerNorm`` or ``nn.RMSNorm``
    normalised in its output ``out``: ``z = (out - bias) / weight`` has a mean square of 1 along it, up to ``eps``
    (``misfit``), and, for a ``LayerNorm``, a mean of 0, whatever ``eps`` is (a norm's input tiny next to ``eps`` gives
    ``z`` a mean square near 0 along both). The mean decides where it is 0 (to ``sqrt`` of the dtype's resolution, of
    ``z``'s root mean square) along one dimension only; else dimension 1 only where its misfit is under half the last's:
    a tie, or a NaN (a weight of 0), leaves the class's layout, features last."""
    width = int(_norm_width(module) or 0)
    weight, bias = getattr(module, "weight", None), getattr(module, "bias", None)

    def normalised(dim: int) -> Tensor:
        view = [1] * out.dim()
        view[dim] = width
        z = out.detach().double()
        if isinstance(bias, Tensor) and bias.numel() == width:
            z = z - bias.detach().double().reshape(view)
        if isinstance(weight, Tensor) and weight.numel() == width:
            z = z / weight.detach().double().reshape(view)
        return z

    z_last, z_first = normalised(-1), normalised(1)
    if isinstance(module, nn.LayerNorm):  # centred along the normalised dimension
        tol = torch.finfo(out.dtype).eps ** 0.5 if out.is_floating_point() else 0.0
        off_last, off_first = (float(z.mean(d).abs().mean() / z.square().mean().sqrt()) for z, d in
                               ((z_last, -1), (z_first, 1)))
        if (off_first < tol) != (off_last < tol):  # a NaN (all of z 0) compares False on both: no decision
            return off_last < tol
    fit_last, fit_first = (float((z.square().mean(d) - 1).abs().mean()) for z, d in ((z_last, -1), (z_first, 1)))
    return not (fit_first < 0.5 * fit_last)


def _normalises_last(module: nn.Module, out: Tensor) -> bool:
    """Whether a layer normalisation's output ``out`` of three or more dimensions holds its features last.

    A subclass of ``nn.LayerNorm`` may normalise another dimension: timm's ``LayerNorm2d`` permutes ``[N, C, H, W]`` to
    channels last and back, so its output has the channels first. Where only dimension 1 is as wide as the features, the
    features are there; where both dimension 1 and the last are (``C == W``), a norm with a ``data_format`` of
    ``"channels_first"`` or ``"channels_last"`` (ConvNeXt's own ``LayerNorm`` on ``nn.Module``, Hugging Face's
    ``ConvNextLayerNorm``) says which, and for a class deriving from torch's ``nn.LayerNorm`` or ``nn.RMSNorm`` and
    overriding its ``forward`` the output does (:func:`_statistics_say_last`: normalised along its features,
    ``(out - bias) / weight`` has a mean of 0 and a mean square of 1 there). Any other module: ``True``.

    Examples:
        >>> class LayerNorm2d(nn.LayerNorm):
        ...     def forward(self, x):
        ...         return super().forward(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)
        >>> norm = LayerNorm2d(4)
        >>> _normalises_last(norm, norm(torch.randn(2, 4, 3, 5))), _normalises_last(norm, norm(torch.randn(2, 4, 4, 4)))
        (False, False)
        >>> plain = nn.LayerNorm(4)
        >>> _normalises_last(plain, plain(torch.randn(2, 4, 4, 4))), _normalises_last(plain, plain(torch.randn(2, 7, 4)))
        (True, True)
    """
    said = _layout_by_widths(module, out)
    return _statistics_say_last(module, out) if said is None else said


def _reads_last(module: nn.Module, inp: Tensor | None) -> bool:
    """:func:`_normalises_last` of a layer normalisation that reads ``inp`` (an ':input' site's tensor): its widths
    decide, as a rule; only where they tie does the norm run on it, once, through ``module.forward`` (no hook of it
    fires) under ``no_grad``, for its output's statistics. A norm whose forward fails on it (one taking a second
    argument, a conditional norm's) or returns another shape keeps its class's layout, features last; so does no input."""
    said = True if inp is None else _layout_by_widths(module, inp)
    if said is not None:
        return said
    try:
        with torch.no_grad():
            out = first_tensor(module.forward(inp))
    except Exception:  # a forward taking more than the input: the class's layout
        return True
    return True if out is None or out.shape != inp.shape else _statistics_say_last(module, out)


def lays_channels_first(module: nn.Module, t: Tensor, *, read: bool = False) -> bool:
    """A convolution, channel normalisation or pool, or a layer normalisation that normalises dimension 1 of ``t``, its
    output (``read``: the input it reads, :func:`_reads_last`): timm's ``LayerNorm2d``."""
    if isinstance(module, _CHANNELS_FIRST):
        return True
    if not _mixes_features(module) or _norm_width(module) is None:
        return False
    return not (_reads_last(module, t) if read else _normalises_last(module, t))


def first_tensor(value: object) -> Tensor | None:
    """The tensor a module returns (or takes): the value itself, element 0 of a tuple or list
    (Hugging Face blocks return ``(hidden, attention weights, ...)``), or the first field of a Hugging
    Face ``ModelOutput`` (``last_hidden_state`` of ``bert.encoder``); ``None`` otherwise."""
    if isinstance(value, Tensor):
        return value
    if isinstance(value, (tuple, list)) and value and isinstance(value[0], Tensor):
        return value[0]
    if is_model_output(value) and len(value) and isinstance(first := next(iter(value.values())), Tensor):
        return first
    return None


def is_model_output(value: object) -> bool:
    """A Hugging Face ``ModelOutput``: an ordered mapping of its set fields, also readable as a tuple."""
    return isinstance(value, Mapping) and callable(getattr(value, "to_tuple", None))


def _same(a: Tensor, b: Tensor) -> bool:
    if functorch_wrapped(a) or functorch_wrapped(b):  # a module run under torch.func.grad/jacrev: its tensors have no storage
        return a is b
    return a.data_ptr() == b.data_ptr() and a.shape == b.shape


@dataclass(frozen=True)
class SiteFacts:
    """What :func:`inspect_site` found about one layer.

    Attributes:
        projected: its output is the output of a layer inside it that mixes features (a linear
            layer or a normalisation), or it is a ``torch.nn.MultiheadAttention``.
        features_last: its output is laid out ``[N, ..., D]``: it is a linear, embedding,
            normalisation, attention or recurrent layer; or a block without convolutions in which
            such a layer returned a tensor of the output's shape, or a block whose last convolution's channels it
            lays last (a patch embedding: ``flattened``); or a parameter-free layer (an
            activation, dropout) applied to such a layer's output, or, where functional code made its input in a shape
            no module gave, read by such a layer.
        shape: the shape of its output in the pass.
        channels_first: its output is laid out ``[N, C, ...]``: it is a convolution, a channel
            normalisation (batch, instance, group norm, a layer norm of dimension 1 such as timm's ``LayerNorm2d``,
            :func:`_normalises_last`) or a pooling layer, a block in which one of them returned a
            tensor of the output's shape (a residual block, a convolution block ending in a pool; not a block whose
            features are last, whose pool of that shape pools its steps through a transpose), the input of one, or
            a chain of parameter-free layers (activations, dropouts) applied to such an output.
        channels_source: where ``channels_first``, the name of the module whose layout the output holds: the layer
            itself, the last such module of the block, the module whose input it is, or the one before the chain.
        complex: its output is complex (a spectrum: the modes of ``torch.fft.rfft``).
        read_by: where the module reading the output decided ``features_last`` (its input made by functional code), that
            module's class (``"MultiheadAttention"``), which the refusal of the default units names.
        flattened: where a block that convolves has its features last (:func:`_convolution_laid`: its last
            convolution's ``[N, D, h, w]`` flattened and transposed to ``[N, h·w, D]``, a ViT's patch embedding, timm's
            ``PatchEmbed``, Hugging Face's ``ViTEmbeddings`` with its [CLS] token and positions), that convolution's
            class (``"Conv2d"``), which the refusal of the default units names: the ``D`` embedding channels are the
            units a user means there, not the patches.
        laid_from: with ``flattened``, the shape of that convolution's output in the pass, which the refusal sets
            beside the block's: flattened (``[1, 32, 4, 4]`` to ``[1, 17, 32]``, a patch embedding) or transposed at
            the same rank (``[1, 6, 10]`` to ``[1, 10, 6]``, a Conformer's convolution module over a sequence's steps).
        positions_of: where no module says the layout of an output of three or more dimensions (functional code made
            it: the hidden states ``[N, T, D, S]`` of a selective scan in its parallel form) and its dimension 1 is as
            long as the ids ``[N, T]`` an ``nn.Embedding`` read before it (:func:`_token_positions`), that embedding's
            name: dimension 1 holds positions, which the refusal of the default units says.
    """

    projected: bool
    features_last: bool
    shape: tuple[int, ...]
    channels_first: bool = False
    channels_source: str | None = None
    complex: bool = False
    read_by: str | None = None
    flattened: str | None = None
    laid_from: tuple[int, ...] | None = None
    positions_of: str | None = None


class _Reached(BaseException):
    """Raised by the layer's hook to stop the pass once the layer has returned (a `BaseException`, so that
    a model's own `except Exception` cannot swallow it)."""


def _run_hooked(run: Callable[[], object], handles: list) -> None:
    """Run ``run()`` under ``torch.no_grad`` until a hook raises :class:`_Reached` (or the pass ends), then remove
    ``handles``, also on errors."""
    try:
        with torch.no_grad(), module_hooks_fire():  # torch < 2.5: a TransformerEncoderLayer's fast path skips the hooks
            run()
    except _Reached:
        pass
    finally:
        for handle in handles:
            handle.remove()


def _consumer(site: nn.Module) -> nn.Module:
    """The module itself, or the module whose input an :class:`InputSite` is."""
    return site.consumer if isinstance(site, InputSite) else site


def inspect_site(model: nn.Module, name: str, run: Callable[[], object]) -> SiteFacts:
    """Run ``run()`` (a forward pass of ``model``) under ``torch.no_grad`` with every module's
    output recorded until the module ``name`` returns (the rest of the pass is skipped), and read
    off :class:`SiteFacts` for it. Every hook is removed, also on errors.

    Raises:
        ValueError: ``name`` is not a module of ``model``, or it was not called by ``run``.
    """
    from lightning_causal.causal.engine.interventions import resolve_module

    modules = named_modules(model)
    site = resolve_module(model, name)
    outputs: list[tuple[nn.Module, Tensor]] = []
    inputs: dict[int, Tensor | None] = {}
    seen: dict[str, Tensor | None] = {}

    def record(m: nn.Module, args: tuple, out: object) -> None:
        t = first_tensor(out)
        if t is not None:
            outputs.append((m, t))
            inputs.setdefault(id(m), first_tensor(args))

    def enter(_m: nn.Module, args: tuple) -> None:
        seen.setdefault("input", first_tensor(args))

    def leave(_m: nn.Module, _i: object, out: object) -> None:
        seen.setdefault("output", first_tensor(out))
        seen.setdefault("returned", out)
        raise _Reached  # everything needed ran before the layer returned: the rest of the pass is skipped

    # a TorchScript submodule (a scripted backbone beside the layer) takes no hooks, and runs compiled: nothing to record
    handles = [m.register_forward_hook(record) for m in modules.values() if m is not site and not isinstance(m, torch.jit.ScriptModule)]
    handles += [site.register_forward_pre_hook(enter), site.register_forward_hook(leave)]
    _run_hooked(run, handles)
    out = seen.get("output")
    if out is None:
        hint = ""
        if any(isinstance(m, nn.MultiheadAttention) and m.out_proj is _consumer(site) for m in modules.values()):
            hint = (": it is the out_proj of a torch.nn.MultiheadAttention, which uses its weight in functional code, so "
                    "the module does not run. Its input holds the heads: name the site "
                    f"{name.removesuffix(':input') + ':input'!r} (the attention calls out_proj as a module while that "
                    "site exists), with `num_heads` for one unit per head, or the attention itself for its output features")
        returned = seen.get("returned")
        if returns_packed(returned):
            hint = ": " + PACKED_HINT
        if not hint and returned is not None:  # it ran, and returned no tensor where one is read (a plain dict, an object)
            hint = (f": it ran but returned {type(returned).__name__}, not a tensor, a tuple or list whose element 0 is one, "
                    "or a Hugging Face ModelOutput. Name the submodule that computes the tensor you mean, or the input "
                    "of the module that reads it ('<module>:input')")
        ran = {id(m) for m, _ in outputs}
        if not hint and returned is None and isinstance(site, nn.Sequential) and any(id(m) in ran for m in site.children()):
            hint = ": its submodules ran but it was not called" + container_hint(name, site)
        if not hint and returned is None and holds_tensors_only(site):  # an nn.ParameterList: it holds weights, never runs
            hint = (f": it is a {type(site).__name__}, which holds tensors and has no forward, so it never runs; "
                    + functional_layer_hint())
        if not hint and returned is None:
            hint = (": it did not run on the first probe sample. Hooks see only modules the model calls: a module used "
                    "on some branches only (an early exit, an expert no row is routed to), one whose weights the model "
                    "uses in functional code (F.linear(x, m.weight)) or whose forward it calls directly (m.forward(x)) "
                    "cannot be intervened on, nor one the forward pass never calls (a distillation's frozen teacher, an "
                    "EMA copy of the network: the audits of a LightningModule explain what its `audited_module` returns). "
                    "Name a module that the model calls for every sample" + cached_output_hint(model))
        raise ValueError(f"Expected module {name!r} to be called by the forward pass and to return a tensor{hint}")
    check_not_quantized(name, out)  # a statically quantized model: no intervention can apply
    check_not_vmapped(name, out)  # a module run under torch.func.vmap sees one sample at a time
    inner = {id(m) for m in site.modules() if m is not site}
    inside = [(m, t) for m, t in outputs if id(m) in inner]
    projected = isinstance(site, nn.MultiheadAttention) or any(_mixes_features(m) and _same(t, out) for m, t in inside)
    names = {id(m): n for n, m in reversed(modules.items())}  # the first name of a module shared under two
    features_last, read_by = _is_features_last(site, out, seen.get("input"), inside, outputs, inputs), None
    if features_last is None:  # made by functional code in a shape no module gave: the module reading it says
        read_by = _consumer_reads_last(modules, site, run)
        features_last = read_by is not None
    conv = _last_convolution(inside) if features_last and inside and _convolution_laid(inside, out) else None
    flattened = type(conv[0]).__name__ if conv is not None else None  # a patch embedding's channels laid last
    # a block whose own layers give its features last holds no channels-first layout: a pool inside it of the block's
    # shape pools its steps through a transpose (a PoolFormer's token mixer on 16 tokens of 16 features), as a pool
    # says nothing of features last (a block that convolves is features-last only where it lays its channels last)
    source = None if inside and features_last else _channels_source(site, name, out, seen.get("input"), inside, outputs,
                                                                      inputs, names)
    positions = None if features_last or source is not None else _token_positions(outputs, inputs, out, names)
    return SiteFacts(projected, features_last, tuple(out.shape), source is not None, source, out.is_complex(), read_by,
                     flattened, tuple(conv[1].shape) if conv is not None else None, positions)


def _token_positions(outputs: list, inputs: dict[int, Tensor | None], out: Tensor, names: Mapping[int, str]) -> str | None:
    """:attr:`SiteFacts.positions_of`: the name of the first ``nn.Embedding`` of the pass (``outputs`` in call order,
    ``inputs`` their inputs) that read ids ``[N, T]`` (``T > 1``) as long as dimension 1 of ``out``, an output of three
    or more dimensions whose layout no module says; ``None`` where none did."""
    if out.dim() < 3 or out.is_complex():
        return None
    for m, _ in outputs:
        ids = inputs.get(id(m))
        if isinstance(m, nn.Embedding) and ids is not None and ids.dim() == 2 and ids.shape[1] == out.shape[1] > 1:
            return names.get(id(m), type(m).__name__)
    return None


def named_unit_kind(facts: SiteFacts | None, unit_dim: int | None, num_heads: int | None) -> str | None:
    """What figures call a layer's units: :func:`~lightning_causal.causal.engine.units.unit_kind` of its ``unit_dim`` and
    ``num_heads``, where the pass says otherwise for units off dimension 1 (``"neuron"``, the features of
    ``[N, T, D]``): ``"position"`` on a channels-first output of three or more dimensions (:attr:`SiteFacts.channels_first`:
    dimension 2 on are its positions), ``"mode"`` on a complex one (a spectrum).

    Args:
        facts: :func:`inspect_site`'s facts of the layer (``None``: ``unit_kind`` alone).
        unit_dim: the layer's ``unit_dim``.
        num_heads: the layer's ``num_heads``.

    Examples:
        >>> net = nn.Sequential(nn.Conv1d(2, 3, 1), nn.ReLU())
        >>> facts = inspect_site(net, "1", lambda: net(torch.zeros(1, 2, 4)))
        >>> named_unit_kind(facts, -1, None), facts.channels_source, named_unit_kind(facts, None, None)
        ('position', '0', None)
    """
    kind = unit_kind(unit_dim, num_heads)
    if kind != "neuron" or facts is None:
        return kind
    if facts.channels_first and len(facts.shape) >= 3:
        return "position"
    return "mode" if facts.complex else kind


def holds_tensors_only(module: nn.Module) -> bool:
    """Whether ``module`` has no ``forward`` of its own and no submodules (``nn.ParameterList``, ``nn.ParameterDict``, a
    module that only holds weights): it never runs, so no hook of it fires; the model reads its tensors in functional
    code. An ``nn.ModuleList`` or ``nn.ModuleDict`` has no ``forward`` either, but holds modules, which run.

    Args:
        module: the module.

    Examples:
        >>> holds_tensors_only(nn.ParameterList([nn.Parameter(torch.zeros(2))])), holds_tensors_only(nn.Identity())
        (True, False)
        >>> holds_tensors_only(nn.ModuleList([nn.Linear(2, 2)]))
        False
    """
    return type(module).forward is nn.Module.forward and next(module.children(), None) is None


def cached_output_hint(model: nn.Module) -> str:
    """Where ``model`` holds tensors in a dict (:func:`~lightning_causal.causal.engine.kept_attributes.tensor_dicts`), the
    cause of a module that did not run that it suggests: its output cached and read again (a hypernetwork's weights per
    task id), so that it runs in no pass once the cache is filled; ``""`` otherwise.

    Examples:
        >>> m = nn.Linear(2, 2)
        >>> m.cache = {0: torch.ones(1)}
        >>> print(cached_output_hint(m)[:64])
        ; the model holds tensors in the dict 'cache': a module whose ou
    """
    held = tensor_dicts(model)
    if not held:
        return ""
    shown = ", ".join(repr(n) for n in held[:3])
    return (f"; the model holds tensors in the dict {shown}: a module whose output the forward keeps there and reads "
            "again (a hypernetwork's weights cached per task id) runs only where the cache misses, and in no pass once "
            "it is filled; audit the model with its cache off, in eval mode too (a flag the forward reads)")


def functional_layer_hint() -> str:
    """The way to a layer the model computes in functional code (``F.linear`` with the weights of an
    ``nn.ParameterList``): no module returns it, so it has no site until its output goes through a module of its own,
    an ``nn.Identity``; ``docs/your_model.md`` shows it.

    Examples:
        >>> print(functional_layer_hint()[:72])
        a layer computed in functional code (F.linear(x, self.w), F.relu) is the
    """
    return ("a layer computed in functional code (F.linear(x, self.w), F.relu) is the output of no module, so hooks "
            "cannot see it: give the layer's output a module of its own, an nn.Identity (self.hidden = nn.Identity() in "
            "__init__, h = self.hidden(F.relu(F.linear(x, self.w, self.b))) in forward), and name it ('hidden'; "
            "docs/your_model.md, 'Layers in functional code')")


def scalar_parameter_hint(name: str) -> str:
    """The way to the effect of a parameter of one number that functional code reads (a learnable temperature, a
    CLIP-like model's ``logit_scale``; a gate or mixing weight): it holds no units and no module returns it, so hooks
    cannot set it until the value the forward uses goes through a module of its own, an ``nn.Identity`` on a
    ``[1, 1]`` view, one unit every sample shares. The module is named apart from the parameter (``<name>_site``: a
    parameter named ``temperature`` keeps its name) and the value is the parameter's exponential where its name says it
    holds a log (``logit_scale``, ``log_temperature``), else the parameter itself.

    Examples:
        >>> print(scalar_parameter_hint("logit_scale")[:66])
        a learnable temperature or scale (a CLIP-like model's logit_scale)
        >>> "`scale = self.temperature_site(self.temperature.view(1, 1))`" in scalar_parameter_hint("temperature")
        True
    """
    attr = name.rpartition(".")[2]
    site, value = f"{attr}_site", f"self.{attr}.exp()" if "log" in attr.lower() else f"self.{attr}"
    return (f"a learnable temperature or scale (a CLIP-like model's logit_scale) or another number every sample "
            "shares (a gate, a mixing weight), no layer of units; its effect on the explained output is that of setting "
            "the value the forward uses, measured as one unit every sample shares once that value goes through a module "
            f"of its own: self.{site} = nn.Identity() in __init__, `scale = self.{site}({value}.view(1, 1))` in forward "
            f"where it reads {value} (a [1, 1] view: one row, one unit), and name '{site}' (unit_effects and "
            "UnitImportanceAudit set it in every sample's pass: Zero() sets it to 0, SetTo(v) to v; a softmax over the "
            "zero-shot classes keeps its ranking under any temperature above 0); the per-sample units are those of the "
            "layers (a CLIP-like model's towers: the image encoder's layers, its embedding before the L2 normalisation)")


def container_hint(name: str, site: nn.Module) -> str:
    """Why an ``nn.Sequential`` whose children run is not called itself, and the name to give instead (its last child,
    whose output is the container's): ``torch.utils.checkpoint.checkpoint_sequential`` calls the children one by one,
    as does a forward that loops over them.

    Args:
        name: the container's name, as given.
        site: the container.

    Examples:
        >>> print(container_hint("body", nn.Sequential(nn.Linear(2, 2), nn.ReLU())))  # doctest: +ELLIPSIS
        : torch.utils.checkpoint.checkpoint_sequential ... name its last child, 'body.1', whose output is the container's
    """
    last = list(dict(site.named_children()))[-1:] or [""]
    child = f"{name}.{last[0]}"
    return (": torch.utils.checkpoint.checkpoint_sequential calls the children of an nn.Sequential one by one, not the "
            "container (as does a forward that loops over them), so no hook on the container fires: name its last "
            f"child, {child!r}, whose output is the container's")


def _channels_source(site: nn.Module, name: str, out: Tensor, inp: Tensor | None, inside: list, outputs: list,
                     inputs: dict[int, Tensor | None], names: Mapping[int, str]) -> str | None:
    """:attr:`SiteFacts.channels_source`: the module whose channels-first layout ``site``'s output holds, or ``None``."""
    if isinstance(site, InputSite):
        return names.get(id(site.consumer), name) if lays_channels_first(site.consumer, out, read=True) else None
    if lays_channels_first(site, out):
        return name
    if inside:  # a block that convolves, one of whose layers returned a tensor of the output's shape
        made = [m for m, t in inside if t.shape == out.shape and lays_channels_first(m, t)]
        return names.get(id(made[-1]), name) if made else None
    # a chain of parameter-free leaves (activations, dropouts) after a convolution, channel normalisation or pool
    module, tensor = site, out
    for _ in range(len(outputs)):
        if not _passes_layout(module, inp, tensor):
            return None
        producers = [(m, t) for m, t in outputs if _same(t, inp) and m is not module]  # in call order: the maker first
        made = next((m for m, t in producers if lays_channels_first(m, t)), None)
        if made is not None or not producers:
            return None if made is None else names.get(id(made), name)
        module, tensor = producers[0]  # a dropout in eval or an in-place activation gives back its input: not its maker
        inp = inputs.get(id(module))
    return None


def _passes_layout(module: nn.Module, inp: Tensor | None, out: Tensor) -> bool:
    """A parameter-free leaf (an activation, dropout) that keeps its input's shape."""
    return (inp is not None and inp.shape == out.shape and not any(True for _ in module.children())
            and not any(True for _ in module.parameters()))


def _scales_last(module: nn.Module, inp: Tensor | None, out: Tensor) -> bool:
    """A leaf that keeps its input's shape and holds only 1-D parameters as wide as the last dimension, not as dimension
    1 (a JumpReLU's learned threshold per latent, a LayerScale's gain): it reads its features last, though no layer of
    :data:`_FEATURES_LAST` says so (the walk over parameter-free leaves stopped at it). A parameter of one entry (the
    default ``nn.PReLU()``'s shared slope) is as wide as a last dimension of 1 and says nothing of the layout."""
    params = list(module.parameters())
    return (bool(params) and inp is not None and inp.shape == out.shape and out.dim() >= 3 and out.shape[-1] > 1
            and out.shape[-1] != out.shape[1] and not any(True for _ in module.children())
            and all(p.dim() == 1 and p.shape[0] == out.shape[-1] for p in params))


def _is_features_last(site: nn.Module, out: Tensor, inp: Tensor | None, inside: list, outputs: list,
                      inputs: dict[int, Tensor | None]) -> bool | None:
    """:attr:`SiteFacts.features_last`, or ``None`` where the layout is unknown before the site: a chain of
    parameter-free leaves whose input functional code made in a shape no module gave before (:func:`_consumer_reads_last`
    then reads it from the module that reads the output)."""
    if isinstance(site, InputSite):  # the layer that reads the input says how (a linear layer: features last)
        consumer = site.consumer
        if isinstance(consumer, _CONVOLVES):
            return False
        if _features_last(consumer) and _reads_last(consumer, inp) and not isinstance(consumer, nn.Embedding):
            return True
    if _features_last(site, out):
        return True
    if isinstance(site, _CONVOLVES):
        return False
    if inside:  # a block: its own layers say, unless it convolves and keeps the channels first
        laid = _convolution_laid(inside, out)
        if laid is not None:
            return laid
        return any(_features_last(m, t) and t.shape == out.shape for m, t in inside)
    # parameter-free leaves (activations, dropout): the layout of the layer that produced the input
    module, tensor = site, out
    for _ in range(len(outputs)):
        if _scales_last(module, inp, tensor):  # a JumpReLU's threshold per latent: it reads its features last
            return True
        if not _passes_layout(module, inp, tensor):
            return False
        producers = [(m, t) for m, t in outputs if _same(t, inp) and m is not module]
        if any(isinstance(m, _CONVOLVES) for m, _ in producers):
            return False
        if any(_features_last(m, t) for m, t in producers):
            return True
        if not producers and inp is not None:  # the input from functional code (an SAE's F.relu(encoder(h)), a TopK
            # by scatter): the layout of the last module output of its shape before it, which that code kept; where
            # none has its shape, convolutions' channels concatenated ([N, 3, L] twice: [N, 6, L]) keep channels first;
            # else (a class token concatenated to a ViT's patches) unknown: the consumer says
            last = next(((m, t) for m, t in reversed(outputs) if t.shape == inp.shape and m is not module), None)
            if last is None:
                return False if _channel_pieces(inp, outputs) else None
            return not isinstance(last[0], _CONVOLVES) and _features_last(*last)
        if len(producers) != 1:
            return False
        module, tensor = producers[0]
        inp = inputs.get(id(module))
    return False


def _convolution_laid(inside: list, out: Tensor) -> bool | None:
    """Where a block convolves, whether its output ``out`` lays the channels of its last convolution last: ``True`` where
    it flattened and transposed them (``[N, D, h, w]`` to ``[N, h·w, D]``, a [CLS] token and positions added after: a
    ViT's patch embedding, timm's ``PatchEmbed``, Hugging Face's ``ViTEmbeddings``), ``False`` where it keeps them first
    (a residual block, a pooled or flattened ``[N, C, L]``), ``None`` where the shapes do not tell (as many channels as
    positions) or nothing convolves: the block's other layers say."""
    last = _last_convolution(inside)
    if last is None:
        return None
    conv = last[1]
    channels, patches = conv.shape[1], math.prod(conv.shape[2:])
    if out.dim() >= 3 and out.shape[-1] == channels != out.shape[1]:
        positions = math.prod(out.shape[1:-1])
        if out.shape[1:-1] == conv.shape[2:] or (out.dim() < conv.dim() and patches <= positions < 2 * patches):
            return True  # its positions (fewer tokens added than there are patches), then the channels
    return False if out.shape[1] == channels or conv.dim() == out.dim() else None


def _last_convolution(inside: list) -> tuple[nn.Module, Tensor] | None:
    """The last convolution (or channel normalisation) of a block's layers ``inside`` to return ``[N, C, ...]``."""
    return next(((m, t) for m, t in reversed(inside) if isinstance(m, _CONVOLVES) and t.dim() > 2), None)


def _channel_pieces(inp: Tensor, outputs: list) -> bool:
    """Whether a convolution (``nn.Conv1d``/``2d``/``3d``, a transposed one) returned, before, a piece of ``inp`` along
    dimension 1: a tensor of its rank, its rows and its trailing dimensions, of other channels (two ``[N, 3, L]``
    concatenated in plain code into ``[N, 6, L]``)."""
    return any(isinstance(m, _ConvNd) and t.dim() == inp.dim() and t.shape[0] == inp.shape[0]
               and t.shape[2:] == inp.shape[2:] and t.shape[1] != inp.shape[1] for m, t in outputs)


def _consumer_reads_last(model_modules: Mapping[str, nn.Module], site: nn.Module, run: Callable[[], object]) -> str | None:
    """Whether the first module that reads ``site``'s output and says a layout (in a second pass of ``run()``, stopped
    there, in call order) reads its features last, as that module's class name: a linear layer, attention or layer
    normalisation over the last dimension (a ViT's first block after the ``pos_drop`` that follows its class token's
    concatenation) gives its name; a convolution or channel normalisation, a module that reads nothing of it or none,
    ``None``. Every hook is removed, also on errors."""
    held: dict[str, Tensor | None] = {}
    said: list[str | None] = []

    def leave(_m: nn.Module, _i: object, out: object) -> None:
        held.setdefault("output", first_tensor(out))

    def enter(m: nn.Module, args: tuple) -> None:
        out, t = held.get("output"), first_tensor(args)
        if out is None or t is None or not _same(t, out):
            return
        shape = getattr(m, "normalized_shape", None)
        if isinstance(shape, (tuple, list, torch.Size)) and len(shape) > 1:
            return  # a layer normalisation over several dimensions ([C, L]) says nothing of the layout
        if isinstance(m, _CONVOLVES) or lays_channels_first(m, t, read=True):
            said.append(None)
        elif _features_last(m) and _reads_last(m, t) and not isinstance(m, nn.Embedding):
            said.append(type(m).__name__)
        else:
            return  # a block around the layer that says (a TransformerEncoderLayer around its attention)
        raise _Reached

    handles = [m.register_forward_pre_hook(enter) for m in model_modules.values()
               if m is not site and not isinstance(m, torch.jit.ScriptModule)]
    handles.append(site.register_forward_hook(leave))
    _run_hooked(run, handles)
    return said[0] if said else None


def check_default_units(name: str, facts: SiteFacts, unit_dim: int | None, num_heads: int | None, fix: str) -> None:
    """Refuse the default unit layout (dimension 1) where it would not be the layer's features: an
    output of 3 or more dimensions whose features are last (:attr:`SiteFacts.features_last`: the
    ``[N, T, D]`` output of a linear layer, an embedding, a transformer block), where dimension 1
    holds positions. ``fix`` says what the caller takes instead (e.g. ``unit_dim=-1``).

    Examples:
        >>> check_default_units("fc", SiteFacts(False, True, (1, 5, 16)), unit_dim=-1, num_heads=None, fix="")
    """
    if unit_dim is not None or num_heads is not None or len(facts.shape) < 3:
        return
    if facts.positions_of is not None and not facts.features_last:
        shape = list(facts.shape)
        raise ValueError(
            f"Expected the units of {name!r} on dimension 1 (the default: channels of [N, C, ...]) to be its features, "
            f"but functional code made its output of shape {shape} in a layout no module says, and its dimension 1 is "
            f"as long as the {shape[1]} token positions that the embedding {facts.positions_of!r} read (the outputs or "
            "hidden states of a scan written in its parallel or chunked form), so it holds positions, or units as many "
            f"as the positions by chance (a loop over time's state at one step, [N, D, S] with D == {shape[1]}, from a "
            f"module called at each step; the heads of attention weights [N, H, T, T] with H == {shape[1]}: a probe of "
            "another length tells them apart). Pass the dimension of its "
            f"units: `unit_dim={2 if len(shape) > 3 else -1}` for its {shape[2 if len(shape) > 3 else -1]} "
            + ("channels (the D of a scan's states [N, T, D, S], as a loop over time gives them at each step)"
               if len(shape) > 3 else "features (neurons)") + ", or `unit_dim=1` for dimension 1 as it is (its "
            "positions, or a loop's channels D, or the heads)")
    if not facts.features_last:
        return
    why = ("it is the input of a layer that reads its features last" if name.endswith(":input") else
           f"functional code made it, and a {facts.read_by} reads it over its last dimension" if facts.read_by else
           _laid_last_words(facts) if facts.flattened else
           "it comes from a linear, embedding, normalisation, attention or recurrent layer")
    raise ValueError(
        f"Expected the units of {name!r} on dimension 1 (the default: channels of [N, C, ...]) to be its features, "
        f"but its output of shape {list(facts.shape)} has its features last ({why}), so dimension 1 holds "
        f"positions. {fix}")


def _laid_last_words(facts: SiteFacts) -> str:
    """Why a block that convolves has its features last, in the refusal of the default units: its convolution's
    channels flattened last (a patch embedding) or transposed last at the same rank (a convolution over a sequence's
    steps, ``[N, D, T]`` back to ``[N, T, D]``), with the two shapes where :attr:`SiteFacts.laid_from` holds them."""
    conv, out = facts.laid_from, list(facts.shape)
    if conv is not None and len(conv) == len(out):
        return f"the block transposes its {facts.flattened}'s channels last, {list(conv)} to {out}"
    shapes = f"{list(conv)} to {out}" if conv is not None else "[N, D, h, w] to [N, h*w, D]"
    return f"the block flattens its {facts.flattened}'s channels last, {shapes}, as a patch embedding does"


#: the way out of :func:`check_samples_first` for one row that serves every sample (a hypernetwork's weights)
ONE_ROW_WAY = ("which cannot be a site here: this estimator sets a unit in some rows of a batch and not in others. Where "
               "the row is the same for every sample, `unit_effects` and `UnitImportanceAudit` set a unit in it for all "
               "of them (lightning_causal.causal.effects.shared_units); read an expert's units with `intervene` on the "
               "whole probe, one pass per unit (docs/your_model.md, the expert units example), or name a layer that "
               "holds one row per sample")
#: ... and for rows every sample shares, seen in passes of other numbers of samples (a zero-shot classifier's text tower)
SHARED_WAY = ("which no estimator that reads a unit per sample row takes (the causal graph, whose node is a unit's "
              "activation per sample, the layer map, Captum's layer methods, the fairness carriers): measure its units' "
              "effects on the output with `unit_effects` or `UnitImportanceAudit`, which set a unit in every shared row, "
              "one pass of the probe per unit (lightning_causal.causal.effects.shared_units), or name a layer that "
              "holds one row per sample")


def check_samples_first(name: str, shape: Sequence[int], samples: int, *, shared: bool = False) -> None:
    """Refuse a layer whose output does not hold one row per sample on dimension 0 (``shape`` is its
    output on ``samples`` samples): a recurrent layer or ``nn.TransformerEncoderLayer`` with
    ``batch_first=False`` returns ``[T, N, D]``; a module called on a subset of the rows (an expert of a
    mixture) returns fewer rows than the samples, and is refused saying so; so is an output of one row for several
    samples, computed from no sample (a hypernetwork's weights made from one task embedding) and shared by the batch,
    and, where the caller saw the same rows in passes of other numbers of samples (``shared``), one of any number of
    rows (a zero-shot classifier's text tower over its 10 class prompts).

    Examples:
        >>> check_samples_first("hyper.1", (1, 16), 12)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: Expected dimension 0 ... has shape [1, 16]: one row for all samples, an output computed from no sample ...
        >>> check_samples_first("experts.1.1", (9, 8), 16)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: Expected dimension 0 ... has shape [9, 8]: 9 row(s), fewer than the batch, ...an expert of a mixture, ...
        >>> check_samples_first("rnn", (7, 1, 5), 1)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: Expected dimension 0 of the output of 'rnn' to be the samples ... Build it with batch_first=True, ...
        >>> check_samples_first("text.proj", (10, 32), 2, shared=True)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: Expected dimension 0 ... has shape [10, 32]: the same 10 rows for all samples ..., an output computed ...
    """
    if len(shape) and (shared or (shape[0] == 1 < samples and not (len(shape) > 2 and shape[1] == samples))):
        rows = ("one row for all samples" if shape[0] == 1 else
                f"the same {shape[0]} rows for all samples (in passes of other numbers of samples)")
        raise ValueError(  # one row for the batch: computed from no sample (a hypernetwork's weights from a task id)
            f"Expected dimension 0 of the output of {name!r} to be the samples (size {samples} in a pass of {samples} "
            f"sample(s)) but its output has shape {list(shape)}: {rows}, an output computed from no "
            "sample and shared by the batch (a hypernetwork's weights made from one task embedding, a learned query, "
            "position embeddings, a zero-shot classifier's text tower over its class prompts) or a module called on one "
            f"row only, {SHARED_WAY if shared else ONE_ROW_WAY}")
    if len(shape) and shape[0] < samples and not (len(shape) > 2 and shape[1] == samples):  # [T, N, D]: steps first
        raise ValueError(
            f"Expected dimension 0 of the output of {name!r} to be the samples (size {samples} in a pass of {samples} "
            f"sample(s)) but its output has shape {list(shape)}: {shape[0]} row(s), fewer than the batch, the output of a "
            "module called on some rows only (an expert of a mixture, on the rows routed to it; a module called per "
            "sample in a loop) or on rows of its own that every sample shares (a zero-shot classifier's text tower over "
            "its class prompts), which cannot be a site. Name the module where the experts' outputs are combined (one row "
            "per sample); the units of an expert's hidden layer are read with `intervene` on the whole probe, one pass "
            "per unit (docs/your_model.md, the expert units example); those of a text tower's shared rows with "
            "`unit_effects` or `UnitImportanceAudit`, which set a unit in every shared row")
    if len(shape) == 0 or shape[0] != samples:
        raise ValueError(
            f"Expected dimension 0 of the output of {name!r} to be the samples (size {samples} in a pass of {samples} "
            f"sample(s)) but its output has shape {list(shape)}: a layer with batch_first=False (recurrent layers, "
            "nn.TransformerEncoderLayer) returns [T, N, ...], and a module called on some rows only (an expert of a "
            "mixture on the rows routed to it, a module called per sample in a loop) returns fewer. Build it with "
            "batch_first=True, or name a module that returns every sample first (e.g. where the experts' outputs are "
            f"combined){folded_hint(shape, samples)}{_ONE_SET_HINT if len(shape) > 2 and shape[0] == 1 else ''}")


#: Added where a site's output is ``[1, N, ...]``: a model that runs its samples as one set (``x[None]``), a batch_first
#: layer included, puts them on dimension 1; ``x[:, None]`` keeps its outputs only where no sample attends to another.
_ONE_SET_HINT = (". A model that runs its samples as one set, `x[None]` ([1, N, ...]: an in-context learner's queries beside "
                 "their context, a batch_first layer included), puts them on dimension 1: have forward run each as a set "
                 "of its own, `x[:, None]` ([N, 1, ...]), the shared set expanded to each (docs/recipes.md, 'In-context "
                 "tabular learners'). That keeps its outputs only where no sample attends to another (TabPFN's queries "
                 "read the context alone); samples that attend to each other (a set transformer over them) are not "
                 "independent: the whole set is then one sample")


def check_rows_at_sites(model: nn.Module, names: Sequence[str], run: Callable[[], object], samples: int) -> None:
    """Refuse a site that returns fewer rows than the ``samples`` of the pass ``run()`` (a forward pass of
    ``model`` on ``samples`` samples), with :func:`check_samples_first`'s message: a module called on a subset
    of the rows (an expert of a mixture) returns as many rows as samples in a pass whose samples were all routed
    to it, so a check on one or two samples passes it, and the estimators refuse it on the pass of every
    sample. Every call of a site is read (the fewest rows count); a site ``run()`` does not reach, and one with
    more rows than samples (a layer that folds windows or positions into the batch), are left to the estimators.
    A site run inside ``torch.func.vmap`` is refused with :func:`check_not_vmapped`'s message.

    Args:
        model: the model.
        names: the sites (module names, or ``"<module>:input"``).
        run: a forward pass of ``model`` on ``samples`` samples.
        samples: the samples of the pass.

    Raises:
        ValueError: a site returned fewer rows than ``samples``, or runs under ``torch.func.vmap``.

    Examples:
        >>> class Routed(nn.Module):  # expert 1 gets the rows whose feature 0 is positive
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.experts = nn.ModuleList(nn.Linear(2, 3) for _ in range(2))
        ...     def forward(self, x):
        ...         pos = x[:, 0] > 0
        ...         out = x.new_zeros(len(x), 3)
        ...         out[pos], out[~pos] = self.experts[1](x[pos]), self.experts[0](x[~pos])
        ...         return out
        >>> model, x = Routed(), torch.tensor([[1.0, 0.0], [2.0, 0.0], [-1.0, 0.0]])
        >>> check_rows_at_sites(model, ["experts.1"], lambda: model(x[:2]), 2)  # both routed to expert 1: passes
        >>> check_rows_at_sites(model, ["experts.1"], lambda: model(x), 3)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: Expected dimension 0 of the output of 'experts.1' ... has shape [2, 3]: 2 row(s), fewer than the batch, ...
    """
    from lightning_causal.causal.engine.intervention_hooks import capture

    shapes: dict[str, tuple[int, ...]] = {}

    def keep(name: str, out: Tensor) -> Tensor:
        check_not_vmapped(name, out)  # one sample at a time: its [U] is no row count, and the message names vmap
        if name not in shapes or (out.dim() and out.shape[0] < shapes[name][0]):
            shapes[name] = tuple(out.shape)
        return out.new_empty(0)

    # a site the pass does not reach is the estimators' to refuse or warn of
    with torch.no_grad(), capture(model, list(names), keep=keep, warn_repeats=False, warn_unreached=False):
        run()
    for name, shape in shapes.items():
        if len(shape) and shape[0] < samples:
            check_samples_first(name, shape, samples)


def _under_vmap(value: Tensor) -> bool:
    """Whether ``value`` is a sample of ``torch.func.vmap`` (a batched tensor, under any ``grad``/``jacrev`` levels)."""
    functorch = getattr(torch._C, "_functorch", None)
    while functorch is not None and functorch.is_functorch_wrapped_tensor(value):
        if functorch.is_batchedtensor(value):
            return True
        value = functorch.get_unwrapped(value)
    return False


def check_not_vmapped(name: str, value: Tensor) -> None:
    """Refuse a site that runs inside ``torch.func.vmap`` (a model that maps a function over its samples:
    ``vmap(jacrev(energy))(x)`` for per-sample forces): a hook there sees one sample at a time (its output
    ``[U]``, not ``[N, U]``) and cannot tell which, so no intervention per sample or per unit dimension can apply,
    and a unit dimension counted from the batch would be another dimension there.

    Args:
        name: the site's name.
        value: its output as the hook sees it.

    Examples:
        >>> from torch.func import vmap
        >>> def hook_sees(h):
        ...     check_not_vmapped("energy.1", h)
        ...     return h
        >>> vmap(hook_sees)(torch.zeros(4, 6))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: Expected module 'energy.1' to run on the batch of samples, but it runs inside torch.func.vmap, ...
    """
    if not _under_vmap(value):
        return
    raise ValueError(
        f"Expected module {name!r} to run on the batch of samples, but it runs inside torch.func.vmap, one sample at a "
        f"time (its output there has shape {list(value.shape)}, a sample's): a hook cannot tell which sample it sees, "
        "so no intervention applies there. Name a site outside the transform (a module applied to what vmap returns, "
        "or '<module>:input' of the module that reads it), or take the derivative of the batch without vmap: "
        "torch.func.grad(lambda x: self.energy(x).sum())(x) gives per-sample forces of samples that do not interact, "
        "and its modules see the batch [N, ...] and take interventions"
    )


def check_unit_dimension(name: str, shape: Sequence[int], samples: int | None = None) -> None:
    """Refuse a layer whose output has no dimension besides the samples (``[N]``: one value per
    sample, e.g. ``Linear(d, 1)`` then ``squeeze(-1)``): there are no units to choose among.

    Examples:
        >>> check_unit_dimension("head", (5,))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: Expected the output of 'head' to have a unit dimension ([N, U, ...]: channels, neurons or heads) but it has shape [5], ...
    """
    if len(shape) >= 2:
        return
    raise ValueError(
        f"Expected the output of {name!r} to have a unit dimension ([N, U, ...]: channels, neurons or heads) but it has "
        f"shape {list(shape)}{'' if samples is None else f' in a pass of {samples} sample(s)'}, one value per sample (a Linear(d, 1) followed by squeeze(-1)?): it holds no units to "
        f"intervene on. Name the module whose output is [N, 1] (the Linear before the squeeze: one unit), or the "
        f"site '{name}:input' (the module's input) when that is [N, U]"
    )


def folded_hint(shape: Sequence[int], samples: int) -> str:
    """A sentence for a dimension 0 that is a multiple of the samples: something folded into the batch
    (``""`` otherwise); said by the estimators that need one row per sample (the graph, the layer map)."""
    if not len(shape) or shape[0] <= samples or shape[0] % samples:
        return ""
    return (f". With {shape[0] // samples} rows per sample, the model may fold something into the batch there: "
            "Swin's window attention folds its windows ([N·windows, T, D] at 'attention.o_proj:input'), OPT's decoder "
            "layer flattens its positions before the MLP ([N·T, D] at 'fc1', 'fc2'). unit_effects and UnitImportanceAudit "
            "take such a layer (exact effects on full passes); here, name a module with one row per "
            "sample instead (the whole block or layer; Swin's 'mlp.fc1' with unit_dim=-1; OPT's 'self_attn.out_proj:input' with "
            "num_heads, or the layer with unit_dim=-1 for its hidden features). A graph neural network with the graph as "
            "the sample folds its nodes ([B·num_nodes, D]): write its layers on dense batches ([B, num_nodes, D], "
            "unit_dim=-1), or name a per-graph module (the pooled representation); docs/recipes.md, 'Graph neural networks'. "
            "Classifier-free guidance runs every sample twice, with and without its condition (torch.cat([x_t, x_t])): "
            "explain the conditional network it calls, forward(x_t, t, y), whose rows are the samples'"
            + (VIDEO_FOLD_HINT.format(k=shape[0] // samples) if len(shape) == 4 else ""))


#: :func:`folded_hint`'s words for a folded output laid out as images, ``[N·k, C, H, W]`` (or channels last, ``[N·k, H,
#: W, C]``: the shape does not tell): a video network's frames, a multi-crop model's crops. ``unit_dim=2`` on a
#: channels-last site reads its rows ``H`` as units, silently (a frame-wise ConvNeXt block's ``Linear``: 5 units, not 7)
VIDEO_FOLD_HINT = (
    ". A video network that folds its clips' frames into the batch ([N·T, C, H, W]: a temporal shift network, a "
    "frame-wise 2-D CNN under a temporal pooling or recurrent head), or a model that folds each sample's crops or "
    "patches into it, has one row per sample at none of its convolutions: "
    "put the rows back per sample at a site, an nn.Unflatten(0, (-1, {k})) module whose output the forward folds again "
    "(h = self.clip1(self.block1(h)).flatten(0, 1)), and name it with unit_dim=2 for channels first ([N, {k}, C, H, W]), "
    "unit_dim=-1 for channels last ([N, {k}, H, W, C]: a ConvNeXt block's Linear); docs/your_model.md, "
    "'Video networks that fold frames into the batch (TSM)'")


def check_site_units(model: nn.Module, name: str, run: Callable[[], object], unit_dim: int | None,
                     num_heads: int | None, fix: str, *, folded: bool = False) -> SiteFacts:
    """:func:`inspect_site` on one pass ``run()`` (of one sample), then
    :func:`~lightning_causal.causal.engine.head_sites.check_heads` and
    :func:`check_default_units` (``fix`` says what the caller takes instead of the default): the
    checks every estimator that takes units runs before intervening. ``folded``: the caller
    handles layers that fold ``k`` rows per sample into the batch (:mod:`~.folded_rows`), so an
    output of ``k > 1`` rows on the one sample is taken as such (its ``shape[0]``), not refused.

    Examples:
        >>> model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
        >>> check_site_units(model, "1", lambda: model(torch.ones(1, 3)), None, None, "").shape
        (1, 4)
    """
    from lightning_causal.causal.engine.head_sites import check_heads
    from lightning_causal.causal.engine.interventions import resolve_module

    facts = inspect_site(model, name, run)
    if not (folded and len(facts.shape) > 1 and facts.shape[0] > 1):
        check_samples_first(name, facts.shape, 1)
    check_unit_dimension(name, facts.shape, 1)
    check_heads(model, name, resolve_module(model, name), unit_dim, num_heads, facts)
    try:
        check_default_units(name, facts, unit_dim, num_heads, fix)
    except ValueError:  # a layer whose tuple the model reads past element 0 (an LSTM's h_n): no unit_dim helps there
        site = _consumer(resolve_module(model, name))
        if _first_element_unread(site, run):
            raise ValueError(unread_element_refusal(name, tuple_reader(model, site, run))) from None
        raise
    return facts


def unread_element_refusal(name: str, reader: str | None) -> str:
    """The refusal of a layer returning a tuple whose element 0 (the one intervened on) the model does not read (an
    LSTM read through ``h_n``), with the one-step way out: the input of ``reader``, the module that reads another
    element (:func:`tuple_reader`; ``fc`` of ``fc(h_n[-1])``), else of the layer that reads it, or an ``nn.Identity``.

    Examples:
        >>> unread_element_refusal("lstm", "fc").split("In one step, ")[1][:40]
        "name the site 'fc:input', the input of t"
    """
    way = (f"name the site {reader + ':input'!r}, the input of the layer {reader!r} that reads it (its units the "
           "features it reads: for `fc(h_n[-1])` the last layer's hidden units, no `unit_dim`)" if reader else
           "name the input of the layer that reads it, '<layer>:input' ('fc:input' for `fc(h_n[-1])`: the last "
           "layer's hidden units, no `unit_dim`)")
    return (f"Expected the model's output to depend on element 0 of module {name!r}'s output (a tuple, cut at "
            "element 0), but it did not change when element 0 did: the model uses another element (e.g. an LSTM's "
            f"(h_n, c_n)), which no `unit_dim` reaches. In one step, {way}; or intervene on a module whose output the "
            "model uses, e.g. apply an nn.Identity to h_n in the forward and name that module")


def _first_element_unread(site: nn.Module, run: Callable[[], object]) -> bool:
    """Whether ``site`` returns a tuple or list of a floating tensor and more, and ``run()``'s output (a pass) is the
    same with that element 0 moved (``t + 1 + |t|``): the model reads another element (an LSTM's ``(h_n, c_n)``)."""
    moved: list[bool] = []

    def move(_m: nn.Module, _i: object, out: object) -> object:
        if not (isinstance(out, (tuple, list)) and len(out) > 1 and isinstance(out[0], Tensor)
                and out[0].is_floating_point()):
            return None
        moved.append(True)
        return type(out)([out[0] + 1.0 + out[0].abs(), *out[1:]]) if isinstance(out, list) else (out[0] + 1.0 + out[0].abs(), *out[1:])

    with torch.no_grad(), module_hooks_fire():
        plain = first_tensor(run())
        handle = site.register_forward_hook(move)
        try:
            changed = first_tensor(run())
        finally:
            handle.remove()
    return (bool(moved) and plain is not None and changed is not None and plain.shape == changed.shape
            and bool(torch.equal(plain, changed)))


def tuple_reader(model: nn.Module, site: nn.Module, run: Callable[[], object]) -> str | None:
    """The name of the first module called after ``site`` returned a tuple or list whose input shares its storage with
    a tensor of that tuple past element 0 (``fc`` of ``out, (h, c) = lstm(x); fc(h[-1])``: ``h[-1]`` is a view of
    ``h_n``), found in one pass ``run()`` stopped there; ``None`` where none does (``fc(torch.cat([h[-2], h[-1]], 1))``),
    or where that module's input is not all the model reads of those elements (:func:`_reader_carries`: a residual head
    ``fc(z + proj(z))`` of ``z = h[-1]``, whose first reader ``proj`` sees one branch of it).

    Examples:
        >>> class M(nn.Module):
        ...     def __init__(self):
        ...         super().__init__(); self.lstm = nn.LSTM(3, 4, batch_first=True); self.fc = nn.Linear(4, 2)
        ...     def forward(self, x):
        ...         out, (h, c) = self.lstm(x)
        ...         return self.fc(h[-1])
        >>> m = M()
        >>> tuple_reader(m, m.lstm, lambda: m(torch.zeros(1, 5, 3)))
        'fc'
    """
    modules = named_modules(model)
    names = {id(m): n for n, m in reversed(modules.items())}
    inner = {id(m) for m in site.modules()}
    rest: list[Tensor] = []
    found: list[str] = []

    def leave(_m: nn.Module, _i: object, out: object) -> None:
        if isinstance(out, (tuple, list)) and not rest:
            stack = list(out[1:])
            while stack:
                item = stack.pop()
                if isinstance(item, (tuple, list)):
                    stack.extend(item)
                elif isinstance(item, Tensor) and not functorch_wrapped(item):
                    rest.append(item)

    def enter(m: nn.Module, args: tuple) -> None:
        t = first_tensor(args)
        if (rest and id(m) not in inner and names.get(id(m)) and t is not None and not functorch_wrapped(t)
                and any(t.untyped_storage().data_ptr() == r.untyped_storage().data_ptr() for r in rest)):
            found.append(names[id(m)])
            held.append(t.clone())
            raise _Reached

    held: list[Tensor] = []
    handles = [site.register_forward_hook(leave)]
    handles += [m.register_forward_pre_hook(enter) for m in modules.values()
                if id(m) not in inner and not isinstance(m, torch.jit.ScriptModule)]
    _run_hooked(run, handles)
    return found[0] if found and _reader_carries(site, modules[found[0]], held[0], run) else None


def _reader_carries(site: nn.Module, reader: nn.Module, seen: Tensor, run: Callable[[], object]) -> bool:
    """Whether the module ``reader`` carries all that ``run()``'s output reads of ``site``'s tuple past element 0: with
    every tensor there moved (``t + 1 + |t|``) and ``reader``'s input at its first call after ``site`` put back to
    ``seen`` (what it read in the plain pass), the output is the plain one, bit for bit (:func:`tuple_reader`; a second
    reader of ``h_n``, a residual ``fc(z + proj(z))`` beside ``proj(z)``, changes it). One pass of each, at a refusal."""
    state = {"after": False, "set": False}

    def moved(out: object) -> object:
        if isinstance(out, (tuple, list)):
            return type(out)(moved(o) for o in out)
        return out + 1.0 + out.abs() if isinstance(out, Tensor) and out.is_floating_point() else out

    def leave(_m: nn.Module, _i: object, out: object) -> object:
        if not isinstance(out, (tuple, list)) or len(out) < 2 or state["after"]:
            return None
        state["after"] = True
        items = [out[0], *(moved(o) for o in out[1:])]
        return items if isinstance(out, list) else tuple(items)

    def enter(_m: nn.Module, args: tuple) -> tuple | None:
        if not state["after"] or state["set"] or not args or not isinstance(args[0], Tensor) or args[0].shape != seen.shape:
            return None
        state["set"] = True
        return (seen, *args[1:])

    with torch.no_grad(), module_hooks_fire():
        plain = first_tensor(run())
        handles = [site.register_forward_hook(leave), reader.register_forward_pre_hook(enter)]
        try:
            changed = first_tensor(run())
        finally:
            for handle in handles:
                handle.remove()
    return (state["set"] and plain is not None and changed is not None and plain.shape == changed.shape
            and bool(torch.equal(plain, changed)))
