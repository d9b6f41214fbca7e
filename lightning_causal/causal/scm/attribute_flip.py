"""Counterfactuals of a sensitive attribute for fairness audits and repair: the naive
:class:`AttributeFlip`, and :func:`resolve_counterfactual`, the one map ``x -> x_cf`` that audits and
repair terms use for an SCM, a flip or a callable."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence

import torch
from torch import Tensor

from lightning_causal.causal.scm.scm import AdditiveNoiseSCM, Value, _check_binary, _check_values

__all__ = ["AttributeFlip", "resolve_counterfactual", "sensitive_index"]


class AttributeFlip:
    """The naive counterfactual: flip the binary ``column`` and leave every other column as it is.

    Weaker than an SCM counterfactual: it ignores the attribute's effect on its descendants
    (mediators such as education or occupation), so a model can stay unfair through them while
    its flip gap is 0. Use :class:`AdditiveNoiseSCM` where a causal graph is available.

    Args:
        column: the sensitive column, a name (then give ``columns``) or an index.
        values: the two values of the binary attribute.
        columns: the D column names in tensor order (needed for a named column).

    Examples:
        >>> AttributeFlip(0).flip_counterfactual(torch.tensor([[1.0, 5.0], [0.0, 6.0]]))
        tensor([[0., 5.],
                [1., 6.]])
    """

    def __init__(self, column: str | int, values: Sequence[float] = (0.0, 1.0), columns: Sequence[str] | None = None) -> None:
        self.values = _check_values(values)
        self.columns = list(columns) if columns is not None else None
        if isinstance(column, str):
            if self.columns is None or column not in self.columns:
                raise ValueError(f"Expected argument `column` {column!r} to be one of `columns` {self.columns}")
            self.index_ = self.columns.index(column)
        elif isinstance(column, int) and not isinstance(column, bool) and column >= 0:
            self.index_ = column
        else:
            raise ValueError(f"Expected argument `column` to be a column name or a non-negative index but got {column!r}")
        self.column = column

    def index(self, column: str | int | None = None) -> int:
        """The flipped column's index; ``column`` (if given) must name the same column."""
        if column is None or column == self.column or column == self.index_:
            return self.index_
        if self.columns is not None and column in self.columns and self.columns.index(column) == self.index_:
            return self.index_
        raise ValueError(f"Expected the sensitive column {column!r} to be the flipped column {self.column!r}")

    def counterfactual(self, x: Tensor, interventions: Mapping[str | int, Value]) -> Tensor:
        """``x`` with the intervened column(s) set and nothing else changed."""
        x_cf = x.clone()
        for k, v in interventions.items():
            x_cf[:, self.index(k)] = torch.as_tensor(v, dtype=x.dtype, device=x.device)
        return x_cf

    def flip_counterfactual(self, x: Tensor, column: str | int | None = None) -> Tensor:
        """``x`` with the binary column swapped (``v0 <-> v1``) in every row."""
        j = self.index(column)
        if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] <= j:
            raise ValueError(f"Expected argument `x` to be a tensor [N, D] with D > {j} but got {getattr(x, 'shape', type(x))}")
        return self.counterfactual(x, {j: _check_binary(x, j, self.values, str(self.column))})

    def __repr__(self) -> str:
        return f"AttributeFlip(column={self.column!r}, values={self.values})"


def sensitive_index(counterfactual: object, sensitive: str | int | None) -> int:
    """Column index of ``sensitive`` for an SCM, a flip, or (an int) any counterfactual."""
    if isinstance(counterfactual, (AdditiveNoiseSCM, AttributeFlip)):
        return counterfactual.index(sensitive)  # type: ignore[arg-type]
    if isinstance(sensitive, int) and not isinstance(sensitive, bool) and sensitive >= 0:
        return sensitive
    raise ValueError(f"Expected argument `sensitive` to be a column index for a callable counterfactual but got {sensitive!r}")


def resolve_counterfactual(counterfactual: object, sensitive: str | int | None) -> Callable[[Tensor], Tensor]:
    """The map ``x -> x_cf`` that flips ``sensitive``: ``counterfactual.flip_counterfactual(x, sensitive)``
    for an SCM or an :class:`AttributeFlip` (anything with that method), or a callable ``x -> x_cf`` as is.

    Raises:
        ValueError: ``sensitive`` is not a column of the SCM / not the flipped column.
        TypeError: ``counterfactual`` is none of these.
    """
    if hasattr(counterfactual, "flip_counterfactual"):
        if isinstance(counterfactual, (AdditiveNoiseSCM, AttributeFlip)):
            counterfactual.index(sensitive)  # type: ignore[arg-type]  # fail early on a missing column
        # a partial of a bound method pickles (spawned DDP processes); a lambda would not
        return functools.partial(counterfactual.flip_counterfactual, column=sensitive)  # type: ignore[attr-defined]
    if callable(counterfactual):
        return counterfactual  # type: ignore[return-value]
    raise TypeError(
        f"Expected argument `counterfactual` to be an AdditiveNoiseSCM, an AttributeFlip or a callable x -> x_cf but got {type(counterfactual)}"
    )
