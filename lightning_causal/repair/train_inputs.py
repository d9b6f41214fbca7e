"""The training inputs a :class:`~lightning_causal.repair.module.CausalRepairModule` gives its terms'
``setup``: up to :data:`SETUP_SAMPLES` inputs of the train dataloader's data, read without moving any
random stream, on the module's device and in the dtype of training batches (:func:`train_inputs`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from lightning.pytorch import Trainer
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset

from lightning_causal._user_warnings import warn_at_users_line
from lightning_causal.batches import (
    INPUT_KEYS,
    default_input_key,
    forward_keys,
    keys_unpack_batch,
    num_rows,
)
from lightning_causal.data_reading import RowsOf, WholeOf, read_samples, rngs_untouched
from lightning_causal.repair.base import SEVERAL_INPUTS_FIX, RepairTerm

__all__ = ["ONE_INPUT_FIX", "SETUP_SAMPLES", "one_input_only", "train_inputs"]

#: Inputs gathered from the train dataloader for ``RepairTerm.setup`` (kept small: it is a hint).
SETUP_SAMPLES = 512
#: The way out for a term that acts on one input and cannot act beside others (:func:`one_input_only`).
ONE_INPUT_FIX = ("give the term a model of one input (a wrapper whose forward splits torch.cat([image.flatten(1), tab], 1), "
                 "a trigger's mask and pattern shaped for it; for a CLIP-like two-tower model, its zero-shot classifier: a "
                 "module whose forward(pixels) scores the image tower's embedding against class prompts' embeddings "
                 "kept as a buffer, repaired with `CausalRepairModule(zero_shot, terms, unpack_batch=lambda batch: "
                 "(batch['pixels'], batch['label'], None))`, which fine-tunes the towers the two-tower model shares; "
                 "docs/your_model.md, 'Models without class outputs')")


def one_input_only(term: RepairTerm) -> str | None:
    """Why ``term`` cannot act on one input of several beside the others, which follow its rows as forward arguments
    (``CausalRepairModule(explain=)``, or ``unpack_batch`` giving them as the batch's forward arguments); ``None`` where
    it can. A term whose loss makes rows of its own cannot (:attr:`~lightning_causal.repair.base.RepairTerm.makes_own_rows`:
    a :class:`~lightning_causal.repair.backdoor.BackdoorSuppressionTerm`'s stamped and augmented copies, or a term of
    one's own that says so), nor a term that reads training inputs at set-up (they come without the others).

    Args:
        term: a repair term.

    Examples:
        >>> from lightning_causal.repair import BackdoorSuppressionTerm
        >>> one_input_only(BackdoorSuppressionTerm())
        'the rows its loss makes (stamped or augmented copies: `makes_own_rows`) are rows of their own, which the other inputs cannot follow'
    """
    if term.makes_own_rows:
        return ("the rows its loss makes (stamped or augmented copies: `makes_own_rows`) are rows of their own, which the "
                "other inputs cannot follow")
    if term.needs_train_inputs:
        return "it reads training inputs at set-up, which would come without the other inputs"
    return None


def train_inputs(
    trainer: Trainer,
    inputs_of: Callable[[Any], Any],
    device: torch.device,
    terms: Sequence[RepairTerm],
    check_only: bool,
    args_of: Callable[[Any], Any] | None = None,
    given: Tensor | None = None,
    reader: tuple[RowsOf, WholeOf] | None = None,
) -> Tensor | None:
    """Up to ``SETUP_SAMPLES`` inputs (``inputs_of(batch)``) of the trainer's train dataloader's data, read
    without moving any random stream (:func:`~lightning_causal.data_reading.read_samples`; an iterable
    dataset: its first batches), on ``device``
    and in the dtype Lightning gives training batches (``precision_plugin.convert_input``: float64 under
    ``"64-true"``, bfloat16 under ``"bf16-true"``). With ``check_only`` (no term reads them), one sample
    checks that the ``terms`` can act on the batches (an iterable dataset is not read) and ``None`` is
    returned. ``args_of(batch)`` gives the batch's forward arguments (``unpack_batch``'s third part), which set-up
    runs without: a term whose loss makes rows of its own (``makes_own_rows``: a ``BackdoorSuppressionTerm``'s stamped
    copies, which they cannot follow; its Neural Cleanse would call the model without them) is refused where the
    batches carry some, before any set-up runs. Another term that reads training inputs (``needs_train_inputs``) is
    not: it gets the inputs alone, and its loss the arguments (:func:`one_input_only` names it only where the inputs
    are several tensors, or ``explain=`` picks one). The read, the batch-transfer hooks and ``inputs_of``/``args_of``
    (``unpack_batch``, which may draw: a denoiser's noise) run in one
    :func:`~lightning_causal.data_reading.rngs_untouched` section of the loader, the LightningModule, the datamodule and
    the two functions: the global generators and every generator reachable from them are as before, whatever is read.

    ``reader``: ``read_samples``' ``(rows_of, whole_of)`` for the batches, the module's ``unpack_batch``'s
    (:func:`~lightning_causal.unpacked_rows.input_rows`, as the audits' probe reads them): an episode whose first tensor
    is its support set is counted by its queries, and the tensors ``unpack_batch`` marks ``mark_whole`` are never cut.

    ``given`` (``CausalRepairModule(setup_inputs=)``) are the inputs instead: nothing is read from the dataloader but
    the one sample of the check (none of an iterable dataset), and ``given`` comes back whole, on ``device`` and in
    the training batches' dtype. Without it, a dataloader whose data cannot be read by index (an ``IterableDataset``,
    an iterable that is no ``DataLoader``) is read from a new iterator, and a warning names ``setup_inputs=``: a stream
    that reads a shared source once (a generator, a queue, a socket) does not give training the samples read there
    (a resumable stream, with ``state_dict``/``load_state_dict``, is given its position back: no warning).

    Raises:
        MisconfigurationException: the batches hold several inputs, which the terms do not support, or forward
            arguments beside the inputs of a term whose loss makes rows of its own; or ``given`` whose sample shape is
            not that of a sample of the batches read (a map-style dataset's; a stream is not read).
    """
    loader = getattr(trainer, "train_dataloader", None)
    if isinstance(loader, (list, tuple, dict)):
        loader = next(iter(loader.values() if isinstance(loader, dict) else loader), None)
    if loader is None:
        return None if given is None or check_only else _setup_input(trainer, device, given, terms)
    # the batch-transfer hooks run in the read too: a mixup drawn there from the global RNG, or from a generator of the
    # module's or the datamodule's own (whose hooks Lightning runs as well), is restored with the loader's; so is
    # `unpack_batch` (`inputs_of`, `args_of`), which may draw as it makes the model's inputs (a denoiser's noisy x_t and
    # timesteps, from the global streams, the model's generator or one of its closure's): read and unpacked in one
    # restored section, the set-up moves no stream whatever it reads (512 rows, one, or `given`)
    roots = (loader, getattr(trainer, "lightning_module", None), getattr(trainer, "datamodule", None), inputs_of, args_of)
    unpacked: list[tuple[Any, Any]] = []  # (inputs, forward arguments) of each batch read
    first: Any = None  # the first batch read, whose keys may name forward's one input (_check_forward_args)
    if isinstance(loader, DataLoader) and not isinstance(loader.dataset, IterableDataset):
        with rngs_untouched(*roots):
            counted, whole = reader if reader is not None else (None, None)
            batch = _as_trained(trainer, read_samples(loader, 1 if check_only or given is not None else SETUP_SAMPLES,
                                                      loader_order=True, rows_of=counted, whole_of=whole), device)
            unpacked.append((inputs_of(batch), None if args_of is None else args_of(batch)))
            first = batch
    elif check_only:
        return None
    elif given is not None:
        pass
    else:
        with rngs_untouched(*roots):
            count = 0
            for batch in loader:
                batch = _as_trained(trainer, batch, device)
                unpacked.append((inputs_of(batch), None if args_of is None or unpacked else args_of(batch)))
                first = batch if first is None else first
                count += num_rows(unpacked[-1][0])
                if count >= SETUP_SAMPLES:
                    break
        _warn_of_a_stream(loader, terms, count)
    if unpacked and args_of is not None:
        _check_forward_args(unpacked[0][1], terms, first,
                            getattr(getattr(getattr(trainer, "lightning_module", None), "model", None), "forward", None))
    taken = [_setup_input(trainer, device, x, terms) for x, _ in unpacked]
    if check_only:
        return None
    if given is not None:
        if taken and tuple(given.shape[1:]) != tuple(taken[0].shape[1:]):  # a sample of the batches read: compared
            batches = ", ".join(["N", *map(str, taken[0].shape[1:])])
            raise MisconfigurationException(
                f"Expected argument `setup_inputs` to hold training inputs [N, ...] shaped as the training batches' "
                f"inputs, [{batches}], but got {list(given.shape)}: the terms' set-up runs the model on them")
        return _setup_input(trainer, device, given, terms)
    return torch.cat(taken)[:SETUP_SAMPLES] if taken else None


def _warn_of_a_stream(loader: Any, terms: Sequence[RepairTerm], count: int) -> None:
    """Say that the set-up read ``count`` samples from a new iterator of ``loader``'s stream (an ``IterableDataset``,
    an iterable that is no ``DataLoader``), which a stream over a shared source does not give training, and the way to
    read none (``CausalRepairModule(setup_inputs=)``). Not for a stream that keeps its position (``state_dict`` and
    ``load_state_dict``, a resumable stream), which the read gives its position back
    (:func:`~lightning_causal.data_reading.rngs_untouched`): it loses nothing."""
    data = loader.dataset if isinstance(loader, DataLoader) else loader
    if all(callable(getattr(data, k, None)) for k in ("state_dict", "load_state_dict")):
        return
    what = (f"IterableDataset ({type(data).__name__})" if isinstance(data, IterableDataset)
            else f"iterable ({type(data).__name__}, no DataLoader)")
    readers = [f"{t.name!r} ({type(t).__name__})" for t in terms if t.needs_train_inputs]
    warn_at_users_line(
        f"CausalRepairModule read {count} samples from a new iterator of the training {what} for the set-up of "
        f"{'terms' if len(readers) > 1 else 'term'} {', '.join(readers)}, which reads training inputs there (the stream "
        "has no samples to read by index): a stream that reads "
        "a shared source once (a generator, a queue, a socket) does not give training the samples read there. Give the "
        "set-up its inputs, `CausalRepairModule(..., setup_inputs=x)` (or `CausalRepairModule.wrap(module, terms, "
        "setup_inputs=x)`; x a tensor [N, ...] of training inputs, all N given to the set-up), and none is read; a "
        "dataset whose every iter() starts again loses nothing")


def _as_trained(trainer: Trainer, batch: Any, device: torch.device) -> Any:
    """``batch`` as the training step receives it: through the batch-transfer hooks Lightning runs on
    training batches (``on_before_batch_transfer``, ``transfer_batch_to_device``, ``on_after_batch_transfer``:
    the module's, a ``wrap()``'s wrapped module's, or a datamodule's), so that ``unpack_batch`` reads
    the batches it reads in training (a hook that turns a mapping into a tuple, say). Called where the random streams
    are restored after (:func:`~lightning_causal.data_reading.rngs_untouched` of the loader, the module and the
    datamodule): a hook may draw from them (mixup in ``on_after_batch_transfer``, from the global RNG or a generator the
    module or datamodule holds), and the training that follows must not see the draw."""
    module = trainer.lightning_module
    batch = module._on_before_batch_transfer(batch, dataloader_idx=0)
    return module._apply_batch_transfer_handler(batch, device, dataloader_idx=0)


def _check_forward_args(args: Any, terms: Sequence[RepairTerm], batch: Any = None,
                        forward: Callable[..., Any] | None = None) -> None:
    """Refuse forward arguments of the batch beside a term whose loss makes rows of its own (``makes_own_rows``), before
    any set-up runs the model without them (a ``BackdoorSuppressionTerm`` with ``trigger=None``: "forward() missing 1
    required positional argument", from inside Neural Cleanse). Where the model's ``forward`` takes one input, a key
    of the mapping ``batch`` (a zero-shot classifier's ``forward(pixels)`` beside ``{"pixels", "input_ids",
    "attention_mask", "label"}``, whose ``input_ids`` the default ``unpack_batch`` reads), the refusal gives the
    ``unpack_batch=`` that passes that key alone (:func:`~lightning_causal.batches.keys_unpack_batch`)."""
    refused = [t for t in terms if t.makes_own_rows]
    if args is not None and refused:
        term = refused[0]
        what = sorted(map(str, args)) if isinstance(args, Mapping) else f"{len(args)} positional" if isinstance(args, tuple) else "one"
        setup = (", and its set-up runs the model on training inputs without them (e.g. the Neural Cleanse of a "
                 "BackdoorSuppressionTerm with trigger=None)" if term.needs_train_inputs else "")
        named = forward_keys(forward, batch)
        read = default_input_key(batch) if named else None
        fix = (f"the model's forward takes one input, {named[0]!r}, a key of the batches, which `unpack_batch` did not "
               f"give it alone (the default reads the first of {list(INPUT_KEYS)} a batch holds, here {read!r}, with "
               f"its tokenizer's arguments): pass `{keys_unpack_batch(batch, named)}`"
               if named is not None and len(named) == 1 else
               f"{ONE_INPUT_FIX}, and arguments shared by every call to the term itself (BackdoorSuppressionTerm: its "
               "`additional_forward_args=`)")
        raise MisconfigurationException(
            f"The training batches carry forward arguments ({what}) beside term {term.name!r} ({type(term).__name__}), "
            "whose loss makes rows of its own (`makes_own_rows`: stamped or augmented copies), which per-sample arguments "
            f"(the table of model(image, tab)) cannot follow{setup}; {fix}")


def _setup_input(trainer: Trainer, device: torch.device, x: Any, terms: Sequence[RepairTerm]) -> Tensor:
    if not isinstance(x, Tensor):
        alone = [(t.name, why) for t in terms if (why := one_input_only(t))]
        fix = SEVERAL_INPUTS_FIX if not alone else (
            f"term {alone[0][0]!r} cannot act on one of them beside the others ({alone[0][1]}): neither "
            f"CausalRepairModule `explain=` nor the others as forward arguments serve it; {ONE_INPUT_FIX}")
        raise MisconfigurationException(
            f"CausalRepairModule's terms ({', '.join(t.name for t in terms)}) act on one input tensor but "
            f"the training batches hold {len(x)} inputs (a model of several inputs), which they do not support; {fix}")
    # in the dtype training batches reach the model in: float64 under "64-true", bfloat16 under "bf16-true"
    return trainer.precision_plugin.convert_input(x.to(device))
