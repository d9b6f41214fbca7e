"""Integer baselines of token (or category) inputs checked against the embeddings that read them.

An integer baseline (a pad or ``[MASK]`` id) outside an embedding's vocabulary makes the
intervened forward pass fail deep inside ``nn.Embedding`` (``IndexError: index out of range in
self`` on a CPU, a device-side assert that spoils the process on a GPU). The clean pass, which
every estimator runs anyway, is watched by :func:`embedding_readers` (forward pre-hooks on the
embeddings, for that pass only: the intervened passes run without them); the embeddings whose
indices *are* the input (a view of its storage, e.g. Hugging Face's ``word_embeddings``) tell the
vocabulary, and :func:`check_token_baselines` refuses an out-of-range baseline before any
intervention runs, naming ``baseline``, its value, the embedding and its size. Where the model
computes the indices from the input (an offset, a lookup), the bound is unknown in general:
:func:`token_baseline_error` turns the embedding's ``IndexError`` at an intervened pass into an
error that names ``baseline``.

Examples:
    >>> import torch
    >>> from torch import nn
    >>> model = nn.Sequential(nn.Embedding(10, 2), nn.Flatten(), nn.Linear(6, 1))
    >>> x = torch.tensor([[1, 2, 3]])
    >>> with embedding_readers(model, (x,)) as readers:
    ...     _ = model(x)
    >>> check_token_baselines((x,), (torch.tensor([[12]]),), readers)
    Traceback (most recent call last):
    ...
    ValueError: Expected argument `baseline` to be a token id in [0, 10) (the vocabulary of Embedding '0', which reads the input) but got 12
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
import os
import re
import traceback
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.overrides import TorchFunctionMode

from lightning_causal._compat import functorch_wrapped
from lightning_causal.causal.engine.user_frame import outside_package

INDEX_DTYPES = (torch.int64, torch.int32)
"""The dtypes ``nn.Embedding`` and ``nn.EmbeddingBag`` take as indices: inputs of these are token (or category) ids;
other integers (``uint8``, ``int8``, ``int16``: pixels, bytes, PCM samples) and bools are values the model casts."""

__all__ = [
    "INDEX_DTYPES", "is_integer", "EmbeddingReader", "embedding_readers", "check_token_baselines", "token_baseline_error", "check_special_tokens",
    "keep_special_tokens", "special_token_baseline", "special_token_hint", "token_errors_named", "FLOAT_CODES",
    "float_code_error", "float_codes_named", "embedding_lookup_error", "code_values", "codes_outside", "code_position",
    "warn_codes_outside", "FractionalCodeWarning", "from_embedding", "code_ranges", "code_range_words", "warn_padding_filled",
]


@dataclass(frozen=True)
class EmbeddingReader:
    """An embedding whose indices were a view of input ``input_index``: that view's layout; or, with ``columns``, an
    embedding whose indices were a float input's values cast (``x[:, 5].long()``, a category code kept in a float
    column): ``columns`` are the positions of a sample's flattened values it looks up, ``size`` its indices' shape, and
    ``shifts`` (``None``: all 0) the constant added to each column's codes before the lookup (one table shared by
    several columns, each from its own offset: rtdl's ``emb(x[:, cats].long() + offsets)``). A lookup with no module
    (:class:`_Lookups`) is named by its kind, ``F.one_hot``, ``Parameter``, ``buffer`` or ``tensor``, and its name."""

    name: str
    kind: str
    num_embeddings: int
    input_index: int
    size: tuple[int, ...]
    stride: tuple[int, ...]
    offset: int
    columns: tuple[int, ...] | None = None
    shifts: tuple[int, ...] | None = None
    table: tuple[tuple[int, int], ...] | None = None
    """Where the same embedding looked up other code columns in other calls of the pass (one shared table read a
    column at a time, ``[emb(x[:, j].long() + off[j]) for j]``): ``(column, shift)`` of every column it read, its
    own included (:func:`code_ranges` bounds each column by the others' offsets); ``None`` otherwise."""
    padding_idx: int | None = None
    """The module's ``padding_idx`` (an ``nn.Embedding``'s or ``nn.EmbeddingBag``'s; ``None``: none or no module)."""


class FractionalCodeWarning(UserWarning):
    """A value set in a float column that looks like a category code an embedding looks up cast to indices (its values
    were the embedding's indices in every clean row) is no code of it: a fraction runs as the code ``.long()``
    truncates it to (a mean 24.7 of user ids runs as user 24), a code beyond the last fails the pass. A warning: a
    model that computes its indices from the column (bucketize, clamp) can match it on the clean rows."""


_CODE_ROW_LIMIT = 4096  # float inputs of at most this many values a sample are matched to an embedding's indices
_CODE_ID_LIMIT = 64  # indices of at most this many a sample are matched
_CODE_MATCH_ROWS = 256  # the clean rows an embedding's indices are matched on
_CODE_SHIFT_BITS = 16  # the bits (_bits) each shifted index of a match at an offset (indices equal to a column plus a
# constant) must carry, beyond log2 of the positions searched: a 0/1 column fits another's changes at odds of 2 ** -(rows - 1)


def is_integer(x: object) -> bool:
    """Whether ``x`` is a tensor of integers (of any width; not bool, float nor complex).

    Examples:
        >>> is_integer(torch.tensor([1], dtype=torch.uint8)), is_integer(torch.tensor([True])), is_integer(3)
        (True, False, False)
    """
    return isinstance(x, Tensor) and not x.is_floating_point() and not x.is_complex() and x.dtype != torch.bool


@contextmanager
def embedding_readers(model: nn.Module, xs: tuple[Tensor, ...], computed: bool = False) -> Iterator[list[EmbeddingReader]]:
    """Record, for the passes run inside, each ``nn.Embedding``/``nn.EmbeddingBag`` of ``model``
    whose indices are a view of an integer input of ``xs`` (the hooks are removed on exit); with a float input of
    at most 4096 values a sample, also the lookups that cast its columns to indices (:func:`_code_columns`): an
    embedding's, and, watched by a ``TorchFunctionMode`` (:class:`_Lookups`), those with no module to hook,
    ``F.one_hot(x[:, j].long(), K)``, a table indexed directly (``self.table[x[:, j].long()]``, ``index_select``) and
    ``F.embedding`` of a weight no ``nn.Embedding`` holds. With ``computed``, an embedding's indices computed from an
    integer input's columns too (no view: ``x[:, j].long()`` of int32 codes, rtdl's one table ``emb(x + offsets)``),
    as a float input's (``columns`` and ``shifts`` set; :func:`~lightning_causal.audits.category_codes.code_reading`)."""
    found: list[EmbeddingReader] = []
    storages = {i: x for i, x in enumerate(xs) if is_integer(x) and x.numel()}
    floats = {i: x for i, x in enumerate(xs) if isinstance(x, Tensor) and x.is_floating_point() and x.dim() >= 1
              and x.shape[0] >= 2 and 0 < x[0].numel() <= _CODE_ROW_LIMIT}
    cast = {**floats, **{i: x for i, x in storages.items() if computed and x.dim() >= 1 and x.shape[0] >= 2
                         and x[0].numel() <= _CODE_ROW_LIMIT}}  # whose computed indices are matched to their columns
    with contextlib.ExitStack() as stack:  # each hook removed, and the watch left, whatever fails after it was set
        if storages or floats:
            for name, module in model.named_modules():
                if isinstance(module, (nn.Embedding, nn.EmbeddingBag)):
                    stack.callback(module.register_forward_pre_hook(
                        _recorder(name, module, storages, found, cast)).remove)
        if floats:
            stack.enter_context(_Lookups(model, floats, found))
        yield found


_FAST_PATHS = (nn.MultiheadAttention, nn.TransformerEncoderLayer, nn.TransformerEncoder)
"""Modules whose fused fast path any active ``TorchFunctionMode`` switches off (``has_torch_function``): they run
without :class:`_Lookups`, by their ``forward`` wrapped (a hook on them would switch the fast path off as well)."""


class _Lookups(TorchFunctionMode):
    """Records (as :func:`_recorder` does an embedding's) the lookups of a float input's columns cast to indices that
    run in no ``nn.Embedding``: ``F.one_hot``, a tensor indexed by integers along its first dimension
    (``table[ids]``, ``table[ids, :]``, ``index_select(0, ids)``) and ``F.embedding`` of a weight that no
    ``nn.Embedding`` of the model holds (those are hooked); not an index that is the row numbers (:func:`_row_numbers`,
    whatever column equals them). Every torch function of the pass goes through it (a few microseconds each); the
    modules of :data:`_FAST_PATHS` run without it (without every watch, one inside another too), their fast path kept."""

    def __init__(self, model: nn.Module, floats: dict[int, Tensor], found: list[EmbeddingReader]) -> None:
        super().__init__()
        self.model, self.floats, self.found = model, floats, found
        self.hooked = {id(m.weight) for m in model.modules() if isinstance(m, (nn.Embedding, nn.EmbeddingBag))}
        self.names: dict[int, tuple[str, str]] | None = None  # a tensor's (kind, name), built at the first lookup
        self.wrapped: list[nn.Module] = []

    def __enter__(self):  # noqa: ANN204, D105
        try:
            for m in self.model.modules():
                if isinstance(m, _FAST_PATHS) and "forward" not in m.__dict__:
                    object.__setattr__(m, "forward", self._outside(m.forward))
                    self.wrapped.append(m)
            return super().__enter__()
        except BaseException:  # no wrapped forward left where the watch did not start
            self._unwrap()
            raise

    def __exit__(self, *exc: object) -> None:  # noqa: D105
        try:
            super().__exit__(*exc)
        finally:
            self._unwrap()

    def _unwrap(self) -> None:
        for m in self.wrapped:
            m.__dict__.pop("forward", None)
        self.wrapped.clear()

    def _outside(self, forward):  # noqa: ANN001, ANN202
        def run(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
            with contextlib.ExitStack() as outside:  # every watch on top (one inside another too); none where an outer
                while isinstance(torch.overrides._get_current_function_mode(), _Lookups):  # fast-path module left them
                    outside.enter_context(torch.overrides._pop_mode_temporarily())
                return forward(*args, **kwargs)
        return run

    def __torch_function__(self, func, types, args=(), kwargs=None):  # noqa: ANN001, ANN204, D105
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        looked = self._lookup(func, args, kwargs)
        if looked is not None and not functorch_wrapped(looked[0]):  # vmap's batched indices: a sample's, no rows
            idx, kind, name, num = looked
            for i, x in self.floats.items():
                if kind == "F.one_hot" or not _row_numbers(idx, x.shape[0]):
                    _record_codes(idx, x, i, kind, name, num, self.found)
        return out

    def _lookup(self, func, args: tuple, kwargs: dict) -> tuple[Tensor, str, str, int] | None:  # noqa: ANN001
        """The indices, the reader's kind and name, and the rows it looks up, of a watched lookup; else ``None``."""
        if func is Tensor.__getitem__ and len(args) == 2 and isinstance(args[0], Tensor) and args[0].dim() >= 1:
            key = args[1][0] if isinstance(args[1], tuple) and args[1] else args[1]
            return (key, *self._named(args[0]), args[0].shape[0]) if is_integer(key) else None
        if func in (torch.index_select, Tensor.index_select):
            table, dim, idx = (list(args) + [kwargs.get(k) for k in ("dim", "index")[len(args) - 1:]])[:3]
            ok = isinstance(table, Tensor) and dim in (0, -table.dim()) and is_integer(idx)
            return (idx, *self._named(table), table.shape[0]) if ok else None
        if func is F.one_hot:
            idx = args[0] if args else kwargs.get("tensor")
            k = args[1] if len(args) > 1 else kwargs.get("num_classes", -1)
            if not is_integer(idx) or not idx.numel():
                return None
            k = int(k) if int(k) > 0 else int(idx.max()) + 1
            return idx, "F.one_hot", f"num_classes={k}", k
        if func is F.embedding:
            idx, weight = (list(args) + [kwargs.get("weight")])[:2]
            if not isinstance(weight, Tensor) or id(weight) in self.hooked:
                return None
            return (idx, *self._named(weight), weight.shape[0]) if is_integer(idx) else None
        return None

    def _named(self, table: Tensor) -> tuple[str, str]:
        if self.names is None:
            self.names = {id(t): ("Parameter", n) for n, t in self.model.named_parameters()}
            self.names.update({id(t): ("buffer", n) for n, t in self.model.named_buffers()})
        return self.names.get(id(table), ("tensor", f"of shape {tuple(table.shape)}"))


def _row_numbers(idx: Tensor, n: int) -> bool:
    """Whether the indices ``idx`` are ``[n, ...]`` and the row numbers from some start, alike at every other position
    (over the first 256 rows): ``torch.arange(B)`` of ``h[torch.arange(B), last]``, the engine's own gather of a
    per-sample forward argument by ``rows``, learned positions ``pos[torch.arange(T)]`` with ``T == N``. No code read,
    though a probe column of consecutive whole numbers in row order (an id column, a day number) equals them.

    Examples:
        >>> _row_numbers(torch.arange(3, 9), 6), _row_numbers(torch.tensor([0, 2, 1]), 3), _row_numbers(torch.arange(4), 6)
        (True, False, False)
    """
    if idx.dim() == 0 or idx.shape[0] != n or n < 2:
        return False
    m = min(idx.shape[0], _CODE_MATCH_ROWS)
    flat = idx[:m].reshape(m, -1)
    return bool(((flat - flat[:1]) == torch.arange(m, device=idx.device).unsqueeze(1)).all())


def _span(t: Tensor) -> tuple[int, int, int]:
    """``(storage address, first, last element offset)`` that ``t`` reads (non-negative strides)."""
    last = t.storage_offset() + sum((n - 1) * abs(st) for n, st in zip(t.shape, t.stride()))
    return t.untyped_storage().data_ptr(), t.storage_offset(), last


def _recorder(  # noqa: ANN202
    name: str, module: nn.Module, storages: dict[int, Tensor], found: list[EmbeddingReader], floats: dict[int, Tensor] | None = None,
):
    kind, num = type(module).__name__, int(module.num_embeddings)

    def hook(_module: nn.Module, args: tuple) -> None:
        idx = args[0] if args else None
        if not is_integer(idx) or not idx.numel() or functorch_wrapped(idx):  # under vmap: a sample's, no storage
            return
        ptr, first, last = _span(idx)
        viewed = False
        for i, x in storages.items():
            xp, xfirst, xlast = _span(x)
            if ptr == xp and xfirst <= first and last <= xlast:  # a view of input i (not of another part of its storage)
                found.append(EmbeddingReader(name, kind, num, i, tuple(idx.shape), tuple(idx.stride()), idx.storage_offset(),
                                             padding_idx=getattr(module, "padding_idx", None)))
                viewed = True
        for i, x in () if viewed else (floats or {}).items():
            _record_codes(idx, x, i, kind, name, num, found)

    return hook


def _record_codes(idx: Tensor, x: Tensor, i: int, kind: str, name: str, num: int, found: list[EmbeddingReader]) -> None:
    """Record a lookup of ``num`` rows by the indices ``idx`` as a code reader of the float input ``x`` (input ``i``)
    where they are its columns cast (:func:`_code_columns`)."""
    if not is_integer(idx) or not idx.numel():
        return
    matched = _code_columns(idx, x)
    if matched is None:
        return
    columns, shifts = matched
    found.append(EmbeddingReader(name, kind, num, i, tuple(idx.shape), tuple(idx.stride()), 0, columns,
                                 shifts if any(shifts) else None))
    same = [k for k, r in enumerate(found) if r.columns is not None and (r.name, r.kind, r.input_index) == (name, kind, i)]
    pairs = tuple(sorted({p for k in same for p in zip(found[k].columns, found[k].shifts or (0,) * len(found[k].columns))}))
    if len({c for c, _ in pairs}) > len(columns):  # other calls read other columns of this table: each bounds the rest
        for k in same:
            found[k] = dataclasses.replace(found[k], table=pairs)


def _code_columns(idx: Tensor, x: Tensor) -> tuple[tuple[int, ...], tuple[int, ...]] | None:
    """The positions of a sample's flattened values of the float input ``x`` that the indices ``idx`` (``[N, ...]``,
    a sample's own) are, cast and shifted, with the shifts: for each index, the one whole-valued position, not constant
    over the ``N`` samples, whose values plus a constant ``c`` (the same in every sample, ``0`` for
    ``emb(x[:, j].long())``; a feature's offset in one table shared by several columns, rtdl's
    ``emb(x[:, cats].long() + offsets)``) equal it in every sample (the first 256); ``None`` where an index has no such
    position or more than one (the indices are computed otherwise, or the samples do not tell the columns apart), and
    where an index whose constant is not 0 carries fewer than ``16 + log2(D)`` bits of ``D`` positions (:func:`_bits`;
    a change of a few rows is matched by chance: a class label read as ``emb(y + 1)`` fit one of a binarized digit's
    784 pixels plus 1 in 22% of probes of 10 rows when 8 rows sufficed, a label of one positive in 64 rows one of 200
    sparse 0/1 flags plus 1 in 37 of 100 probes; a 0/1 column fits another's changes at odds of ``2 ** -(rows - 1)``,
    so it needs ``16 + log2(D)`` rows, while codes of 7 or 14 levels are read on 10 to 12 rows; a real code so rare
    is read as before, not at its offset).

    The search compares each index's change from the first sample with each position's (index minus value constant
    over the samples): the changes of the sample among the first 10 where the most indices moved give the candidate pairs
    (``[k, D]`` booleans, at most ``64 * 4096``), which the other 8 thin one at a time and every sample then checks,
    reading only the candidates' values (no ``[N, D]`` copy, no ``[k, D, N]`` comparison; where those samples repeat the
    first in most positions the candidates are many, at most ``k * D`` values a step).

    Examples:
        >>> x = torch.tensor([[37., 2., 1.], [52., 0., 1.], [23., 1., 0.], [61., 2., 0.]]).repeat(6, 1)  # age, two codes
        >>> _code_columns(x[:, 1:].long() + torch.tensor([0, 3]), x)  # one table: the second column's rows from 3
        ((1, 2), (0, 3))
        >>> _code_columns(x[:4, 1:].long() + torch.tensor([0, 3]), x[:4]) is None  # 4 rows: too few for an offset
        True
    """
    n = x.shape[0]
    if idx.dim() == 0 or idx.shape[0] != n or idx.device != x.device or idx[0].numel() > _CODE_ID_LIMIT:
        return None
    m = min(n, _CODE_MATCH_ROWS)  # the first rows tell the columns apart: no [N, D] copies of a large probe
    flat = x.detach()[:m].reshape(m, -1)
    ids = idx.detach()[:m].reshape(m, -1).double()  # exact differences of codes and of indices up to 2**53
    moved = ids - ids[:1]  # [m, k]: each index's change from the first row
    if not bool(moved.ne(0).any(0).all()):  # an index constant over the rows (a position id, a [CLS]): no code read
        return None
    head = min(m, 10)
    best = int(moved[1:head].ne(0).sum(1).argmax()) + 1  # the row where the most indices moved: the fewest pairs
    two = flat[[0, best]].double()
    p, j = (moved[best].unsqueeze(1) == (two[1] - two[0]).unsqueeze(0)).nonzero(as_tuple=True)  # its pairs
    for r in range(1, head):  # thinned by the next rows, one at a time (computed indices, pixels: most end here)
        if r == best:
            continue
        if p.unique().numel() != moved.shape[1]:
            return None
        keep = (flat[r, j].double() - flat[0, j].double()) == moved[r, p]
        p, j = p[keep], j[keep]
    if p.unique().numel() != moved.shape[1]:
        return None
    values = flat[:, j].double()  # [m, pairs]: each candidate checked on every row, whole-valued
    hit = ((values - values[:1]) == moved[:, p]).all(0) & (values == values.trunc()).all(0)
    p, j, first = p[hit], j[hit], values[0, hit]
    columns, shifts = [], []
    for q in range(moved.shape[1]):  # k <= 64 indices
        own = p == q
        if int(own.sum()) > 1:  # a column equal to the index is read as it is (a copy shifted by a constant beside it)
            own &= first == ids[0, q]
        if int(own.sum()) != 1:
            return None
        c = int(own.nonzero()[0, 0])
        columns.append(int(j[c]))
        shifts.append(int(ids[0, q] - first[c]))
    need = _CODE_SHIFT_BITS + math.log2(flat.shape[1])
    if any(_bits(ids[:, q]) < need for q, shift in enumerate(shifts) if shift):  # a label's changes fit one of many
        return None  # binary pixels' on a few rows, a rare label's (one positive in 64) a sparse 0/1 flag's on many
    return tuple(columns), tuple(shifts)


def _bits(values: Tensor) -> float:
    """``-log2`` of the best chance that a column of independent draws fits ``values`` ``[m]`` exactly: ``m`` times the
    entropy of their empirical distribution (``m`` bits for a balanced 0/1 column, about 7 for one 1 among 64)."""
    _, counts = values.unique(return_counts=True)
    return float(-(counts.double() * (counts.double() / values.numel()).log2()).sum())


def code_values(values: Tensor, reader: EmbeddingReader) -> Tensor:
    """The values ``[M, k]`` of ``values`` (``[M, ...]``, rows laid out like the input ``reader`` reads) at the positions
    a code reader (``reader.columns``) looks up cast to indices."""
    return values.reshape(values.shape[0], -1)[:, list(reader.columns or ())]


def code_ranges(reader: EmbeddingReader) -> tuple[tuple[int, int], ...]:
    """Per column of a code reader, the codes ``(low, high)`` (``low <= code < high``) whose rows of its table are the
    column's own: ``[0, num_embeddings)`` unshifted; with ``shifts`` (one table, each column from its own offset) the
    rows from the column's offset (from row 0 for a negative one: 1-based codes read ``emb(x.long() - 1)``) up to the
    next higher offset (to the table's end for the highest), less the offset: a workclass code past its 8 levels would
    read the next column's first row, and a code below 0 the rows before the lowest offset (the special tokens that
    lucidrains' TabTransformer keeps first). A table looked up a column at a time (``EmbeddingReader.table``) is
    bounded by the offsets of the columns that the other calls read alike.

    Examples:
        >>> reader = EmbeddingReader("emb", "Embedding", 20, 0, (2, 2), (2, 1), 0, (3, 4), (0, 8))
        >>> code_ranges(reader)
        ((0, 8), (0, 12))
        >>> code_ranges(EmbeddingReader("emb", "Embedding", 20, 0, (2, 2), (2, 1), 0, (3, 4), (2, 10)))  # 2 specials
        ((0, 8), (0, 10))
        >>> code_ranges(EmbeddingReader("emb", "Embedding", 20, 0, (2, 2), (2, 1), 0, (3, 3), (0, 1)))  # one column twice
        ((0, 20), (0, 19))
    """
    n, shifts = reader.num_embeddings, reader.shifts or (0,) * len(reader.columns or ())
    columns = reader.columns or (None,) * len(shifts)
    table = reader.table or tuple(zip(columns, shifts))  # every column of the table, those other calls read too
    out = []
    for c, col in zip(shifts, columns):
        low = max(c, 0)  # up to another column's offset: one column read twice (`emb([lo, lo + 1])`) bounds nothing
        high = min((o for j, o in table if o > c and j != col), default=n)
        out.append((low - c, high - c))
    return tuple(out)


def _shared(reader: EmbeddingReader) -> bool:
    """Whether a code reader's table holds other columns' rows at other offsets (its shifts, or other calls')."""
    return bool(reader.shifts) or any(o for _, o in reader.table or ())


def code_range_words(reader: EmbeddingReader, k: int) -> str:
    """The codes of a code reader's ``k``-th column (:func:`code_ranges`) in words: ``0 <= code < 8``, and for a column
    read at an offset of a shared table where its rows lie.

    Examples:
        >>> code_range_words(EmbeddingReader("emb", "Embedding", 20, 0, (2, 2), (2, 1), 0, (3, 4), (0, 8)), 1)
        '0 <= code < 12 (rows 8 to 19 of the 20 of a table it shares with other columns, read from offset 8)'
    """
    low, high = code_ranges(reader)[k]
    c = (reader.shifts or (0,) * (k + 1))[k]
    if not _shared(reader):
        return f"{low} <= code < {high}"
    return (f"{low} <= code < {high} (rows {low + c} to {high + c - 1} of the {reader.num_embeddings} of a table it shares "
            f"with other columns, read from offset {c})")


def codes_outside(values: Tensor, reader: EmbeddingReader) -> Tensor:
    """Which of a code reader's values (:func:`code_values`) lie outside their column's codes (:func:`code_ranges`:
    ``< 0`` or ``>= num_embeddings`` of an unshifted column) once ``.long()`` truncates them, or are not finite."""
    ranges = torch.tensor(code_ranges(reader), device=values.device).reshape(-1, 2)
    low, high = ranges[:, 0], ranges[:, 1]
    if not values.is_floating_point():
        return (values < low) | (values >= high)
    cast = values.trunc()
    return (cast < low) | (cast >= high) | ~torch.isfinite(values)


def code_position(x: Tensor, j: int) -> str:
    """A code position of the input ``x`` in words: ``column j`` of a table ``[N, D]``, ``position j`` (flattened) of
    other inputs.

    Args:
        x: the input (or a batch laid out like it).
        j: the position in a sample's flattened values (an entry of ``EmbeddingReader.columns``).

    Examples:
        >>> code_position(torch.zeros(4, 3), 2), code_position(torch.zeros(4, 2, 3), 5)
        ('column 2', "position 5 (of a sample's flattened values)")
    """
    return f"column {j}" if x.dim() == 2 else f"position {j} (of a sample's flattened values)"


def warn_codes_outside(who: str, x: Tensor, values: Tensor, reader: EmbeddingReader) -> bool:
    """Warn (:class:`FractionalCodeWarning`) of the first of a code reader's ``values`` (:func:`code_values`) that
    ``.long()`` would take outside ``[0, num_embeddings)`` (:func:`codes_outside`); whether there was one. A warning,
    not a refusal: the reader is matched on the clean rows' values only (:func:`_code_columns`), and a model that
    computes its indices from the column (``torch.bucketize``, ``.clamp(0, n - 1)``, a threshold) can equal it there
    and still read any value; where the model does cast the column, the pass with the value fails, named after it
    (:func:`float_codes_named`).

    Args:
        who: what set the values, in words, leading the message (`` `baseline` ``, `` `counterfactual` (...)``).
        x: the input the values are laid out like (where the position is told: :func:`code_position`).
        values: ``[M, k]`` the values at the reader's columns.
        reader: the code reader (``reader.columns`` set).

    Examples:
        >>> reader = EmbeddingReader("region", "Embedding", 4, 0, (2,), (1,), 0, columns=(2,))
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     warn_codes_outside("`baseline`", torch.zeros(2, 3), torch.tensor([[1.0], [4.0]]), reader)
        True
        >>> str(caught[0].message)[:47]
        '`baseline` sets column 2 to 4; that column look'
    """
    bad = codes_outside(values, reader)
    if not bool(bad.any()):
        return False
    row, k = (int(t[0]) for t in bad.nonzero(as_tuple=True))
    warnings.warn(
        f"{who} sets {code_position(x, (reader.columns or ())[k])} to {float(values[row, k]):g}; that column looks like a "
        f"category code that {reader.kind} {reader.name!r} looks up (its values were the embedding's indices in every "
        f"clean row), whose codes are {code_range_words(reader, k)}: if the model casts the column to indices "
        f"(x[:, j].long()), {_OUTSIDE_SHARED if _shared(reader) else _OUTSIDE}; a model that maps the value into range "
        "(bucketize, clamp) runs",
        FractionalCodeWarning, stacklevel=outside_package())
    return True


_OUTSIDE = "the pass fails (on a GPU with a device-side assert)"
_OUTSIDE_SHARED = ("the value reads another column's row of the shared table in silence, or beyond the table the pass fails "
                   "(on a GPU with a device-side assert)")


def _check_codes(x: Tensor, b: Tensor, r: EmbeddingReader, which: str, fractions: bool) -> None:
    """Warn of baseline values ``b`` at a code reader's columns that ``.long()`` would take outside
    ``[0, num_embeddings)`` (:func:`warn_codes_outside`), and of fractional ones (:class:`FractionalCodeWarning`) where
    ``fractions``."""
    full = b.expand(x.shape) if b.dim() <= x.dim() else b
    values = code_values(full, r)
    warn_codes_outside(f"`baseline`{which}", x, values, r)
    if fractions:
        frac = values != values.trunc()
        if bool(frac.any()):
            row, k = (int(t[0]) for t in frac.nonzero(as_tuple=True))
            v = float(values[row, k])
            warnings.warn(
                f"`baseline` sets {code_position(x, r.columns[k])}{which} to {v:g}; that column looks like a category code "
                f"that {r.kind} {r.name!r} looks up (its values were the embedding's indices in every clean row): if the "
                f"model casts it to indices (x[:, j].long()), {v:g} runs as code {int(v)}, and a mean or a fraction of "
                "codes is no code of its own. Pass one of its codes (e.g. the most frequent) to set that category",
                FractionalCodeWarning, stacklevel=outside_package())


def _read_values(x: Tensor, b: Tensor, reader: EmbeddingReader) -> Tensor:
    """The baseline values that land where ``reader`` reads ``x`` (all of them when the view cannot be mapped)."""
    full = torch.empty_like(x).copy_(b.expand(x.shape))  # laid out like x (empty_like keeps a dense layout)
    if full.stride() != x.stride():
        return full
    try:
        return full.as_strided(reader.size, reader.stride, reader.offset - x.storage_offset())
    except RuntimeError:  # the view reaches beyond x: read every value
        return full


def check_token_baselines(
    xs: tuple[Tensor, ...], bases: tuple[Tensor, ...], readers: list[EmbeddingReader],
    padding: Tensor | tuple[Tensor | None, ...] | None = None, *, fractions: bool = True,
) -> None:
    """Refuse an integer baseline that an embedding found by :func:`embedding_readers` cannot look
    up (``< 0`` or ``>= num_embeddings``) where it reads the input, and a float baseline that a code column's
    embedding (a reader with ``columns``) cannot look up once cast; a fractional one there warns
    (:class:`FractionalCodeWarning`) where ``fractions``. ``padding`` (booleans
    broadcastable to ``xs[0]``, or one entry per input, ``None`` for an unpadded one:
    :func:`~lightning_causal.causal.engine.ablation.input_padding`) marks positions that keep their tokens."""
    pads = padding if isinstance(padding, tuple) else (padding,)
    for r in readers:
        x, b = xs[r.input_index], bases[r.input_index]
        pad = pads[r.input_index] if r.input_index < len(pads) else None
        if pad is not None:
            b = torch.where(pad, x, b)
        if r.columns is not None:
            _check_codes(x, b, r, "" if len(xs) == 1 else f" (input {r.input_index})", fractions)
            continue
        values = _read_values(x, b, r)
        bad = (values < 0) | (values >= r.num_embeddings)
        if bool(bad.any()):
            which = "" if len(xs) == 1 else f" (input {r.input_index})"
            raise ValueError(
                f"Expected argument `baseline`{which} to be a token id in [0, {r.num_embeddings}) (the vocabulary of "
                f"{r.kind} {r.name!r}, which reads the input) but got "
                f"{int(values[bad][0])}"
            )


def warn_padding_filled(
    xs: tuple[Tensor, ...], masks: tuple[Tensor, ...], bases: tuple[Tensor, ...], readers: list[EmbeddingReader], g: int,
    padding: Tensor | tuple[Tensor | None, ...] | None = None,
) -> None:
    """Warn where an integer baseline other than an ``nn.EmbeddingBag``'s ``padding_idx`` (or an ``nn.Embedding``'s:
    its padding row is fixed, zeros unless set, so a bag summed by hand, ``emb(ids).sum(1)``, leaves it out too) would be
    set in slots that hold that id (bags padded to ``[N, K]``): the bag leaves the padding id out, so those slots hold no
    item, and setting them adds the baseline's item to the bag; their "effects" are of that addition, mixed into the summaries of
    their positions. Slots in no group (``g``: ``special_tokens``) and padding keep their ids and are not counted.

    Args:
        xs: the inputs.
        masks: their groups, ``g`` where in no group (:func:`keep_special_tokens`).
        bases: the baselines, one per input.
        readers: the embeddings that read the inputs (:func:`embedding_readers`).
        g: the number of groups.
        padding: as in :func:`check_token_baselines`.
    """
    pads = padding if isinstance(padding, tuple) else (padding,)
    for r in readers:
        if r.padding_idx is None or r.columns is not None:
            continue
        x, b, m = xs[r.input_index], bases[r.input_index], masks[r.input_index]
        if not is_integer(b):
            continue
        pad = pads[r.input_index] if r.input_index < len(pads) else None
        grouped = m.to(x.device).expand(x.shape) != g
        if pad is not None:
            grouped = grouped & ~pad.to(x.device).expand(x.shape)
        read, base, moved = _read_values(x, x, r), _read_values(x, b, r), _read_values(x, grouped.to(x.dtype), r)
        filled = (read == r.padding_idx) & (base != r.padding_idx) & moved.bool()
        if bool(filled.any()):
            value = int(base[filled][0])
            reads = (f"nn.EmbeddingBag {r.name!r}, which leaves that id out of its bags" if r.kind == "EmbeddingBag" else
                     f"{r.kind} {r.name!r}, whose padding row is fixed (zeros, untrained: a bag summed by hand, "
                     "`emb(ids).sum(1)`, leaves it out as a bag does)")
            warnings.warn(
                f"input_effects: baseline {value} fills {int(filled.sum())} slot(s) holding the padding id {r.padding_idx} "
                f"of {reads}: those slots hold no item, and setting "
                f"them to {value} adds item {value} to the input, so their effects are of that addition, mixed into the "
                f"summaries of their positions. Pass special_tokens=({r.padding_idx},) to leave the padding as it is "
                f"(baseline={r.padding_idx} removes an item from its bag; docs/your_model.md, 'Token inputs')",
                UserWarning, stacklevel=outside_package())
            return


def token_baseline_error(err: IndexError, bases: tuple[Tensor, ...]) -> ValueError | None:
    """An error naming ``baseline`` for an ``IndexError`` of an intervened pass whose clean pass
    ran (the integer baseline is what changed), or ``None`` when no baseline is integer."""
    ints = [b for b in bases if is_integer(b)]
    if not ints:
        return None
    values = sorted({int(v) for b in ints for v in b.unique()[:8].tolist()})
    return ValueError(
        f"Expected argument `baseline` to hold token ids the model can look up (0 <= id < the vocabulary size of the "
        f"embedding that reads them) but got {values if len(values) > 1 else values[0]}: the clean forward pass ran and "
        f"the pass with the baseline failed with IndexError: {err}"
    )


FLOAT_CODES = (
    "a category code kept in a float column and cast inside the model (`x[:, j].long()` into an embedding) can only be "
    "set to one of its codes, 0 <= code < the size of the embedding that reads it (not a mean, nor a code beyond the last)"
)
"""What an ``IndexError`` of a pass on float inputs means once the clean pass ran: an intervention set a code column
the model casts to indices to a value its embedding cannot look up."""


def float_code_error(err: IndexError, argument: str, what: str) -> ValueError:
    """An error naming ``argument`` for an ``IndexError`` of a pass on float inputs set to ``what`` (the clean pass
    ran, so the values set are what the model's embedding could not look up: :data:`FLOAT_CODES`).

    Args:
        err: the pass's error (``nn.Embedding``'s "index out of range in self").
        argument: the parameter that gave the values (``baseline``, ``values``, ``counterfactual``).
        what: the pass that failed, in words (``"the baseline"``).

    Examples:
        >>> str(float_code_error(IndexError("index out of range in self"), "baseline", "the baseline"))[:83]
        'Expected argument `baseline` to give inputs the model can read, but the clean forwa'
    """
    return ValueError(
        f"Expected argument `{argument}` to give inputs the model can read, but the clean forward pass ran and the pass "
        f"with {what} failed with IndexError: {err}; {FLOAT_CODES}"
    )


_FUNCTIONAL = os.path.join("torch", "nn", "functional.py")
#: torch's ``IndexError`` of a tensor indexed out of range (``table[ids]``), with the index
_OUT_OF_BOUNDS = re.compile(r"index (-?\d+) is out of bounds for dimension \d+ with size \d+")


def from_embedding(err: BaseException) -> bool:
    """Whether ``err`` was raised looking indices up in an embedding (``torch.nn.functional.embedding`` or
    ``embedding_bag``, which ``nn.Embedding``/``nn.EmbeddingBag`` call): an ``IndexError`` raised elsewhere in a
    model's forward (a table of its own indexed by the batch's size) is the model's own, not the values set.

    Examples:
        >>> try:
        ...     nn.Embedding(4, 2)(torch.tensor([4]))
        ... except IndexError as err:
        ...     from_embedding(err)
        True
        >>> try:
        ...     torch.ones(2)[torch.tensor([3])]
        ... except IndexError as err:
        ...     from_embedding(err)
        False
    """
    return any(f.name in ("embedding", "embedding_bag") and f.filename.endswith(_FUNCTIONAL)
               for f in traceback.extract_tb(err.__traceback__))


def embedding_lookup_error(err: BaseException, ids: Tensor | None = None) -> IndexError | None:
    """The failed embedding lookup that ``err`` stands for, as an ``IndexError``, or ``None`` for any other error.

    ``nn.Embedding`` given an index outside ``[0, num_embeddings)`` raises ``IndexError: index out of range in self``;
    on the CPU ``nn.EmbeddingBag`` raises ``RuntimeError: Expected i < index_size ...`` or ``... which is not in the
    valid range [0, n)`` (by kernel) instead, read here as the ``IndexError`` it stands for. Either counts only when
    raised in ``F.embedding``/``F.embedding_bag`` (:func:`from_embedding`): an ``IndexError`` or ``RuntimeError`` of the
    model's own code (a table of its own indexed by the batch's size) is ``None``, not a value the model could not look up.
    With ``ids``, the integer ids a baseline or counterfactual set, torch's ``IndexError`` of a table the model indexes
    with them itself (``self.table[ids]``: ``index 10 is out of bounds for dimension 0 with size 10``) counts too where
    its index is one of ``ids``.

    Args:
        err: the error a pass raised.
        ids: the integer ids the pass set (``None``: only an embedding's lookup counts).

    Examples:
        >>> try:
        ...     nn.EmbeddingBag(4, 2)(torch.tensor([[1, 7]]))
        ... except RuntimeError as caught:
        ...     str(embedding_lookup_error(caught))[:37]
        'index out of range in an EmbeddingBag'
        >>> embedding_lookup_error(IndexError("list index out of range")) is None
        True
        >>> table_error = IndexError("index 10 is out of bounds for dimension 0 with size 10")  # self.table[ids]
        >>> embedding_lookup_error(table_error, torch.tensor([10])) is table_error
        True
    """
    if isinstance(err, IndexError):
        if from_embedding(err):
            return err
        index = _OUT_OF_BOUNDS.search(str(err))
        found = index is not None and is_integer(ids) and bool((ids == int(index.group(1))).any())
        return err if found else None
    message = str(err)
    if not isinstance(err, RuntimeError) or not ("index_size" in message or "not in the valid range" in message):
        return None
    return IndexError(f"index out of range in an EmbeddingBag ({message.split('.')[0]})") if from_embedding(err) else None


@contextmanager
def float_codes_named(xs: tuple[Tensor, ...], argument: str, what: str) -> Iterator[None]:
    """A pass on inputs set to ``what``: its ``IndexError`` becomes :func:`float_code_error` for float inputs, and for
    integer ones (ids or codes an embedding reads through a view the checks before the pass cannot map, such as
    ``race[:, 0]`` of a non-contiguous ``race``) an error naming ``argument`` and the embedding's range; other errors, and
    an ``IndexError`` raised elsewhere than in an embedding (:func:`from_embedding`), pass unchanged. An
    ``nn.EmbeddingBag``'s failed lookup (a ``RuntimeError`` on the CPU) is named too."""
    try:
        yield
    except (IndexError, RuntimeError) as caught:
        err = embedding_lookup_error(caught)
        if err is None:  # the model's own error, not a value an embedding could not look up
            raise
        if any(isinstance(x, Tensor) and x.is_floating_point() for x in xs):
            raise float_code_error(err, argument, what) from caught
        if not any(is_integer(x) for x in xs):
            raise
        raise ValueError(
            f"Expected argument `{argument}` to give ids the model can look up, but the clean forward pass ran and the pass "
            f"with {what} failed with IndexError: {err}; an id or code an embedding reads must lie in 0 <= id < its size"
        ) from caught


@contextmanager
def token_errors_named(bases: tuple[Tensor, ...]) -> Iterator[None]:
    """An intervened pass whose failure a baseline may explain: an ``IndexError`` raised in an embedding
    (:func:`embedding_lookup_error`: one that reads indices computed from the ids; an ``IndexError`` of the model's own
    code passes unchanged) becomes :func:`token_baseline_error`, or with a float baseline
    :func:`float_code_error` (a code column cast inside the model set to no code), a ``ValueError``
    (the model refuses the ids: an encoder-decoder without its ``</s>``) :func:`special_token_hint`;
    other errors, and these without an integer or float baseline, pass unchanged; an ``nn.EmbeddingBag``'s failed
    lookup (a ``RuntimeError`` on the CPU) is read as the ``IndexError`` it stands for."""
    try:
        yield
    except (IndexError, RuntimeError) as caught:
        ids = [b.flatten() for b in bases if is_integer(b)]
        err = embedding_lookup_error(caught, torch.cat(ids) if ids else None)
        if err is None:  # the model's own error (an IndexError of its code, unrelated to the ids): not the baseline
            raise
        named = token_baseline_error(err, bases)
        if named is None and any(b.is_floating_point() for b in bases if isinstance(b, Tensor)):
            named = float_code_error(err, "baseline", "the baseline")
        if named is None:
            raise
        raise named from caught
    except ValueError as err:
        hint = special_token_hint(err, bases)
        if hint is None:
            raise
        raise hint from err


def check_special_tokens(special_tokens: object) -> tuple[int, ...]:
    """``special_tokens`` as a tuple of non-negative token ids (``()``: none), or a ``ValueError`` naming it."""
    if isinstance(special_tokens, Tensor):
        special_tokens = special_tokens.flatten().tolist()
    if isinstance(special_tokens, int) and not isinstance(special_tokens, bool):
        special_tokens = (special_tokens,)
    try:
        out = tuple(special_tokens)  # type: ignore[arg-type]
    except TypeError:
        out = None
    if out is None or isinstance(special_tokens, (str, bytes)) or not all(
            isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in out):
        raise ValueError(f"Expected argument `special_tokens` to be non-negative token ids (ints) but got {special_tokens!r}")
    return out


def keep_special_tokens(
    xs: tuple[Tensor, ...], masks: tuple[Tensor, ...], special_tokens: tuple[int, ...], g: int
) -> tuple[Tensor, ...]:
    """The groups ``masks`` with the positions of the first input (the token ids, as the attention mask
    applies to it; a second integer input such as ``token_type_ids`` holds no tokens) that hold one of
    ``special_tokens`` given the id ``g`` (in no group): no intervention replaces them (an
    encoder-decoder classifier's ``</s>``, ``[CLS]``). A group of special tokens only is empty (effect 0);
    a group that holds some replaces its other tokens only. Refuses ``special_tokens`` when the first
    input holds no integer ids."""
    if not special_tokens:
        return masks
    x = xs[0]
    if not is_integer(x):
        raise ValueError(
            f"Expected argument `special_tokens` only with token (integer) inputs but got {special_tokens!r} with an input "
            f"of dtype {x.dtype}"
        )
    special = torch.isin(x, torch.tensor(special_tokens, dtype=x.dtype, device=x.device))
    if not bool(special.any()):
        return masks
    return (masks[0].to(x.device).expand(x.shape).masked_fill(special, g), *masks[1:])


def special_token_baseline(x: Tensor, baseline: object, special_tokens: tuple[int, ...]) -> object:
    """A token baseline ``[N, T]`` that holds ``x``'s own token where it is one of ``special_tokens``
    (``baseline`` unchanged without them or for non-integer ``x``): Captum's baselines and the
    deletion/insertion curves then leave special tokens in place, as :func:`keep_special_tokens` does."""
    if not special_tokens or not is_integer(x):
        return baseline
    b = torch.as_tensor(baseline, device=x.device).to(x.dtype)
    kept = torch.tensor(special_tokens, dtype=x.dtype, device=x.device)
    return torch.where(torch.isin(x, kept), x, b.expand(x.shape))


def special_token_hint(err: ValueError, bases: tuple[Tensor, ...]) -> ValueError | None:
    """The model's refusal of ids whose end-of-sequence token the baseline replaced (BART and T5
    classifiers: "All examples must have the same number of <eos> tokens"), with the way out:
    ``special_tokens=(eos_id,)``. ``None`` for any other error or without an integer baseline."""
    if not any(is_integer(b) for b in bases) or "eos" not in str(err).lower():
        return None
    return ValueError(
        f"{err} (the model refused the ids after the token baseline replaced a token it must read, its end-of-sequence "
        "token `</s>`: an encoder-decoder classifier such as BART or T5 reads it; keep it with "
        "`special_tokens=(eos_id,)`; in CaptumBaseline `settings=CompareSettings(special_tokens=(eos_id,))`)"
    )
