"""Reading samples from a user's data without moving any random stream: the global RNGs are
restored (``rng_preserved``) and so is every generator object reachable from the source (a
DataLoader's ``generator``, its sampler's, one a dataset keeps for its augmentations:
:func:`rngs_untouched`), samplers are iterated on copies and a loader's persistent-workers iterator is
kept, so the training that follows is the same with or without the read. Shared
by :class:`~lightning_causal.callbacks.CausalAuditCallback` (its probe) and
:class:`~lightning_causal.repair.CausalRepairModule` (its terms' training inputs).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
import functools
import random
import types
import warnings
from collections.abc import Callable, Iterator, Mapping, Sequence
from itertools import chain, islice
from typing import Any

import numpy as np
import torch
from lightning.pytorch import LightningDataModule
from lightning.pytorch.utilities import CombinedLoader
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import Tensor, nn
from torch.utils.data import (
    BatchSampler,
    DataLoader,
    Dataset,
    DistributedSampler,
    IterableDataset,
    RandomSampler,
    Sampler,
    SequentialSampler,
    TensorDataset,
    WeightedRandomSampler,
)

from lightning_causal.causal.engine.forward_args import map_tensors
from lightning_causal.causal.engine.generators import RNG_TYPES, rng_state, set_rng_state
from lightning_causal.causal.engine.live_values import rebuild
from lightning_causal.causal.engine.state import rng_preserved
from lightning_causal.causal.engine.user_frame import outside_package

__all__ = ["batch_rows", "mapping_like", "read_samples", "rngs_untouched"]

RowsOf = Callable[[Any], int]  # a batch's samples as the caller counts them
#: ``rows_of.reads(batch)``, where the caller's reading copies what it reads (a user's ``unpack_batch``): whether it
#: read ``batch`` (``False``: its unpacking failed there and ``rows_of`` gave :func:`batch_rows`), so that a batch given
#: whole is read off a cut of its rows first (:func:`_read_off_a_cut`)
READS = "reads"
#: ``rows_of.passed(batch)``, where the caller knows it: the batch's tensors its unpacking gives the model (inputs and
#: forward arguments), so that items whose tensors of other rows it never gives (it gathers the samples from them,
#: ``b["x"][b["idx"]]``) are told from an episode's support sets (:func:`_from_batches`)
PASSED = "passed"
#: ``rows_of.made(batch)``, where the caller knows it: the first input its unpacking made of ``batch`` (a gather,
#: ``b["x"][b["order"]]``, a cast), ``None`` where it passed one of the batch's tensors as it is, drew random numbers,
#: or did not read it, so that items whose samples read otherwise joined than apart are not joined (:func:`_from_batches`)
MADE = "made"
WholeOf = Callable[[Any], Sequence[Tensor]]  # the tensors of a batch the model reads whole whatever their rows

_LEAVES = (str, bytes, int, float, complex, bool, type(None), Tensor, np.ndarray, type, types.ModuleType,
           types.BuiltinFunctionType)
_DEPTH = 6  # loader -> batch_sampler -> sampler -> generator; dataset -> transform -> list -> op -> rng
_ITEMS = 64  # items of one container searched (a list of a million file names is not walked); attributes all
#: what every ``nn.Module`` holds (its submodules, walked apart; parameters, buffers, hooks' dicts): no user's generator
_MODULE_INTERNALS = frozenset(vars(nn.Module()))
_SPREAD_SEED = 0  # the private generator that spreads a distributed loader's `loader_order` read over the data


def _callable_parts(obj: Any) -> list[Any]:
    """What a transform given as a function holds: a closure's captured values and a function's
    defaults (``lambda x: x + torch.randn(x.shape, generator=g)``), a ``functools.partial``'s function
    and arguments, a bound method's object; the globals its code names (a module-level ``G = torch.Generator()`` a
    denoiser's ``unpack_batch`` draws timesteps from, directly, through a helper function it calls, or held by a
    global object: a noise schedule ``sched.q_sample(x0)`` drawing from ``self.g``, a dict of generators, a
    ``functools.partial``, a bound method), walked as any other part (modules and classes are not)."""
    if isinstance(obj, types.FunctionType):
        cells = []
        for cell in obj.__closure__ or ():
            try:
                cells.append(cell.cell_contents)
            except ValueError:  # an empty cell (a name not yet bound)
                pass
        named = [obj.__globals__[name] for name in sorted(_code_names(obj.__code__)) if name in obj.__globals__]
        return [*cells, *(obj.__defaults__ or ()), *(obj.__kwdefaults__ or {}).values(), *named]
    if isinstance(obj, functools.partial):
        return [obj.func, *obj.args, *obj.keywords.values()]
    if isinstance(obj, types.MethodType):
        return [obj.__self__, obj.__func__]
    return []


def _code_names(code: types.CodeType) -> set[str]:
    """The global names ``code`` reads, with those of the functions defined in it (a lambda, a nested ``def``)."""
    names = set(code.co_names)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names |= _code_names(const)
    return names


def _find_rngs(roots: Sequence[Any]) -> list[Any]:
    """The generator objects reachable from ``roots`` through attributes and containers, each within ``_DEPTH``
    steps of a root (an object reached first along a longer path, the datamodule through the module's trainer, is
    searched again from a shorter one). A module's submodules count no step: a model's tree is searched whole,
    so a generator held three modules below the LightningModule (``self.data.pick.draws.gen``) is found as one
    held by the module itself, while the depth still bounds the rest (the trainer, its loops and loggers, reached
    through the LightningModule's ``_trainer``); what every module holds (parameters, buffers, hooks' dicts) is not
    searched. The cost grows with the model's size, once per search: from a LightningModule attached to a trainer
    (a ``TransformerEncoder`` of 1, 12 and 48 layers: 13, 123 and 483 modules), 0.27, 0.6 and 1.8-2.0 ms, where the
    search cut at depth 6 took 0.28-0.30 ms (medians of 9, 2 CPU cores under load)."""
    found: list[Any] = []
    seen: dict[int, int] = {}  # id -> the most steps left with which it was searched

    def visit(obj: Any, depth: int) -> None:
        if seen.get(id(obj), -1) >= depth:
            return
        if isinstance(obj, RNG_TYPES):
            if id(obj) not in seen:
                found.append(obj)
            seen[id(obj)] = depth
            return
        seen[id(obj)] = depth
        if depth == 0 or isinstance(obj, _LEAVES):
            return
        if isinstance(obj, Mapping):
            children: Any = islice(obj.values(), _ITEMS)
        elif isinstance(obj, (list, tuple, set, frozenset)):
            children = islice(obj, _ITEMS)
        elif isinstance(obj, nn.Module):  # submodules at the module's own depth: the tree is searched whole
            for sub in obj._modules.values():
                if sub is not None:
                    visit(sub, depth)
            children = (value for key, value in vars(obj).items() if key not in _MODULE_INTERNALS)
        else:  # every attribute: a LightningModule holds 48 of Lightning's and torch's before the user's own
            children = chain(_callable_parts(obj), getattr(obj, "__dict__", {}).values())
        for child in children:
            visit(child, depth - 1)

    for root in roots:
        visit(root, _DEPTH)
    return found


def _persistent_loaders(roots: Sequence[Any]) -> list[DataLoader]:
    """The DataLoaders with ``persistent_workers`` among ``roots`` (and in lists, tuples and dicts of them)."""
    found: list[DataLoader] = []
    for root in roots:
        items = root.values() if isinstance(root, Mapping) else root if isinstance(root, (list, tuple)) else (root,)
        found += [d for d in items if isinstance(d, DataLoader) and d.persistent_workers and d.num_workers > 0]
    return found


def _stateful_parts(roots: Sequence[Any]) -> list[Any]:
    """The datasets, samplers and batch samplers of the DataLoaders among ``roots`` (and datasets
    given as roots) that keep a state of their own (``state_dict`` and ``load_state_dict``, the
    protocol Lightning saves a resumable stream's position with). Not a module or a datamodule given as a root (for
    the generators it holds): their ``load_state_dict`` is Lightning's hook of a resume from a checkpoint."""
    parts: list[Any] = []
    for root in roots:
        items = root.values() if isinstance(root, Mapping) else root if isinstance(root, (list, tuple)) else (root,)
        for item in items:
            candidates = [item.dataset, item.sampler, item.batch_sampler] if isinstance(item, DataLoader) else [item]
            parts += [c for c in candidates if all(callable(getattr(c, k, None)) for k in ("state_dict", "load_state_dict"))
                      and not isinstance(c, (DataLoader, torch.nn.Module, LightningDataModule)) and all(c is not p for p in parts)]
    return parts


@contextlib.contextmanager
def rngs_untouched(*roots: Any, watch: bool = False) -> Iterator[list[bool]]:
    """Restore, on exit, the global random states and those of every generator object
    (``torch.Generator``, ``random.Random``, NumPy's ``Generator``/``RandomState``) reachable from
    ``roots`` through attributes, lists, dicts and functions (closures, defaults, ``functools.partial``
    arguments, bound methods' objects): a DataLoader's ``generator``, its sampler's, the one a dataset
    or its transform draws augmentations from, one held by a module at any depth of its tree.

    A DataLoader with ``persistent_workers`` among ``roots`` keeps the iterator it had: one that
    iterating it inside the block creates (with workers, their random streams and the base seed
    drawn) is shut down on exit, and one it held before is set aside, not reset nor advanced. Training
    then starts that loader's workers as it would have without the read. Its dataset, sampler and batch
    sampler, where they keep a state (``state_dict``/``load_state_dict``: a resumable stream's
    position), get their state back on exit. The block is given a list that holds, once it is left, whether it drew
    where ``watch``: ``[True]`` where any of those random states moved inside it (an ``unpack_batch`` that draws a
    denoiser's noise); empty without ``watch`` (no state read again, nothing compared)."""
    rngs = _find_rngs(roots)
    states = [rng_state(r) for r in rngs]
    stateful = [(part, copy.deepcopy(part.state_dict())) for part in _stateful_parts(roots)]
    loaders = [(d, d._iterator) for d in _persistent_loaders(roots)]
    for loader, _ in loaders:
        loader._iterator = None  # the read iterates a fresh iterator, not the one training holds
    drawn: list[bool] = []
    try:
        with rng_preserved():
            inside = _global_states() if watch else None
            try:
                yield drawn
            finally:
                if watch:
                    drawn.append(not _same(inside, _global_states()) or not _same(states, [rng_state(r) for r in rngs]))
    finally:
        for rng, state in zip(rngs, states):
            set_rng_state(rng, state)
        for part, state in stateful:
            part.load_state_dict(state)
        for loader, before in loaders:
            made, loader._iterator = loader._iterator, before
            if made is not None and made is not before:
                made._shutdown_workers()


def _global_states() -> list[Any]:
    """The global random states :func:`rng_preserved` restores (CUDA's where it is started)."""
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_available() and torch.cuda.is_initialized() else []
    return [torch.random.get_rng_state(), *cuda, np.random.get_state(), random.getstate()]


def _same(a: Any, b: Any) -> bool:
    """Whether two random states (tensors, arrays, and the tuples, lists and dicts holding them) are equal."""
    if isinstance(a, Tensor) or isinstance(b, Tensor):
        return isinstance(a, Tensor) and isinstance(b, Tensor) and torch.equal(a, b)
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return bool(np.array_equal(a, b))
    if isinstance(a, Mapping) and isinstance(b, Mapping):
        return a.keys() == b.keys() and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (tuple, list)) and isinstance(b, (tuple, list)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return bool(a == b)


def _spread(pool: int, size: int) -> list[int] | None:
    """``size`` positions in ``range(pool)`` drawn by a private seeded generator (``None``: all)."""
    if pool <= size:
        return None
    return torch.randperm(pool, generator=torch.Generator().manual_seed(_SPREAD_SEED))[:size].tolist()


def _detached(sampler: Any) -> Any:
    """A shallow copy of a sampler or batch sampler (and of the samplers it holds) to iterate, so that
    one that advances its own attributes in ``__iter__`` (an epoch counter it seeds its order with) is
    left as it was for training; the generators it shares with the original are restored by
    :func:`rngs_untouched`. One that cannot be copied is iterated as it is."""
    try:
        twin = copy.copy(sampler)
    except Exception:  # noqa: BLE001 - any failure to copy: iterate the original, as before
        return sampler
    for name, value in list(getattr(twin, "__dict__", {}).items()):
        if isinstance(value, Sampler) and value is not sampler:
            setattr(twin, name, _detached(value))
    return twin


def _sampler_indices(loader: DataLoader, size: int, loader_order: bool) -> list[int] | None:
    """``size`` of the dataset indices the loader draws from (``None``: the whole dataset, read in
    its own order). A sampler or batch sampler that selects part of the dataset (a
    ``SubsetRandomSampler``, a list of indices, a custom sampler) gives its indices, so that a
    loader over one split of a shared dataset is read on that split. ``loader_order``: the indices
    of the loader's first batches instead (call under :func:`rngs_untouched`)."""
    sampler: Any = loader.sampler
    wrapped = getattr(getattr(sampler, "dataset", None), "_sampler", None)  # Lightning's DistributedSamplerWrapper
    if isinstance(sampler, DistributedSampler) and wrapped is None:  # every rank reads the same samples
        return _spread(len(loader.dataset), size) if loader_order else None  # type: ignore[arg-type]
    if loader_order:
        # the order of a new iterator: it draws its base seed (from the loader's generator) before the sampler draws
        torch.empty((), dtype=torch.int64).random_(generator=loader.generator)
        batches = _detached(loader.batch_sampler) if wrapped is None and loader.batch_sampler is not None else None
        stream = chain.from_iterable(batches) if batches is not None else iter(_detached(wrapped if wrapped is not None else sampler))
        return [int(i) for i in islice(stream, size)]
    if isinstance(loader.batch_sampler, BatchSampler):
        sampler = loader.batch_sampler.sampler  # the loader's own, or one the user batched
    elif loader.batch_sampler is not None:
        return list(islice(chain.from_iterable(_detached(loader.batch_sampler)), size))  # a custom batch sampler
    sampler = wrapped if wrapped is not None else sampler
    if isinstance(sampler, (SequentialSampler, RandomSampler)) and sampler.data_source is loader.dataset:
        return None
    if isinstance(sampler, WeightedRandomSampler):  # draws (with replacement) from the samples of non-zero weight
        return torch.nonzero(sampler.weights > 0).flatten()[:size].tolist()
    indices = getattr(sampler, "indices", sampler)  # SubsetRandomSampler, or a sequence of indices as sampler
    if isinstance(indices, (Sequence, Tensor, np.ndarray)) and not isinstance(indices, (str, bytes)):
        return [int(i) for i in indices[:size]]
    return [int(i) for i in islice(iter(_detached(sampler)), size)]


def _from_dataset(dataset: Dataset, size: int, collate: Any, indices: list[int] | None = None) -> Any:
    if isinstance(dataset, IterableDataset):  # before len(): a sized IterableDataset has no __getitem__
        raise MisconfigurationException(
            f"Expected `probe` data with indexed samples (a map-style Dataset) but got an IterableDataset "
            f"({type(dataset).__name__}); pass the probe as tensors or a batch (`probe=`) for iterable datasets"
        )
    if isinstance(dataset, TensorDataset) and collate in (None, torch.utils.data.default_collate):  # slice or gather without
        # a Python loop over samples; a collate_fn of the loader's own (one that scales, pads or packs) sees the items instead
        if indices is None:
            return tuple(t[:size] for t in dataset.tensors)
        rows = torch.as_tensor(indices[:size], dtype=torch.long)
        return tuple(t[rows.to(t.device)] for t in dataset.tensors)
    if indices is None:
        try:
            indices = list(range(min(size, len(dataset))))  # type: ignore[arg-type]
        except TypeError as err:
            raise MisconfigurationException(
                f"Expected `probe` data with a length (a map-style Dataset) but got {type(dataset).__name__} without "
                "`__len__`; pass the probe as tensors or a batch (`probe=`)"
            ) from err
    items = [dataset[i] for i in indices[:size]]
    try:
        return (collate or torch.utils.data.default_collate)(items)
    except (RuntimeError, TypeError, ValueError) as err:
        if collate is not None:
            raise
        raise MisconfigurationException(
            f"Expected the samples of the `probe` dataset ({type(dataset).__name__}) to stack into one batch, but "
            f"torch's default collate failed: {err}. Samples of different lengths (dynamic padding) need your "
            "collate function: pass `probe=DataLoader(dataset, collate_fn=...)` (the training loader's, e.g. "
            "transformers' DataCollatorWithPadding)"
        ) from err


def batch_rows(batch: Any) -> int:
    """The samples in a batch: the first dimension of its first tensor (0 without one)."""
    if isinstance(batch, Tensor):
        return int(batch.shape[0]) if batch.dim() else 0
    values = batch.values() if isinstance(batch, Mapping) else batch if isinstance(batch, (tuple, list)) else ()
    return next((r for r in map(batch_rows, values) if r), 0)


def _concat(batches: list[Any], rows: int | None = None, whole: Sequence[Tensor] = ()) -> Any:
    """Batches of one structure joined along their samples (tensors concatenated; other values: the first's); a tensor
    whose first dimension is not the first batch's ``rows`` (:func:`batch_rows`; where it tells them: a dataclass batch's
    are all joined), or one of the first batch's ``whole`` (passed whole whatever its rows: ``mark_whole``), is no
    samples' and is the first's, as :func:`_whole_tensors` found it alike in every batch."""
    first = batches[0]
    rows = batch_rows(first) if rows is None else rows
    if isinstance(first, Tensor):
        kept = not first.dim() or (rows and first.shape[0] != rows) or any(first is w for w in whole)
        return first if kept else torch.cat(batches)
    if isinstance(first, Mapping):
        joined = mapping_like(first, {k: _concat([b[k] for b in batches], rows, whole) for k in first})
        encodings = [_encodings(b) for b in batches]
        return _with_encodings(joined, None if None in encodings else [e for each in encodings for e in each])
    if isinstance(first, (tuple, list)):  # a named tuple's fields too
        return rebuild(first, [_concat([b[i] for b in batches], rows, whole) for i in range(len(first))])
    if dataclasses.is_dataclass(first) and not isinstance(first, type):  # a collated dataclass batch
        return dataclasses.replace(first, **{f.name: _concat([getattr(b, f.name) for b in batches], rows, whole)
                                             for f in dataclasses.fields(first) if f.init})
    return first


def _whole_tensors(batch: Any, rows_of: RowsOf | None = None, whole_of: WholeOf | None = None) -> list[Tensor]:
    """The tensors of ``batch`` whose first dimension is not its samples' (``rows_of``, default :func:`batch_rows`): an
    episode's support set and its labels beside the queries, a codebook; none of a batch without samples; and those
    ``whole_of`` names whatever their rows (the caller's ``unpack_batch`` marks them ``mark_whole``: a support set of as
    many rows as the queries)."""
    rows, found = (rows_of or batch_rows)(batch), _tensors(batch)
    marked = whole_of(batch) if whole_of is not None else ()
    return [t for t in found if (rows and t.dim() and t.shape[0] != rows) or any(t is m for m in marked)]


def mapping_like(mapping: Mapping, items: dict) -> Mapping:
    """``items`` in a mapping of ``mapping``'s own type (Hugging Face's ``BatchEncoding``, which an ``unpack_batch``
    reads by attribute, ``b.input_ids``): a shallow copy of ``mapping`` given each item, where it takes them and leaves
    ``mapping`` as it was; else (a mapping that refuses item assignment, or whose copy shares its storage) the dict.

    Examples:
        >>> from collections import UserDict
        >>> type(mapping_like(UserDict(a=1), {"a": 2})).__name__, mapping_like(UserDict(a=1), {"a": 2})["a"]
        ('UserDict', 2)
    """
    if type(mapping) is dict or not isinstance(mapping, Mapping):
        return items
    own = dict(mapping.items())
    try:
        kept = copy.copy(mapping)
        for key, value in items.items():
            kept[key] = value  # type: ignore[index]
        if all(mapping[key] is value for key, value in own.items()):  # the copy holds storage of its own
            return kept
        for key, value in own.items():  # a shallow copy sharing the mapping's storage: its own values put back
            mapping[key] = value  # type: ignore[index]
    except Exception:  # noqa: BLE001 - a mapping that refuses item assignment: the dict, as before
        pass
    return items


def _encodings(batch: Any) -> list | None:
    """The tokenizer's encodings of a Hugging Face ``BatchEncoding``'s rows (``_encodings``, one a row: what
    ``word_ids(i)`` and ``token_to_chars`` read), ``None`` for any other batch."""
    found = vars(batch).get("_encodings") if hasattr(batch, "__dict__") else None
    return found if isinstance(found, list) else None


def _with_encodings(made: Any, encodings: list | None) -> Any:
    """``made``, a ``BatchEncoding`` cut or joined (:func:`mapping_like`'s copy, which shares the batch's encodings),
    given the encodings of its own rows, where they are one a row of it (:func:`batch_rows`), else none (its
    ``word_ids(i)`` then says it has none, rather than read another row's); any other mapping as it is."""
    if _encodings(made) is not None:
        made._encodings = encodings if encodings is not None and len(encodings) == batch_rows(made) else None
    return made


def _joined_rows(batch: Any, rows_of: RowsOf, whole_of: WholeOf | None = None) -> int:
    """The first dimension along which items of a loader without auto-collation are joined: their samples'
    (``rows_of``) where a tensor of the item holds as many rows, ``whole_of`` marks one or none are counted; else (an
    ``unpack_batch`` that filters the rows, ``b["x"][b["keep"]]``: 6 samples of tensors of 8 rows, which no tensor
    locates) the first dimension most of its tensors hold (a tie: the first's), along which the items are joined until
    they hold the samples asked for, the result not cut (:func:`_from_batches`)."""
    rows, found = rows_of(batch), _tensors(batch)
    dims = [int(t.shape[0]) for t in found if t.dim()]
    if not rows or not dims or rows in dims or (whole_of is not None and len(whole_of(batch))):
        return rows
    return max(dims, key=dims.count)


def _joins_alike(first: Any, batch: Any, rows_of: RowsOf | None = None, whole_of: WholeOf | None = None) -> bool:
    """Whether ``batch`` holds the tensors that are no samples' (:func:`_whole_tensors`) exactly as ``first`` does, so
    that the two join into one probe: two episodes' support sets differ, and the queries of both would read the union
    of their supports, labelled each in its own episode's classes."""
    a, b = _whole_tensors(first, rows_of, whole_of), _whole_tensors(batch, rows_of, whole_of)
    return len(a) == len(b) and all(x.shape == y.shape and x.dtype == y.dtype and torch.equal(x, y) for x, y in zip(a, b))


def _tensors(batch: Any) -> list[Tensor]:
    """The tensors of ``batch``, in :func:`map_tensors`' order (a dataclass batch's fields too)."""
    found: list[Tensor] = []
    map_tensors(batch, lambda t: found.append(t) or t, dataclasses=True)
    return found


def _shaped_alike(first: Any, batch: Any, rows: int) -> bool:
    """Whether ``batch``'s tensors join ``first``'s along their ``rows`` (:func:`_concat`): of each tensor of ``first``
    with as many rows, ``batch``'s holds the same shape beyond its first dimension."""
    a, b = _tensors(first), _tensors(batch)
    return len(a) == len(b) and all(y.shape[1:] == x.shape[1:] and y.dim() == x.dim() for x, y in zip(a, b)
                                    if x.dim() and x.shape[0] == rows)


def _from_batches(dataset: Dataset, size: int, convert: Any, indices: list[int] | None,
                  rows_of: RowsOf | None = None, whole_of: WholeOf | None = None) -> Any:
    """The first ``size`` samples of a dataset whose items are batches (a ``DataLoader(batch_size=None)``,
    which converts but does not collate): items read in the loader's order until they hold ``size``, a batch's samples
    counted by ``rows_of`` (default :func:`batch_rows`, its first tensor's rows), the tensors ``whole_of`` names never
    joined nor cut. Items whose samples no tensor of theirs locates (:func:`_joined_rows`: an ``unpack_batch`` that
    filters rows) are joined along their rows and not cut; where the joined items read as other samples than the items
    apart (an ``unpack_batch`` taking a fixed number of rows of each), or whose tensors differ beyond those rows (a
    time-major ``[T, N, F]`` item whose ``N`` differs from the first's), the first item, warned of; items whose samples
    are their rows but whose tensors differ beyond them (sequences of another length) are not joined: the items read
    before, warned of. A first item of more than ``size`` rows, counted by a caller whose reading copies what it reads (a
    user's ``unpack_batch``), is read off a cut of its rows (:func:`_read_off_a_cut`), not copied whole to be counted.
    What comes back shares no memory with the dataset's items (:func:`_owned`): an ``unpack_batch`` that writes in place
    (the repair set-up's) writes into no data training reads."""
    count = rows_of or batch_rows
    if indices is None:
        try:
            indices = list(range(len(dataset)))  # type: ignore[arg-type]
        except TypeError as err:
            raise MisconfigurationException(
                f"Expected `probe` data with a length (a map-style Dataset) but got {type(dataset).__name__} without "
                "`__len__`; pass the probe as tensors or a batch (`probe=`)"
            ) from err
    def along(batch: Any) -> int:
        return _joined_rows(batch, count, whole_of)

    batches, rows, unjoined, read = [], 0, None, []
    for i in indices:
        batch = convert(dataset[i]) if convert is not None else dataset[i]
        read.append(batch)
        cut = None if batches else _read_off_a_cut(batch, size, rows_of, whole_of)
        if cut is not None and cut is not batch:  # the first item's rows are its samples: its first `size`, copied
            return _owned(cut, read)
        if batches and along(batches[0]) != count(batches[0]) and not _shaped_alike(batches[0], batch, along(batches[0])):
            unjoined = batch  # joined along rows not the samples' (a time-major [T, N, F] whose N differ): the first item
            break
        if batches and along(batches[0]) == count(batches[0]) and not _shaped_alike(batches[0], batch, along(batches[0])):
            warnings.warn(  # sequences of another length beyond the samples: torch.cat refused them
                f"The probe holds the first {rows} samples, those of the loader's first {len(batches)} item(s), not {size}: "
                f"item {i} of the dataset holds tensors of other shapes beyond their samples than the first item's "
                f"({_shapes(_tensors(batch))} against {_shapes(_tensors(batches[0]))}: sequences of another length, "
                "which join along the samples only padded, with their mask) and is not joined to them; for more samples "
                "give the loader a collate_fn that pads every batch to one length, or pass `probe=` one batch of them",
                UserWarning, stacklevel=outside_package())
            break
        if batches and not _joins_alike(batches[0], batch, along, whole_of) and _none_given(batches[0], along, whole_of, rows_of):
            warnings.warn(  # tensors the model is not given, from which unpack_batch makes the samples (b["x"][b["idx"]])
                f"The probe holds the first {rows} samples, those of the loader's first {len(batches)} item(s), not {size}: "
                f"`unpack_batch` makes each item's {count(batches[0])} samples from tensors of other rows "
                f"({_shapes(_whole_tensors(batches[0], along, whole_of))}: gathered by an index tensor, b['x'][b['idx']], "
                "or selected), which differ from one item to the next and are not passed to the model: joined, one item's "
                f"indices would read another's rows. {_GATHERED_FIX}", UserWarning, stacklevel=outside_package())
            break
        if batches and not _joins_alike(batches[0], batch, along, whole_of):  # two episodes' support sets: the first batch's samples
            warnings.warn(
                f"The probe holds the first {rows} samples, those of the loader's first {len(batches)} batch(es), not {size}: its items are "
                f"batches whose tensors other than the samples' (of first dimension other than the {along(batch)} "
                f"samples', or passed whole: {_shapes(_whole_tensors(batch, along, whole_of))}, an episode's support set) differ from one batch to the next, "
                "and a probe of several batches would give the samples of each the union of them; for more samples pass "
                "`probe=` one batch of them, the tensors every sample reads whole marked, Probe(x, y, mark_whole((support, "
                "support_y), [0, 1])) (from lightning_causal.causal import mark_whole; lightning_causal.audits.Probe)",
                UserWarning, stacklevel=outside_package())
            break
        batches.append(batch)
        rows += count(batch)
        if rows >= size:
            break
    if not batches:
        return _from_dataset(dataset, size, convert, indices)  # an empty dataset: the usual message
    return _owned(_joined_items(batches, size, unjoined, rows, count, along, rows_of, whole_of), read)


def _joined_items(batches: list[Any], size: int, unjoined: Any, rows: int, count: RowsOf, along: RowsOf,
                  rows_of: RowsOf | None, whole_of: WholeOf | None) -> Any:
    """The probe of the items ``batches`` :func:`_from_batches` read (``rows`` samples; ``unjoined``: the item after
    them, whose tensors differ beyond their rows), views of them where it cuts none (:func:`_owned` copies them)."""
    whole = whole_of(batches[0]) if whole_of is not None else []
    one = len(batches) == 1
    joined = batches[0] if one else _concat(batches, along(batches[0]), whole)
    apart = None if one else _read_apart(joined, batches, rows_of)
    if apart is not None:  # the joined items read as other samples than the items apart: the first item
        warnings.warn(
            f"The probe holds the {count(batches[0])} samples of the loader's first item, not {size}: `unpack_batch` reads "
            f"the first {len(batches)} items joined as other samples than apart (rows {apart} of its first input: an index "
            "tensor of each item's own rows, b['x'][b['order']], joined reads the first item's rows for every item's, or "
            f"another reading of a row by its place in the batch). {_GATHERED_FIX}",
            UserWarning, stacklevel=outside_package())
        batches, one, joined = batches[:1], True, batches[0]
    if along(batches[0]) == count(batches[0]):
        head = _batch_head(joined, size, count(joined), whole)
        return batches[0] if head is None else head
    if unjoined is not None or count(joined) != rows:  # joined along rows that are not the samples', the samples are not those of the items apart
        reading = (f"the next batch's tensors differ from the first's beyond their {along(batches[0])} rows "
                   f"({_shapes(_tensors(batches[0]))} and {_shapes(_tensors(unjoined))}: a time-major batch, [T, N, ...], "
                   "whose N differ) and do not join along them" if unjoined is not None else
                   f"its first {len(batches)} batches joined along their {along(batches[0])} rows read as {count(joined)} "
                   f"samples, not the {rows} of the batches apart (an `unpack_batch` that takes a fixed number of rows of "
                   "each batch)")
        warnings.warn(
            f"The probe holds the {count(batches[0])} samples of the loader's first batch, not {size}: `unpack_batch` reads "
            f"{count(batches[0])} samples of it, a number of rows none of its tensors holds, and {reading}; for more "
            "samples pass `probe=` one batch of them", UserWarning, stacklevel=outside_package())
        return batches[0]
    # not cut: its samples are not rows of its tensors (an unpack_batch that filters them), read whole
    return joined


def _owned(batch: Any, items: list[Any]) -> Any:
    """``batch`` with each tensor and NumPy array that shares memory with the dataset's ``items`` copied (the rows cut
    off an item, a 0-dim value, a support set of other rows or marked ``mark_whole``, an array), in the tuples, lists,
    mappings (a ``BatchEncoding`` kept so, with its encodings) and dataclasses that hold them; what is made of them
    (rows joined by ``torch.cat``) is not copied again."""
    storages = {_storage(t) for t in _tensors(items)}
    arrays = _arrays(items)

    def own(value: Any) -> Any:
        if isinstance(value, Tensor):
            return value.clone() if _storage(value) in storages else value
        if isinstance(value, np.ndarray):
            return value.copy() if any(np.may_share_memory(value, a) for a in arrays) else value
        if isinstance(value, Mapping):
            made = {k: own(v) for k, v in value.items()}
            if all(made[k] is v for k, v in value.items()):
                return value
            return _with_encodings(mapping_like(value, made), _encodings(value))
        if isinstance(value, (tuple, list)):
            parts = [own(v) for v in value]
            return value if all(a is b for a, b in zip(parts, value)) else rebuild(value, parts)
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            fields = {f.name: getattr(value, f.name) for f in dataclasses.fields(value) if f.init}
            made = {k: own(v) for k, v in fields.items()}
            return value if all(made[k] is v for k, v in fields.items()) else dataclasses.replace(value, **made)
        return value

    return own(batch)


def _storage(t: Tensor) -> int:
    """The address of ``t``'s memory (its storage's), or its id for a tensor without storage (sparse)."""
    try:
        return t.untyped_storage().data_ptr()
    except (RuntimeError, NotImplementedError):
        return id(t)


def _arrays(value: Any) -> list[np.ndarray]:
    """The NumPy arrays in ``value``'s tuples, lists, mappings and dataclasses."""
    if isinstance(value, np.ndarray):
        return [value]
    if isinstance(value, Mapping):
        value = list(value.values())
    elif dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = [getattr(value, f.name) for f in dataclasses.fields(value)]
    return [a for v in value for a in _arrays(v)] if isinstance(value, (tuple, list)) else []


_GATHERED_FIX = ("For more samples pass `probe=` one batch of the samples already made, laid out as `unpack_batch` reads "
                 "it (its index then every row's, torch.arange(n)), or let the dataset's items hold the rows gathered")


def _read_apart(joined: Any, batches: list[Any], rows_of: RowsOf | None) -> str | None:
    """Where the caller's unpacking made its first input (``rows_of.made``: a gather, a cast) of the items ``batches``
    and of them ``joined``, and the joined one's first rows are the first item's own, the rows of a later item that
    differ from that item's own (``"8-15"``: item 1's gather by its own rows' indices, ``b["x"][b["order"]]``, reading
    item 0's rows), compared on the dimensions both hold (a batch trimmed to its longest sequence) within rounding
    (``eps ** 0.5`` of the largest value: a projection whose sums run in another order on more rows). ``None`` where
    they agree or it cannot tell: a first input passed as the batch's tensor, drawn, of other rows (:func:`_from_batches`
    says so), or whose first item's rows differ too (a state the function keeps, a running mean, moved between its calls;
    statistics of the whole batch): joined as before."""
    made = getattr(rows_of, MADE, None)
    whole = made(joined) if made is not None else None
    parts = [made(b) for b in batches] if whole is not None else []
    if whole is None or any(p is None for p in parts) or sum(int(p.shape[0]) for p in parts) != whole.shape[0]:
        return None
    start = 0
    for i, part in enumerate(parts):
        rows = whole[start:start + part.shape[0]]
        if part.dim() != rows.dim() or part.dtype != rows.dtype or not _close(*_common(part, rows)):
            return f"{start}-{start + part.shape[0] - 1}" if i else None
        start += part.shape[0]
    return None


def _common(a: Tensor, b: Tensor) -> tuple[Tensor, Tensor]:
    """``a`` and ``b`` cut to the length both hold in every dimension."""
    cut = tuple(slice(0, min(x, y)) for x, y in zip(a.shape, b.shape))
    return a[cut], b[cut]


def _close(a: Tensor, b: Tensor) -> bool:
    """Whether ``a`` equals ``b``: exactly for integers and booleans, within ``eps ** 0.5`` of ``b``'s largest value
    else; tensors torch cannot compare (a layout of its own) count as equal."""
    try:
        if not (a.is_floating_point() or a.is_complex()):
            return torch.equal(a, b)
        scale = float(b.abs().nan_to_num(0, 0, 0).max()) if b.numel() else 0.0
        return bool(torch.isclose(a, b, rtol=0, atol=torch.finfo(b.dtype).eps ** 0.5 * scale, equal_nan=True).all())
    except (RuntimeError, TypeError, NotImplementedError):
        return True


def _none_given(batch: Any, along: RowsOf, whole_of: WholeOf | None, rows_of: RowsOf | None) -> bool:
    """Whether the caller's unpacking (``rows_of.passed``) gives the model none of ``batch``'s tensors that are no
    samples' (:func:`_whole_tensors`): it makes the samples from them (a gather by an index tensor), no support set."""
    passed = getattr(rows_of, PASSED, None)
    if passed is None:
        return False
    given = passed(batch)
    return not any(t is g for t in _whole_tensors(batch, along, whole_of) for g in given)


def _shapes(tensors: list[Tensor]) -> str:
    return ", ".join(str(list(t.shape)) for t in tensors[:4])


def _items_are_samples(dataset: Dataset, indices: list[int] | None) -> bool:
    """Whether the items of a loader without auto-collation are single samples, not batches: the rows
    of a ``TensorDataset``, or items holding a 0-dim tensor (a sample's label; a batch's labels have a
    first dimension of samples)."""
    if isinstance(dataset, TensorDataset):
        return True
    try:
        item = dataset[indices[0] if indices else 0]
    except (IndexError, KeyError, TypeError):  # an empty dataset: the batches' path says so
        return False
    values = item.values() if isinstance(item, Mapping) else item if isinstance(item, (tuple, list)) else (item,)
    return any(isinstance(v, Tensor) and v.dim() == 0 for v in values)


def _read(source: Any, size: int, loader_order: bool = False, rows_of: RowsOf | None = None,
          whole_of: WholeOf | None = None) -> Any:
    if isinstance(source, CombinedLoader):  # Lightning's loader of several: its loaders, of which the first is read
        source = source.iterables
    if isinstance(source, (list, tuple)) and source and all(isinstance(s, DataLoader) for s in source):
        source = source[0]
    if isinstance(source, Mapping) and source and all(isinstance(s, DataLoader) for s in source.values()):
        source = next(iter(source.values()))  # Lightning's dict of dataloaders (e.g. `val_dataloaders`): the first
    if isinstance(source, DataLoader):
        indices = None if isinstance(source.dataset, IterableDataset) else _sampler_indices(source, size, loader_order)
        if source.batch_size is None and source.batch_sampler is None and not isinstance(source.dataset, IterableDataset):
            if _items_are_samples(source.dataset, indices):  # no auto-collation of single samples: stacked here
                return _from_dataset(source.dataset, size, None, indices)
            return _from_batches(source.dataset, size, source.collate_fn, indices, rows_of, whole_of)  # no auto-collation: items are batches
        return _from_dataset(source.dataset, size, source.collate_fn, indices)
    if isinstance(source, Dataset) or _is_sample_list(source):
        return _from_dataset(source, size, None)
    batch = _arrays_as_tensors(source)
    head = _read_off_a_cut(batch, size, rows_of, whole_of)
    if head is None:
        head = _batch_head(batch, size, rows_of(batch) if rows_of is not None else None,
                           whole_of(batch) if whole_of is not None else ())
    if head is None:
        unlabelled = isinstance(source, (tuple, list)) and len(source) > 1 and source[-1] is None
        raise MisconfigurationException(
            "Expected argument `probe` to be a Probe, a tensor, a batch (a tuple, list, mapping or dataclass of tensors, nested "
            f"like the training batches, e.g. ((x1, x2), y)), a Dataset or a DataLoader but got {_describe(source)}"
            + ("; a batch holds no None: without labels give (x,), or ((x1, x2),) for a model of several inputs, or "
               "`Probe(inputs, labels=None, additional_forward_args=...)` (lightning_causal.audits.Probe)" if unlabelled else "")
        )
    return head


def _read_off_a_cut(batch: Any, size: int, rows_of: RowsOf | None, whole_of: WholeOf | None) -> Any:
    """The first ``size`` samples of a batch given whole, read by a caller whose reading copies what it reads
    (``rows_of.reads``: a user's ``unpack_batch``, given a copy) off its first ``k`` rows (the first tensor's,
    :func:`batch_rows`; ``k`` the first number from ``size`` that no other dimension of the batch's tensors holds), so
    that 64 rows of a dataset given as one batch of 102 MB copy 64 rows, not the dataset: where the cut reads as ``k``
    samples, none of its tensors marked whole cut, the batch's samples are its rows and the cut's first ``size`` are the
    probe. Where it reads otherwise (an ``unpack_batch`` that filters or gathers rows, ``b["x"][b["idx"]]``, that fails on
    the rows cut, or reads a support set first), the batch whole, unread again: whoever unpacks it reads its samples
    (the audits' probe its first ``size``), so the user's function runs no more often than where the batch was read
    whole. ``None`` (the batch read whole to count its samples, as before): no such caller, a batch of no more than
    ``size`` rows, or one the cut does not tell (nested tensors, no ``k`` below its rows, a layout
    :func:`_batch_head` does not cut)."""
    reads = getattr(rows_of, READS, None)
    n, tensors = batch_rows(batch), _tensors(batch)
    if reads is None or rows_of is None or n <= size or any(t.is_nested for t in tensors):
        return None
    held = {d for t in tensors for d in (t.shape[1:] if t.dim() and t.shape[0] == n else t.shape)}
    k = next((k for k in range(size, n) if k not in held), None)  # rows read as k samples came from the cut
    cut = _batch_head(batch, k, n) if k is not None else None
    if cut is None:
        return None
    whole = list(whole_of(cut)) if whole_of is not None else []
    if not reads(cut) or rows_of(cut) != k or any(all(w is not t for t in tensors) for w in whole):
        return batch
    return _batch_head(cut, size, k, whole)


def read_samples(source: Any, size: int, *, loader_order: bool = False, rows_of: RowsOf | None = None,
                 whole_of: WholeOf | None = None) -> Any:
    """``size`` samples of ``source`` (a DataLoader, a Dataset, a list of samples, tensors or a batch) as one
    collated batch, read without moving any random stream (:func:`rngs_untouched`). A list, tuple
    or dict of DataLoaders (Lightning's several dataloaders), or Lightning's ``CombinedLoader`` of them, is read from
    its first DataLoader.

    A DataLoader's dataset is read by index (in this process: no worker starts), on the indices
    its sampler draws from (the whole dataset for sequential, random and distributed samplers; those
    of non-zero weight, in dataset order, for a ``WeightedRandomSampler``, which would repeat samples):
    the first ``size`` of them, or with ``loader_order`` those of the loader's first batches, as a
    new iterator of the loader would draw them now (a ``DistributedSampler``: ``size`` drawn by a
    private seeded generator from the whole dataset, the same on every rank). Samplers are iterated on
    shallow copies, so that one that advances its own state in ``__iter__`` (an epoch counter) gives
    training the order it would have given it without the read. A loader without
    auto-collation (``batch_size=None``, a dataset whose items are batches) is read item by item, in
    its order, until the items hold ``size`` samples; they are joined along the samples (items that
    are single samples, the rows of a ``TensorDataset`` or items holding a 0-dim label, are stacked). The
    loader's ``collate_fn`` makes the batch (a ``TensorDataset`` is sliced directly under the default collate only),
    and sparse tensors (a bag of words collated with ``to_sparse()``) are returned dense; a mapping of its own type (a
    ``BatchEncoding``) comes back as that type (:func:`mapping_like`), cut or joined with its rows' tokenizer encodings
    (``word_ids(i)`` reads row ``i``'s words). ``rows_of(batch)`` counts the
    samples of such an item (the rows of the input the model explains, where the caller knows it: an episode whose
    first tensor is its support set); default :func:`batch_rows`, the first tensor's rows. ``whole_of(batch)`` names
    the tensors of such an item or batch that the model reads whole whatever their rows (those the caller's unpacking
    marks ``mark_whole``: an episode's support set of as many rows as its queries, which its rows alone do not tell
    from a per-sample input such as a mask): never cut to ``size`` rows, and items joined only where they hold them
    alike. Items of samples that no tensor of theirs holds as rows (``rows_of`` of an ``unpack_batch`` that filters
    them, ``b["x"][b["keep"]]``) are joined along their tensors' rows until they hold ``size`` samples, uncut.

    Raises:
        MisconfigurationException: ``size`` not a positive int, an iterable dataset, or a source of
            another kind.
    """
    if isinstance(size, bool) or not isinstance(size, int) or size < 1:
        raise MisconfigurationException(f"Expected argument `size` to be a positive int but got {size!r}")
    with rngs_untouched(source):
        return _dense(_read(source, size, loader_order, rows_of, whole_of))


def _dense(batch: Any) -> Any:
    """``batch`` with its sparse tensors (COO, CSR: a bag of words' batch) dense, in the tuples, lists, mappings and
    dataclasses that hold them (the estimators set single features in rows of their own, which sparse tensors do not
    allow; a probe of a few hundred samples is small dense)."""
    dense = map_tensors(batch, _dense_tensor, dataclasses=True)
    return mapping_like(batch, dense) if isinstance(batch, Mapping) and dense is not batch else dense


def _dense_tensor(t: Tensor) -> Tensor:
    return t.to_dense() if t.layout != torch.strided and not t.is_nested else t


def _is_sample_list(source: Any) -> bool:
    """A list of samples (what ``DataLoader(samples)`` takes as its dataset), not a batch: every item a
    mapping (``{"input_ids": [T], "labels": []}``, a tokenizer's samples), or every item a tuple
    holding a 0-dim tensor (a label of one sample; a batch has a first dimension of samples)."""
    if not isinstance(source, list) or not source:
        return False
    if all(isinstance(s, Mapping) for s in source):
        return True
    return all(isinstance(s, tuple) for s in source) and any(
        isinstance(t, Tensor) and t.dim() == 0 for s in source for t in s)


def _arrays_as_tensors(batch: Any) -> Any:
    """``batch`` with its NumPy arrays as tensors (``torch.as_tensor``: same dtype, shared memory), in
    the tuples, lists and mappings that hold them (a namedtuple, a dict, a tuple kept as such), as a
    ``DataLoader`` converts them: a replay buffer's ``sample()`` of Lightning's DQN example returns
    ``(states, actions, rewards, dones, next_states)`` as arrays. Arrays of objects or strings stay."""
    if isinstance(batch, np.ndarray):
        return torch.as_tensor(batch) if batch.dtype.kind in "biufc" else batch
    if isinstance(batch, Mapping):
        converted = {k: _arrays_as_tensors(v) for k, v in batch.items()}
        return mapping_like(batch, converted) if any(converted[k] is not batch[k] for k in batch) else batch
    if isinstance(batch, (tuple, list)):
        items = [_arrays_as_tensors(v) for v in batch]
        if all(a is b for a, b in zip(items, batch)):
            return batch
        return type(batch)(*items) if hasattr(batch, "_fields") else type(batch)(items)
    return batch


def _batch_head(batch: Any, size: int, rows: int | None = None, whole: Sequence[Tensor] = ()) -> Any:
    """The first ``size`` samples of a batch: every tensor of a nested tuple, list or mapping
    sliced, and of a dataclass's fields (others kept; ``None`` if anything else is in it, or no
    tensor is); a tensor whose first dimension is not the batch's ``rows`` (:func:`batch_rows`: an episode's support
    set ``[15, D]`` beside 30 queries, a codebook) is no samples' and is kept whole, not cut to ``size`` rows (where
    it would hold as many rows as the probe's samples and be gathered by row with them); so is one of ``whole``
    (marked ``mark_whole`` by the caller's unpacking), whatever its rows."""
    rows = batch_rows(batch) if rows is None else rows
    if isinstance(batch, Tensor):
        if batch.dim() and ((rows and batch.shape[0] != rows) or any(batch is w for w in whole)):  # no samples': whole
            return batch
        if batch.layout != torch.strided and not batch.is_nested:  # sparse: its first rows, then read densely (_dense)
            return _sparse_head(batch, size)
        return batch[:size] if batch.dim() else batch  # a 0-d value (a batch-wide scalar) has no samples to slice
    if dataclasses.is_dataclass(batch) and not isinstance(batch, type):  # a collated dataclass batch
        heads = {f.name: _batch_head(getattr(batch, f.name), size, rows, whole) for f in dataclasses.fields(batch) if f.init}
        sliced = {k: v for k, v in heads.items() if v is not None}
        return dataclasses.replace(batch, **sliced) if sliced else None
    if isinstance(batch, Mapping):
        items = {k: _batch_head(v, size, rows, whole) for k, v in batch.items()}
        if not items or any(v is None for v in items.values()):
            return None
        encodings = _encodings(batch)
        return _with_encodings(mapping_like(batch, items), encodings[:size] if encodings is not None else None)
    if isinstance(batch, (tuple, list)) and batch:
        items = [_batch_head(v, size, rows, whole) for v in batch]
        return rebuild(batch, items) if all(v is not None for v in items) else None
    return None


def _sparse_head(t: Tensor, size: int) -> Tensor:
    """The first ``size`` rows of a sparse tensor, still sparse (a bag of words over the whole corpus given as the probe,
    ``[100_000, V]``, would be ``[100_000, V]`` dense before its rows were cut): a CSR matrix by its row pointers, COO
    by ``index_select``, the other layouts (CSC, BSR, BSC, a batched CSR ``[B, M, V]``) through COO, their nonzeros.
    """
    size = min(size, t.shape[0])
    if t.layout == torch.sparse_csr and t.crow_indices().dim() == 1:  # [N, V] (dense dimensions too): its row pointers
        crow = t.crow_indices()[: size + 1]
        nnz = int(crow[-1])
        return torch.sparse_csr_tensor(crow, t.col_indices()[:nnz], t.values()[:nnz], (size, *t.shape[1:]),
                                       dtype=t.dtype, device=t.device)
    if t.layout != torch.sparse_coo:
        t = t.to_sparse()  # rows of a column-compressed or blocked layout are not cut in place
    return t.index_select(0, torch.arange(size, device=t.device))


def _describe(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of [{', '.join(_describe(v) for v in value[:4])}{', ...' if len(value) > 4 else ''}]"
    if isinstance(value, Mapping):
        return f"a mapping with keys {list(value)[:6]}"
    return type(value).__name__
