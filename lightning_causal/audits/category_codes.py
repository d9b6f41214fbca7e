"""Category codes among integer inputs: a table's columns ``[N, D]`` each looked up by an embedding of its own (an
FT-Transformer's ``self.cat[j](x_cat[:, j])``), which are no token ids of one vocabulary: code 1 of one column is no
code 1 of another. :func:`code_columns` finds them on a clean pass; :func:`category_codes` says so in words."""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

import torch
from torch import nn

from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.state import audit_mode
from lightning_causal.causal.engine.token_ids import embedding_readers

if TYPE_CHECKING:
    from lightning_causal.audits.base import Probe

__all__ = ["category_codes", "code_columns", "code_reading"]


def code_columns(model: nn.Module, probe: Probe) -> dict[str, int]:
    """The embeddings of ``model`` (by name) that each look up one column of the explained input ``x`` ``[N, D]``
    (integers), with the column each reads, where two or more columns are read so; ``{}`` otherwise (token ids that one
    embedding reads whole, a pass that fails: refused elsewhere, in the model's words). Seen on up to 16 clean rows of
    ``probe`` (64 where the indices are computed from the input; a probe of fewer rows, 64 drawn from its columns' own
    values, :func:`_drawn_rows`) in eval mode without gradient, the model's state and random streams restored, once per
    model and probe.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> from lightning_causal.audits import Probe
        >>> class Codes(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.cat = nn.ModuleList(nn.Embedding(n, 2) for n in (3, 4))
        ...     def forward(self, x_cat):
        ...         return sum(e(x_cat[:, j]) for j, e in enumerate(self.cat))
        >>> code_columns(Codes(), Probe(torch.tensor([[0, 3], [2, 1]])))
        {'cat.0': 0, 'cat.1': 1}
        >>> code_columns(nn.Sequential(nn.Embedding(5, 2), nn.Flatten()), Probe(torch.tensor([[0, 3], [2, 1]])))
        {}
    """
    return code_reading(model, probe)[0]


def code_reading(model: nn.Module, probe: Probe) -> tuple[dict[str, int], list[int]]:
    """:func:`code_columns`, with the other columns of ``x`` that an embedding looks up among several (token ids beside
    the codes: a model of ``user(x[:, 0]) + domain(x[:, 1]) + tok(x[:, 2:])``), ``[]`` where there are none or no codes;
    one pass for both (:func:`_read`), once per model and probe (again where the model's modules change,
    :func:`_reading_key`).

    An embedding's indices computed from the columns count too (:func:`~lightning_causal.causal.engine.token_ids.
    embedding_readers` with ``computed``): ``self.cat[j](x[:, j].long())`` of int32 codes, and one table shared by the
    columns, each from its own offset (rtdl's ``emb(x + offsets)``), whose columns are named by the table and the offset
    (``'emb from 3'``); indices shifted all by one constant (``emb(ids + 1)``) are token ids of one vocabulary.

    Examples:
        >>> from lightning_causal.audits import Probe
        >>> class Mixed(nn.Module):  # torch and nn: the module's own
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.user, self.domain, self.tok = nn.Embedding(9, 2), nn.Embedding(9, 2), nn.Embedding(9, 2)
        ...     def forward(self, x):
        ...         return self.user(x[:, 0]) + self.domain(x[:, 1]) + self.tok(x[:, 2:]).sum(1)
        >>> code_reading(Mixed(), Probe(torch.tensor([[0, 3, 5, 6], [2, 1, 7, 8]])))
        ({'user': 0, 'domain': 1}, [2, 3])
    """
    x = probe.first
    if x.dim() != 2 or x.is_floating_point() or not x.is_contiguous():
        return {}, []
    key = _reading_key(model, probe)
    held = _READINGS.get(model)
    if held is None or held[0] != key or held[1]() is not x:
        held = (key, weakref.ref(x), _read(model, probe, _CODE_ROWS))
        _READINGS[model] = held
    read, tokens = held[2]
    return dict(read), list(tokens)


_READINGS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
"""Per model, the last probe's reading (:func:`code_reading`): its key, the probe's input (weakly) and the answer."""


def _reading_key(model: nn.Module, probe: Probe) -> tuple:
    """What a reading depends on beside the probe's input itself: the model's modules (their names, classes and
    identities: a module added or replaced, an embedding resized, reads otherwise; new weights read the same columns),
    its integer buffers (identities: offsets set anew name a shared table's columns otherwise), the input's shape and
    version (written in place) and the forward arguments passed beside it. An attribute that is no module nor buffer
    (a list of the columns to read) is not seen."""
    x = probe.first
    modules = tuple((name, type(m), id(m)) for name, m in model.named_modules())
    buffers = tuple((name, id(b)) for name, b in model.named_buffers() if not b.is_floating_point())
    return modules, buffers, tuple(x.shape), x._version, id(probe.additional_forward_args)


def _read(model: nn.Module, probe: Probe, rows: int) -> tuple[dict[str, int], list[int]]:
    """:func:`code_reading`'s pass of the first ``rows`` rows and its reading; where no embedding read the input itself
    (a view: token ids, codes looked up as they are) and nothing was read, again on :data:`_SHIFTED_ROWS` rows, as an
    offset is matched on ``16 + log2(D)`` bits of changes (a 0/1 column's on 16 rows carries 16)."""
    sub = probe.subset(slice(0, rows))
    x = sub.first
    try:
        with embedding_readers(model, (x,), computed=True) as found, audit_mode(model), torch.no_grad():
            Forward(model, num_samples=len(sub), **sub.forward_options).raw(x)
    except Exception:  # noqa: BLE001 - the pass is the audit's to refuse, in its own words
        return {}, []
    n, d = x.shape
    if n < _SHIFTED_ROWS and not any(r.columns is None and r.input_index == 0 for r in found):
        if len(probe) > n:
            return _read(model, probe, _SHIFTED_ROWS)  # indices computed from the input: a shifted column needs more rows
        if (drawn := _drawn_rows(probe)) is not None and (read := _read(model, drawn, _SHIFTED_ROWS))[0]:
            return read  # a probe of fewer rows: its own values, drawn column by column; else its own rows' reading
    flat = torch.arange(n * d)  # the positions of x each lookup reads, as columns
    seen: dict[str, set[int]] = {}
    whole: set[str] = set()  # the embeddings that looked a column up whole: x[:, j] or x[:, j:j + 1], a value a row
    for r in found:
        if r.input_index != 0:
            continue
        if r.columns is None:
            at = flat.as_strided(r.size, r.stride, r.offset - x.storage_offset())
            seen.setdefault(r.name, set()).update((at % d).unique().tolist())
            if r.size in ((n,), (n, 1)) and r.stride[0] == d:
                whole.add(r.name)
            continue
        shifts = r.shifts or (0,) * len(r.columns)  # indices computed from columns: cast, or each from its offset
        if len(r.columns) == 1 or len(set(shifts)) == len(shifts):  # a column alone, or one table's columns apart
            for column, shift in zip(r.columns, shifts):
                name = f"{r.name} from {shift}" if shift or len(r.columns) > 1 or r.table else r.name
                seen.setdefault(name, set()).add(column)
                whole.add(name)
        else:  # one constant for all (ids + 1): token ids of one vocabulary
            seen.setdefault(r.name, set()).update(r.columns)
    # a code column's embedding looks up that column alone, not a token per step of a loop (src(x[:, t]) for each t)
    read = {name: next(iter(cols)) for name, cols in seen.items() if name in whole and len(cols) == 1}
    if len(set(read.values())) < 2:
        return {}, []
    return read, sorted(set().union(*seen.values()) - set(read.values()))


_CODE_ROWS, _SHIFTED_ROWS = 16, 64  # rows of the detection pass; where indices are computed from the input


def _drawn_rows(probe: Probe) -> Probe | None:
    """:data:`_SHIFTED_ROWS` rows for :func:`_read` from a probe of fewer rows (8 rows matched no offset of rtdl's
    ``emb(x + offsets)``, and its codes were ranked as token ids of one vocabulary): each column's values drawn from that
    column's own rows (a generator of its own, seeded 0: no global stream moves), so every value is one the column
    holds, in rows the probe need not hold. ``None`` where rows cannot be made so: other inputs or forward arguments
    travel with the rows (then the probe's own rows are read, as before); or the probe is not on the CPU: columns drawn
    apart can build an index past the table (hierarchical codes, ``start[c] + sub``: index 10 of a table of 8), an
    IndexError the CPU raises and :func:`_read` passes by, but a device-side assert on CUDA that every later call repeats."""
    from lightning_causal.audits.base import Probe  # base imports the audits

    if (not isinstance(probe.inputs, torch.Tensor) or probe.additional_forward_args is not None
            or probe.inputs.device.type != "cpu"):
        return None
    x = probe.inputs
    gen = torch.Generator().manual_seed(0)
    at = torch.randint(0, x.shape[0], (_SHIFTED_ROWS, x.shape[1]), generator=gen)
    return Probe(x.gather(0, at))


def category_codes(model: nn.Module | None, probe: Probe | None) -> str:
    """``"'cat.0' reads column 0, 'cat.1' column 1"`` where :func:`code_columns` finds category codes, else ``""``."""
    read = {} if model is None or probe is None else code_columns(model, probe)
    return ", ".join(f"{name!r} reads column {j}" if i == 0 else f"{name!r} column {j}" for i, (name, j) in enumerate(read.items()))
