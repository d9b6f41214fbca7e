"""Coded columns of an SCM: a binary attribute's two values, and category codes given fractions.

A flip swaps the two values of a binary attribute: :func:`check_binary_values` validates them,
:func:`check_binary` checks a column holds only them (a categorical attribute of three or more levels
is refused, naming the callable counterfactual to use), :func:`flipped_binary` gives each row's other
value exactly. :func:`warn_fractional_codes` warns when a counterfactual gives fractions in the columns
an :class:`~lightning_causal.causal.scm.scm.AdditiveNoiseSCM` declares category codes (``codes=``).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from typing import TYPE_CHECKING

import torch
from torch import Tensor

from lightning_causal.causal.engine.user_frame import outside_package

if TYPE_CHECKING:
    from lightning_causal.causal.scm.scm import AdditiveNoiseSCM

__all__ = ["check_binary", "check_binary_values", "flipped_binary", "warn_fractional_codes"]


def _require_binary(col: Tensor, values: tuple[float, float], allowed: Tensor, name: str) -> None:
    """Raise ``ValueError`` unless every entry of ``col`` is one of ``values`` (``allowed``, same as a tensor)."""
    if not bool(torch.isin(col, allowed).all()):
        ok = (col == values[0]) | (col == values[1])
        bad = col[~ok][:4].tolist()
        levels = torch.unique(col[torch.isfinite(col)])
        lo, hi = min(values), max(values)
        inside = levels[(levels > lo) & (levels < hi)]  # a blend: fractions between the codes (0.3, 0.7 of a 0/1 column);
        blended = bool(((levels >= lo) & (levels <= hi)).all()) and bool((inside != inside.round()).any())  # 1 of (0, 2): a level
        if levels.numel() > 2:  # a categorical attribute: no pair of `values=` makes a flip of every row
            shown = ", ".join(f"{v:g}" for v in levels[:8].tolist()) + (", ..." if levels.numel() > 8 else "")
            if blended:  # or a numeric column scaled into the codes' range (min-max to [0, 1]): its advice too
                raise ValueError(f"Expected column {name!r} to hold only the values {values} but it holds "
                                 f"{levels.numel()} levels ({shown}), {_BLENDED}; if it is a numeric column, not blended "
                                 "(a feature scaled to the codes' range), a flip swaps the two values of a binary "
                                 "attribute: pass a callable counterfactual that sets the column, e.g. `lambda x: "
                                 "scm.counterfactual(x, {column: x[:, j] + delta})` (descendants recomputed)")
            raise ValueError(
                f"Expected column {name!r} to hold only the values {values} but it holds {levels.numel()} levels ({shown}): a "
                "flip swaps the two values of a binary attribute. For an attribute of three or more levels pass a callable "
                "counterfactual that gives every row another level, e.g. `lambda x: scm.counterfactual(x, {column: "
                "(x[:, j] + 1) % k})` (descendants recomputed) or an edited copy of x (the naive one), with `sensitive=j` "
                "for the group metrics; one callable per level, `lambda x: scm.counterfactual(x, {column: "
                "torch.full_like(x[:, j], level)})`, compares every other row with that level (rows already at it are left out of the means)"
            )
        raise ValueError(
            f"Expected column {name!r} to hold only the values {values} but got e.g. {bad}; for a binary attribute coded "
            "otherwise (standardised, -1/+1) pass its two codes as `values=`: AttributeFlip(column, values=(v0, v1)) "
            "or scm.flip(column, values=(v0, v1))" + (f"; or, {_BLENDED}" if blended else "")
        )


#: The end of the flip's refusal of a column whose values lie between its two codes (a mixed batch).
_BLENDED = ("values between the two codes: a batch mixed by mixup or CutMix (λ·x_i + (1 − λ)·x_j) blends the attribute "
            "too, and a blend has no other value to flip to. Flip unmixed rows: mix inside `training_step` and repair "
            "with `CausalRepairModule.wrap(module, terms)` (the terms get the batch as loaded), leave the attribute's "
            "column out of the mixing, or audit a probe of unmixed batches (the validation data, CausalAuditCallback's "
            "default)")


def check_binary(x: Tensor, j: int, values: tuple[float, float], name: str) -> Tensor:
    col = x[:, j]
    allowed = torch.tensor(values, dtype=col.dtype, device=col.device)
    _require_binary(col, values, allowed, name)
    return flipped_binary(col, allowed)


def flipped_binary(col: Tensor, allowed: Tensor) -> Tensor:
    """The other value of a binary column, exactly ``allowed[1]`` where ``col`` holds ``allowed[0]``
    and ``allowed[0]`` elsewhere (``v0 + v1 − x`` would round for codes not exact in the dtype, and
    the counterfactual of the counterfactual would then not be ``x``)."""
    return torch.where(col == allowed[0], allowed[1], allowed[0])


def warn_fractional_codes(scm: AdditiveNoiseSCM, columns: Sequence[int], example: tuple[float, float] | None = None,
                          stacklevel: int | None = None) -> None:
    """Warn that a counterfactual gives fractions in ``columns``, declared category codes
    (``AdditiveNoiseSCM(codes=...)``): a model that reads codes (``.long()``, an embedding, one-hot)
    runs another category there, so a gap measured on it is not that of the counterfactual.
    ``stacklevel``: ``None`` = the first caller outside this package."""
    names = [scm.columns[j] for j in columns]
    shown = "" if example is None else f" (e.g. {names[0]!r} {example[0]:g} -> {example[1]:.4g})"
    warnings.warn(
        f"AdditiveNoiseSCM: the counterfactual gives fractions in the category-code columns {names}{shown} (`codes=`). "
        "A model that reads them as codes (`.long()`, an embedding, one-hot) runs another category there, so the "
        "counterfactual's effect on it is not the one measured. An additive-noise SCM models numeric columns: give a "
        "code column no parents (it keeps its code; the SCM then assumes the intervened attribute does not cause it), "
        "or, if the model reads the column as a number, leave it out of `codes=`",
        UserWarning, stacklevel=outside_package() if stacklevel is None else stacklevel,
    )


def check_binary_values(values: Sequence[float]) -> tuple[float, float]:
    vals = tuple(values) if isinstance(values, (tuple, list)) else ()
    if len(vals) != 2 or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in vals) or vals[0] == vals[1]:
        raise ValueError(f"Expected argument `values` to be two distinct finite numbers (a binary attribute) but got {values!r}")
    return float(vals[0]), float(vals[1])
