"""Rows of the hidden-unit estimators: row ``r`` of a flat index applies intervention ``k`` to
unit ``u`` of sample ``s`` (``r = (k · U + u) · N + s``), as an edit of the layer's output."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from lightning_causal.causal.engine.ablation import replace_units
from lightning_causal.causal.engine.interventions import Intervention
from lightning_causal.causal.engine.units import Layout

__all__ = ["row_values", "unit_rows"]

Edit = Callable[[Tensor], Tensor]


def row_values(ivs: Sequence[Intervention], k: Tensor, h: Tensor) -> Tensor:
    """Intervened values of each row ``r`` of ``h`` under intervention ``ivs[k[r]]``."""
    if len(ivs) == 1:
        return ivs[0].values_like(h).expand_as(h)
    vals = torch.empty_like(h)
    for kk in k.unique().tolist():
        sel = k == kk
        vals[sel] = ivs[kk].values_like(h[sel]).expand_as(h[sel])
    return vals


def unit_rows(ivs: Sequence[Intervention], units: Tensor, layout: Layout, n: int, *, idx: Tensor) -> tuple[Edit, Tensor]:
    """``(edit, samples)`` of the flat rows ``idx``: ``edit(h)`` replaces unit ``u`` of each row by
    its intervention's value (applied to the layer's output of those rows)."""
    ku, s = idx // n, idx % n
    kk, u = ku // units.numel(), units[ku % units.numel()]

    def edit(h: Tensor) -> Tensor:
        return replace_units(h, u, row_values(ivs, kk, h), layout.dim, unit_size=layout.unit_size)

    return edit, s
