"""Values live at a cut, and how each travels with the rows of an intervened batch.

A value computed before the cut and used after it (a skip tensor, an attention mask, a module's
cached output) is recorded once for the ``N`` probe samples. To run ``R`` rows whose samples are
``rows``, each value is taken by its *plan*, found by comparing the value in two trial runs of 1
and 2 rows:

- ``ROWS``: one entry per sample along dimension 0 (shapes ``[1, ...]`` and ``[2, ...]``):
  gathered as ``value[rows]``;
- ``SHARED``: a tensor that does not depend on the batch (equal in both runs): passed as a copy;
- ``CONST``: a Python constant equal in both runs (``None``, a flag): passed as is;
- a tuple of plans for a tuple or list.

Anything else (an ``int`` that depends on the batch size, a tensor whose batch is not its first
dimension, an unknown container) has no plan (``None``): the value cannot be cached.

Examples:
    >>> value_plan(torch.zeros(1, 3), torch.zeros(2, 3))
    'rows'
    >>> value_plan((torch.ones(4), None), (torch.ones(4), None))
    ('shared', 'const')
    >>> value_plan(1, 2) is None
    True
    >>> take(("rows", "const"), (torch.tensor([[1.0], [2.0]]), None), torch.tensor([1, 1, 0]))
    (tensor([[2.],
            [2.],
            [1.]]), None)
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

from lightning_causal.causal.engine.token_ids import is_integer

__all__ = ["ROWS", "SHARED", "CONST", "value_plan", "take", "rows_of", "leaves", "snapshot", "rebuild", "check_rows", "trial_rows",
           "mixed_rows", "follows_samples", "close", "moved"]

ROWS, SHARED, CONST = "rows", "shared", "const"
_CONSTANTS = (int, float, bool, str, torch.dtype, torch.device, torch.Size)


def value_plan(one: Any, two: Any) -> Any:
    """The plan of a value seen as ``one`` in a 1-row run and as ``two`` in a 2-row run, or ``None``."""
    if isinstance(one, Tensor) and isinstance(two, Tensor):
        if one.dim() > 0 and one.shape[0] == 1 and two.shape[0] == 2 and one.shape[1:] == two.shape[1:]:
            return ROWS
        if one.shape == two.shape and one.dtype == two.dtype and torch.equal(one, two):
            return SHARED
        return None
    if isinstance(one, (tuple, list)) and type(one) is type(two) and len(one) == len(two):
        plans = tuple(value_plan(a, b) for a, b in zip(one, two))
        return None if any(p is None for p in plans) else plans
    if one is None and two is None:
        return CONST
    if isinstance(one, _CONSTANTS) and type(one) is type(two) and one == two:
        return CONST
    return None


def rebuild(container: tuple | list, items: Any) -> tuple | list:
    """A container of ``container``'s type holding ``items``: a list, a tuple, or a named tuple
    (``collections.namedtuple``, ``typing.NamedTuple``, ``PackedSequence``), whose constructor
    takes the fields as separate arguments.

    Examples:
        >>> from collections import namedtuple
        >>> Pair = namedtuple("Pair", "a b")
        >>> rebuild(Pair(1, 2), [3, 4]), rebuild((1, 2), [3, 4])
        (Pair(a=3, b=4), (3, 4))
    """
    if isinstance(container, tuple) and hasattr(container, "_fields"):
        return type(container)(*items)
    return type(container)(items)


def rows_of(value: Tensor, rows: Tensor) -> Tensor:
    """``value[rows]`` for a 1-D integer ``rows``, by ``index_select`` (the same numbers; on CPU
    several times faster than advanced indexing for rows of a few MB, which every suffix chunk
    takes from the cache).

    Examples:
        >>> rows_of(torch.tensor([[1.0], [2.0]]), torch.tensor([1, 1, 0]))
        tensor([[2.],
                [2.],
                [1.]])
    """
    if rows.dim() != 1 or rows.dtype not in (torch.long, torch.int) or value.dim() == 0:
        return value[rows]
    return value.index_select(0, rows.to(value.device))


def take(plan: Any, value: Any, rows: Tensor, *, stub: bool = False) -> Any:
    """``value`` for the samples ``rows``; with ``stub``, per-sample tensors become a zero-copy
    expansion of their first row (for values that no computation reads)."""
    if plan == ROWS:
        if stub:
            return value[:1].expand(rows.shape[0], *value.shape[1:])
        return rows_of(value, rows)
    if plan == SHARED:
        return value.clone()
    if plan == CONST:
        return value
    return rebuild(value, [take(p, v, rows, stub=stub) for p, v in zip(plan, value)])


def leaves(value: Any) -> list[Tensor]:
    """The tensors of a value (nested tuples and lists)."""
    if isinstance(value, Tensor):
        return [value]
    if isinstance(value, (tuple, list)):
        return [t for v in value for t in leaves(v)]
    return []


def snapshot(value: Any) -> Any:
    """A copy of the tensors of ``value`` as they stand now (later in-place operations of the model
    do not reach it)."""
    if isinstance(value, Tensor):
        return value.clone()
    if isinstance(value, (tuple, list)):
        return rebuild(value, [snapshot(v) for v in value])
    return value


def check_rows(plan: Any, value: Any, n: int) -> bool:
    """Whether every per-sample tensor of ``value`` has ``n`` rows."""
    if plan == ROWS:
        return isinstance(value, Tensor) and value.dim() > 0 and value.shape[0] == n
    if isinstance(plan, tuple):
        return all(check_rows(p, v, n) for p, v in zip(plan, value))
    return True


def trial_rows(n: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Sample indices of the two trial runs: ``[0]`` and ``[0, 1]`` (``[0, 0]`` when ``n`` is 1)."""
    return torch.zeros(1, dtype=torch.long, device=device), torch.tensor([0, min(1, n - 1)], device=device)


def mixed_rows(n: int, device: torch.device) -> Tensor:
    """Sample indices of the third trial run: ``[n - 1, 0, 0]``, rows out of order and repeated as
    an intervened batch has them (see :func:`follows_samples`)."""
    return torch.tensor([n - 1, 0, 0], device=device)


def follows_samples(plans: list[Any], values: list[Any], recorded: list[Any], rows: Tensor) -> bool:
    """Whether the values ``recorded`` in a run of the samples ``rows`` (:func:`mixed_rows`) equal
    the probe's ``values`` taken by their ``plans``: a value that numbers the batch's rows
    (``torch.arange(x.shape[0])`` for per-row indexing) passes the ``[0]`` / ``[0, 1]`` trials as
    per-sample, but taken by sample it would index other rows of the batch."""
    return all(close(a, b) for p, v, m in zip(plans, values, recorded) for a, b in zip(leaves(m), leaves(take(p, v, rows))))


def moved(value: Tensor, observed: Tensor | None = None) -> Tensor:
    """A copy of ``value`` with every element changed, of its dtype and within what the model takes
    there: ``1 - value / 2`` for floating point; for integers (token ids, category codes at an
    integer site) the smallest of the ``observed`` values (default: ``value``'s own) where the
    element is not it, else the largest, so that every moved element is a value the layer produced;
    ``~value`` for booleans. Elements stay put only where nothing else was observed.

    Examples:
        >>> moved(torch.tensor([[3, 1], [2, 0]]))
        tensor([[0, 0],
                [0, 3]])
    """
    if value.is_floating_point() or value.is_complex():
        return 1.0 - 0.5 * value
    if value.dtype == torch.bool:
        return ~value
    seen = value if observed is None else observed
    if seen.numel() == 0:
        return value.clone()
    low, high = seen.min(), seen.max()
    return torch.where(value == low, high, low)


def close(a: Tensor, b: Tensor) -> bool:
    """``a`` equals ``b`` up to the rounding of batch-size dependent kernels (NaN equals NaN: a
    sample whose output is NaN, a left-padded Bloom's fully masked row, does not set the scale).

    Examples:
        >>> close(torch.tensor([float("nan"), 1.0]), torch.tensor([float("nan"), 1.0]))
        True
        >>> close(torch.tensor([1 + 2j]), torch.tensor([1 + 2.000001j]))  # complex: within rounding too
        True
        >>> close(torch.tensor([3], dtype=torch.int32), torch.tensor([3])), close(torch.tensor([3.0]), torch.tensor([3.0]).double())
        (True, False)
    """
    if not isinstance(a, Tensor) or not isinstance(b, Tensor) or a.shape != b.shape:
        return False
    if a.dtype != b.dtype and not (is_integer(a) and is_integer(b)):  # integers of other widths: the same values
        return False  # of another dtype: a traced graph missing the model's cast (Lightning Fabric's convert_output)
    if not (a.is_floating_point() or a.is_complex()) or a.is_complex() != b.is_complex():  # complex values are rounded as real ones
        return torch.equal(a, b)
    return bool(close_elements(a, b).all())


def close_elements(a: Tensor, b: Tensor, scale: Tensor | None = None) -> Tensor:
    """:func:`close` element by element: booleans like ``a``, the absolute tolerance set by the largest finite
    ``|scale|`` (default ``b``; a caller comparing some rows of an output passes the whole output).

    Examples:
        >>> close_elements(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.1]))
        tensor([ True, False])
    """
    ref = (b if scale is None else scale).detach()
    finite = ref.abs()[torch.isfinite(ref)]
    atol = 1e-5 * (1.0 + float(finite.max()) if finite.numel() else 1.0)
    return torch.isclose(a.detach(), b.detach(), rtol=1e-4, atol=atol, equal_nan=True)
