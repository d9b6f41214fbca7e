"""The interventions on a site's units (the do-operator's values): ``Intervention`` (which units, where
they lie: ``units=``, ``unit_dim=``, ``num_heads=``; the values cast to the site's dtype) and ``Zero``,
``SetTo``, ``MeanOf``, ``Resample``, ``Scale``, ``Patch``.

An intervention replaces a module's output (or input) (a tensor whose dimension 1 holds the units by
default: conv channels or neurons), optionally only for a selection of ``units``. ``unit_dim=`` and
``num_heads=`` place the units elsewhere (the neurons of ``[N, T, D]`` hidden states with
``unit_dim=-1``; attention heads of ``[N, T, H * d]`` with ``num_heads=H``; see
:mod:`~lightning_causal.causal.engine.units`). They are applied by
:func:`~lightning_causal.causal.engine.intervention_hooks.intervene` and by the estimators.
"""

from __future__ import annotations

import copy
import math
from abc import ABC, abstractmethod
from collections.abc import Sequence

import torch
from torch import Tensor

from lightning_causal.causal.engine.ablation import position_mean, reference_mask
from lightning_causal.causal.engine.units import (
    Layout,
    check_layout_options,
    per_unit_values,
    resolve_layout,
    unit_positions_mask,
)

__all__ = ["Intervention", "MeanOf", "Patch", "Resample", "Scale", "SetTo", "Units", "Zero", "repeated_patch_error"]


Units = int | Sequence[int] | None


def _no_values(self: Intervention, output: Tensor) -> Tensor:
    raise NotImplementedError(f"{type(self).__name__} sets its values in its own __call__ and has no values(output)")


class Intervention(ABC):
    """Base class: replaces a module output's ``units`` by :meth:`values`.

    An intervention of your own implements :meth:`values` (or a ``__call__`` of its own; one with neither is
    refused when built) (docs/recipes.md, "Writing your own audit,
    intervention or counterfactual"); a subclass whose ``__init__`` does not call ``super().__init__()``
    intervenes on every unit, dimension 1 (the class defaults below).

    Args:
        units: ``None`` (all units), an int, or a sequence of unit indices.
        unit_dim: the dimension that indexes units (default 1; ``-1`` for ``[N, T, D]`` neurons).
        num_heads: group the unit dimension (the last one when ``unit_dim`` is not given) into
            this many contiguous heads; a unit is then a head.

    Examples:
        >>> Zero(units=1, num_heads=2)(torch.ones(1, 2, 4))
        tensor([[[1., 1., 0., 0.],
                 [1., 1., 0., 0.]]])
    """

    def __init_subclass__(cls, **kwargs: object) -> None:
        # a subclass with a __call__ of its own (it sets what it sets) needs no values: not abstract there
        super().__init_subclass__(**kwargs)
        if "__call__" in cls.__dict__ and getattr(cls.values, "__isabstractmethod__", False):
            cls.values = _no_values  # type: ignore[method-assign]

    #: the defaults of a subclass that does not call ``super().__init__()``: every unit, on dimension 1
    units: list[int] | None = None
    unit_dim: int | None = None
    num_heads: int | None = None

    def __init__(self, units: Units = None, *, unit_dim: int | None = None, num_heads: int | None = None) -> None:
        if units is not None:
            seq = [units] if isinstance(units, int) else list(units)
            if not seq or not all(isinstance(u, int) and not isinstance(u, bool) and u >= 0 for u in seq):
                raise ValueError(f"Expected argument `units` to be None or non-negative ints but got {units!r}")
            units = seq
        self.units: list[int] | None = units
        self.unit_dim, self.num_heads = check_layout_options(unit_dim, num_heads)

    def layout(self, output: Tensor) -> Layout:
        """Where the units of ``output`` are (:func:`~lightning_causal.causal.engine.units.resolve_layout`).

        Args:
            output: the module's output ``[N, ...]`` (or input) the intervention applies to.
        """
        return resolve_layout(output.shape, self.unit_dim, self.num_heads)

    def with_layout(self, unit_dim: int | None, num_heads: int | None) -> Intervention:
        """This intervention with the unit layout of an estimator's ``unit_dim=`` / ``num_heads=``
        (a shallow copy); one that names its own, different layout is rejected.

        Args:
            unit_dim: the estimator's ``unit_dim=`` (the dimension of the units, or ``None``).
            num_heads: the estimator's ``num_heads=`` (or ``None``); with both ``None`` the
                intervention is returned as it is.
        """
        if (unit_dim, num_heads) == (self.unit_dim, self.num_heads) or unit_dim is None and num_heads is None:
            return self
        if self.unit_dim is not None or self.num_heads is not None:
            raise ValueError(
                f"Expected the intervention's unit layout (unit_dim={self.unit_dim}, num_heads={self.num_heads}) to "
                f"match the estimator's (unit_dim={unit_dim}, num_heads={num_heads})"
            )
        new = copy.copy(self)
        new.unit_dim, new.num_heads = check_layout_options(unit_dim, num_heads)
        return new

    @abstractmethod
    def values(self, output: Tensor) -> Tensor:
        """The intervened values, broadcastable to ``output``. The estimators call it on chunks of rows (several
        samples and units at once): compute each row's values from that row or from data fixed beforehand, not from
        statistics over the rows of ``output``, which would change with ``max_batch_size``.

        Args:
            output: the module's output ``[N, ...]`` (or input) the intervention applies to.
        """

    def values_like(self, output: Tensor) -> Tensor:
        """:meth:`values` in ``output``'s dtype. An integer output (category codes, token ids) takes
        integer values only: a fractional value would be truncated to another code, silently.

        Args:
            output: the module's output ``[N, ...]`` (or input) the intervention applies to.

        Raises:
            ValueError: fractional values for an integer output, or :class:`MeanOf` there (the mean
                of codes is not a code).
        """
        values = self.values(output)
        if output.is_floating_point() or output.is_complex() or output.dtype == torch.bool:
            return values.to(output.dtype)
        if isinstance(self, MeanOf):
            raise ValueError(
                f"Expected a floating point output for {self!r} but got integer values of dtype {output.dtype} "
                f"(category codes or token ids: their mean, e.g. {self.mean.flatten()[0].item():g}, is no code); use "
                "Resample(reference) to draw observed codes or SetTo(code)"
            )
        if values.is_floating_point() and not torch.equal(values, values.trunc()):
            bad = values[values != values.trunc()].flatten()[0].item()
            raise ValueError(
                f"Expected integer values for the output of dtype {output.dtype} (category codes or token ids) but "
                f"{self!r} gives {bad:g}, which would be truncated to {int(bad)}; use SetTo(code) or Resample(reference)"
            )
        return values.to(output.dtype)

    def unit_mask(self, output: Tensor) -> Tensor:
        """Boolean mask broadcastable to ``output`` that selects the intervened units.

        Args:
            output: the module's output ``[N, ...]`` (or input) the intervention applies to.
        """
        return unit_positions_mask(output.shape, self.layout(output), self.units, output.device)

    def __call__(self, output: Tensor) -> Tensor:
        if not isinstance(output, Tensor):
            raise TypeError(f"{type(self).__name__} can only replace tensor outputs but got {type(output)}")
        return torch.where(self.unit_mask(output), self.values_like(output), output)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(units={self.units})"


class Zero(Intervention):
    """do(h_u := 0).

    Args:
        units: ``None`` (all units), an int, or a sequence of unit indices, as in :class:`Intervention`.
        unit_dim: the dimension that indexes units, as in :class:`Intervention`.
        num_heads: group the unit dimension into this many heads, as in :class:`Intervention`.

    Examples:
        >>> Zero(units=[1])(torch.ones(1, 3))
        tensor([[1., 0., 1.]])
    """

    def values(self, output: Tensor) -> Tensor:
        return torch.zeros((), dtype=output.dtype, device=output.device)


def _per_unit(value: Tensor, output: Tensor, name: str, iv: Intervention) -> Tensor:
    """Broadcast a scalar, a per-unit ``[U]`` or a per-element value to ``output``."""
    return per_unit_values(value, output, iv.layout(output), name)


class SetTo(Intervention):
    """do(h_u := value): a scalar, a per-unit vector ``[U]`` (one value per channel, neuron or head),
    a vector along the unit dimension, or a tensor shaped like one sample.

    Args:
        value: a finite number (kept in float64 and cast to the output's dtype when applied) or a
            tensor: a scalar, ``[U]``, ``[size of the unit dimension]`` or one sample's shape.
        units: ``None`` (all units), an int, or a sequence of unit indices, as in :class:`Intervention`.
        unit_dim: the dimension that indexes units, as in :class:`Intervention`.
        num_heads: group the unit dimension into this many heads, as in :class:`Intervention`.

    Examples:
        >>> SetTo(2.0, units=0)(torch.zeros(2, 2))
        tensor([[2., 0.],
                [2., 0.]])
    """

    def __init__(self, value: float | Tensor, units: Units = None, *, unit_dim: int | None = None, num_heads: int | None = None) -> None:
        super().__init__(units, unit_dim=unit_dim, num_heads=num_heads)
        if isinstance(value, bool) or not isinstance(value, (int, float, Tensor)):
            raise TypeError(f"Expected argument `value` to be a number or a tensor but got {type(value)}")
        # a Python number in float64, cast to the output's dtype when applied: through the default float32
        # SetTo(0.7) set 0.699999988 in a float64 model
        value = torch.as_tensor(value, dtype=torch.float64 if not isinstance(value, Tensor) else None)
        if not torch.isfinite(value).all():
            raise ValueError(f"Expected argument `value` to be finite but got {value}")
        self.value = value

    def values(self, output: Tensor) -> Tensor:
        return _per_unit(self.value, output, "value", self)

    def __repr__(self) -> str:
        v = self.value.item() if self.value.numel() == 1 else f"tensor{list(self.value.shape)}"
        return f"SetTo({v}, units={self.units})"


class MeanOf(Intervention):
    """do(h_u := E_ref[h_u]): the mean activation over ``reference`` (activations ``[M, ...]`` of the
    same module on reference data, e.g. from :func:`~lightning_causal.causal.engine.intervention_hooks.capture`).

    The mean is taken per element when ``reference`` is shaped like the output (``[M, *output.shape[1:]]``);
    otherwise (sequences of another length) per position of the unit dimension, over every other
    dimension (the mean over all tokens of each neuron).

    Padded reference sequences: pass their ``attention_mask`` (``[M, T]``, 1 at a real token, 0 at
    padding, as the tokenizer returns it) and the mean counts real tokens only (per element: at
    each position the samples whose position is real, :func:`~lightning_causal.causal.engine.ablation.position_mean`;
    another length: every real token). The hidden state of a padded position is never read by the
    model's output but moves with the real tokens and with the pad id there: without the mask it
    enters the mean, so the value depends on how far the reference was padded.

    A module that runs several times per forward pass (a weight-tied block, an ODE function at every solver stage) is
    set to this one mean at every call; from :func:`~lightning_causal.causal.engine.intervention_hooks.capture`, which
    keeps the last call's output (and warns), that is the last call's mean at every call, not each call's own.

    Args:
        reference: activations ``[M, ...]`` of the module on reference data.
        units: ``None`` (all units), an int, or a sequence of unit indices, as in :class:`Intervention`.
        unit_dim: the dimension that indexes units, as in :class:`Intervention`.
        num_heads: group the unit dimension into this many heads, as in :class:`Intervention`.
        attention_mask: ``None`` (every position counts) or the reference's ``[M, T]`` mask
            (``reference`` ``[M, T, ...]``, positions on dimension 1, as Hugging Face hidden states).

    Examples:
        >>> ref = torch.tensor([[[1.0, 10.0]], [[3.0, 30.0]]])  # [M=2, T=1, D=2]
        >>> MeanOf(ref, units=1, unit_dim=-1)(torch.zeros(1, 3, 2))
        tensor([[[ 0., 20.],
                 [ 0., 20.],
                 [ 0., 20.]]])
        >>> padded = torch.tensor([[[1.0], [5.0]], [[3.0], [99.0]]])  # [M=2, T=2, D=1], sample 1 padded at t=1
        >>> MeanOf(padded, unit_dim=-1, attention_mask=torch.tensor([[1, 1], [1, 0]])).mean.flatten()
        tensor([2., 5.])
    """

    def __init__(self, reference: Tensor, units: Units = None, *, unit_dim: int | None = None, num_heads: int | None = None,
                 attention_mask: Tensor | None = None) -> None:
        super().__init__(units, unit_dim=unit_dim, num_heads=num_heads)
        if not isinstance(reference, Tensor) or reference.dim() < 2 or reference.shape[0] == 0:
            raise ValueError("Expected argument `reference` to be a tensor of activations [M, U, ...] with M >= 1")
        if not torch.isfinite(reference).all():
            raise ValueError("Expected argument `reference` to be finite but it holds NaN or infinity")
        ref = reference.detach()
        ref = ref if ref.is_floating_point() else ref.float()
        real = reference_mask(attention_mask, ref)
        self.mean = position_mean(ref, real)[0]
        # the mean over every real token (for outputs of another length): [*ref.shape[2:]]
        self._token_mean = None if real is None else ref[real.to(ref.device)].mean(0)

    def values(self, output: Tensor) -> Tensor:
        if self.mean.dim() == output.dim() - 1 and self.mean.shape != output.shape[1:]:
            dim = self.layout(output).dim - 1  # the unit dimension of one sample
            if self.mean.shape[dim] == output.shape[dim + 1]:
                if self._token_mean is not None and dim > 0:  # units past the positions: real tokens only
                    per_unit = self._token_mean.movedim(dim - 1, 0).reshape(self.mean.shape[dim], -1).mean(1)
                else:
                    per_unit = self.mean.movedim(dim, 0).flatten(1).mean(1)
                return _per_unit(per_unit, output, "reference", self)
        return _per_unit(self.mean, output, "reference", self)


class Resample(Intervention):
    """do(h_u := h_u(x')) with x' drawn at random from ``reference`` activations ``[M, ...]`` (the
    module's outputs on reference data, e.g. from :func:`~lightning_causal.causal.engine.intervention_hooks.capture`), one draw per row.

    The draws come from ``generator`` (default: a private one seeded with 0; the global RNG is never
    used), which advances with every call: the same ``Resample`` object gives other draws on its
    next use. For repeatable numbers, build a new one with a freshly seeded generator. In
    :func:`~lightning_causal.causal.effects.unit_effects.unit_effects` a layer that runs several
    times per pass (weight-tied depth) gets each row's donor at every call (from ``capture``, the donor's last call's
    value), and the numbers do not
    depend on ``max_batch_size``; :func:`~lightning_causal.causal.engine.intervention_hooks.intervene` draws anew at each call of the module.

    Padded reference sequences: pass their ``attention_mask`` (``[M, T]``, 0 at padding) and a
    drawn sample's padded positions hold the reference's mean at that position over the samples
    real there (:func:`~lightning_causal.causal.engine.ablation.position_mean`), not its padded
    hidden state (never read by the model's output, and moved by the pad id): a row whose position
    is real would otherwise be set to it.

    Args:
        reference: activations ``[M, ...]`` of the module on reference data (``M >= 1``), shaped like
            its output past dimension 0.
        generator: the ``torch.Generator`` the donors are drawn with; ``None``: a private one seeded
            with 0.
        units: ``None`` (all units), an int, or a sequence of unit indices, as in :class:`Intervention`.
        unit_dim: the dimension that indexes units, as in :class:`Intervention`.
        num_heads: group the unit dimension into this many heads, as in :class:`Intervention`.
        attention_mask: ``None`` (every position counts) or the reference's ``[M, T]`` mask (0 at
            padding), as above.

    Examples:
        >>> ref = torch.tensor([[1.0, 10.0], [2.0, 20.0], [3.0, 30.0]])  # 3 reference samples, 2 units
        >>> iv = Resample(ref, torch.Generator().manual_seed(0), units=1)
        >>> iv(torch.zeros(4, 2))
        tensor([[ 0., 30.],
                [ 0., 10.],
                [ 0., 30.],
                [ 0., 10.]])
        >>> again = Resample(ref, torch.Generator().manual_seed(0), units=1)
        >>> torch.equal(again(torch.zeros(4, 2)), torch.tensor([[0.0, 30.0], [0.0, 10.0], [0.0, 30.0], [0.0, 10.0]]))
        True
    """

    def __init__(
        self,
        reference: Tensor,
        generator: torch.Generator | None = None,
        units: Units = None,
        *, unit_dim: int | None = None, num_heads: int | None = None, attention_mask: Tensor | None = None,
    ) -> None:
        super().__init__(units, unit_dim=unit_dim, num_heads=num_heads)
        if not isinstance(reference, Tensor) or reference.dim() < 2 or reference.shape[0] == 0:
            raise ValueError("Expected argument `reference` to be a tensor of activations [M, U, ...] with M >= 1")
        if generator is not None and not isinstance(generator, torch.Generator):
            raise TypeError(f"Expected argument `generator` to be a torch.Generator but got {type(generator)}")
        ref = reference.detach()
        real = reference_mask(attention_mask, ref)
        if real is not None:  # padded positions: the mean of the samples real there
            shaped = real.to(ref.device).view(*real.shape, *[1] * (ref.dim() - 2))
            ref = torch.where(shaped, ref, position_mean(ref, real).to(ref.dtype))
        self.reference = ref
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)

    def values(self, output: Tensor) -> Tensor:
        if self.reference.shape[1:] != output.shape[1:]:
            raise ValueError(
                f"Expected argument `reference` to be activations of shape [M, {', '.join(map(str, output.shape[1:]))}] "
                f"(the module's output without its first dimension) but got {list(self.reference.shape)}"
            )
        idx = torch.randint(self.reference.shape[0], (output.shape[0],), generator=self.generator)
        return self.reference[idx].to(device=output.device, dtype=output.dtype)


class Scale(Intervention):
    """do(h_u := factor * h_u).

    Args:
        factor: a finite number multiplying the units' values.
        units: ``None`` (all units), an int, or a sequence of unit indices, as in :class:`Intervention`.
        unit_dim: the dimension that indexes units, as in :class:`Intervention`.
        num_heads: group the unit dimension into this many heads, as in :class:`Intervention`.

    Examples:
        >>> Scale(3.0)(torch.ones(1, 2))
        tensor([[3., 3.]])
    """

    def __init__(self, factor: float, units: Units = None, *, unit_dim: int | None = None, num_heads: int | None = None) -> None:
        super().__init__(units, unit_dim=unit_dim, num_heads=num_heads)
        if isinstance(factor, bool) or not isinstance(factor, (int, float)) or not math.isfinite(factor):
            raise ValueError(f"Expected argument `factor` to be a finite number but got {factor!r}")
        self.factor = float(factor)

    def values(self, output: Tensor) -> Tensor:
        return output * self.factor


class Patch(Intervention):
    """do(h_u := h_u(x'_i)) for each sample ``i``: activation patching, with ``source`` the module's
    activations ``[N, ...]`` on the paired inputs ``x'`` (e.g. the clean prompts, recorded with
    :func:`~lightning_causal.causal.engine.intervention_hooks.capture`), row ``i`` paired with sample
    ``i`` of the inputs being explained (e.g. the corrupted prompts).

    In :func:`~lightning_causal.causal.effects.unit_effects.unit_effects` every (unit, sample) row
    takes its own sample's source row, so one call patches each head or neuron from the clean into
    the corrupted run, for every sample: ``e_u(x) = f(x) − f(x | do(h_u := h_u(x')))`` (negative
    where patching ``u`` recovers the clean output). :func:`~lightning_causal.causal.engine.intervention_hooks.intervene`
    applies it to a batch of the ``N`` paired samples in their order. A call whose rows are not the
    ``N`` samples (another batch size, an estimator that does not pair its rows with the samples) is
    refused. So is, by ``unit_effects`` and by ``intervene`` alike (:func:`repeated_patch_error`), a module that runs
    several times per forward pass (a weight-tied block, an RNN cell looped in ``forward``, a shared activation): one
    source row per sample would set every call to one value, where each call of the paired run has its own; name one
    call with an ``nn.Identity`` applied to its output.

    Args:
        source: activations ``[N, ...]`` of the module on the paired inputs, shaped as its output
            on the inputs explained (sequences of the same length: pad both alike).
        units: ``None`` (all units), an int, or a sequence of unit indices, as in :class:`Intervention`.
        unit_dim: the dimension that indexes units, as in :class:`Intervention`.
        num_heads: group the unit dimension into this many heads, as in :class:`Intervention`.

    Examples:
        >>> clean = torch.tensor([[1.0, 10.0], [2.0, 20.0]])  # the module's output on 2 paired inputs
        >>> Patch(clean, units=1)(torch.zeros(2, 2))
        tensor([[ 0., 10.],
                [ 0., 20.]])
    """

    def __init__(self, source: Tensor, units: Units = None, *, unit_dim: int | None = None, num_heads: int | None = None) -> None:
        super().__init__(units, unit_dim=unit_dim, num_heads=num_heads)
        if not isinstance(source, Tensor) or source.dim() < 2 or source.shape[0] == 0:
            got = list(source.shape) if isinstance(source, Tensor) else type(source).__name__
            raise ValueError(f"Expected argument `source` to be a tensor of activations [N, ...] (one row per sample, N >= 1) but got {got}")
        if source.is_floating_point() and not torch.isfinite(source).all():
            raise ValueError("Expected argument `source` to be finite but it holds NaN or infinity")
        self.source = source.detach()

    def __repr__(self) -> str:
        return f"Patch(source{list(self.source.shape)}, units={self.units})"

    def _check(self, output: Tensor, rows: int) -> None:
        if self.source.shape[1:] != output.shape[1:] or rows != self.source.shape[0]:
            raise ValueError(
                f"Expected argument `source` to be activations of shape [{rows}, {', '.join(map(str, output.shape[1:]))}] "
                f"(one row per sample explained, paired in order, shaped like the module's output) but got "
                f"{list(self.source.shape)}; Patch pairs source row i with sample i, so record it on paired inputs of "
                "the same shape (pad both alike) and patch a batch of those samples")

    def values(self, output: Tensor) -> Tensor:
        self._check(output, output.shape[0])
        return self.source.to(device=output.device)

    def sample_values(self, output: Tensor, samples: Tensor) -> Tensor:
        """The source rows of ``samples`` (the sample index of each row of ``output``), in ``output``'s dtype.

        Args:
            output: the module's output ``[R, ...]`` (one row per evaluated row).
            samples: ``[R]`` the sample index (a row of ``source``) of each row of ``output``.
        """
        self._check(output, self.source.shape[0])
        if samples.shape != output.shape[:1]:
            raise ValueError(f"Expected one sample index per row of the output ({output.shape[0]}) but got {list(samples.shape)}")
        picked = self.source[samples.to(self.source.device)].to(output.device)
        if picked.is_floating_point() and not output.is_floating_point() and not torch.equal(picked, picked.trunc()):
            raise ValueError(f"Expected integer values in argument `source` for the output of dtype {output.dtype} "
                             "(category codes or token ids) but it holds fractions")
        return picked.to(output.dtype)



def repeated_patch_error(layer: str, calls: int) -> ValueError:
    """The refusal of a :class:`Patch` on module ``layer`` that runs ``calls`` (> 1) times per forward pass, one text
    for :func:`~lightning_causal.causal.effects.unit_effects.unit_effects` and
    :func:`~lightning_causal.causal.engine.intervention_hooks.intervene`. Patch's ``source`` holds one activation per
    sample (:func:`~lightning_causal.causal.engine.intervention_hooks.capture` keeps the last call's), so every call
    would be set to that one value, not each call to its own value on the paired input: no activation patching of the
    paired run, unless the calls return the same value there, which the run explained cannot tell (a module applied
    twice to the same tensor gives per-call patching's output; ``act(y)`` beside ``act(y.clamp(min=0))``, equal calls
    on inputs of positive ``y`` only, does not).

    Args:
        layer: the module's name.
        calls: its calls in one forward pass.

    Examples:
        >>> print(repeated_patch_error("block", 3))  # doctest: +ELLIPSIS
        Expected layer 'block' to run once per forward pass for Patch, but it runs 3 times (a shared layer, ...
    """
    return ValueError(
        f"Expected layer {layer!r} to run once per forward pass for Patch, but it runs {calls} times (a shared layer, a "
        "weight-tied block, an RNN cell looped in forward, an ODE function at every solver stage): Patch's source holds "
        "one activation per sample, so every call would be set to that one value (capture keeps the last call's), not "
        "each call to its own value on the paired input, which is no activation patching of the paired run. Name one "
        "call with an nn.Identity applied to its output and patch that (docs/your_model.md, 'Layers in functional "
        "code'), or intervene with SetTo, MeanOf or Resample, which are set at every call")
