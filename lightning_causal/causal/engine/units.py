"""Where the units of a layer's output live: conv channels, MLP neurons, attention heads.

A *unit layout* names the dimension of a module output that indexes units (``unit_dim``; default
1, the channels of ``[N, C, H, W]`` or the neurons of ``[N, D]``; ``-1`` for the neurons of
``[N, T, D]`` hidden states) and optionally groups it into ``num_heads`` contiguous heads (Hugging
Face self-attention returns ``[N, T, H * d]``: unit ``u`` is the slice ``[u * d, (u + 1) * d)`` of
the last dimension). :func:`resolve_layout` turns the two options into ``(dim, unit_size,
num_units)`` for a concrete shape; :func:`unit_positions_mask` and :func:`per_unit_values` are
the per-unit building blocks of the interventions (:mod:`~.interventions`) and of the row engine
(:func:`~lightning_causal.causal.engine.ablation.replace_units`).

Examples:
    >>> resolve_layout((2, 5, 12), unit_dim=-1, num_heads=3)
    Layout(dim=2, unit_size=4, num_units=3)
    >>> resolve_layout((2, 8, 4, 4))
    Layout(dim=1, unit_size=1, num_units=8)
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import torch
from torch import Tensor

from lightning_causal.causal.engine.checks import check_int

__all__ = ["Layout", "check_layout_options", "from_units", "per_layer", "per_layer_layouts", "resolve_layout", "selected_units",
           "to_units", "unit_kind", "unit_positions_mask", "per_unit_values", "unit_sums"]


class Layout(NamedTuple):
    """A resolved unit layout: units index dimension ``dim`` in slices of ``unit_size``.

    Examples:
        >>> layout = resolve_layout((8, 5, 12), num_heads=3)  # 3 heads of 4 positions along the last dim
        >>> layout.dim, layout.unit_size, layout.num_units
        (2, 4, 3)
    """

    dim: int
    unit_size: int
    num_units: int


def check_layout_options(unit_dim: int | None, num_heads: int | None) -> tuple[int | None, int | None]:
    """Validate ``unit_dim`` (None or a non-zero int) and ``num_heads`` (None or a positive int).

    Args:
        unit_dim: the dimension that holds the units (negative counts from the end); ``None``: the
            default of :func:`resolve_layout`; 0 (the batch) is refused.
        num_heads: split the unit dimension into this many heads (an integer >= 1), or ``None``: one
            unit per position.
    """
    check_int("unit_dim", unit_dim, none_ok=True)
    if unit_dim == 0:
        raise ValueError("Expected argument `unit_dim` not to be the batch dimension 0 but got 0")
    check_int("num_heads", num_heads, minimum=1, none_ok=True)
    return unit_dim, num_heads


def resolve_layout(shape: Sequence[int], unit_dim: int | None = None, num_heads: int | None = None) -> Layout:
    """``(dim, unit_size, num_units)`` of an output of ``shape`` ``[N, ...]``.

    ``unit_dim`` defaults to 1, or to the last dimension when ``num_heads`` is given.

    Args:
        shape: the output's shape ``[N, ...]`` (at least 2-d).
        unit_dim: the dimension of the units, as above (not 0; negative counts from the end).
        num_heads: ``None``: one unit per position of ``unit_dim``; else that dimension splits into this
            many heads of ``size // num_heads`` positions (must divide its size).

    Raises:
        ValueError: the output has no unit dimension, ``unit_dim`` is out of range or the batch
            dimension, or ``num_heads`` does not divide the size of the unit dimension.

    Examples:
        >>> resolve_layout((8, 16))
        Layout(dim=1, unit_size=1, num_units=16)
        >>> resolve_layout((8, 5, 12), num_heads=3)
        Layout(dim=2, unit_size=4, num_units=3)
    """
    check_layout_options(unit_dim, num_heads)
    ndim = len(shape)
    if ndim < 2:
        raise ValueError(f"Expected a module output with a unit dimension (>= 2-d) but got shape {list(shape)}")
    dim = unit_dim if unit_dim is not None else (-1 if num_heads is not None else 1)
    if not -ndim <= dim < ndim or dim % ndim == 0:
        raise ValueError(
            f"Expected argument `unit_dim` to name a non-batch dimension of an output of shape {list(shape)} but got {dim}"
        )
    dim %= ndim
    size = int(shape[dim])
    if num_heads is None:
        return Layout(dim, 1, size)
    if size % num_heads:
        raise ValueError(
            f"Expected argument `num_heads` to divide the size {size} of dimension {dim} of an output of shape "
            f"{list(shape)} but got {num_heads}"
        )
    return Layout(dim, size // num_heads, num_heads)


def _along(values: Tensor, ndim: int, dim: int) -> Tensor:
    shape = [1] * ndim
    shape[dim] = values.shape[0]
    return values.view(shape)


def unit_positions_mask(shape: Sequence[int], layout: Layout, units: Sequence[int] | None, device: torch.device) -> Tensor:
    """Boolean mask broadcastable to ``shape`` that selects the positions of ``units`` (None: all).

    Args:
        shape: the output's shape ``[N, ...]``.
        layout: its :class:`Layout` (:func:`resolve_layout`).
        units: unit indices in ``[0, U)``, or ``None`` for all units.
        device: the device of the mask.
    """
    full = [1] * len(shape)
    if units is None:
        return torch.ones(full, dtype=torch.bool, device=device)
    if max(units) >= layout.num_units:
        raise ValueError(
            f"Expected `units` in [0, {layout.num_units - 1}] for an output with {layout.num_units} units but got {list(units)}"
        )
    selected = torch.zeros(layout.num_units, dtype=torch.bool, device=device)
    selected[list(units)] = True
    return _along(selected.repeat_interleave(layout.unit_size), len(shape), layout.dim)


def per_unit_values(value: Tensor, output: Tensor, layout: Layout, name: str) -> Tensor:
    """Broadcast a scalar, a per-unit ``[U]``, a per-position ``[size of the unit dimension]`` or a
    per-element ``[*output.shape[1:]]`` value to ``output``.

    Args:
        value: the value to broadcast: a scalar, ``[U]``, ``[size of the unit dimension]`` or one
            sample's shape.
        output: the module output ``[N, ...]`` it replaces values of (the result takes its device, and
            its dtype unless ``value`` is float and ``output`` is not).
        layout: ``output``'s :class:`Layout`.
        name: the argument's name, for the error message.

    Examples:
        >>> per_unit_values(torch.tensor([1.0, 2.0]), torch.zeros(1, 3, 4), Layout(2, 2, 2), "value")
        tensor([[[1., 1., 2., 2.]]])
    """
    keep = value.is_floating_point() and not output.is_floating_point()  # fractional codes are refused by the caller
    value = value.to(device=output.device, dtype=value.dtype if keep else output.dtype)
    if value.dim() == 0:
        return value
    if value.shape == output.shape[1:]:
        return value.unsqueeze(0)
    if value.dim() == 1 and value.shape[0] == layout.num_units:
        return _along(value.repeat_interleave(layout.unit_size), output.dim(), layout.dim)
    if value.dim() == 1 and value.shape[0] == output.shape[layout.dim]:
        return _along(value, output.dim(), layout.dim)
    shapes = [[layout.num_units], [output.shape[layout.dim]], list(output.shape[1:])]
    what = ["one value per unit", "one per position of the unit dimension", "one sample's shape"]
    allowed = [f"{shape} ({w})" for i, (shape, w) in enumerate(zip(shapes, what)) if shape not in shapes[:i]]
    raise ValueError(
        f"Expected argument `{name}` to be a scalar or of shape {' or '.join(allowed)} for an output of shape "
        f"{list(output.shape)} but got shape {list(value.shape)}"
    )


def unit_sums(values: Tensor, layout: Layout) -> Tensor:
    """``[N, U]``: the sum of ``values`` ``[N, ...]`` over the positions of each unit.

    Args:
        values: a map ``[N, ...]`` shaped like the layer's output.
        layout: the output's :class:`Layout`.

    Examples:
        >>> unit_sums(torch.arange(8.0).view(1, 2, 4), Layout(2, 2, 2))
        tensor([[10., 18.]])
    """
    moved = values.movedim(layout.dim, 1)
    return moved.reshape(moved.shape[0], layout.num_units, layout.unit_size, -1).sum((2, 3))


def to_units(h: Tensor, layout: Layout) -> Tensor:
    """``h`` ``[N, ...]`` viewed with its units on dimension 1: ``[N, U, ...]`` (a unit of several
    positions, a head, keeps them as ``[N, U, unit_size, ...]``). The default layout (dimension 1,
    one position per unit) returns ``h`` itself. :func:`from_units` inverts it.

    Args:
        h: a layer's output ``[N, ...]``.
        layout: its :class:`Layout` (:func:`resolve_layout`).

    Examples:
        >>> h = torch.arange(12.0).view(1, 2, 6)      # [N, T, H * d], 3 heads of 2
        >>> to_units(h, Layout(2, 2, 3))[0, 1]        # head 1: [d, T]
        tensor([[2., 8.],
                [3., 9.]])
        >>> torch.equal(from_units(to_units(h, Layout(2, 2, 3)), Layout(2, 2, 3)), h)
        True
    """
    if layout.dim == 1 and layout.unit_size == 1:
        return h
    moved = h.movedim(layout.dim, 1)
    return moved.reshape(moved.shape[0], layout.num_units, layout.unit_size, *moved.shape[2:]) if layout.unit_size > 1 else moved


def from_units(u: Tensor, layout: Layout) -> Tensor:
    """The layer's own layout back from :func:`to_units`'s ``[N, U, ...]`` (contiguous, as models
    that ``view`` their activations need).

    Args:
        u: ``[N, U, ...]`` as :func:`to_units` returns it.
        layout: the layout ``u`` was made with.
    """
    if layout.dim == 1 and layout.unit_size == 1:
        return u
    if layout.unit_size > 1:
        u = u.reshape(u.shape[0], layout.num_units * layout.unit_size, *u.shape[3:])
    return u.movedim(1, layout.dim).contiguous()


def per_layer(name: str, value: int | Mapping[str, int] | None, layers: Sequence[str]) -> dict[str, int | None]:
    """One option value for every layer, or a mapping layer -> value (layers it leaves out: None).

    Args:
        name: the option's name, for the error message.
        value: one value for every layer, or a mapping from layer name to value whose keys are all among
            ``layers``.
        layers: the layer names.

    Examples:
        >>> per_layer("unit_dim", {"fc": -1}, ["conv", "fc"])
        {'conv': None, 'fc': -1}
    """
    if isinstance(value, Mapping):
        unknown = [k for k in value if k not in layers]
        if unknown:
            raise ValueError(f"Expected the keys of argument `{name}` to be among `layers` {list(layers)} but got {unknown}")
        return {layer: value.get(layer) for layer in layers}
    return dict.fromkeys(layers, value)


def per_layer_layouts(unit_dim: int | Mapping[str, int] | None, num_heads: int | Mapping[str, int] | None,
                      layers: Sequence[str]) -> tuple[dict[str, int | None], dict[str, int | None]]:
    """``unit_dim`` and ``num_heads`` for every layer (:func:`per_layer`), each pair validated
    (:func:`check_layout_options`): what every estimator and audit over several layers takes.

    Args:
        unit_dim: ``unit_dim`` for every layer, or a mapping layer -> ``unit_dim`` (as in
            :func:`check_layout_options`).
        num_heads: ``num_heads`` for every layer, or a mapping layer -> ``num_heads``.
        layers: the layer names.

    Examples:
        >>> per_layer_layouts(-1, {"attn": 4}, ["attn", "mlp"])
        ({'attn': -1, 'mlp': -1}, {'attn': 4, 'mlp': None})
    """
    dims, heads = per_layer("unit_dim", unit_dim, layers), per_layer("num_heads", num_heads, layers)
    for layer in layers:
        check_layout_options(dims[layer], heads[layer])
    return dims, heads


def unit_kind(unit_dim: int | None, num_heads: int | None) -> str | None:
    """What figures call a layer's units: ``"head"`` (``num_heads``), ``"neuron"`` (units off
    dimension 1, the features of ``[N, T, D]``), else ``None`` (channels, positions: "unit").

    Args:
        unit_dim: the layer's ``unit_dim`` (``None``: dimension 1).
        num_heads: the layer's ``num_heads`` (``None``: no heads).

    Examples:
        >>> unit_kind(None, 4), unit_kind(-1, None), unit_kind(None, None), unit_kind(1, None)
        ('head', 'neuron', None, None)
    """
    if num_heads is not None:
        return "head"
    return "neuron" if unit_dim is not None and unit_dim != 1 else None


def selected_units(units: Sequence[int] | None, layout: Layout, layer: str, device: torch.device) -> Tensor:
    """The units an intervention names (``units``; ``None``: every unit of ``layout``) as a tensor on ``device``;
    ``ValueError`` naming ``layer`` where one is past the layout's last unit.

    Args:
        units: the intervention's ``units``, or ``None`` for all.
        layout: the layer's unit layout (:func:`resolve_layout`).
        layer: the layer's name, for the message.
        device: where the tensor goes.

    Examples:
        >>> selected_units(None, resolve_layout((2, 3), 1, None), "fc", torch.device("cpu"))
        tensor([0, 1, 2])
    """
    chosen = torch.as_tensor(units if units is not None else range(layout.num_units), device=device)
    if int(chosen.max()) >= layout.num_units:
        raise ValueError(f"Expected `units` in [0, {layout.num_units - 1}] for layer {layer!r} but got {chosen.tolist()}")
    return chosen
