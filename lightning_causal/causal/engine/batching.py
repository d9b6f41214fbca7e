"""The row engine shared by every estimator: a flat index over (intervention, sample) rows,
evaluated in large forward passes chunked to a memory budget."""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from fractions import Fraction
from typing import TypeVar

import torch
from torch import Tensor, nn

from lightning_causal._compat import OutOfMemoryError
from lightning_causal.causal.engine.checks import check_int
from lightning_causal.causal.engine.user_frame import outside_package

__all__ = [
    "DEFAULT_MEMORY_BUDGET",
    "alone_block",
    "PeerFailure",
    "RowShard",
    "check_max_batch_size",
    "checked_chunks",
    "checked_pass",
    "current_shard",
    "each_chunk",
    "first_in_block",
    "fit_kind",
    "kinded",
    "kinds_about",
    "mark_said",
    "is_out_of_memory",
    "map_rows",
    "pass_budget",
    "preferred_pass_bytes",
    "remembered_fit",
    "rows_alone",
    "rows_per_pass",
    "said_in_block",
    "say_once_in_block",
    "settle_shards",
    "sharded_rows",
]

#: Bytes of activations one chunked forward pass of intervention rows may hold at most (512 MiB) on
#: CPU; on a CUDA device an eighth of its free memory, between this and :data:`MAX_CUDA_BUDGET`
#: (:func:`pass_budget`). Not covered: the clean passes over the ``N`` inputs themselves (the explained outputs, the
#: activations a prefix cache keeps), which run whole, and what an estimator keeps across chunks
#: (``layer_causal_map``'s profiles): with a large probe of large inputs, pass fewer samples.
DEFAULT_MEMORY_BUDGET = 512 * 2**20
#: Preferred bytes of activations per pass on CPU: chunks this size stay cache-friendly and measured
#: 1.5-2x faster on CPU than one huge pass (benchmarks/RESULTS.md). On an accelerator the preferred
#: size is the whole budget (:func:`preferred_pass_bytes`).
DEFAULT_WORKING_SET = 32 * 2**20
#: The most a pass on a CUDA device may hold (8 GiB), whatever the device's free memory.
MAX_CUDA_BUDGET = 8 * 2**30
_MIN_ROWS = 64
_MAX_ROWS = 1 << 16
T = TypeVar("T")
V = TypeVar("V")


def check_max_batch_size(max_batch_size: int | None) -> int | None:
    """``max_batch_size`` validated: ``None`` or an integer >= 1, returned as given.

    Args:
        max_batch_size: rows per forward pass, or ``None`` (chosen from a memory budget).

    Examples:
        >>> check_max_batch_size(None), check_max_batch_size(64)
        (None, 64)
        >>> check_max_batch_size(0)
        Traceback (most recent call last):
            ...
        ValueError: Expected argument `max_batch_size` to be None or a positive int but got 0
    """
    if max_batch_size is None:
        return None
    check_int("max_batch_size", max_batch_size, minimum=1, none_ok=True)
    return max_batch_size


def _output_bytes(out: object) -> int:
    """Bytes of the tensors in a module's output, also inside tuples, lists and mappings (an
    ``nn.LSTM``'s ``(output, (h, c))``, a transformer block's tuple, a ``ModelOutput``)."""
    if isinstance(out, Tensor):
        return out.numel() * out.element_size()
    if isinstance(out, (tuple, list)):
        return sum(_output_bytes(v) for v in out)
    if isinstance(out, dict):
        return sum(_output_bytes(v) for v in out.values())
    return 0


def pass_budget(device: torch.device) -> int:
    """The most bytes of activations one pass may hold on ``device``: :data:`DEFAULT_MEMORY_BUDGET`
    on CPU (and any device whose free memory torch cannot tell); on CUDA an eighth of the memory free
    now (what the training holds is not free), rounded down to a power of two, at least :data:`DEFAULT_MEMORY_BUDGET` and at most
    :data:`MAX_CUDA_BUDGET`; :data:`DEFAULT_MEMORY_BUDGET` while processes share the rows
    (:func:`sharded_rows`): their free memory differs, and every process must size the passes alike
    (common random numbers run the samples in blocks of one pass, and every process must count the
    same blocks). At 512 MiB a pass of the ResNet-18-sized CNN's suffix was 71 rows of
    3x32x32 and the H200 spent its time launching kernels (``benchmarks/bench_gpu.py``).

    Examples:
        >>> pass_budget(torch.device("cpu")) == DEFAULT_MEMORY_BUDGET
        True
    """
    if device.type != "cuda" or current_shard() is not None:
        return DEFAULT_MEMORY_BUDGET
    free, _total = torch.cuda.mem_get_info(device)
    share = 1 << max(0, int(free // 8).bit_length() - 1)  # a power of two: runs on the same device agree on the chunks
    return int(min(MAX_CUDA_BUDGET, max(DEFAULT_MEMORY_BUDGET, share)))


def preferred_pass_bytes(device: torch.device, budget_bytes: int = DEFAULT_MEMORY_BUDGET) -> int:
    """Bytes of activations a pass should hold when nothing else decides: the cache-friendly
    :data:`DEFAULT_WORKING_SET` on CPU, the whole ``budget_bytes`` elsewhere. On a GPU a pass of 32 MiB
    is a few dozen rows and the device waits on kernel launches between them: the ResNet-18-sized
    CNN's unit audit took 3.9 training epochs on an H200 in chunks of 32 MiB (``benchmarks/bench_gpu.py``,
    benchmarks/RESULTS.md).

    Examples:
        >>> preferred_pass_bytes(torch.device("cpu")) == DEFAULT_WORKING_SET
        True
        >>> preferred_pass_bytes(torch.device("meta"), budget_bytes=2**30) == 2**30
        True
    """
    return DEFAULT_WORKING_SET if device.type == "cpu" else budget_bytes


def rows_per_pass(
    module: nn.Module,
    example: tuple[Tensor, ...],
    max_batch_size: int | None = None,
    *,
    forward: Callable[..., object] | None = None,
    budget_bytes: int | None = None,
    working_set_bytes: int | None = None,
) -> int:
    """Rows per forward pass: ``max_batch_size`` if given, else ``working_set / bytes per row``
    (at least 64 rows, at most ``budget / bytes per row``), bytes per row measured by a trial
    forward over at most 4 rows of ``example`` (every submodule's output counted, tuples too; tensors made
    inside a module's ``forward`` and never returned by a submodule, such as attention scores of a
    fused attention module, are not). A row larger than the budget runs alone, with a warning.
    ``budget_bytes`` defaults to :func:`pass_budget` of the example's device (512 MiB on CPU, a share
    of a GPU's free memory) and ``working_set_bytes`` to :func:`preferred_pass_bytes` (32 MiB on CPU,
    the budget on an accelerator).

    ``forward`` (default: ``module`` itself) runs the trial; a
    :class:`~lightning_causal.causal.engine.forward.Forward` is called with ``rows=`` so that its
    per-sample forward arguments follow the trial rows.

    Args:
        module: the model (or the module) whose trial pass is measured.
        example: the inputs ``[N, ...]`` of the passes; their first rows run the trial.
        max_batch_size: rows per pass when given (an integer >= 1): no trial then.
        forward: what runs the trial, as above; ``None``: ``module``.
        budget_bytes: the most bytes one pass may take, as above.
        working_set_bytes: the bytes per pass aimed at, as above.

    Examples:
        >>> import torch
        >>> rows_per_pass(torch.nn.Linear(3, 2), (torch.zeros(4, 3),), max_batch_size=16)
        16
    """
    if max_batch_size is not None:
        return check_max_batch_size(max_batch_size)  # type: ignore[return-value]
    if budget_bytes is None:
        budget_bytes = pass_budget(example[0].device)
    rows = min(4, example[0].shape[0])
    total = 0

    def hook(_m: nn.Module, _i: object, out: object) -> None:
        nonlocal total
        total += _output_bytes(out)

    from lightning_causal.causal.engine.state import audit_mode

    # TorchScript modules take no hooks (their submodules run inside the compiled graph): the output alone is counted
    handles = [m.register_forward_hook(hook) for m in module.modules() if not isinstance(m, torch.jit.ScriptModule)]
    try:
        trial = tuple(t[:rows].clone() for t in example)  # copies: the model may write to its inputs in place
        with audit_mode(module):  # eval, no grad, buffers kept: a BatchNorm in train mode must not learn the trial rows
            if forward is None:
                out = module(*trial)
            else:
                out = forward(*trial, rows=torch.arange(rows, device=example[0].device))
    finally:
        for h in handles:
            h.remove()
    if isinstance(module, torch.jit.ScriptModule):
        total += _output_bytes(out)
    total += sum(t[:rows].numel() * t.element_size() for t in example)
    per_row = max(1, total // rows)
    if per_row > budget_bytes:
        warnings.warn(
            f"One row of this forward pass holds about {per_row / 2**20:.0f} MiB of activations (a trial forward, every "
            f"submodule's output counted), more than the {budget_bytes / 2**20:.0f} MiB budget of a pass: the rows run one "
            "per pass and may still run out of memory. Use smaller inputs (a lower resolution, shorter sequences) or "
            "fewer layers, or pass `max_batch_size=1` to run one row per pass without this check",
            UserWarning, stacklevel=outside_package())
    cap = max(1, min(_MAX_ROWS, budget_bytes // per_row))
    if working_set_bytes is None:
        working_set_bytes = preferred_pass_bytes(example[0].device, budget_bytes)
    return int(min(cap, max(_MIN_ROWS, working_set_bytes // per_row)))


@dataclass(frozen=True)
class RowShard:
    """This process's share of every row index: rows are split into ``world_size`` contiguous
    parts, part ``rank`` is evaluated here, and ``all_gather`` (a tensor ``[R, ...]`` ->
    ``[world_size, R, ...]``, every process gets every part, e.g. a distributed strategy's
    ``all_gather``) puts them back together in row order.

    Args:
        rank: this process's index in ``[0, world_size)``.
        world_size: the number of processes sharing the rows.
        all_gather: the collective that gathers one tensor of equal shape from every process (the
            rows' results, and before them each process's status: an int64 ``[1, 2]`` tensor).
        min_rows: totals below ``world_size * min_rows`` rows are not split (every process
            evaluates them: the collective would cost more than it saves).
        device: where the collective runs (NCCL gathers CUDA tensors only); ``None``: where the
            rows' results are.
    """

    rank: int
    world_size: int
    all_gather: Callable[[Tensor], Tensor]
    min_rows: int = 8
    device: torch.device | None = None

    def part(self, total: int) -> tuple[int, int]:
        """``[start, stop)`` of this process's rows (parts differ in size by at most one row)."""
        base, extra = divmod(total, self.world_size)
        start = self.rank * base + min(self.rank, extra)
        return start, start + base + (1 if self.rank < extra else 0)


_SHARD: ContextVar[RowShard | None] = ContextVar("lightning_causal_row_shard", default=None)


@contextlib.contextmanager
def _set_in_block(var: ContextVar[V], value: V) -> Iterator[None]:
    """``var`` is ``value`` inside the block and as it was after it (the blocks of this module: :func:`sharded_rows`,
    :func:`remembered_fit`, :func:`checked_chunks`, :func:`alone_block`)."""
    token = var.set(value)
    try:
        yield
    finally:
        var.reset(token)


def current_shard() -> RowShard | None:
    """The :class:`RowShard` set by :func:`sharded_rows`, or ``None`` (one process evaluates all)."""
    return _SHARD.get()


@contextlib.contextmanager
def sharded_rows(shard: RowShard | None) -> Iterator[None]:
    """Inside the block, :func:`map_rows` evaluates only this process's rows and gathers the rest.

    Every process must run the same estimators on the same inputs in the same order (the rows
    and their count are then identical everywhere); the result equals a single process's, up to
    the floating point effects of other chunk sizes. ``None`` leaves the rows unsplit.

    Examples:
        >>> # two "processes": the other's rows are 100 more; its status (int64, before each gather) is "ok" too
        >>> gather = lambda t: torch.stack([t, t + 100 if t.is_floating_point() else t])
        >>> with sharded_rows(RowShard(0, 2, gather, min_rows=1)):
        ...     map_rows(5, 2, lambda idx: idx * 1.0, torch.device("cpu"))
        tensor([  0.,   1.,   2., 100., 101.])
    """
    with _set_in_block(_SHARD, shard):
        yield


def is_out_of_memory(error: BaseException) -> bool:
    """``error`` says a device ran out of memory: ``torch.OutOfMemoryError``, or a ``RuntimeError`` of such a
    message (older CUDA builds, MPS, other accelerators).

    Args:
        error: the exception.

    Examples:
        >>> is_out_of_memory(RuntimeError("MPS backend out of memory")), is_out_of_memory(ValueError("bad shape"))
        (True, False)
    """
    return isinstance(error, OutOfMemoryError) or (isinstance(error, RuntimeError) and "out of memory" in str(error).lower())


def _free_cached() -> None:
    """Give the memory a failed pass left in the CUDA allocator's cache back, so that the retry can have it; wherever
    the row indices are (``SobolAudit``'s samples are on the CPU, its model's passes on the GPU)."""
    if torch.cuda.is_initialized():
        torch.cuda.empty_cache()


@dataclass
class _Fit:
    """What an out-of-memory retry learnt in a :func:`remembered_fit` block: per device of the rows, the share of the
    rows asked for that fit (the smallest seen), and whether the block warned; ``said``: the keys of the warnings
    that :func:`first_in_block` let through in the block."""

    share: dict[str, Fraction] = field(default_factory=dict)
    warned: bool = False
    said: set[str] = field(default_factory=set)


_FIT: ContextVar[_Fit | None] = ContextVar("lightning_causal_rows_that_fit", default=None)


@contextlib.contextmanager
def remembered_fit() -> Iterator[None]:
    """Inside the block (one audit, one estimator), a :func:`map_rows` chunk that ran the device out of memory is
    remembered: the block's later computations on rows of that device start at the share of their rows per pass that
    fit (ran again in passes of 2 rows where 8 were asked: a quarter of theirs) instead of failing at full size again,
    and only the first retry warns. A block inside another shares the outer one's memory; after the outermost one
    ends, passes start at full size again (the memory free differs from one audit to the next). Outside any block
    each :func:`map_rows` call is a block of its own. :func:`~lightning_causal.causal.engine.state.audit_mode` opens
    one, and so do :func:`~lightning_causal.causal.sensitivity.sobol.sobol_indices` around its passes and the callback
    around each audit.

    Examples:
        >>> def fn(idx):  # a device that holds 2 rows at a time
        ...     if idx.numel() > 2:
        ...         raise OutOfMemoryError("CUDA out of memory")
        ...     return idx
        >>> import warnings
        >>> with warnings.catch_warnings(record=True) as seen, remembered_fit():
        ...     warnings.simplefilter("always")
        ...     _ = map_rows(8, 8, fn, torch.device("cpu")); _ = map_rows(8, 8, fn, torch.device("cpu"))
        >>> len(seen)
        1
    """
    if _FIT.get() is not None:
        yield
        return
    with _set_in_block(_FIT, _Fit()):
        yield


def first_in_block(key: str) -> bool:
    """Whether a warning of ``key`` is the first of its kind in the :func:`remembered_fit` block (one audit, one
    estimator) open now, recorded as said; ``True`` outside any block (each call is a block of its own). For a
    warning of what the model is, checked at every pass (one per batch of rows), which would otherwise repeat where
    warnings are set to always show.

    Examples:
        >>> with remembered_fit():
        ...     first_in_block("evidential"), first_in_block("evidential")
        (True, False)
        >>> first_in_block("evidential"), first_in_block("evidential")
        (True, True)
    """
    block = _FIT.get()
    if block is None:
        return True
    if key in block.said:
        return False
    block.said.add(key)
    return True


#: what the warnings given now are about (:func:`kinds_about`): the audit the callback runs
_ABOUT: ContextVar[str | None] = ContextVar("lightning_causal_warnings_about", default=None)


@contextlib.contextmanager
def kinds_about(about: str) -> Iterator[None]:
    """Inside, :func:`kinded` warnings are of their kind for ``about`` (the callback's set-up and audit epochs open it
    around each audit, ``"Audit 'name'"``): two audits of a fit each show theirs once, not the first audit's alone."""
    with _set_in_block(_ABOUT, about):
        yield


def kinded(message: str, kind: str) -> UserWarning:
    """A ``UserWarning`` of ``message`` that carries ``kind`` (:func:`fit_kind`; inside :func:`kinds_about`, ``kind``
    for what that names), for ``warnings.warn(kinded(...), stacklevel=...)``: a warning whose text holds figures of the
    model (a difference, a range of outputs) that change between a fit's audit epochs, which the callback would
    otherwise show again at each (:class:`~lightning_causal.callbacks._warnings.WarningsOncePerFit` shows each text once
    per fit); with ``kind`` it shows the first, once per fit. Its class stays ``UserWarning`` (filters and
    ``pytest.warns`` match as before).

    Examples:
        >>> fit_kind(kinded("off by 0.3%", "rows beyond rounding")), fit_kind(UserWarning("off by 0.3%"))
        ('rows beyond rounding', 'off by 0.3%')
        >>> with kinds_about("Audit 'effects'"):
        ...     fit_kind(kinded("off by 0.3%", "rows beyond rounding"))
        "rows beyond rounding: Audit 'effects'"
    """
    warning = UserWarning(message)
    about = _ABOUT.get()
    warning.lightning_causal_kind = kind if about is None else f"{kind}: {about}"  # type: ignore[attr-defined]
    return warning


def fit_kind(message: Warning | str) -> str:
    """What a fit shows a warning once by: the kind :func:`kinded` gave it, else its text."""
    kind = getattr(message, "lightning_causal_kind", None)
    return kind if isinstance(kind, str) else str(message)


def mark_said(key: str) -> None:
    """Record a warning of ``key`` as said in the :func:`remembered_fit` block open now (nothing outside any block): for
    a check whose warning is known only after it ran (:func:`said_in_block` asked first, the mark taken only where
    the warning was given, so that a first call with nothing to say swallows no later call's warning).

    Args:
        key: the warning's kind, as given to :func:`first_in_block`.

    Examples:
        >>> with remembered_fit():
        ...     mark_said("padded_target"); said_in_block("padded_target")
        True
    """
    block = _FIT.get()
    if block is not None:
        block.said.add(key)


def said_in_block(key: str) -> bool:
    """Whether a warning of ``key`` was already said (:func:`first_in_block`) in the :func:`remembered_fit` block open
    now, without recording anything; ``False`` outside any block. A check that computes statistics of the outputs
    before warning asks this first, so that the block's later passes skip the statistics of a warning already given.

    Args:
        key: the warning's kind, as given to :func:`first_in_block`.

    Examples:
        >>> with remembered_fit():
        ...     said_in_block("evidential"), first_in_block("evidential"), said_in_block("evidential")
        (False, True, True)
        >>> said_in_block("evidential")
        False
    """
    block = _FIT.get()
    return block is not None and key in block.said


#: How a chunk runs inside a :func:`checked_chunks` block: ``check(fn, idx, rows_of)`` returns ``fn(idx)``.
ChunkCheck = Callable[[Callable[[Tensor], T], Tensor, Callable[[T], Tensor]], T]
_CHECK: ContextVar[ChunkCheck | None] = ContextVar("lightning_causal_chunk_check", default=None)


@contextlib.contextmanager
def checked_chunks(check: ChunkCheck | None) -> Iterator[None]:
    """Inside the block, every chunk of :func:`map_rows` (and of :func:`each_chunk` given ``rows_of``) runs as
    ``check(fn, idx, rows_of)``, which returns ``fn(idx)`` and may run rows of it again to compare (``rows_of(result)``:
    the result's ``[r, ...]`` values per row; ``map_rows``' result itself); the estimators that stack intervened rows open
    one with :class:`~.stacked_rows.RowsAlone`. A block inside another keeps the outer one's check (the estimator the
    user called names the refusal); ``None`` adds none.

    Args:
        check: what runs each chunk, as above, or ``None``.

    Examples:
        >>> seen = []
        >>> def check(fn, idx, rows_of):
        ...     seen.append(idx.tolist())
        ...     return fn(idx)
        >>> with checked_chunks(check):
        ...     map_rows(3, 2, lambda idx: idx * 10, torch.device("cpu"))
        tensor([ 0, 10, 20])
        >>> seen
        [[0, 1], [2]]
    """
    if check is None or _CHECK.get() is not None:
        yield
        return
    with _set_in_block(_CHECK, check):
        yield


def checked_pass(fn: Callable[[Tensor], T], rows: int, rows_of: Callable[[T], Tensor]) -> T:
    """``fn(torch.arange(rows))``, a pass of ``rows`` stacked rows that the row engine does not chunk (Captum's
    interpolated inputs, perturbed copies or sampled points, run by Captum in its own batches), through the check of a
    :func:`checked_chunks` block open now, as :func:`map_rows` runs a chunk; ``fn(idx)`` for ``idx`` of ``rows`` rows
    is the pass, for one row of it that row run alone. Outside such a block, or for one row, just the pass.

    Args:
        fn: the pass, of the row indices ``idx`` (``[r]``, on the CPU).
        rows: the rows of the pass.
        rows_of: a result's ``[r, ...]`` values per row, for the check.

    Examples:
        >>> checked_pass(lambda idx: idx * 2.0, 3, lambda out: out)
        tensor([0., 2., 4.])
    """
    check = _CHECK.get()
    idx = torch.arange(rows)
    return fn(idx) if check is None or rows < 2 else check(fn, idx, rows_of)


_ALONE: ContextVar[bool] = ContextVar("lightning_causal_rows_alone", default=False)


def rows_alone() -> bool:
    """Whether the chunk running now is a :func:`checked_chunks` check's rows run again apart from their chunk (set by
    the check, :func:`alone_block`): a ``fn`` that writes its rows' results by index, or records what its passes saw,
    returns the values it is checked on then and keeps nothing (the chunk's own pass follows).

    Examples:
        >>> rows_alone()
        False
    """
    return _ALONE.get()


@contextlib.contextmanager
def alone_block() -> Iterator[None]:
    """Inside the block :func:`rows_alone` is ``True`` (a check runs rows apart from their chunk).

    Examples:
        >>> with alone_block():
        ...     rows_alone()
        True
    """
    with _set_in_block(_ALONE, True):
        yield


def _whole(result: Tensor) -> Tensor:
    """A :func:`map_rows` chunk's values per row: its result."""
    return result


def _each_chunk(start: int, stop: int, rows: int, fn: Callable[[Tensor], T], device: torch.device, retry: bool = True,
                rows_of: Callable[[T], Tensor] | None = None) -> list[T]:
    """``fn`` over the chunks of ``[start, stop)``, its results in order; with ``retry``, a chunk of two rows or more that
    runs the device out of memory is run again in halves (and the rows after it in chunks of that size), with one
    warning: the budget measured before the passes can be too generous when other work takes memory meanwhile, or the
    allocator fragments. In a :func:`remembered_fit` block the chunks start at the share of ``rows`` that fit before on
    this device, and the share that fits now is remembered; without ``retry`` the chunks are ``rows`` as given. The
    values do not depend on the chunking (nor, then, on the retry). With ``rows_of`` (the values per row of a result)
    inside a :func:`checked_chunks` block each chunk runs through the block's check."""
    check = _CHECK.get() if rows_of is not None else None
    if check is not None:
        fn = (lambda f, ch, of: lambda idx: ch(f, idx, of))(fn, check, rows_of)
    block = _FIT.get() if retry else None
    fit, key, asked = block or _Fit(), str(device), rows
    rows = max(1, int(rows * fit.share.get(key, 1)))
    parts, s, halved = [], start, None
    while s < stop:
        e = min(s + rows, stop)
        try:
            parts.append(fn(torch.arange(s, e, device=device)))
            s = e
            continue
        except Exception as err:
            if not retry or e - s < 2 or not is_out_of_memory(err):
                raise
        # out of the except block: the failed pass's tensors, held by the error's frames, are freed now
        _free_cached()
        halved, rows = (halved or e - s), max(1, (e - s) // 2)
    if halved is None:
        return parts
    fit.share[key] = min(fit.share.get(key, Fraction(1)), Fraction(rows, asked))
    if not fit.warned:
        fit.warned = True
        later = " (and the audit's later computations start at the same share of their rows per pass)" if block is not None else ""
        warnings.warn(
            f"A forward pass of {halved} rows ran the device out of memory; it ran again in passes of {rows} rows, and "
            f"the rest of that computation too{later}. Pass `max_batch_size={rows}` (or lower) to start there",
            UserWarning, stacklevel=outside_package())
    return parts


def _map_chunks(start: int, stop: int, rows: int, fn: Callable[[Tensor], Tensor], device: torch.device) -> Tensor:
    """The results of ``fn`` over the chunks of ``[start, stop)`` (:func:`_each_chunk`: retried), concatenated."""
    return torch.cat(_each_chunk(start, stop, rows, fn, device, rows_of=_whole))


def each_chunk(total: int, rows: int, fn: Callable[[Tensor], T], device: torch.device,
               rows_of: Callable[[T], Tensor] | None = None) -> list[T]:
    """``fn(idx)`` over consecutive chunks of at most ``rows`` row indices, its results in a list, with
    :func:`map_rows`' retry: a chunk of two rows or more that runs the device out of memory runs again in halves
    (remembered in a :func:`remembered_fit` block). For the loops whose chunk does more than return one tensor of its
    rows (several results, passes of its own); ``fn`` must leave nothing behind when it fails (write its rows' results
    by index, or return them). Every process computes every row (no sharing, unlike :func:`map_rows`), and under
    :func:`sharded_rows` the chunks are ``rows`` as given, neither retried nor shrunk by what a :func:`remembered_fit`
    block learnt in this process: ``fn`` may run :func:`map_rows`, whose collectives every process must call alike, in
    the same chunks. With ``rows_of`` each chunk runs through the check of a :func:`checked_chunks` block open now
    (rows of it run again alone and compared: ``fn`` must then give its rows' results whatever it ran before them, the
    chunk's own writes coming last).

    Args:
        total: the number of rows ``R``.
        rows: rows per chunk (an integer >= 1).
        fn: evaluates a chunk: ``fn(idx)`` for the ``[r]`` row indices ``idx``.
        device: the device of the row indices.
        rows_of: a result's ``[r, ...]`` values per row, for :func:`checked_chunks`' check; ``None``: no check.

    Examples:
        >>> each_chunk(5, 2, lambda idx: idx.tolist(), torch.device("cpu"))
        [[0, 1], [2, 3], [4]]
    """
    check_int("total", total, minimum=0)
    check_int("rows", rows, minimum=1)
    shard = _SHARD.get()
    return _each_chunk(0, total, rows, fn, device, retry=shard is None or shard.world_size < 2, rows_of=rows_of)


class PeerFailure(RuntimeError):
    """Another process sharing the rows failed (:func:`map_rows`, :func:`settle_shards`): this
    one stops the same computation, so that every process leaves it at the same collective.

    Attributes:
        ranks: the processes that failed.
        settled: the failed processes had already left the block (their :func:`settle_shards`
            exchange was answered here): this process must not settle it again.
    """

    def __init__(self, ranks: list[int], settled: bool = False) -> None:
        super().__init__(f"process(es) {ranks} failed while sharing the rows of this computation (see their error); "
                         "every process stops it")
        self.ranks, self.settled = ranks, settled


_ROWS, _END = 0, 1  # where a process exchanges its status: inside map_rows, or at the end of a block (settle_shards)


def _exchange(shard: RowShard, phase: int, failed: bool) -> list[tuple[int, bool]]:
    """Every process's ``(phase, failed)``, gathered by one collective of the same shape everywhere."""
    mine = torch.tensor([[phase, int(failed)]], dtype=torch.int64, device=shard.device or "cpu")
    status = shard.all_gather(mine).reshape(shard.world_size, 2).tolist()
    return [(int(p), bool(f)) for p, f in status]


def settle_shards(error: BaseException | None) -> BaseException | None:
    """At the end of a block of :func:`map_rows` calls that every process runs (one audit): every
    process learns whether any process failed in it, so that all of them go on (or fail) alike.

    Without a shard (one process) ``error`` is returned as it is. Under :func:`sharded_rows`, one
    status exchange: ``error`` is returned when this process failed, a :class:`PeerFailure` when
    only another process did (or another one is still inside the block: it fails there), ``None``
    when none did. A :class:`PeerFailure` that already settled the block is returned without a
    collective. A process that fails outside :func:`map_rows` (before or after its collectives)
    must call this, or the processes' collectives no longer pair up (a crash, a hang, or rows of
    other computations gathered silently).
    """
    shard = _SHARD.get()
    if shard is None or shard.world_size < 2 or (isinstance(error, PeerFailure) and error.settled):
        return error
    status = _exchange(shard, _END, error is not None)
    if error is not None:
        return error
    others = [r for r, (phase, failed) in enumerate(status) if failed or phase != _END]
    return PeerFailure(others) if others else None


def map_rows(total: int, rows: int, fn: Callable[[Tensor], Tensor], device: torch.device) -> Tensor:
    """Concatenate ``fn(idx)`` over consecutive chunks of at most ``rows`` row indices.

    Under :func:`sharded_rows` each process evaluates its contiguous part of the rows and the
    parts are gathered (padded to equal length for the collective, then trimmed). The processes
    first exchange whether they evaluated their part: if one failed, every one raises (that one
    its error, the others :class:`PeerFailure`) instead of waiting in or mismatching the gather. Inside a
    :func:`checked_chunks` block each chunk runs through the block's check (the estimators' stacked-rows check).

    Args:
        total: the number of rows ``R``.
        rows: rows per chunk (an integer >= 1).
        fn: evaluates a chunk: ``fn(idx)`` for the ``[r]`` row indices ``idx`` returns ``[r, ...]``.
        device: the device of the row indices.

    Examples:
        >>> import torch
        >>> map_rows(5, 2, lambda idx: idx * 10, torch.device("cpu"))
        tensor([ 0, 10, 20, 30, 40])
    """
    check_int("total", total, minimum=0)
    check_int("rows", rows, minimum=1)  # 0: range() would refuse "arg 3 must not be zero", naming neither
    shard = _SHARD.get()
    if shard is None or shard.world_size < 2 or total < shard.world_size * shard.min_rows:
        return _map_chunks(0, total, rows, fn, device)
    start, stop = shard.part(total)
    error: BaseException | None = None
    try:
        mine = _map_chunks(start, stop, rows, fn, device)
    except Exception as err:
        error = err
    try:
        status = _exchange(shard, _ROWS, error is not None)
        ended = [r for r, (phase, _) in enumerate(status) if phase != _ROWS]
        if ended:  # a process left the block (it failed outside the rows): this exchange was its settle_shards
            raise PeerFailure(ended, settled=True) from error
        if error is not None:
            raise error
    finally:  # the error's traceback holds this frame: a cycle that would keep the failed chunk's tensors until gc ran
        del error
    failed = [r for r, (_, f) in enumerate(status) if f]
    if failed:
        raise PeerFailure(failed)
    longest = -(-total // shard.world_size)
    padded = torch.cat([mine, mine[:1].expand(longest - mine.shape[0], *mine.shape[1:])]) if mine.shape[0] < longest else mine
    parts = shard.all_gather(padded.to(shard.device or padded.device).contiguous()).to(mine.device)
    sizes = [RowShard(r, shard.world_size, shard.all_gather).part(total) for r in range(shard.world_size)]
    return torch.cat([parts[r, : b - a] for r, (a, b) in enumerate(sizes)])


def say_once_in_block(key: str | None, say: Callable[[], bool]) -> bool:
    """Run the check ``say`` (which warns where it finds something, and returns whether it warned) unless a warning of
    ``key`` was already said in the :func:`remembered_fit` block open now; ``key`` is marked said only where ``say``
    warned, so that a first call with nothing to say swallows no later call's warning (:func:`said_in_block` asked
    first, :func:`mark_said` after). ``None``: no key, ``say`` runs at every call. For a check whose warning is known
    only after it ran (a cut pass of the model, statistics of the outputs) that a block's several steps repeat (an
    audit's check and its search, an audit's layers).

    Args:
        key: the warning's kind, as given to :func:`first_in_block`, or ``None``.
        say: the check, called with no argument.

    Returns:
        whether ``say`` ran and warned.

    Examples:
        >>> with remembered_fit():
        ...     say_once_in_block("padded_target", lambda: False), say_once_in_block("padded_target", lambda: True)
        ...     say_once_in_block("padded_target", lambda: True)
        (False, True)
        False
    """
    if key is not None and said_in_block(key):
        return False
    said = say()
    if said and key is not None:
        mark_said(key)
    return said
