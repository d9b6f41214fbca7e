"""Passes of a model paired row by row: a second pass that sees the first pass's random draws and batch statistics.

:class:`~lightning_causal.repair.backdoor.BackdoorSuppressionTerm` compares each clean row with its stamped twin. Run
as rows of one pass, the twins of a model in training mode get masks of their own from every dropout, DropPath or
stochastic-depth draw, and the comparison measures that noise (a trigger that changes nothing had a units penalty of
0.18 at DropPath 0.3). :class:`PairedPasses` runs the stamped rows as a pass of their own that replays the clean
pass: it starts from the random state the clean pass started from (the generators of the CPU and of the rows'
device, and any the model's modules hold), so that every draw of the same shape gives the same values, row for row, and the ``BatchNorm`` layers in
training mode normalise it with the clean pass's batch statistics, not its own.
"""

from __future__ import annotations

import sys
import warnings
import weakref
from collections.abc import Callable, MutableMapping
from typing import Any, TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.modules.batchnorm import _BatchNorm
from torch.nn.parameter import is_lazy
from torch.overrides import TorchFunctionMode

from lightning_causal.causal.engine.generators import module_generators
from lightning_causal.causal.engine.user_frame import outside_package

__all__ = ["CHECKPOINTED_SPLIT", "ONE_ROW", "ONE_VALUE", "PairedPasses", "drawing", "global_generators", "in_checkpoint", "pass_records"]

try:  # composable activation checkpointing (module hooks); absent where torch.distributed is not built
    from torch.distributed._composable import checkpoint as _composable_checkpoint
    from torch.distributed._composable.contract import REGISTRY_KEY as _COMPOSABLE_APIS
except (ImportError, AttributeError):  # pragma: no cover - a torch built without torch.distributed
    _composable_checkpoint = _COMPOSABLE_APIS = None

#: the warning where one row is paired beside a training-mode ``BatchNorm`` in a model that draws random numbers
ONE_ROW = (
    "A repair term paired one row of the batch with its twin (a short last batch, a counterfactual that changes one row) "
    "in a model that draws random numbers beside a training-mode BatchNorm that gets one value per channel there, which it "
    "cannot normalise (torch refuses): the "
    "row and its twin ran as one pass, their dropout masks (or other draws) not paired, at such steps; batches whose "
    "paired rows number 2 or more pair them (e.g. drop_last=True in the DataLoader, or a larger `fraction`)"
)
#: the warning where a call of one row of the rows paired (a virtual batch of ghost BatchNorm, an expert's in a model
#: that draws) reaches a training-mode ``BatchNorm`` as one value per channel
ONE_VALUE = (
    "A repair term ran the rows it pairs as a pass of their own (the model draws random numbers, or normalises its rows "
    "in virtual batches: ghost BatchNorm), and a training-mode BatchNorm got one value per channel in a call of "
    "that pass (a virtual batch of one row, or one row of an expert's), which it cannot normalise (torch refuses): the "
    "rows and their twins ran as one pass at such steps: their draws, and a row's virtual batch and its twin's, are not "
    "paired there; make every virtual batch two rows or more (x.chunk(math.ceil(n / size)) rather than x.split(size), "
    "whose last batch may hold one row), or choose batch sizes whose paired rows leave none of one row (drop_last=True "
    "in the DataLoader, a larger `fraction`)"
)
#: the warning where ghost BatchNorm's virtual batches (:meth:`PairedPasses._split`) run inside an
#: activation-checkpointed segment, whose recomputation in the backward runs without the hooks that pair them
CHECKPOINTED_SPLIT = (
    "A repair term ran the rows it pairs and their twins as one pass: the model normalises its rows in virtual batches "
    "(ghost BatchNorm: a training-mode BatchNorm called per chunk of the rows) inside an activation-checkpointed "
    "segment (torch.utils.checkpoint: gradient checkpointing), which the backward runs again without the hooks that "
    "normalise the twins' virtual batch k by the rows' virtual batch k. A row and its twin fall in virtual batches of "
    "their own, normalised by statistics of their own, and the term measures that (a column the model never reads "
    "has a term above 0). To pair them, turn checkpointing off for the repair fit, call the ghost BatchNorm outside "
    "the checkpointed segments, or keep the BatchNorm layers in eval mode (`m.eval()` for each BatchNorm module after "
    "`model.train()`: running statistics, no virtual batches)"
)
_CHECKPOINTED_SPLIT_WARNED: weakref.WeakSet[nn.Module] = weakref.WeakSet()  # the models warned of CHECKPOINTED_SPLIT
_ONE_ROW_WARNED: weakref.WeakSet[nn.Module] = weakref.WeakSet()  # the models warned of ONE_ROW
_ONE_VALUE_WARNED: weakref.WeakSet[nn.Module] = weakref.WeakSet()  # the models warned of ONE_VALUE
#: per BatchNorm layer of another class counted (in the first pass that called it, per mode: timm's BatchNormAct2d and
#: SyncBatchNorm get no hook later), whether it ran several batch-statistics batch-norm calls inside one call of its
#: own in that mode (a ghost-BatchNorm subclass calling ``super().forward`` per chunk in training mode), to be paired
#: call by call (:class:`_BatchNormCalls`)
_SPLIT_INSIDE: weakref.WeakKeyDictionary[nn.Module, dict[bool, bool]] = weakref.WeakKeyDictionary()


class _OneValuePerChannel(Exception):
    """A first half's pass stopped before a training-mode ``BatchNorm`` that would get one value per channel."""


def _one_value_per_channel(module: nn.Module, args: tuple[Any, ...]) -> None:
    """Stop the pass where ``module`` (a training-mode ``BatchNorm``) gets one value per channel, which torch refuses."""
    x = args[0] if args else None
    if isinstance(x, Tensor) and x.dim() >= 2 and x.shape[1] and x.numel() // x.shape[1] == 1:
        raise _OneValuePerChannel

_T = TypeVar("_T")
_U = TypeVar("_U")
_V = TypeVar("_V")


def pass_records(owner: object) -> tuple[MutableMapping[nn.Module, bool], MutableMapping[nn.Module, set[str]]]:
    """``owner``'s records of the models whose rows it pairs (:meth:`PairedPasses.paired`), kept in its ``__dict__``
    by weak reference (its ``__getstate__`` leaves ``_draws`` and ``_written`` out): per model, whether its passes drew
    at its last step, and the buffers they wrote in place (the ``written`` of :class:`PairedPasses`).

    Examples:
        >>> class Owner: ...
        >>> draws, written = pass_records(owner := Owner())
        >>> pass_records(owner) == (draws, written), sorted(vars(owner))
        (True, ['_draws', '_written'])
    """
    held = vars(owner)
    return held.setdefault("_draws", weakref.WeakKeyDictionary()), held.setdefault("_written", weakref.WeakKeyDictionary())


def drawing(model: nn.Module, device: torch.device) -> Callable[[], bool]:
    """A function saying whether ``model``'s passes on ``device`` drew from the generators a pass draws from (the global
    ones, :func:`global_generators`, and those its modules hold) since this call: a check of a pass that is kept.

    Examples:
        >>> model, x = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5)), torch.ones(2, 4)
        >>> drew = drawing(model, x.device)
        >>> _ = model.eval()(x); drew()
        False
        >>> _ = model.train()(x); drew()
        True
    """
    generators = global_generators(device) + module_generators(model)
    before = [g.get_state() for g in generators]
    return lambda: any(not torch.equal(state, g.get_state()) for state, g in zip(before, generators))


def global_generators(device: torch.device) -> list[torch.Generator]:
    """The global generators a pass on ``device`` draws from: the CPU's, and the default generator of ``device``
    where it is a CUDA device (other accelerators: the CPU's only).

    Examples:
        >>> global_generators(torch.device("cpu")) == [torch.default_generator]
        True
    """
    held = [torch.default_generator]
    if device.type == "cuda":
        held.append(torch.cuda.default_generators[device.index if device.index is not None else torch.cuda.current_device()])
    return held


class PairedPasses:
    """Run a first pass of ``model`` and replay passes paired with it row by row.

    :meth:`first` runs the first pass and records where the global generators (:func:`global_generators`) and those
    the model's modules hold (:func:`~lightning_causal.causal.engine.generators.module_generators`) stood before it,
    and each training-mode ``BatchNorm`` call's batch statistics (mean and biased variance over every dimension but the
    channels). :meth:`replay` runs another pass of as many rows from the same random state, so that dropout, DropPath,
    stochastic depth and LayerDrop draw the same masks and skip the same layers for row ``i`` as in the first pass, and
    normalises each ``BatchNorm`` call with the first pass's statistics of the same call: ``nn.BatchNorm1d/2d/3d``
    calls of both passes are computed here, ``(x − mean) · rsqrt(var + eps) · weight + bias``, with the statistics'
    gradient, so that rows alike on both passes come out alike to the last bit (the layer itself still runs: its
    running statistics and batch count are updated by the first pass only); other ``BatchNorm`` classes (a subclass
    that adds an activation, ``SyncBatchNorm``) run in eval mode for the replayed call with the first pass's
    statistics, detached, as their running ones; a layer of another class that runs several
    batch-statistics batch-norm calls inside one call of its own (a ghost-BatchNorm subclass: ``inside``, found in the
    first pass that calls it in its mode) has each ``F.batch_norm`` call computed here in both passes, the replay's
    call ``k`` by the first pass's call ``k``. After a replay the generators stand where the first pass left them.
    :meth:`drew` says whether the first pass drew from these generators at all: where it did not, a single pass of
    both halves pairs its rows exactly already. The outputs computed here are given before any other forward hook of
    the layer runs (a capture of a ``BatchNorm`` layer's output sees them). ``checkpointed`` says whether a
    training-mode ``BatchNorm`` call of the first pass ran inside an activation-checkpointed segment
    (:func:`in_checkpoint`), whose recomputation in the backward runs without the hooks that pair the passes: a
    replay is then no pass to take gradients of.

    Args:
        model: the model (its training-mode ``BatchNorm`` layers are found now).
        device: the device of the rows.
        written: the caller's record, per model, of the buffers other than the ``BatchNorm`` statistics that its passes
            wrote in place (:func:`pass_records`): :meth:`first` copies those to undo them (every buffer for a model
            not recorded yet, or without a record) and adds what it saw written.

    Examples:
        >>> model = nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Dropout(0.5), nn.Linear(8, 2)).train()
        >>> x = torch.randn(3, 4)
        >>> pairs = PairedPasses(model, x.device)
        >>> first = pairs.first(lambda: model(x))
        >>> torch.equal(first, pairs.replay(lambda: model(x))), pairs.drew(), int(model[1].num_batches_tracked)
        (True, True, 1)
    """

    def __init__(self, model: nn.Module, device: torch.device,
                 written: MutableMapping[nn.Module, set[str]] | None = None) -> None:
        self.model, self.record = model, written
        self.generators = global_generators(device) + module_generators(model)
        others = [(m, _SPLIT_INSIDE.get(m, {})) for m in model.modules() if isinstance(m, _BatchNorm)
                  and type(m) not in _PLAIN]
        #: the layers of other classes whose batch-norm calls inside one call are paired one by one
        #: (:class:`_BatchNormCalls`)
        self.inside: set[nn.Module] = {m for m, found in others if found.get(m.training)}
        #: the BatchNorm layers of other classes not counted yet in their mode (:data:`_SPLIT_INSIDE`), whose
        #: batch-statistics batch-norm calls the first pass counts (a subclass may normalise by batch statistics in eval
        #: mode, or without running statistics)
        self.counted = [m for m, found in others if m.training not in found]
        #: per layer counted or paired call by call, its calls in the last pass
        self.calls: dict[nn.Module, _BatchNormCalls] = {}
        self._set_norms()
        #: the buffers a pass may write in place; not an inference tensor (one built under ``torch.inference_mode``: a
        #: cache made in a validation loop), which has no version counter and no pass outside that mode can write; nor a
        #: lazy module's buffer not yet made (``LazyBatchNorm1d`` before its first call), which no tensor method reads
        self.buffers = {name: b for name, b in model.named_buffers() if not is_lazy(b) and not b.is_inference()}
        self.before: list[Tensor] = []
        self.after: list[Tensor] = []
        self.stats: dict[nn.Module, list[tuple[Tensor, Tensor]]] = {}
        self.checkpointed = False
        #: the rows of each training-mode ``BatchNorm`` call of the last first pass whose input was a slice along dim 0
        #: of a larger tensor (ghost BatchNorm's virtual batches: :func:`_sliced_rows`), the slices of a tensor cut as
        #: virtual batches are (:func:`_virtual_batches`)
        self.sliced: set[int] = set()
        #: per tensor sliced in the pass running (by id, the tensor held until the pass ends), its slices' (offset, rows)
        self._slices: dict[int, tuple[Tensor, list[tuple[int, int]]]] = {}
        self.held: dict[str, Tensor] = {}
        self.versions: dict[str, int] = {}
        self.written: set[str] = set()

    def _set_norms(self) -> None:
        """The ``BatchNorm`` layers that normalise by batch statistics now (``norms``: training mode; no running
        statistics, ``track_running_stats=False``, which normalises by the batch in eval mode too; the layers of
        ``inside``) and what is read from them."""
        self.norms = [m for m in self.model.modules() if isinstance(m, _BatchNorm)
                      and (m.training or not m.track_running_stats or m in self.inside)]
        #: the buffers of those layers: written by their kernels without a version bump
        self.norm_buffers = {id(b) for m in self.norms for b in m.buffers()}
        #: per BatchNorm layer, the modules above it that composable checkpointing may have made a segment
        self.segments = _composable_segments(self.model, self.norms)

    def first(self, run: Callable[[], _T], *, norms: bool = True) -> _T:
        """Run the first pass, ``run()``, recording the random state before it and (``norms``) its ``BatchNorm``
        statistics, which normalise its own plain ``BatchNorm`` calls too (see the class), and whether a
        ``BatchNorm`` call of it ran in a checkpointed segment (``checkpointed``).

        The buffers the pass may write are copied first, so that :meth:`undo` and :meth:`replay` can put them back:
        those of the training-mode ``BatchNorm`` layers, and the others the record of the model's passes names (the
        constructor's ``written``; every buffer where it has none for the model); ``self.written`` says afterwards
        which other buffers the pass wrote in place (a bumped version counter: spectral norm's power iteration), added
        to that record."""
        self.before = [g.get_state() for g in self.generators]
        known = self.record.get(self.model) if self.record is not None else None
        self.held = {name: b.clone() for name, b in self.buffers.items()
                     if id(b) in self.norm_buffers or known is None or name in known}
        self.versions = {name: b._version for name, b in self.buffers.items()}
        self.stats = {m: [] for m in self.norms}
        self.checkpointed, self.sliced, self._slices = False, set(), {}
        handles = [m.register_forward_pre_hook(self._segment) for m in self.norms]
        self.calls = {m: _BatchNormCalls(record=[] if norms and m in self.inside else None)
                      for m in dict.fromkeys([*self.counted, *self.inside])}
        for m, calls in self.calls.items():
            handles += [m.register_forward_pre_hook(calls.enter), m.register_forward_hook(calls.leave)]
        for m in self.norms if norms else []:
            if m in self.inside:  # its calls recorded and computed one by one (self.calls)
                continue
            handles.append(m.register_forward_pre_hook(self._record))
            if type(m) in _PLAIN:
                handles.append(m.register_forward_hook(  # before any other hook: they see the output it gives
                    lambda module, args, out: _normalised(module, args[0], *self.stats[module][-1]), prepend=True))
        try:
            out = run()
            if self.counted:  # the layers called: splitting inside, paired from now on in this mode; or not
                called = [m for m in self.counted if self.calls[m].entered]
                for m in called:
                    _SPLIT_INSIDE.setdefault(m, {})[m.training] = self.calls[m].most > 1
                found = {m for m in called if self.calls[m].most > 1}
                self.counted = [m for m in self.counted if not self.calls[m].entered]
                if found:
                    self.inside |= found
                    self._set_norms()
            return out
        finally:
            for h in handles:
                h.remove()
            for calls in self.calls.values():
                calls.close()
            for _, cuts in self._slices.values():
                rows = [n for _, n in sorted(set(cuts))]  # a slice read by two layers counted once
                if _virtual_batches(rows):
                    self.sliced.update(rows)
            self._slices = {}
            self.after = [g.get_state() for g in self.generators]
            self.written = {name for name, b in self.buffers.items()
                            if id(b) not in self.norm_buffers and b._version != self.versions[name]}
            if self.record is not None:
                self.record[self.model] = self.record.get(self.model, set()) | self.written

    def drew(self) -> bool:
        """Whether the first pass drew from the generators."""
        return any(not torch.equal(a, b) for a, b in zip(self.before, self.after))

    def first_kept(self, run: Callable[[], _T]) -> _T | None:
        """``run()`` as a first pass without ``BatchNorm`` statistics (a pass of rows that need no pairing across
        passes), its result where it drew nothing, else ``None`` with the pass undone (:meth:`undo`): the generators
        and the buffers it wrote where they stood before it, so that a pass thrown away leaves no trace."""
        got = self.first(run, norms=False)
        if not self.drew():
            return got
        del got
        self.undo()
        return None

    def paired(self, draws: MutableMapping[nn.Module, bool], joint: Callable[[], _T], clean: Callable[[], _U],
               stamped: Callable[[_U], _V], *, warn: Callable[[], None], refused: Exception | None = None,
               rows: int | None = None) -> _T | _V:
        """The rule the repair terms pair their rows by: one pass of both halves (``joint()``, which runs :meth:`first`
        with ``norms=False``) where it draws no random numbers, which pairs row ``i`` of each half exactly; else the
        first half as a pass of its own (``clean()``, which runs :meth:`first`) and the second replaying its draws
        (``stamped(clean())``, which runs :meth:`replay`).

        Whether the model draws is read at every step from the pass the step runs first, and kept in ``draws`` (per
        model): a model that drew at its last step runs ``clean()`` first and, where it draws nothing now (its dropout
        set to 0, eval mode), that pass is undone and the joint pass runs; any other step runs the joint pass, undone
        and run again as two passes where it drew. Every step thus computes what it would with a new record (a copy
        of the term), and a pass undone leaves the generators and buffers as it found them (:meth:`undo`): a step
        advances spectral norm's power iteration once. Where a pass that draws runs a training-mode ``BatchNorm`` in
        an activation-checkpointed segment (``checkpointed``), the backward's recomputation would lose the replay's
        statistics: the joint pass is kept, ``warn()`` called the first time for the model; a model that drew at its
        last step without it raises ``refused`` where one is given (else it is warned of as at a first step). A model
        whose ghost BatchNorm (:meth:`_split`) runs in such a segment keeps the joint pass too, warned once per model
        (:data:`CHECKPOINTED_SPLIT`, with the way out), whether or not it draws. A joint
        pass in which a training-mode ``BatchNorm`` call normalised a slice of the pass's rows (ghost BatchNorm's virtual
        batches: :meth:`_split`; not an expert's gather) is undone and paired as one that drew. Where the first half (``rows == 1`` row, or a
        call of one row of it: an expert's, a virtual batch) reaches a training-mode ``BatchNorm`` as one value per
        channel (``[1, C]``: torch refuses to normalise it; ``[1, C, H, W]`` is normalised and paired), that pass is
        stopped before the layer and undone, and the joint pass runs, unpaired, warned once per model where it drew or
        split its rows (:data:`ONE_ROW` for one row that drew: a short last batch, a counterfactual that changes one
        row of the batch; else :data:`ONE_VALUE`, each warned once per model); ``draws`` then says the model drew, so
        that the next step runs the first half first and the joint pass once where it falls back again.

        Examples:
            >>> model = nn.Sequential(nn.Linear(4, 8), nn.Dropout(0.5), nn.Linear(8, 2)).train()
            >>> x, draws = torch.randn(3, 4), {}
            >>> pairs = PairedPasses(model, x.device)
            >>> out = pairs.paired(draws, lambda: pairs.first(lambda: model(torch.cat([x, x])), norms=False),
            ...                    lambda: pairs.first(lambda: model(x)),
            ...                    lambda a: torch.cat([a, pairs.replay(lambda: model(x))]), warn=lambda: None)
            >>> torch.equal(out[:3], out[3:]), draws[model]
            (True, True)
        """
        if not self.norms and not self.counted:
            return self._paired(draws, joint, clean, stamped, warn=warn, refused=refused, rows=rows)
        return self._guarded(draws, joint, clean, stamped, warn=warn, refused=refused, rows=rows)

    def _guarded(self, draws: MutableMapping[nn.Module, bool], joint: Callable[[], _T], clean: Callable[[], _U],
                 stamped: Callable[[_U], _V], *, warn: Callable[[], None], refused: Exception | None,
                 rows: int | None) -> _T | _V:
        """:meth:`paired` for a model with a training-mode ``BatchNorm``: a first half's pass stopped before a call of
        one value per channel is undone for the joint pass."""
        # a training-mode BatchNorm given one value per channel ([1, C], not [1, C, H, W]) refuses it, torch's words: one
        # row, or a call of one row of the first half's pass (an expert's, a virtual batch); such a pass is stopped
        # before it, undone, and one pass of both halves runs, its draws (or its virtual batches) unpaired
        handles = [m.register_forward_pre_hook(_one_value_per_channel) for m in self.norms]
        try:
            return self._paired(draws, joint, clean, stamped, warn=warn, refused=refused, rows=rows)
        except _OneValuePerChannel:
            pass
        finally:
            for h in handles:
                h.remove()
        self.undo()
        out = joint()
        drew, split = self.drew(), self._split(2 * rows if rows else None)
        if (drew or split) and not self.checkpointed:  # the next step tries the first half first, not this joint pass
            draws[self.model] = True  # twice (a pass undone, then this one): one joint pass a step where it falls back
        warned = _ONE_ROW_WARNED if drew and rows == 1 else _ONE_VALUE_WARNED
        if (drew or split) and self.model not in warned:
            warned.add(self.model)
            warnings.warn(ONE_ROW if warned is _ONE_ROW_WARNED else ONE_VALUE, UserWarning, stacklevel=outside_package())
        return out

    def _paired(self, draws: MutableMapping[nn.Module, bool], joint: Callable[[], _T], clean: Callable[[], _U],
                stamped: Callable[[_U], _V], *, warn: Callable[[], None], refused: Exception | None,
                rows: int | None = None) -> _T | _V:
        """:meth:`paired`'s rule for rows a training-mode ``BatchNorm`` normalises."""
        model = self.model
        if draws.get(model, False):  # it drew at its last step: the first half first; where that draws nothing now, undone
            a = clean()
            if (self.drew() or self._split(rows)) and not self.checkpointed:
                return stamped(a)
            del a
            self.undo()
            if self.checkpointed and self.drew() and refused is not None:  # checkpointing turned on since
                raise refused
            if self.checkpointed:  # one pass, warned as at a first step
                del draws[model]
            else:
                draws[model] = False
        out = joint()
        if self.drew() and self.checkpointed:  # a backward recomputation would lose the replay's swaps: one pass
            if model not in draws:
                warn()
            draws[model] = False
        split = self._split(2 * rows if rows else None)
        if self.checkpointed and split and model not in _CHECKPOINTED_SPLIT_WARNED:  # its replay would be lost too
            _CHECKPOINTED_SPLIT_WARNED.add(model)
            warnings.warn(CHECKPOINTED_SPLIT, UserWarning, stacklevel=outside_package())
        if self.checkpointed or not (self.drew() or split):
            return out
        del out
        self.undo()  # the generators and the buffers the pass wrote (BatchNorm statistics, spectral norm's vectors)
        a = clean()
        draws[model] = True
        if self.checkpointed and refused is not None:
            raise refused
        return stamped(a)

    def _split(self, rows: int | None) -> bool:
        """Whether a training-mode ``BatchNorm`` call of the last first pass, a pass of ``rows`` rows, normalised a
        slice along dim 0 of a larger tensor made in the pass (:func:`_sliced_rows`) of other than ``rows`` rows: ghost
        BatchNorm (TabNet's virtual batches, ``torch.cat([bn(c) for c in x.chunk(k)])``; virtual batches of folded
        frames ``[N*T, C]``), whose joint pass of both halves puts row ``i`` and its twin in virtual batches of their
        own, normalised by statistics of their own (a counterfactual that changes nothing the model reads had a
        fairness term of 0.079 on a TabNet-like net, 0.027 in ``tests/repair/test_newuser120_ghost_batchnorm_pairs.py``;
        0.0027 over folded frames). Such rows are paired as a drawing model's are: a replay's call ``k`` (the twins'
        virtual batch ``k``) is normalised by the first half's call ``k``. A ``BatchNorm`` given the rows of a gather
        (an expert's ``x[idx]``, a branch's ``h[mask]``) is no split: in the joint pass a row and its twin routed to it
        share that call's statistics already (7d274b3c read it as split: an MoE's term went from 0.0701 to 0.0742,
        two passes a step); a slice of the pass's own ``rows`` rows (the clean rows given as a view of the batch) is
        none either. A layer of another class that ran several batch-statistics batch-norm calls inside one call
        of its own (``inside``: a ghost-BatchNorm subclass calling ``super().forward`` per chunk, 0.0153 for an
        unread column before) splits the pass too; its calls are paired one by one (:class:`_BatchNormCalls`)."""
        return (rows is not None and any(n != rows for n in self.sliced)) or any(
            self.calls[m].most > 1 for m in self.inside if m in self.calls)

    def restore(self) -> None:
        """Put the generators back where they stood before the first pass."""
        for g, state in zip(self.generators, self.before):
            g.set_state(state)

    def undo(self) -> None:
        """Put the generators and the buffers the first pass wrote back where they stood before it (a pass thrown
        away). The buffers are written through ``.data``: an in-place write their version counter sees would break the
        backward of a pass that saved them before this one (the task loss's pass of the same step: torch's
        training-mode ``BatchNorm`` keeps its running statistics for the backward, which in training mode reads them
        not)."""
        self.restore()
        _put_data(self.buffers, self.held, self.held)

    def _state_of_first(self) -> Callable[[], None]:
        """Put the buffers the first pass wrote in place (other than the ``BatchNorm`` statistics, which a replay does
        not update) back where they stood before it, so that a replay runs from the same state (spectral norm's power
        iteration gives it the first pass's weight); the function returned puts them where the first pass left them,
        so that a step advances them once however many passes it replays."""
        left = {name: self.buffers[name].clone() for name in self.written}
        _put_data(self.buffers, self.written & self.held.keys(), self.held)
        return lambda: _put_data(self.buffers, left, left)

    def replay(self, run: Callable[[], _T]) -> _T:
        """Run ``run()`` from the first pass's random state and with its ``BatchNorm`` statistics (see the class)."""
        self.restore()
        used = dict.fromkeys(self.norms, 0)
        held: list[tuple[nn.Module, bool, Any, Any, tuple[Tensor, Tensor] | None]] = []

        def swap_in(module: nn.Module, args: tuple[Any, ...]) -> None:
            calls = self.stats.get(module, [])
            k, used[module] = used[module], used[module] + 1
            if k >= len(calls):  # a call the first pass did not make keeps its own statistics
                return
            mean, var = calls[k]
            plain = type(module) in _PLAIN
            held.append((module, module.training, module.running_mean, module.running_var, (mean, var) if plain else None))
            module.training = False  # no update of the running statistics by this pass
            if not plain:
                module.running_mean, module.running_var = mean.detach(), var.detach()

        def swap_out(module: nn.Module, args: tuple[Any, ...], output: Any) -> Any:
            if not held or held[-1][0] is not module:
                return None
            _, training, mean, var, stats = held.pop()
            _put_back(module, training, mean, var)
            return _normalised(module, args[0], *stats) if stats is not None else None

        put_back_state = self._state_of_first()
        whole = [m for m in self.norms if m not in self.inside]
        handles = [m.register_forward_pre_hook(swap_in) for m in whole]
        # prepended: a hook registered before (the term's capture of a suspect that is itself a BatchNorm layer, a
        # user's) sees the output swap_out gives, not the eval-mode output the swap made torch compute
        handles += [m.register_forward_hook(swap_out, prepend=True) for m in whole]
        # a layer splitting inside: its call k normalised by the first pass's call k; its count of batches put back
        replays = {m: _BatchNormCalls(replay=c.record) for m, c in self.calls.items() if c.record is not None}
        counts = {m: m.num_batches_tracked.clone() for m in replays if isinstance(m.num_batches_tracked, Tensor)}
        for m, calls in replays.items():
            handles += [m.register_forward_pre_hook(calls.enter), m.register_forward_hook(calls.leave)]
        try:
            return run()
        finally:
            for h in handles:
                h.remove()
            for calls in replays.values():
                calls.close()
            for m, count in counts.items():
                m.num_batches_tracked.data.copy_(count)
            while held:  # a pass that raised inside a layer
                _put_back(*held.pop()[:4])
            for g, state in zip(self.generators, self.after):
                g.set_state(state)
            put_back_state()

    def _segment(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        x = args[0] if args else None
        if isinstance(x, Tensor) and _sliced_rows(x):  # ghost BatchNorm: one call per virtual batch of the pass's rows
            self._slices.setdefault(id(x._base), (x._base, []))[1].append((x.storage_offset(), x.shape[0]))
        self.checkpointed = self.checkpointed or in_checkpoint() or any(
            _composable_checkpoint.state(m).enable_hook for m in self.segments.get(module, ()))

    def _record(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        x = args[0]
        self.stats[module].append(_batch_statistics(x if type(module) in _PLAIN else x.detach(), module.running_mean))


#: the BatchNorm classes whose calls PairedPasses computes itself (exactly ``F.batch_norm``'s formula, nothing added)
_PLAIN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def _sliced_rows(x: Tensor) -> bool:
    """Whether ``x`` is a slice along dim 0 of a larger tensor: a view (``chunk``, ``split``, ``narrow``, ``x[a:b]``)
    whose rows are whole rows of its base read with ``x``'s trailing shape (a dense block of rows, ``channels_last``
    too; its base may be a view of another shape: frames folded by ``flatten(0, 1)`` then chunked), not a gather
    (``x[idx]``, ``h[mask]``: copies), not one entry of the base's first dimension (``out[-1]`` of a sequence-first
    ``[T, N, H]``), not a slice of the trailing dimensions (``h[:, :C]``).

    Examples:
        >>> h = torch.randn(10, 4)
        >>> [_sliced_rows(t) for t in (h.chunk(2)[0], h.chunk(1)[0], h[torch.arange(3)], h[:, :2], h)]
        [True, False, False, False, False]
        >>> seq = torch.randn(5, 3, 4)  # [T, N, H]
        >>> _sliced_rows(seq[-1]), _sliced_rows(seq.flatten(0, 1).chunk(3)[0])
        (False, True)
    """
    base = x._base
    if base is None or x.dim() < 1 or x.numel() == 0 or base.numel() <= x.numel():
        return False
    inner = 1
    for stride, size in sorted((x.stride(d), x.shape[d]) for d in range(1, x.dim()) if x.shape[d] != 1):
        if stride != inner:
            return False
        inner *= size
    if x.shape[0] != 1 and x.stride(0) != inner:
        return False
    return not (x.dim() < base.dim() and base.shape[0] and x.numel() * base.shape[0] == base.numel())


def _virtual_batches(rows: list[int]) -> bool:
    """Whether slices of ``rows`` rows, in the order they lie in the tensor they cut, are virtual batches: of one size
    but the last, which may be smaller (``x.chunk(k)``, ``x.split(size)``), or of sizes one row apart, the larger
    first (``torch.tensor_split(x, k)``). Not the slices of rows sorted by expert (``x[order].split(counts)``: a
    sorted-routing MoE, whose joint pass gives a row and its twin routed alike one expert's call already), unless
    their counts fall in such a pattern (equal counts; two experts, the first given no fewer rows).

    Examples:
        >>> [_virtual_batches(r) for r in ([16, 16, 8], [16, 16, 16], [4, 4, 3, 3], [40])]
        [True, True, True, True]
        >>> [_virtual_batches(r) for r in ([3, 14, 22], [16, 8, 16], [5, 7])]
        [False, False, False]
    """
    head, last = rows[:-1], rows[-1]
    if all(n == rows[0] for n in head) and last <= rows[0]:
        return True
    return rows[0] - last <= 1 and all(a >= b for a, b in zip(rows, rows[1:]))


def in_checkpoint() -> bool:
    """Whether the caller runs inside an activation-checkpointed segment: a frame of ``torch.utils.checkpoint`` on the
    stack (``checkpoint``, reentrant or not, and what calls it: ``checkpoint_sequential``, FSDP's ``checkpoint_wrapper``,
    Hugging Face's gradient checkpointing, torchvision's ``memory_efficient`` DenseNet). The composable
    ``torch.distributed._composable.checkpoint`` drives it from module hooks, with no frame on the stack:
    :class:`PairedPasses` finds it on the modules above each ``BatchNorm`` layer. Such a segment runs again in the
    backward, without the forward hooks that were set during the forward.

    Examples:
        >>> from torch.utils.checkpoint import checkpoint
        >>> seen = []
        >>> _ = checkpoint(lambda t: seen.append(in_checkpoint()) or t * 2, torch.ones(1, requires_grad=True),
        ...                use_reentrant=False)
        >>> seen, in_checkpoint()
        ([True], False)
    """
    frame = sys._getframe(1)
    while frame is not None:
        if frame.f_globals.get("__name__") == "torch.utils.checkpoint":
            return True
        frame = frame.f_back
    return False


def _normalised(module: nn.Module, x: Tensor, mean: Tensor, var: Tensor) -> Tensor:
    """``module``'s batch normalisation of ``x`` with the statistics ``mean`` and ``var`` (per channel, axis 1)."""
    return _normalised_by(x, mean, var, module.weight, module.bias, module.eps)


def _normalised_by(x: Tensor, mean: Tensor, var: Tensor, weight: Tensor | None, bias: Tensor | None,
                   eps: float) -> Tensor:
    """``F.batch_norm``'s formula, ``(x − mean) · rsqrt(var + eps) · weight + bias``, per channel (axis 1)."""
    shape = (1, -1) + (1,) * (x.dim() - 2)
    y = (x.to(mean.dtype) - mean.view(shape)) * torch.rsqrt(var.view(shape) + eps)
    if weight is not None and bias is not None:
        y = y * weight.view(shape) + bias.view(shape)
    elif weight is not None or bias is not None:
        y = y * weight.view(shape) if weight is not None else y + bias.view(shape)
    return y.to(x.dtype)


def _batch_statistics(x: Tensor, running_mean: Tensor | None) -> tuple[Tensor, Tensor]:
    """The mean and biased variance of ``x`` over every dimension but the channels (axis 1), in the dtype of the
    running statistics (float32 for a half-precision ``x`` without them)."""
    dtype = running_mean.dtype if running_mean is not None else (
        torch.float32 if x.dtype in (torch.float16, torch.bfloat16) else x.dtype)
    var, mean = torch.var_mean(x.to(dtype), dim=[d for d in range(x.dim()) if d != 1], unbiased=False)
    return mean, var


#: ``F.batch_norm``'s arguments and their defaults
_BATCH_NORM_ARGS = {"input": None, "running_mean": None, "running_var": None, "weight": None, "bias": None,
                    "training": False, "momentum": 0.1, "eps": 1e-5}


class _BatchNormCalls(TorchFunctionMode):
    """The batch-statistics ``F.batch_norm`` calls (``training=True``) inside the calls of one ``BatchNorm`` layer of
    another class, while it runs (``enter`` and ``leave`` are its forward pre-hook and hook: no other layer's
    functions pass here): counted (``most``: the most in one call of the layer); with ``record`` (a list), each call's
    statistics appended (their gradient kept) and the call computed by the formula with them, as a plain layer's is
    (:func:`_normalised_by`; the call itself still runs, its output unused, so that the running statistics move as
    without the pairing); with ``replay`` (a first pass's ``record``), call ``k`` computed with ``replay[k]``, the
    running statistics untouched. A recorded call of one value per channel stops the pass
    (:class:`_OneValuePerChannel`, which torch would refuse)."""

    def __init__(self, record: list[tuple[Tensor, Tensor]] | None = None,
                 replay: list[tuple[Tensor, Tensor]] | None = None) -> None:
        super().__init__()
        self.record, self.replay = record, replay
        self.most = self.now = self.used = self.depth = self.entered = 0
        self.module: nn.Module | None = None

    def enter(self, module: nn.Module, args: tuple[Any, ...]) -> None:
        self.now, self.depth, self.entered, self.module = 0, self.depth + 1, self.entered + 1, module
        self.__enter__()

    def leave(self, module: nn.Module, args: tuple[Any, ...], out: Any) -> None:
        if self.depth:
            self.depth -= 1
            self.__exit__(None, None, None)
        self.most = max(self.most, self.now)

    def close(self) -> None:
        """Leave the mode where a pass raised inside the layer."""
        while self.depth:
            self.depth -= 1
            self.__exit__(None, None, None)

    def __torch_function__(self, func: Callable[..., Any], types: Any, args: tuple[Any, ...] = (),
                           kwargs: dict[str, Any] | None = None) -> Any:
        kwargs = kwargs or {}
        if func is not F.batch_norm:
            return func(*args, **kwargs)
        call = {**_BATCH_NORM_ARGS, **dict(zip(_BATCH_NORM_ARGS, args)), **kwargs}
        if not call["training"] or not _own_call(self.module, call):
            return func(*args, **kwargs)  # eval statistics, or a BatchNorm layer it holds (which pairs its own calls)
        self.now += 1
        x, affine = call["input"], (call["weight"], call["bias"], call["eps"])
        if self.record is not None:
            if x.dim() >= 2 and x.shape[1] and x.numel() // x.shape[1] == 1:
                raise _OneValuePerChannel
            stats = _batch_statistics(x, call["running_mean"])
            self.record.append(stats)
            func(*args, **kwargs)
            return _normalised_by(x, *stats, *affine)
        if self.replay is not None:
            k, self.used = self.used, self.used + 1
            if k < len(self.replay):
                return _normalised_by(x, *self.replay[k], *affine)
            return func(x, None, None, *affine[:2], True, 0.0, affine[2])  # a call the first pass did not make
        return func(*args, **kwargs)


def _own_call(module: nn.Module | None, call: dict[str, Any]) -> bool:
    """Whether an ``F.batch_norm`` call made while ``module`` runs is its own: each of its statistics and affine
    tensors ``None`` or ``module``'s (a BatchNorm layer it holds passes its own: counted and paired by that layer, not
    taken for a second call of ``module``'s, whose replay would then normalise by the held layer's statistics)."""
    return module is None or all(call[k] is None or call[k] is getattr(module, k, None)
                                 for k in ("running_mean", "running_var", "weight", "bias"))


def _composable_segments(model: nn.Module, norms: list[nn.Module]) -> dict[nn.Module, list[nn.Module]]:
    """Per layer of ``norms``, the modules of ``model`` holding it (itself included) that composable checkpointing
    (``torch.distributed._composable.checkpoint``) was applied to: while one's hook is on, its forward is a segment."""
    if _composable_checkpoint is None or not norms:
        return {}
    applied = [m for m in model.modules() if "checkpoint" in vars(m).get(_COMPOSABLE_APIS, {})]  # no __getattr__ miss
    return {n: [m for m in applied if any(n is k for k in m.modules())] for n in norms} if applied else {}


def _put_data(buffers: dict[str, Tensor], names: Any, values: dict[str, Tensor]) -> None:
    """Write ``values[name]`` into ``buffers[name]`` for each of ``names``, through ``.data`` (no version bump)."""
    for name in names:
        buffers[name].data.copy_(values[name])


def _put_back(module: nn.Module, training: bool, mean: Any, var: Any) -> None:
    module.training, module.running_mean, module.running_var = training, mean, var
