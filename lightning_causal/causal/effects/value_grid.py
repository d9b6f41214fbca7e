"""The values an interventional expectation sets each feature group to, ``μ_g(α)`` for ``α`` in a grid
``[G, K]`` (:func:`value_grid`): given, or quantiles of each group over the probe; whole codes for groups in
an integer input; a warning for a group constant over the probe (its curve is flat)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from torch import Tensor

from lightning_causal.causal.engine.checks import check_int
from lightning_causal.causal.engine.input_noise import code_elements
from lightning_causal.causal.engine.probe_warnings import ConstantGroupsWarning
from lightning_causal.causal.engine.token_ids import EmbeddingReader
from lightning_causal.causal.engine.user_frame import outside_package

__all__ = ["code_groups", "value_grid"]


def value_grid(xs: tuple[Tensor, ...], masks: tuple[Tensor, ...], values: Tensor | str, num_values: int, g: int,
               float_codes: Tensor | None = None) -> Tensor:
    """The values ``[G, K]`` each group ``g`` is set to, ``do(x_g := α)``, from :func:`interventional_expectations
    <lightning_causal.causal.effects.input_effects.interventional_expectations>`'s ``values``: a tensor ``[K]``
    shared by the groups or ``[G, K]``, or ``"quantiles"``, ``num_values`` quantiles (5% to 95%) of each group's
    elements over ``xs``; the quantiles of a group pool its elements (elements of id ``G``, padding, are in no pool).
    A group whose 5% to 95% quantiles are one value although it varies (a sparse feature: a flag set in a few
    samples, a cue shown at one step of a sequence) takes quantiles from 0% to 100% instead, which span its observed
    range: the flat grid would give it ACE 0 whatever the model does with it.

    A group with elements in an integer input (category codes of a tuple ``(x_cont, x_cat)``) takes
    whole values only, since they are set as codes: its quantiles are the nearest observed codes (a
    linear interpolation, 0.92 between codes 0 and 1, was run as code 0 and reported as 0.92), and
    a fractional value passed for it is refused. So do the quantiles of the groups ``float_codes`` (``[G]`` bool)
    names: category codes kept in a float column and cast inside the model (``nn.Embedding(x[:, j].long())``, found
    by the clean pass, :func:`code_groups`): a linear quantile 4.25 of a marital-status code ran as code 4 and was
    reported as 4.25. A value passed for them is set as given (a fraction runs as the code below it).

    Raises:
        ValueError: ``values`` neither a tensor of shape ``[K]`` / ``[G, K]`` nor ``"quantiles"``, a group
            holding NaN or infinity for quantiles, or a fraction for a group of codes.
        TypeError: ``values`` neither a tensor nor a string.

    Examples:
        >>> x, groups = torch.tensor([[0.0, 1.0], [10.0, 1.0]]), torch.tensor([[0, 1]])
        >>> value_grid((x,), (groups,), "quantiles", 3, 2)  # group 1 is constant: a flat grid, with a warning
        tensor([[0.5000, 5.0000, 9.5000],
                [1.0000, 1.0000, 1.0000]])
        >>> sparse = torch.zeros(40, 1)
        >>> sparse[0] = 1.0  # a flag set in 1 of 40 samples: its 5%-95% quantiles are all 0
        >>> value_grid((sparse,), (torch.tensor([[0]]),), "quantiles", 3, 1)  # 0%-100% instead
        tensor([[0., 0., 1.]])
        >>> value_grid((x,), (groups,), torch.tensor([0.0, 1.0]), 3, 2)
        tensor([[0., 1.],
                [0., 1.]])
    """
    coded = torch.zeros(g, dtype=torch.bool, device=xs[0].device)  # groups with an element in an integer input
    for x, m in zip(xs, masks):
        if not x.is_floating_point():
            ids = m.expand(torch.broadcast_shapes(m.shape, x.shape)).reshape(-1)
            ids = ids[ids < g]
            coded[ids.to(coded.device)] = True
    nearest = coded if float_codes is None else coded | float_codes.to(coded.device)
    grid = _values_grid(xs, masks, values, num_values, g, nearest)
    for x, m in zip(xs, masks):  # float groups of a half precision input beside codes: set, and reported, in its dtype
        if x.is_floating_point() and x.dtype != grid.dtype:
            ids = m.expand(torch.broadcast_shapes(m.shape, x.shape)).reshape(-1)
            own = torch.zeros(g, dtype=torch.bool, device=grid.device)
            own[ids[ids < g].to(grid.device)] = True
            grid = torch.where((own & ~coded).unsqueeze(1), grid.to(x.dtype).to(grid.dtype), grid)
    bad = coded.unsqueeze(1) & (grid != grid.round())
    if bool(bad.any()):
        grp, kk = (int(i) for i in bad.nonzero()[0])
        raise ValueError(
            f"Expected whole numbers in argument `values` for group {grp}, which lies in an integer input (category codes), "
            f"but got {float(grid[grp, kk])}: a code is set as it is, and a fraction would run as another code. Pass the "
            "codes to set (`values=torch.tensor([0., 1., 2.])` for a 3-level column, or per group `[G, K]`)")
    return grid


def code_groups(xs: tuple[Tensor, ...], masks: tuple[Tensor, ...], readers: Sequence[EmbeddingReader], g: int) -> Tensor:
    """``[G]`` bool: the groups holding a position of a float input that an embedding reads cast to indices (a
    category code kept in a float column, ``EmbeddingReader.columns``), in any sample.

    Examples:
        >>> from lightning_causal.causal.engine.token_ids import EmbeddingReader
        >>> reader = EmbeddingReader("emb", "Embedding", 4, 0, (2,), (1,), 0, (2,))  # reads column 2 of input 0
        >>> code_groups((torch.zeros(2, 3),), (torch.tensor([[0, 1, 1]]),), [reader], 2)
        tensor([False,  True])
    """
    found = torch.zeros(g, dtype=torch.bool, device=xs[0].device)
    for x, m, codes in zip(xs, masks, code_elements(readers, xs)):  # per input, the elements read as codes
        if codes is not None:
            shape = torch.broadcast_shapes(m.shape, x.shape)
            ids = m.expand(shape)[codes.to(m.device).expand(shape)]
            found[ids[ids < g].to(found.device)] = True
    return found


def _values_grid(xs: tuple[Tensor, ...], masks: tuple[Tensor, ...], values: Tensor | str, num_values: int, g: int,
                 coded: Tensor) -> Tensor:
    """:func:`value_grid` before the check of the groups in integer inputs (``coded``)."""
    if isinstance(values, str):
        if values != "quantiles":
            raise ValueError(f"Expected argument `values` to be a tensor or 'quantiles' but got {values!r}")
        check_int("num_values", num_values, minimum=2)
        # quantile() takes float32 or float64: half inputs in float32, float64 ones in their own precision
        qtype = torch.float64 if _value_dtype(xs) == torch.float64 else torch.float32
        levels = torch.linspace(0.05, 0.95, num_values, device=xs[0].device, dtype=qtype)
        rows, empty = [], set()
        for grp in range(g):
            pooled = torch.cat([x.expand(torch.broadcast_shapes(m.shape, x.shape))[(m == grp).expand_as(x)] for x, m in zip(xs, masks)])
            if not bool(torch.isfinite(pooled).all()):  # else a NaN quantile, reported as a bad `values` the caller never gave
                raise ValueError(
                    f"Expected finite `inputs` for values='quantiles' but group {grp} holds NaN or infinity; pass the values "
                    "as a tensor or drop the non-finite samples"
                )
            how = "nearest" if bool(coded[grp]) else "linear"  # codes: observed codes, never a value between two
            if not pooled.numel():
                rows.append(torch.zeros_like(levels))
                empty.add(grp)
                continue
            row = torch.quantile(pooled.to(qtype), levels, interpolation=how)
            if bool((row == row[0]).all()) and bool((pooled != pooled[0]).any()):
                # a sparse group (a flag set in 4% of the samples, a cue shown at one step of a sequence): its 5%-95%
                # quantiles are one value although it varies, a flat curve that would read as no effect: span its range
                row = torch.quantile(pooled.to(qtype), torch.linspace(0, 1, num_values, device=levels.device, dtype=qtype),
                                     interpolation=how)
            rows.append(row)
        grid = torch.stack(rows)
        _warn_constant_groups(grid, empty)
        return grid.to(_value_dtype(xs))
    if not isinstance(values, Tensor):
        raise TypeError(f"Expected argument `values` to be a tensor or 'quantiles' but got {type(values)}")
    values = values.to(device=xs[0].device, dtype=_value_dtype(xs))
    if values.dim() == 1 and values.numel() >= 1:
        return values.unsqueeze(0).expand(g, -1)
    if values.dim() == 2 and values.shape[0] == g:
        return values
    raise ValueError(f"Expected argument `values` of shape [K] or [{g}, K] but got {list(values.shape)}")


def _value_dtype(xs: tuple[Tensor, ...]) -> torch.dtype:
    """The dtype of the values grid: that of the first floating point input (category codes ``x_cat``
    may come first, ``model(x_cat, x_cont)``; their groups' values are whole numbers in it), at least
    ``float32`` beside an integer input: ``bfloat16`` holds whole numbers exactly up to 256 only and
    ``float16`` up to 2048, so code 301 would run, and be reported, as code 300."""
    dtype = next(x.dtype for x in xs if x.is_floating_point())
    if torch.finfo(dtype).bits < 32 and any(not x.is_floating_point() for x in xs):
        return torch.float32
    return dtype


def _warn_constant_groups(grid: Tensor, empty: set[int]) -> None:
    """Warn when a group's quantiles are one value: it is constant over the probe, so every value
    set is the one it has, and its ACE is 0 whatever the model does with the feature (groups with
    no real element, ``empty``, padding everywhere, are not constant but absent)."""
    flat = [g for g in (grid == grid[:, :1]).all(1).nonzero().flatten().tolist() if g not in empty]
    if flat:
        shown = ", ".join(f"{i} (= {float(grid[i, 0]):g})" for i in flat[:5]) + (" ..." if len(flat) > 5 else "")
        warnings.warn(
            f"Group(s) {shown} take one value over `inputs`, so their quantile values are all equal and their "
            "interventional curve is flat: ACE 0 says nothing of the model there. Pass `values` (a tensor of the "
            "values to set, e.g. the feature's range in the training data) or a probe where the feature varies",
            ConstantGroupsWarning, stacklevel=outside_package())
