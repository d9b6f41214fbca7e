"""The one counterfactual type of the fairness API: an object ``x -> x_cf`` (the input had the
sensitive attribute been different) that :func:`~lightning_causal.causal.scm.fairness.counterfactual_fairness_gap`,
:class:`~lightning_causal.audits.fairness.FairnessAudit` and
:class:`~lightning_causal.repair.fairness.CounterfactualFairnessTerm` all take.

Implementations: :class:`~lightning_causal.causal.scm.attribute_flip.AttributeFlip` (flip a binary
column), :class:`~lightning_causal.causal.scm.scm_flip.SCMFlip` (``scm.flip("sex")``: flip and
propagate through an SCM), :class:`~lightning_causal.causal.scm.token_swap.TokenSwap` (swap identity
terms in token ids) and :class:`CallableCounterfactual` (any callable ``x -> x_cf``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

__all__ = ["Counterfactual", "CallableCounterfactual", "binary_groups"]


class Counterfactual(ABC):
    """``flip_counterfactual(x) -> x_cf``, same shape as ``x``, computed without gradient by callers.

    A counterfactual of your own subclasses it: ``flip_counterfactual`` (required) and, for group metrics of
    other groups than the values of ``column`` (intersections such as sex × race), ``groups`` with
    ``group_names``.

    Attributes:
        column: index of the sensitive column of tabular inputs ``[N, D]`` (group metrics compare
            its values), or ``None`` when the counterfactual knows no column (token swaps).
        group_names: the name of each group id that :meth:`groups` gives (group ``k`` is
            ``group_names[k]``), shown in ``FairnessAudit``'s groups table and text card; ``None``:
            groups that are the values of ``column`` are named ``<column>=<value>``, others by their id.

    Examples:
        >>> class SexByRace(Counterfactual):
        ...     column, group_names = 0, ["female, white", "female, black", "male, white", "male, black"]
        ...     def flip_counterfactual(self, x):
        ...         return torch.stack([1 - x[:, 0], x[:, 1]], 1)
        ...     def groups(self, x):
        ...         return (2 * x[:, 0] + x[:, 1]).long()
        >>> SexByRace().groups(torch.tensor([[0.0, 1.0], [1.0, 0.0]])).tolist()
        [1, 2]
    """

    column: int | None = None
    group_names: Sequence[str] | None = None
    #: whether every row's counterfactual differs from the row (a flipped binary column), so that a
    #: repair may run every row's pair without checking which rows changed
    changes_every_row: bool = False
    #: whether each position's counterfactual depends on that position alone (a token swap), so that
    #: the counterfactual of a sentence's real tokens is ``x_cf`` with its padded positions kept as in ``x``
    per_position: bool = False

    @abstractmethod
    def flip_counterfactual(self, x: Tensor) -> Tensor:
        """The counterfactual of every row of ``x``.

        Args:
            x: inputs ``[N, ...]`` (``[N, D]`` for tabular counterfactuals, token ids for
                ``TokenSwap``).
        """

    def __call__(self, x: Tensor) -> Tensor:
        return self.flip_counterfactual(x)

    def groups(self, x: Tensor) -> Tensor | None:
        """Sensitive group of each row ``[N]`` for the group metrics (``-1``: no group), or
        ``None`` when the counterfactual defines none. Default: the values of ``column``.

        Args:
            x: inputs ``[N, ...]``.
        """
        if self.column is None or x.dim() != 2 or x.shape[1] <= self.column:
            return None
        return x[:, self.column]

    def check_sensitive(self, sensitive: str | int | None) -> None:
        """Accept ``sensitive`` only when it names this counterfactual's own column (or is ``None``).

        Args:
            sensitive: the caller's ``sensitive=`` (a column name or index), or ``None``.
        """
        if sensitive is not None and sensitive != self.column:
            raise ValueError(
                f"Expected argument `sensitive` to be None or the counterfactual's own column {self.column!r} "
                f"but got {sensitive!r}; the counterfactual already knows its column"
            )


def binary_groups(column: Tensor, values: tuple[float, float]) -> Tensor:
    """Group ids ``[N]`` of a binary attribute's column: ``0`` where it holds ``values[0]``, ``1``
    where ``values[1]``, ``-1`` elsewhere (however the attribute is coded: 0/1, −1/+1, standardised).

    Args:
        column: the attribute's values ``[N]``.
        values: ``(v0, v1)``: the attribute's two values.

    Examples:
        >>> binary_groups(torch.tensor([-1.0, 1.0, 1.0]), (-1.0, 1.0))
        tensor([0, 1, 1])
    """
    ref = torch.tensor(values, dtype=column.dtype, device=column.device)
    groups = torch.full(column.shape, -1, dtype=torch.long, device=column.device)
    return groups.masked_fill(column == ref[0], 0).masked_fill(column == ref[1], 1)


def _is_index(column: object) -> bool:
    return isinstance(column, int) and not isinstance(column, bool) and column >= 0


class CallableCounterfactual(Counterfactual):
    """A callable ``x -> x_cf`` as a :class:`Counterfactual`.

    The callable gets a copy of ``x``: one that edits its argument in place (``x[:, 0] = 1 − x[:, 0];
    return x``) would otherwise change the caller's rows and make ``x_cf`` equal ``x``. Rows it
    leaves unchanged are not penalised or counted (``changes_every_row`` is false).

    Args:
        fn: the map ``x -> x_cf``.
        column: index of the sensitive column (for group metrics: its values are the groups), the
            indices of a one-hot encoded attribute's columns (a list of two or more: group ``k`` is
            the rows whose column ``column[k]`` is 1, ``-1`` the rows whose block is not one-hot), or
            ``None``.
        per_position: whether ``fn`` maps each position of ``[N, T, F]`` on its own (a flip of an attribute
            ``x[..., k]`` of every item, node or step): where the model is given its padding as ``attention_mask``,
            the padded positions of ``x_cf`` are then kept as in ``x`` from that mask, as a
            :class:`~lightning_causal.causal.scm.token_swap.TokenSwap`'s are, rather than refused where ``fn``
            changes them (a padding rule read from the features, ``(x != 0).any(-1)``, would also keep a real node
            whose features are all 0).

    Examples:
        >>> import torch
        >>> cf = CallableCounterfactual(lambda x: 1 - x, column=0)
        >>> cf(torch.tensor([[1.0, 0.0]])), cf.column
        (tensor([[0., 1.]]), 0)
        >>> CallableCounterfactual(lambda x: x.roll(1, 1), column=[0, 1, 2]).groups(torch.eye(3)[[2, 0, 1]])
        tensor([2, 0, 1])
    """

    def __init__(self, fn: Callable[[Tensor], Tensor], column: int | Sequence[int] | None = None, *,
                 per_position: bool = False) -> None:
        if not callable(fn):
            raise TypeError(f"Expected argument `fn` to be a callable x -> x_cf but got {type(fn).__name__}")
        #: a one-hot attribute's columns (``column`` a list), or ``None``
        self.block: list[int] | None = None
        if isinstance(column, Sequence) and not isinstance(column, str):
            if len(column) < 2 or not all(_is_index(c) for c in column) or len(set(column)) < len(column):
                raise ValueError("Expected argument `sensitive` to be None, a column index (int) for a callable counterfactual, "
                                 f"or the indices of a one-hot block's columns (two or more distinct ints) but got {list(column)!r}")
            self.block, column = [int(c) for c in column], None
        elif column is not None and not _is_index(column):
            raise ValueError(
                f"Expected argument `sensitive` to be None, a column index (int) for a callable counterfactual, or the "
                f"indices of a one-hot block's columns (two or more distinct ints) but got {column!r}"
            )
        if not isinstance(per_position, bool):
            raise TypeError(f"Expected argument `per_position` to be a bool but got {type(per_position).__name__}")
        self.fn, self.column, self.per_position = fn, column, per_position

    def groups(self, x: Tensor) -> Tensor | None:
        """The values of ``column``, or for a one-hot block the position of each row's 1 in it (``-1``
        where the row's block holds no single 1), or ``None`` (no column, or ``x`` too narrow).

        Args:
            x: inputs ``[N, D]``.
        """
        if self.block is None:
            return super().groups(x)
        if x.dim() != 2 or x.shape[1] <= max(self.block):
            return None
        b = x[:, self.block]
        one_hot = ((b == 0) | (b == 1)).all(1) & (b.sum(1) == 1)
        return torch.where(one_hot, b.argmax(1), torch.full_like(one_hot, -1, dtype=torch.long))

    def check_sensitive(self, sensitive: str | int | None) -> None:
        if self.block is None:
            super().check_sensitive(sensitive)
        elif sensitive is not None and not (isinstance(sensitive, Sequence) and list(sensitive) == self.block):
            raise ValueError(f"Expected argument `sensitive` to be None or the counterfactual's own columns {self.block} "
                             f"but got {sensitive!r}")

    def flip_counterfactual(self, x: Tensor) -> Tensor:
        return self.fn(x.clone())

    def __repr__(self) -> str:
        where = f"columns={self.block}" if self.block is not None else f"column={self.column}"
        return f"CallableCounterfactual({getattr(self.fn, '__name__', type(self.fn).__name__)}, {where})"
