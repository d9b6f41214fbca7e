"""Rows of the hidden-unit estimators: row ``r`` of a flat index applies intervention ``k`` to
unit ``u`` of sample ``s`` (``r = (k · U + u) · N + s``), as an edit of the layer's output."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from lightning_causal.causal.engine.ablation import replace_units, replace_units_
from lightning_causal.causal.engine.folded_rows import unfold
from lightning_causal.causal.engine.interventions import Intervention, Patch, Resample
from lightning_causal.causal.engine.units import Layout

__all__ = ["row_values", "unit_rows"]

Edit = Callable[[Tensor], Tensor]


def row_values(ivs: Sequence[Intervention], k: Tensor, h: Tensor, drawn: dict | None = None,
               samples: Tensor | None = None) -> Tensor:
    """Intervened values of each row ``r`` of ``h`` under intervention ``ivs[k[r]]``.

    ``samples`` (the sample index of each row) gives a :class:`Patch` its own sample's source row;
    without it a :class:`Patch` takes ``h``'s rows for the samples in order (and refuses another count).

    ``drawn`` (a dict the caller keeps for one set of rows) holds the values of a
    :class:`Resample` once drawn, so that every call of a layer that runs several times per pass
    gets the same donor per row ("one draw per row", whatever the chunking), not a new draw per call.
    """

    def values(iv: Intervention, part: Tensor, rows: Tensor | None) -> Tensor:
        if isinstance(iv, Patch) and rows is not None:
            return iv.sample_values(part, rows)
        if drawn is None or not isinstance(iv, Resample):
            return iv.values_like(part)
        key = (id(iv), tuple(part.shape), part.dtype, part.device)
        if key not in drawn:
            drawn[key] = iv.values_like(part)
        return drawn[key]

    if len(ivs) == 1:
        return values(ivs[0], h, samples).expand_as(h)
    vals = torch.empty_like(h)
    for kk in k.unique().tolist():
        sel = k == kk
        vals[sel] = values(ivs[kk], h[sel], None if samples is None else samples[sel]).expand_as(h[sel])
    return vals


def unit_rows(ivs: Sequence[Intervention], units: Tensor, layout: Layout, n: int, *, idx: Tensor,
              fold: int = 1) -> tuple[Edit, Tensor]:
    """``(edit, samples)`` of the flat rows ``idx``: ``edit(h)`` replaces unit ``u`` of each row by
    its intervention's value (applied to the layer's output of those rows).

    ``fold > 1``: the layer's output holds ``fold`` rows per row of the pass, one row's after the
    other (``[R·fold, ...]``, :mod:`~lightning_causal.causal.engine.folded_rows`); the edit works on
    its view ``[R, fold, ...]``, on which ``ivs`` and ``layout`` name the units
    (:func:`~lightning_causal.causal.engine.folded_rows.unfolded_intervention`).

    A layer called again in the forward pass gets the edit at every call, as :func:`intervene`
    applies it: the units are found in each call's own output (a shared linear applied to
    ``[N, D]`` and then to ``[N, T, D]`` with ``unit_dim=-1``: the last dimension both times). A
    call whose output does not hold one row per row, or another number of units, is refused. A
    :class:`Resample` draws its donors once for these rows, used at every call and every run of them;
    a :class:`Patch` gives each row its own sample's source row.
    """
    for iv in ivs:
        if isinstance(iv, Patch) and iv.source.shape[0] != n:
            raise ValueError(
                f"Expected argument `source` of {iv!r} to hold one row per sample explained ({n}) but got "
                f"{list(iv.source.shape)}: Patch pairs source row i with sample i (record it on the {n} paired inputs)")
    ku, s = idx // n, idx % n
    kk, u = ku // units.numel(), units[ku % units.numel()]

    def checked_layout(h: Tensor) -> Layout:
        lay = ivs[0].layout(h) if h.dim() > 1 else layout
        if h.shape[0] != u.shape[0] or fold > 1 and h.shape[1] != fold or lay.num_units != layout.num_units:
            raise ValueError(
                f"Expected every call of the layer in a forward pass to return one row per row of the pass "
                f"({u.shape[0]}) with {layout.num_units} units, as its first call does, but a later call returned "
                f"{list(h.shape)} ({lay.num_units} units on dimension {lay.dim}): a module shared across inputs of "
                "other shapes (rows flattened into the batch). Name a module called once, or one whose calls all "
                "keep the samples on dimension 0")
        return lay

    drawn: dict = {}  # Resample's donors of these rows, drawn at the first call

    def view(h: Tensor) -> Tensor:  # [R·fold, ...] as [R, fold, ...]; a wrong row count is left for checked_layout
        return h if fold == 1 or h.shape[0] != u.shape[0] * fold else unfold(h, u.shape[0])

    def edit(h: Tensor) -> Tensor:
        v = view(h)
        lay = checked_layout(v)
        return replace_units(v, u, row_values(ivs, kk, v, drawn, s), lay.dim, unit_size=lay.unit_size).reshape(h.shape)

    def in_place(h: Tensor) -> Tensor:  # the same, written into a fresh copy of the layer's output
        v = view(h)
        lay = checked_layout(v)
        return replace_units_(v, u, row_values(ivs, kk, v, drawn, s), lay.dim, unit_size=lay.unit_size).reshape(h.shape)

    edit.in_place = in_place  # type: ignore[attr-defined]  # what the prefix cache's runners call on their own copy
    edit.changed_units = (u, layout.dim, layout.unit_size)  # type: ignore[attr-defined]  # what the prefix cache's linear update reads
    return edit, s
