"""The repair terms made ready when a :class:`~lightning_causal.repair.module.CausalRepairModule` fit starts
training: each term set up on the model (``setup(model, train_inputs)``, with training inputs only where a
term ``needs_train_inputs``), given back the state a checkpoint kept, or given back the state an earlier set-up
of the same term computed from the same weights, inputs and options (a tuner's search, which restores the
weights it started from: :class:`SetupRecord`, :func:`set_up_terms`)."""

from __future__ import annotations

import contextlib
import contextvars
import copy
import hashlib
import types
from collections.abc import Callable, Iterator, Mapping, MutableMapping, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import Tensor, nn

from lightning_causal._user_warnings import warn_at_users_line
from lightning_causal.causal.engine.lazy_modules import NEVER_CALLED_LAZY, unbuilt_lazy_modules
from lightning_causal.repair.base import RepairTerm

__all__ = ["RUN_RECORDS", "SetupRecord", "set_up_terms", "weights_print"]

#: Public attributes of a term that record its last training step, not options of its set-up (a
#: :class:`~lightning_causal.repair.backdoor.BackdoorSuppressionTerm`'s ``last_parts``).
RUN_RECORDS = ("last_parts",)
#: How deep :func:`_print` follows plain objects' attributes before it compares an object by identity.
_DEPTH = 8


class _Same:
    """Equal to a ``_Same`` of the same object only (functions, generators, objects read no further)."""

    __slots__ = ("obj",)

    def __init__(self, obj: Any) -> None:
        self.obj = obj

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Same) and other.obj is self.obj

    def __hash__(self) -> int:
        return id(self.obj)


class _Never:
    """Equal to nothing, itself included: a value that cannot be read (a meta or sparse tensor)."""

    def __eq__(self, other: object) -> bool:
        return False

    __hash__ = object.__hash__


def _tensor_print(t: Tensor) -> Any:
    """A tensor's dtype, shape, device and the SHA-256 of its bytes (read on the host)."""
    t = t.detach()
    try:
        data = t.reshape(-1).contiguous().cpu().view(torch.uint8).numpy()
    except (RuntimeError, TypeError, NotImplementedError):  # meta, sparse, quantized tensors: never the same
        return _Never()
    return ("tensor", str(t.dtype), tuple(t.shape), str(t.device), hashlib.sha256(data).hexdigest())


def weights_print(model: nn.Module) -> str:
    """A fingerprint of ``model``'s state: every parameter and buffer (name, dtype, shape, device, bytes,
    ``requires_grad``) and every submodule's training mode. Equal fingerprints: equal tensors (SHA-256).
    The tensors are read on the host (one copy of the model's weights from an accelerator).

    Args:
        model: the module whose state is read.

    Examples:
        >>> a = nn.Linear(3, 2)
        >>> b = nn.Linear(3, 2)
        >>> _ = b.load_state_dict(a.state_dict())
        >>> weights_print(a) == weights_print(b)
        True
        >>> with torch.no_grad():
        ...     b.bias[0] += 1e-6
        >>> weights_print(a) == weights_print(b)
        False
    """
    digest = hashlib.sha256()
    tensors = [*((n, p, p.requires_grad) for n, p in model.named_parameters()),
               *((n, b, None) for n, b in model.named_buffers())]
    for name, tensor, grad in tensors:
        digest.update(repr((name, grad, _tensor_print(tensor))).encode())
    digest.update(repr([m.training for m in model.modules()]).encode())
    return digest.hexdigest()


def _print(value: Any, depth: int = 0, seen: frozenset[int] = frozenset()) -> Any:
    """A comparable fingerprint of an option's value: tensors by their bytes (:func:`_tensor_print`), modules
    by their weights (:func:`weights_print`), containers and plain objects' attributes by their items; functions,
    generators and objects without attributes by identity."""
    if value is None or isinstance(value, (bool, int, str, bytes)):
        return (type(value).__name__, value)
    if isinstance(value, (float, complex)):
        return (type(value).__name__, repr(value))  # nan equals nan
    if isinstance(value, Tensor):
        return _tensor_print(value)
    if isinstance(value, nn.Module):
        return ("module", type(value).__qualname__, weights_print(value))
    if id(value) in seen or depth >= _DEPTH:
        return _Same(value)
    seen = seen | {id(value)}
    if isinstance(value, Mapping):
        return ("map", type(value).__qualname__,
                tuple((_print(k, depth + 1, seen), _print(v, depth + 1, seen)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return (type(value).__qualname__, tuple(_print(v, depth + 1, seen) for v in value))
    if isinstance(value, (set, frozenset)):
        return (type(value).__qualname__, tuple(sorted(repr(_print(v, depth + 1, seen)) for v in value)))
    plain = not isinstance(value, (type, types.FunctionType, types.MethodType, types.BuiltinFunctionType,
                                   types.ModuleType, torch.Generator))
    if plain and isinstance(getattr(value, "__dict__", None), dict):  # a dataclass, a counterfactual, a Trigger
        return ("object", type(value).__qualname__, _print(vars(value), depth + 1, seen))
    return _Same(value)


def _public_prints(term: RepairTerm) -> dict[str, Any]:
    return {k: _print(v) for k, v in vars(term).items() if not k.startswith("_")}


def _check_built_for(fresh: Sequence[RepairTerm], model: nn.Module) -> None:
    """Refuse to set up the terms of ``fresh`` that keep a state computed from the model's weights (:func:`_keeps_state`)
    while a lazy module of ``model`` is not built: their set-up would read weights not drawn yet (a reference copy that
    its first pass builds with weights of its own, a trigger searched on no network)."""
    reading = [t.name for t in fresh if _keeps_state(t)]
    lazy = unbuilt_lazy_modules(model) if reading else []
    if lazy:
        raise MisconfigurationException(
            f"CausalRepairModule: expected the model's lazy modules to be built before the terms {reading} are set up "
            f"(at the start of training; their set-up reads the weights), but got {lazy[:3]} not built yet (nn.LazyLinear, "
            "LazyConv2d before their first call): build them first, with one forward pass of a batch before the fit "
            f"(`model(x)`); {NEVER_CALLED_LAZY}")


def _keeps_state(term: RepairTerm) -> bool:
    """Whether ``term`` may keep its set-up's state (its class overrides ``state_dict``)."""
    return type(term).state_dict is not RepairTerm.state_dict


def _to_host(value: Any) -> Any:
    """A copy of a ``state_dict`` output that training cannot change, its tensors on the host."""
    if isinstance(value, Tensor):
        return _OnDevice(value.detach().to("cpu", copy=True), value.device)
    if isinstance(value, Mapping):
        return {k: _to_host(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and type(value) in (list, tuple):
        return type(value)(_to_host(v) for v in value)
    return copy.deepcopy(value)


def _from_host(value: Any) -> Any:
    """A fresh copy of :func:`_to_host`'s output, its tensors back on their devices."""
    if isinstance(value, _OnDevice):
        return value.tensor.to(value.device, copy=True)
    if isinstance(value, Mapping):
        return {k: _from_host(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and type(value) in (list, tuple):
        return type(value)(_from_host(v) for v in value)
    return copy.deepcopy(value)


@dataclass(frozen=True)
class _OnDevice:
    tensor: Tensor
    device: torch.device


@dataclass
class SetupRecord:
    """What one term's ``setup`` computed and what from (:func:`set_up_terms` keeps one a term).

    Attributes:
        term: the term object set up.
        weights: the fingerprint of the model's weights it was set up on (:func:`weights_print`).
        inputs: the fingerprint of the training inputs it got (``None`` for none).
        options: the fingerprints of the term's public attributes that ``setup`` left as they were (its options;
            not :data:`RUN_RECORDS`), by name.
        state: its ``state_dict`` right after ``setup``, copied (tensors to the host, with their devices).
    """

    term: RepairTerm
    weights: str
    inputs: Any
    options: dict[str, Any]
    state: Any

    def matches(self, term: RepairTerm, weights: str, inputs: Any) -> bool:
        """Whether a set-up of ``term`` on these ``weights`` and ``inputs`` would compute what this one did: the
        same term object, weights, inputs and options.

        Args:
            term: the term to set up now.
            weights: the fingerprint of the model's weights now (:func:`weights_print`).
            inputs: the fingerprint of the training inputs it would get now.
        """
        return (term is self.term and weights == self.weights and inputs == self.inputs
                and all(_print(getattr(term, k, _Never())) == v for k, v in self.options.items()))


def read_words(n: int) -> str:
    """What the ``n`` training inputs :class:`~lightning_causal.repair.module.CausalRepairModule` read for its terms'
    set-up are, in the user's terms.

    Examples:
        >>> read_words(512)[:58]
        'the 512 training inputs CausalRepairModule read for the te'
    """
    return (f"the {n} training inputs CausalRepairModule read for the terms' set-up, the first {n} samples a new iterator "
            "of the train dataloader gives: sample k is the dataset's sample k under a sequential sampler, not under "
            "shuffle=True (a random sampler's draw); `CausalRepairModule(setup_inputs=)` gives your own")


#: what the set-up's ``train_inputs`` are (:func:`read_words`) while :func:`set_up_terms` sets a term up on inputs
#: CausalRepairModule read from the train dataloader (:func:`inputs_named`), else ``None``
_READ_WORDS: contextvars.ContextVar[str | None] = contextvars.ContextVar("lightning_causal_read_words", default=None)


@contextlib.contextmanager
def inputs_named(words: str | None) -> Iterator[None]:
    """During a term's set-up, :func:`inputs_said` gives ``words``, what its ``train_inputs`` are (:func:`read_words`):
    the set-up's warnings and errors that name them (``"samples [3, 19] of `train_inputs`"``) say so, the user never
    passed them; ``None``: they were the user's (``setup_inputs=``). No warning is caught: each keeps its own file and
    line, and the user's filters.

    Args:
        words: what the set-up's ``train_inputs`` are, or ``None``.
    """
    token = _READ_WORDS.set(words)
    try:
        yield
    finally:
        _READ_WORDS.reset(token)


def inputs_said() -> str:
    """What a term's set-up appends to a warning or error that names its ``train_inputs``: ``" (`train_inputs`: ...)"``
    with what they are where CausalRepairModule read them (:func:`inputs_named`), else ``""``.

    Examples:
        >>> inputs_said()
        ''
        >>> with inputs_named(read_words(4)):
        ...     inputs_said()[:44]
        ' (`train_inputs`: the 4 training inputs Caus'
    """
    words = _READ_WORDS.get()
    return "" if words is None else f" (`train_inputs`: {words})"


def set_up_terms(
    terms: Sequence[RepairTerm],
    model: nn.Module,
    restored: Mapping[str, Any],
    saved_names: Sequence[str],
    read_inputs: Callable[[list[RepairTerm], bool], Tensor | None],
    records: MutableMapping[str, SetupRecord] | None = None,
    *,
    read: bool = False,
) -> list[str]:
    """Each of ``terms`` given back its ``restored`` state (``load_state_dict(state, model)``, a resumed fit)
    or set up (``setup(model, inputs)``). ``read_inputs(fresh, check_only)`` gives the training inputs of the
    terms set up (``fresh``); it runs only where there are some, and ``check_only`` says that none of them
    reads the inputs (they are only checked). A term named in ``saved_names``, the terms of the fit that
    saved the checkpoint, that ``terms`` lack is warned about (it is not trained).

    With ``records`` (by term name, kept by the caller between fits), a term is not set up again when its record
    :meth:`~SetupRecord.matches` (the same term object, model weights, training inputs and options as when it was
    set up: a fit after ``Tuner(trainer).lr_find``, whose search set the terms up and restored the weights): it
    gets the record's state back (``load_state_dict``) instead. Each term set up whose ``state_dict`` is not
    ``None`` gets a new record (the others are set up each time, as on a resumed fit).

    Args:
        terms: the module's terms.
        model: the model being repaired, at the weights the terms are set up on.
        restored: the state of terms by name, from the checkpoint a fit resumes from.
        saved_names: the names of the terms of the fit that saved that checkpoint.
        read_inputs: ``(fresh, check_only) -> inputs``, the training inputs of the terms set up.
        records: the records of earlier set-ups by term name (read and updated), or ``None`` for none.
        read: whether ``read_inputs`` read the inputs from the train dataloader (not ``setup_inputs=``): a term's
            set-up warnings and errors that name ``train_inputs``, which the user never passed, say what those are
            (:func:`inputs_named`).

    Returns:
        The names of the terms given back a record's state.

    Raises:
        MisconfigurationException: where a term to set up keeps a state its set-up computes from the model (its
            ``state_dict`` is its own: a ``BackdoorSuppressionTerm``'s reference copy and triggers) while a lazy
            module of the model is not built yet (``nn.LazyLinear`` before its first call), naming the terms and modules.

    Examples:
        >>> class Counted(RepairTerm):
        ...     def setup(self, model, train_inputs=None):
        ...         self.rows = train_inputs.shape[0]
        ...     def loss(self, model, x, y):
        ...         return model(x).sum()
        >>> term = Counted()
        >>> set_up_terms([term], nn.Linear(3, 2), {}, [], lambda fresh, check_only: torch.zeros(4, 3))
        []
        >>> term.rows
        4
    """
    absent = [name for name in saved_names if name not in {t.name for t in terms}]
    if absent:  # e.g. a module loaded for inference (no `terms=`) and then fit
        warn_at_users_line(
            f"CausalRepairModule: the checkpoint was saved by a fit with the repair terms {absent}, which this module does "
            f"not have (its terms: {[t.name for t in terms]}); they are not trained. Pass them, "
            "`terms=[...]`, to go on repairing")
    fresh = [t for t in terms if t.name not in restored]
    _check_built_for(fresh, model)
    check_only = not any(t.needs_train_inputs for t in fresh)
    inputs = read_inputs(fresh, check_only) if fresh else None
    recording = records is not None and any(_keeps_state(t) for t in fresh)
    weights = weights_print(model) if recording else ""  # the weights before any term's setup runs
    inputs_print = _print(inputs) if recording else None
    reused = []
    words = read_words(int(inputs.shape[0])) if read and isinstance(inputs, Tensor) else None
    for term in terms:
        if term.name in restored:
            term.load_state_dict(restored[term.name], model)
            continue
        if not recording or not _keeps_state(term):
            with inputs_named(words):
                term.setup(model, inputs)
            continue
        record = records.pop(term.name, None)
        if record is not None and record.matches(term, weights, inputs_print):
            term.load_state_dict(_from_host(record.state), model)
            records[term.name] = record
            reused.append(term.name)
            continue
        before = _public_prints(term)
        with inputs_named(words):
            term.setup(model, inputs)
        state = term.state_dict()
        if state is None:
            continue
        after = _public_prints(term)
        options = {k: v for k, v in before.items() if k in after and after[k] == v and k not in RUN_RECORDS}
        records[term.name] = SetupRecord(term, weights, inputs_print, options, _to_host(state))
    return reused
