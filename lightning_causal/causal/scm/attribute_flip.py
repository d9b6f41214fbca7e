"""Counterfactuals of a sensitive attribute for fairness audits and repair: the naive
:class:`AttributeFlip`, and :func:`resolve_counterfactual`, which turns what the user passes (a
:class:`~lightning_causal.causal.scm.counterfactual.Counterfactual`, an SCM and its column, or a
callable) into the one :class:`~lightning_causal.causal.scm.counterfactual.Counterfactual` that
the fairness gap, the audit and the repair term use."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from lightning_causal.causal.engine.user_frame import outside_package
from lightning_causal.causal.scm.counterfactual import (
    CallableCounterfactual,
    Counterfactual,
    binary_groups,
)
from lightning_causal.causal.scm.counterfactual_checks import FEATURE_PADDING_FIX
from lightning_causal.causal.scm.scm import (
    AdditiveNoiseSCM,
    Value,
    check_binary,
    check_binary_values,
)
from lightning_causal.causal.scm.scm_flip import SCMFlip

__all__ = ["AttributeFlip", "POSITION_ATTRIBUTE_FIX", "one_hot_block", "one_hot_blocks", "resolve_counterfactual", "warn_one_hot_flip"]

#: the way out for an attribute of every position of ``[N, T, F]`` (an item of a list, a step of a sequence), no column
POSITION_ATTRIBUTE_FIX = (
    "; an attribute of every position of [N, T, F] (each item of a list, each node of a padded graph, each step of a "
    "sequence: x[..., k]) is no column: pass a counterfactual that flips it at every position and give the model its "
    "padding as `attention_mask`, e.g. `CallableCounterfactual(lambda x: torch.cat([x[..., :k], 1 - x[..., k:k + 1], "
    "x[..., k + 1:]], -1), per_position=True)` (lightning_causal.causal.scm): the padded positions are kept as in x, "
    "read from the mask (docs/recipes.md, 'Ranking and retrieval'); " + FEATURE_PADDING_FIX)


class AttributeFlip(Counterfactual):
    """The naive counterfactual: flip the binary ``column`` and leave every other column as it is.

    Weaker than an SCM counterfactual: it ignores the attribute's effect on its descendants
    (mediators such as education or occupation), so a model can stay unfair through them while
    its flip gap is 0. Use ``AdditiveNoiseSCM.flip(column)`` where a causal graph is available.

    Args:
        column: the sensitive column, a name (then give ``columns``) or an index.
        values: the two values of the binary attribute.
        columns: the D column names in tensor order (needed for a named column).

    Examples:
        >>> AttributeFlip(0).flip_counterfactual(torch.tensor([[1.0, 5.0], [0.0, 6.0]]))
        tensor([[0., 5.],
                [1., 6.]])
    """

    changes_every_row = True  # a binary column always takes its other value

    def __init__(self, column: str | int, values: Sequence[float] = (0.0, 1.0), columns: Sequence[str] | None = None) -> None:
        self.values = check_binary_values(values)
        self.columns = list(columns) if columns is not None else None
        if isinstance(column, str):
            if self.columns is None:
                raise ValueError(f"Expected argument `columns` (the column names in tensor order) with the column name "
                                 f"{column!r}, or `column` as an index")
            if column not in self.columns:
                raise ValueError(f"Expected argument `column` {column!r} to be one of `columns` {self.columns}")
            self.index_ = self.columns.index(column)
        elif isinstance(column, int) and not isinstance(column, bool) and column >= 0:
            self.index_ = column
        else:
            raise ValueError(f"Expected argument `column` to be a column name or a non-negative index but got {column!r}")
        self.name = column

    def index(self, column: str | int | None = None) -> int:
        """The flipped column's index; ``column`` (if given) must name the same column.

        Args:
            column: a column name or index; ``None``: the flipped column.
        """
        if column is None or column == self.name or column == self.index_:
            return self.index_
        if self.columns is not None and column in self.columns and self.columns.index(column) == self.index_:
            return self.index_
        raise ValueError(f"Expected the sensitive column {column!r} to be the flipped column {self.name!r}")

    def counterfactual(self, x: Tensor, interventions: Mapping[str | int, Value]) -> Tensor:
        """``x`` with the intervened column(s) set and nothing else changed.

        Args:
            x: inputs ``[N, D]``.
            interventions: column (this counterfactual's, by name or index) -> the value it is set to (a
                number or a tensor broadcastable to the column ``[N]``).
        """
        x_cf = x.clone()
        for k, v in interventions.items():
            x_cf[:, self.index(k)] = torch.as_tensor(v, dtype=x.dtype, device=x.device)
        return x_cf

    @property
    def column(self) -> int:  # type: ignore[override]
        """Index of the flipped column."""
        return self.index_

    def groups(self, x: Tensor) -> Tensor | None:
        """Group ``k`` is the rows whose column holds ``values[k]`` (``-1`` elsewhere): the group
        metrics do not depend on how the attribute is coded.

        Args:
            x: inputs ``[N, D]``.
        """
        if x.dim() != 2 or x.shape[1] <= self.column:
            return None
        return binary_groups(x[:, self.column], self.values)

    def check_sensitive(self, sensitive: str | int | None) -> None:
        self.index(sensitive)

    def flip_counterfactual(self, x: Tensor) -> Tensor:
        """``x`` with the binary column swapped (``v0 <-> v1``) in every row.

        Args:
            x: inputs ``[N, D]``.
        """
        j = self.index_
        if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] <= j:
            hint = POSITION_ATTRIBUTE_FIX if isinstance(x, Tensor) and x.dim() == 3 else ""
            raise ValueError(f"Expected argument `x` to be a tensor [N, D] with D > {j} but got {getattr(x, 'shape', type(x))}{hint}")
        return self.counterfactual(x, {j: check_binary(x, j, self.values, str(self.name))})

    def __repr__(self) -> str:
        return f"AttributeFlip(column={self.name!r}, values={self.values})"


def resolve_counterfactual(counterfactual: object, sensitive: str | int | None = None) -> Counterfactual:
    """The :class:`~lightning_causal.causal.scm.counterfactual.Counterfactual` meant by ``counterfactual``:

    - a ``Counterfactual`` (:class:`AttributeFlip`, ``scm.flip(column)``, ``TokenSwap``) as it is;
      it knows its column, so ``sensitive`` is optional (if given it must name the same column);
    - an :class:`~lightning_causal.causal.scm.scm.AdditiveNoiseSCM`: ``scm.flip(sensitive)``
      (``sensitive`` is required: the SCM has many columns);
    - a callable ``x -> x_cf``: wrapped, ``sensitive`` (optional) the index of the column whose
      values define the groups of the group metrics.

    Args:
        counterfactual: what the caller passed, as above.
        sensitive: a column name or index, as above; ``None``: the counterfactual's own.

    Raises:
        ValueError: ``sensitive`` missing for an SCM, not a column, or not the counterfactual's column.
        TypeError: ``counterfactual`` is none of these (a tensor ``x_cf`` included).

    Examples:
        >>> resolve_counterfactual(AttributeFlip(0))(torch.tensor([[1.0, 5.0]]))
        tensor([[0., 5.]])
    """
    if isinstance(counterfactual, Counterfactual):
        counterfactual.check_sensitive(sensitive)
        return counterfactual
    if isinstance(counterfactual, AdditiveNoiseSCM):
        if sensitive is None:
            raise ValueError("Expected argument `sensitive` (the column to flip) with an AdditiveNoiseSCM, or pass `scm.flip(column)`")
        return counterfactual.flip(sensitive)
    if isinstance(counterfactual, Tensor):
        raise TypeError(
            "Expected argument `counterfactual` to be a counterfactual object or a callable x -> x_cf but got a tensor; "
            "pass `lambda x: x_cf` to use precomputed counterfactuals"
        )
    if callable(counterfactual):
        return CallableCounterfactual(counterfactual, sensitive)  # type: ignore[arg-type]
    raise TypeError(
        "Expected argument `counterfactual` to be an AdditiveNoiseSCM (with `sensitive`), a Counterfactual (AttributeFlip, "
        f"scm.flip(column), TokenSwap) or a callable x -> x_cf but got {type(counterfactual).__name__}"
    )


#: the most 0/1 columns among which a block is searched for beyond the columns apart from it (see :func:`_exact_cover`)
_COVER_COLUMNS = 512
#: the most branches of one search of :func:`_exact_cover`
_COVER_STEPS = 100  # Adult's blocks need fewer than 20; a search that fails (a bag of words) costs B times this


def _exact_cover(i: int, masks: list[int], counts: list[int], row_columns: list[list[int]], full: int) -> tuple[int, ...]:
    """A one-hot block holding column ``i`` (positions among the 0/1 columns) where the columns
    never 1 with it include some of another encoded feature (a country that only non-White people
    hold in the data is never 1 with ``race=White``, ``sex=Female`` never with
    ``relationship=Husband``): columns pairwise never 1 together that hold one 1 in every row, an
    exact cover of the rows (Knuth's Algorithm X, depth first: the first row not yet covered, its
    columns tried most ones first; at most ``_COVER_STEPS`` branches). ``masks[j]`` is column
    ``j``'s rows as the bits of an int, ``row_columns[r]`` the columns 1 in row ``r``. ``()`` when
    none is found."""
    steps = 0

    def search(chosen: list[int], covered: int) -> list[int] | None:
        nonlocal steps
        rest = full & ~covered
        if not rest:
            return chosen
        row = (rest & -rest).bit_length() - 1
        for j in sorted((j for j in row_columns[row] if not masks[j] & covered), key=lambda j: (-counts[j], j)):
            steps += 1
            if steps > _COVER_STEPS:
                return None
            found = search([*chosen, j], covered | masks[j])
            if found is not None:
                return found
        return None

    found = search([i], masks[i])
    return tuple(sorted(found)) if found is not None and len(found) > 1 else ()


def _covers(xb: Tensor, apart: Tensor, whole: Tensor, reach: Tensor) -> list[tuple[int, ...]]:
    """The block of each 0/1 column ``xb`` ``[N, B]``: the columns apart from it where they sum to 1
    with it in every row (``whole``), else an exact cover (:func:`_exact_cover`) kept only when it is
    the cover found from its column of most ones (a mix of rare columns of several features that
    covers the rows by chance is not: from the mix's largest column the search finds that column's
    own feature; of two kept blocks that share a column, the one of fewer columns: a mix patches rows
    together from rare columns),
    each column given the kept block that holds it (``()``: none). Columns some row of which no column
    apart from them covers (``reach`` false) are in no block and not searched."""
    n, b = xb.shape
    counts = [int(c) for c in xb.sum(0).round().tolist()]
    masks, rows = [0] * b, [[] for _ in range(n)]
    for r, j in xb.nonzero().tolist():
        masks[j] |= 1 << r
        rows[r].append(j)
    full = (1 << n) - 1
    memo: dict[int, tuple[int, ...]] = {}

    def cover(i: int) -> tuple[int, ...]:
        if i not in memo:
            memo[i] = (tuple(sorted([i, *apart[i].nonzero().flatten().tolist()])) if bool(whole[i])
                       else _exact_cover(i, masks, counts, rows, full) if bool(reach[i]) else ())
        return memo[i]

    largest = lambda c: max(c, key=lambda j: (counts[j], -j))  # noqa: E731
    kept: list[tuple[int, ...]] = []
    for c in sorted({c for c in map(cover, range(b)) if c and cover(largest(c)) == c}, key=lambda c: (len(c), c)):
        if not any(set(c) & set(k) for k in kept):  # blocks share no column: of two, the one of fewer (a mix patches)
            kept.append(c)
    return [next((c for c in kept if i in c), ()) for i in range(b)]


def _binary_blocks(x: Tensor, columns: Tensor | None, max_columns: int) -> tuple[Tensor, list[tuple[int, ...]]]:
    """The 0/1 columns of ``x`` (each 1 in some row) and, for each column in ``columns`` (all when
    ``None``) that is one of them, its one-hot block as a sorted tuple of column indices (``()``: none)."""
    binary = ((x == 0) | (x == 1)).all(0) & (x == 1).any(0)
    idx = binary.nonzero().flatten()
    if idx.numel() < 2 or idx.numel() > max_columns:
        return idx, []
    xb = x[:, idx].to(torch.float64 if x.dtype == torch.float64 else torch.float32)
    apart = (xb.T @ xb) == 0  # [B, B]: never 1 in the same row (the diagonal counts each column's ones, > 0)
    whole = ((xb @ apart.to(xb.dtype) + xb) == 1).all(0)  # each column with all the columns apart from it: one 1 per row
    where = range(idx.numel()) if columns is None else [int(p) for p in (idx.unsqueeze(1) == columns).any(1).nonzero().flatten()]
    if bool(whole.all()) or idx.numel() > _COVER_COLUMNS:
        blocks = [tuple(sorted([i, *apart[i].nonzero().flatten().tolist()])) if bool(whole[i]) else () for i in where]
    else:  # another feature's columns among those apart from a column (real one-hot data)
        reach = ((xb @ apart.to(xb.dtype) + xb) >= 1).all(0)  # every row has a 1 in it or in a column apart from it
        covers = _covers(xb.cpu(), apart.cpu(), whole.cpu(), reach.cpu())
        blocks = [covers[i] for i in where]
    return idx, [tuple(int(idx[j]) for j in c) if len(c) > 1 else () for c in blocks]


def one_hot_block(x: Tensor, column: int) -> list[int]:
    """The other columns of the one-hot block that ``column`` belongs to in ``x`` ``[N, D]``: 0/1
    columns never 1 together with it, which with it sum to 1 in every row (``[]`` if there are
    none). Flipping one column of such a block alone gives rows no encoder produces (all zeros, or
    two ones); the block must change together. Columns that are 0 in every row (a category absent
    from ``x``, of this or any other one-hot feature) say nothing of the block and are left out.
    Columns of another encoded feature that happen never to be 1 with ``column`` in ``x`` (a
    country only non-White people hold in the data, for ``race=White``) are told apart from the
    block's own (:func:`_exact_cover`) when ``x`` has at most 512 0/1 columns.

    Args:
        x: inputs ``[N, D]``.
        column: the column's index.

    Examples:
        >>> x = torch.tensor([[1.0, 0.0, 5.0, 0.0], [0.0, 1.0, 6.0, 0.0]])
        >>> one_hot_block(x, 0), one_hot_block(x, 2)
        ([1], [])
    """
    if x.dim() != 2 or x.shape[0] == 0:
        return []
    _, blocks = _binary_blocks(x, torch.tensor([column], device=x.device), 4096)
    return [c for c in blocks[0] if c != column] if blocks else []


def one_hot_blocks(x: Tensor, max_columns: int = 4096) -> list[list[int]]:
    """Every one-hot block of ``x`` ``[N, D]`` at once: sorted lists of 0/1 columns (each 1 in some
    row) that are never 1 together and sum to 1 in every row, the blocks :func:`one_hot_block`
    finds for one column (both search every column, as a block is told apart from a mix of other
    features' columns by the blocks of its columns), from two matrix products (``O(N B^2)`` for ``B``
    such columns), with a depth-first exact-cover search (:func:`_exact_cover`, at most 100 branches
    per column) where other features' columns lie among those apart from a column (at most 512 0/1
    columns; see :func:`one_hot_block`). More than ``max_columns`` 0/1 columns (a bag of words, not a tabular
    encoding) are not searched: ``[]``.

    Args:
        x: inputs ``[N, D]``.
        max_columns: the most 0/1 columns searched, as above.

    Examples:
        >>> one_hot_blocks(torch.tensor([[1.0, 0.0, 5.0, 0.0], [0.0, 1.0, 6.0, 0.0]]))
        [[0, 1]]
        >>> one_hot_blocks(torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, 1.0, 0.0]]))
        [[0, 1, 2]]
    """
    if x.dim() != 2 or x.shape[0] == 0:
        return []
    _, blocks = _binary_blocks(x, None, max_columns)
    return [list(b) for b in sorted(set(blocks)) if len(b) > 1]  # a column of ones alone is no block



def warn_one_hot_flip(who: str, counterfactual: Counterfactual, x: Tensor, consequence: str = "", stacklevel: int | None = None) -> list[int]:
    """Warn (``UserWarning``) when ``counterfactual`` flips one column of a one-hot block of ``x``
    alone (an :class:`AttributeFlip` or ``scm.flip(column)``, bare or held by a wrapper as its
    ``.counterfactual``, :class:`~lightning_causal.causal.scm.intersections.Intersections`; token swaps
    and callables say nothing of a column): its counterfactual rows hold two ones or none in the block, rows no encoder
    produces. The one check of :func:`~lightning_causal.causal.scm.fairness.counterfactual_fairness_gap`,
    ``FairnessAudit`` and ``CounterfactualFairnessTerm``. Looked for on ``x`` of 16 rows or more
    ``[N, D]`` (fewer rows, such as a callback's 2-row dry run, say little about the encoding).

    Args:
        who: who warns, the message's first words.
        counterfactual: the counterfactual.
        x: the inputs it flips.
        consequence: what the flipped rows do to the caller's result (a sentence, or ``""``).
        stacklevel: the warning's ``stacklevel``; ``None`` = the first caller outside this package.

    Returns:
        The block's other columns (``[]``: nothing to warn of).

    Examples:
        >>> x = torch.tensor([[1.0, 0.0, 5.0], [0.0, 1.0, 6.0]] * 8)
        >>> with warnings.catch_warnings(record=True) as w:
        ...     warnings.simplefilter("always")
        ...     warn_one_hot_flip("fairness", AttributeFlip(0), x)
        [1]
        >>> str(w[0].message)[:44]
        'fairness: the flipped column 0 is one-hot en'
    """
    inner = getattr(counterfactual, "counterfactual", None)
    if isinstance(inner, Counterfactual):  # a wrapper (Intersections) flips as the counterfactual it wraps
        counterfactual = inner
    if not isinstance(counterfactual, (AttributeFlip, SCMFlip)) or not isinstance(x, Tensor) or x.dim() != 2 or x.shape[0] < 16:
        return []
    column = counterfactual.column
    if column >= x.shape[1]:
        return []
    block = one_hot_block(x.detach(), column)
    if block:
        warnings.warn(
            f"{who}: the flipped column {column} is one-hot encoded with columns {block} (they sum to 1 in every row of "
            f"the {x.shape[0]} given); flipping it alone gives rows with two ones or none in the block, which no encoder "
            f"produces{'; ' + consequence if consequence else ''}. Keep one column of a binary attribute (drop the other), "
            "or pass a callable that changes the block together (`lambda x: ...`, with `sensitive=` the block's columns for the group metrics)",
            UserWarning, stacklevel=outside_package() if stacklevel is None else stacklevel)
    return block
