"""Turn what a user passes as ``probe`` (or the trainer's data) into a fixed :class:`Probe`
(read by :func:`~lightning_causal.data_reading.read_samples`, which moves no random stream): which
of the fit's data it comes from, and how the audits call the model on it."""

from __future__ import annotations

import contextlib
import warnings
from collections import deque
from collections.abc import Iterator, Mapping
from typing import Any
from weakref import WeakKeyDictionary

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset

from lightning_causal._compat import with_note
from lightning_causal._console import console_line
from lightning_causal.audits.base import Probe
from lightning_causal.batches import (
    UnpackBatch,
    default_input_key,
    forward_keys,
    keys_unpack_batch,
    unpack,
    unread_keys_message,
)
from lightning_causal.callbacks._no_trace import audit_seed
from lightning_causal.causal.engine.chosen_input import has_default, model_name, positional_names
from lightning_causal.causal.engine.finite import check_finite_samples, per_sample_tensors
from lightning_causal.causal.engine.forward_args import ForwardArgs
from lightning_causal.causal.engine.generators import generators_registered
from lightning_causal.causal.engine.kept_attributes import put_back_items
from lightning_causal.causal.engine.linked_samples import (
    POOLED_GRAPH_HINT,
    bag_hint,
    linked_arguments,
)
from lightning_causal.causal.engine.overlapping_windows import overlapping_windows
from lightning_causal.causal.engine.user_frame import outside_package
from lightning_causal.data_reading import batch_rows, read_samples, rngs_untouched
from lightning_causal.unpacked_rows import copy_of, input_rows

__all__ = ["attributes_untouched", "call_hint", "check_finite_probe", "warn_overlapping_windows", "given_samples", "note_cut_probe", "plain_tensors", "probe_from", "probe_source",
           "trainer_data", "validation_data"]


def probe_from(source: Any, size: int, unpack_batch: UnpackBatch | None = None, origin: str = "probe",
               model: torch.nn.Module | None = None) -> Probe:
    """The first ``size`` samples of ``source`` in dataset order, split by ``unpack_batch``; ``origin`` says where
    ``source`` came from in a refusal of an empty one (``"probe"``: the user's ``probe=``; ``"val_dataloaders"``,
    ``"train_dataloader"``: the fit's data the callback reads without one; ``"data"``: ``audit_model``'s); ``model`` the one
    explained, whose own generators (:func:`~lightning_causal.causal.engine.generators.module_generators`) an
    ``unpack_batch`` may draw from.

    ``source`` is a :class:`Probe` (used as it is, its first ``size`` samples), a tensor, a batch
    (tensors in nested tuples, lists or mappings, as the training batches), a ``Dataset``, a ``DataLoader`` (its
    dataset is read directly by index, so neither shuffling nor a distributed sampler's padding changes the
    probe: every rank gets the same samples; a sampler that selects part of the dataset, such as a
    ``SubsetRandomSampler`` or a list of indices, gives the first ``size`` of its indices; a
    ``WeightedRandomSampler`` the first of non-zero weight, without its repeats) or a list
    or dict of dataloaders (the first is used). Reading restores the global random states and every
    generator reachable from the source (:func:`rngs_untouched`), so that a dataset that augments
    its samples at random does not shift training's random streams; it reads from the global
    generators seeded with ``AUDIT_SEED`` (:func:`~lightning_causal.callbacks._no_trace.audit_seed`),
    so that such a dataset gives the same probe whatever the fit's seed, in a resumed fit as in the
    uninterrupted one, and on every rank; so does ``unpack_batch``, which may draw too (a denoiser's
    ``(x_t, t)`` made from a batch of clean samples ``x0``, as its ``training_step`` makes them), also from
    generators ``model`` holds (``self.gen``: seeded with ``AUDIT_SEED`` and restored, as the audits seed them); any
    other generator ``unpack_batch`` reaches (:func:`rngs_untouched` of it: through a closure, a bound method, a global
    name its code or a function it calls reads) is
    restored after it, its draws starting where it stands.
    """
    if isinstance(source, Probe):
        return plain_tensors(source.subset(slice(0, size)))
    # an augmenting dataset's draws, and those of an `unpack_batch` that makes the model's inputs (a denoiser's noisy
    # x_t and timesteps drawn from x0): the same probe in every fit, resumed or not, on every rank, training's draws untouched;
    # the model's own generators (`self.gen`, which its training_step draws from too) seeded alike, and any other generator
    # `unpack_batch` reaches (through a closure, a bound method), restored
    drawn = unpack_batch is not None and model is not None
    with generators_registered(model) if drawn else contextlib.nullcontext(), audit_seed(), \
            rngs_untouched(unpack_batch) if unpack_batch is not None else contextlib.nullcontext():
        try:
            rows_of, whole_of = input_rows(model, unpack_batch)
            batch = read_samples(source, size, rows_of=rows_of, whole_of=whole_of)
        except MisconfigurationException:
            raise
        except Exception as err:  # the dataset's own error (a corrupt file, a sample that fails to decode), as raised
            # said where, since the audits read it before training does
            with_note(err, f"Raised while reading the audits' probe: the first {size} samples of the {type(source).__name__} "
                      "the audits read (`probe=`, audit_model's `data`, or else the validation or training data)")
            raise
        explained = getattr(model, "audited_module", model)  # the network the audits call (`audited`)
        try:  # a mapping without an input key, whose keys name forward's parameters: the fix in forward's order
            # a user's unpack_batch reads a copy of the probe's rows (views of a TensorDataset's own tensors): one
            # writing in place changes no data training reads
            read = batch if unpack_batch is None else copy_of(batch)[0]
            inputs, labels, args = unpack(read, unpack_batch, getattr(explained, "forward", None))
        except ValueError as err:
            raise MisconfigurationException(f"The audits cannot read the probe batch: {err}") from err  # callback and audit_model
    unread = (unread_keys_message(batch, args, "The probe's batches", "the audits", getattr(explained, "forward", None))
              if unpack_batch is None else None)
    _remember_keys_fix(explained, batch if unpack_batch is None else None, args)
    if unread:
        warnings.warn(unread, UserWarning, stacklevel=outside_package())
    first = inputs if isinstance(inputs, Tensor) else inputs[0]
    if first.dim() == 0:
        raise MisconfigurationException("Expected `probe` inputs with a batch dimension [N, ...] but got a 0-d tensor (one "
                                        "number); one sample is x.unsqueeze(0)")
    if first.shape[0] == 0:
        if origin == "data":
            raise MisconfigurationException("Expected argument `data` to hold samples to explain but got 0 samples")
        if origin != "probe":  # the fit's data, read without `probe=`
            raise MisconfigurationException(
                f"Expected the fit's {origin} to hold samples for the audits to explain (no `probe=` given: the callback "
                "reads its probe there) but got 0 samples (an empty dataset); pass `probe=` the samples to explain")
        raise MisconfigurationException("Expected a non-empty `probe` but got 0 samples")
    try:
        probe = Probe(inputs, labels, args)
    except (TypeError, ValueError) as err:
        flat = first.dim() == 1 and not (first.is_floating_point() or first.is_complex() or first.dtype == torch.bool)
        rows = isinstance(labels, Tensor) and labels.dim() > 0 and labels.shape[0] != first.shape[0]
        note = f". {bag_hint()}" if flat and rows else ""  # flat ids of every bag beside one label per sample
        if rows and not note and labels.shape[0] < first.shape[0] and _links_rows(args, first.shape[0]):
            note = f". {POOLED_GRAPH_HINT}"  # the nodes of graphs concatenated beside one label per graph
        raise MisconfigurationException(f"CausalAuditCallback cannot build the probe: {err}{note}") from err
    kept = probe.subset(slice(0, size))
    if read is not batch and len(probe) > size:  # views of a copy of a whole batch (read_samples' uncut read) would hold it
        kept = kept.map(lambda t: t.clone())
    return plain_tensors(kept)


#: the model -> forward's parameters that are keys of its probe's batches, which the default `unpack_batch` did not pass
#: (:func:`~lightning_causal.batches.forward_keys`), and the `unpack_batch=` that passes them, of the probe last read for
#: it: :func:`call_hint` gives that fix where the model rejects the probe, not the advice of a batch it does not know
_KEYS_FIX: WeakKeyDictionary[torch.nn.Module, tuple[list[str], str]] = WeakKeyDictionary()


def _remember_keys_fix(model: Any, batch: Any, args: Any = None) -> None:
    """Keep, for ``model``'s refusal of the probe (:func:`call_hint`), the ``unpack_batch=`` that passes the keys of
    ``batch`` naming forward's parameters (a CLIP-like ``forward(pixels, input_ids)`` beside a batch ``{"pixels",
    "input_ids", "label"}``, whose default input is ``input_ids``; or ``forward(input_ids, pixel_values)``, whose first
    parameter the default reads and whose others it passes to no call, ``args`` being what it passes:
    :func:`_unpassed_keys_fix`); ``batch`` ``None`` (a user's ``unpack_batch``) or without such keys forgets it."""
    if not isinstance(model, torch.nn.Module):
        return
    named = forward_keys(getattr(model, "forward", None), batch) if batch is not None else None
    if not named:
        unpassed = _unpassed_keys_fix(model, batch, args) if batch is not None else None
        if unpassed is None:
            _KEYS_FIX.pop(model, None)
        else:
            _KEYS_FIX[model] = unpassed
        return
    explain = f", with `explain={named[0]!r}` (the input the input-level audits perturb)" if len(named) > 1 else ""
    _KEYS_FIX[model] = (named, f"`{keys_unpack_batch(batch, named)}`{explain}")


def _unpassed_keys_fix(model: torch.nn.Module, batch: Any, args: Any) -> tuple[list[str], str] | None:
    """Forward's parameters and the ``unpack_batch=`` that passes them, where its first parameter is the input the default
    reads from a mapping ``batch`` (:func:`~lightning_causal.batches.default_input_key`) and parameters after it without a
    default are tensors of the batch that the default passes to no call (``args``: the forward arguments it gives):
    ``forward(input_ids, pixel_values)`` beside ``{"input_ids", "pixel_values", "labels"}``, the missing keys passed by name
    as the warning of unread keys says; else ``None``."""
    names = positional_names(model)
    if not isinstance(batch, Mapping) or not names or names[0] != default_input_key(batch):
        return None
    passed = list(args) if isinstance(args, Mapping) else []
    missed = [n for n in names[1:] if not has_default(model, n) and n not in passed]
    if not missed or not all(isinstance(batch.get(n), Tensor) for n in missed):
        return None
    return [names[0], *missed], f"`{keys_unpack_batch(batch, [names[0]], arguments=[*passed, *missed])}`"


def _links_rows(args: Any, n: int) -> bool:
    """Whether a forward argument links the ``n`` input rows (an ``edge_index``): the rows are no samples."""
    try:
        return bool(linked_arguments(ForwardArgs(args, n)))
    except (TypeError, ValueError):  # arguments that ForwardArgs refuses: no hint
        return False


def plain_tensors(probe: Probe) -> Probe:
    """``probe`` with its inference tensors (made under ``torch.inference_mode``: samples prepared by serving code, data
    read inside such a block) copied as plain tensors: the audits' checks run the probe with autograd on, which takes no
    inference tensor ("Inference tensors cannot be saved for backward"), and a copy made outside inference mode is a
    plain tensor of the same values. ``probe`` itself where it holds none.

    Args:
        probe: the probe read.

    Examples:
        >>> with torch.inference_mode():
        ...     x = torch.ones(2, 3)
        >>> plain_tensors(Probe(x)).inputs.is_inference(), x.is_inference()
        (False, True)
    """
    found: list[bool] = []
    probe.map(lambda t: found.append(t.is_inference()) or t)
    if not any(found):
        return probe
    with torch.inference_mode(False):
        return probe.map(lambda t: t.clone() if t.is_inference() else t)


def given_samples(source: Any) -> int | None:
    """The samples of a ``probe=`` the user gave, where they can be counted without reading it: a
    :class:`Probe`, a tensor or a batch of tensors (the first tensor's first dimension), a map-style
    dataset of a length; ``None`` otherwise (a ``DataLoader``, whose sampler may select part of its
    dataset; a stream).

    Args:
        source: the ``probe=`` value.

    Examples:
        >>> given_samples((torch.zeros(1000, 3), torch.zeros(1000))), given_samples(torch.zeros(5, 2))
        (1000, 5)
    """
    if isinstance(source, Probe):
        return len(source)
    if isinstance(source, (Tensor, tuple, list, Mapping)):
        return batch_rows(source) or None  # the first tensor's rows, as the probe reader counts a batch
    if isinstance(source, torch.utils.data.Dataset) and not isinstance(source, IterableDataset) and hasattr(source, "__len__"):
        return len(source)  # type: ignore[arg-type]
    return None


def note_cut_probe(source: Any, probe: Probe, probe_size: int, trainer: Trainer) -> None:
    """Say that a ``probe=`` of more than ``probe_size`` samples is audited on its first ``probe_size``
    (a user who passed 1,000 rows read figures of 256 with no word: the newuser9 trial).

    Args:
        source: the ``probe=`` value.
        probe: the probe read from it.
        probe_size: the callback's ``probe_size``.
        trainer: the fit's trainer: the line goes through its progress bar
            (:func:`~lightning_causal._console.console_line`; at ``on_train_start`` Lightning's tqdm bar
            already shows ``Training: 0/?``, and a logged line began at its right end).
    """
    total = given_samples(source)
    if total is not None and total > len(probe):
        console_line(trainer, f"CausalAuditCallback audits the first {len(probe)} of the {total} samples of `probe` "
                              f"(`probe_size={probe_size}`); pass `probe_size={total}` to audit them all")


def check_finite_probe(probe: Probe, outputs: Tensor, origin: str) -> None:
    """Refuse probe samples whose inputs hold NaN or infinity that reach the model's ``outputs``
    (``[N, ...]``, on the probe): every audit's means, rankings and shares would be NaN at every
    epoch, and audits that read the probe's values (Sobol' marginals, Neural Cleanse's pattern
    range) would fail on arguments the user never passed. A model that reads NaN as a missing
    value (finite outputs) is accepted.

    Raises:
        MisconfigurationException: naming the probe's source and the samples.
    """
    if not isinstance(outputs, Tensor) or outputs.dim() == 0 or outputs.shape[0] != len(probe) or not outputs.is_floating_point():
        return
    rows = outputs.detach().reshape(len(probe), -1)
    worst = rows.masked_fill(torch.isfinite(rows), 0.0).sum(1)  # non-finite where any output of the sample is
    inputs = probe.inputs if isinstance(probe.inputs, tuple) else (probe.inputs,)
    extra = per_sample_tensors(probe.additional_forward_args, len(probe)) if probe.additional_forward_args is not None else []
    names = [f"input {k}" if len(inputs) > 1 else "the inputs" for k in range(len(inputs))] + [name for name, _ in extra]
    try:
        check_finite_samples((*inputs, *(t for _, t in extra)), worst, name="probe", names=names)
    except ValueError as err:
        raise MisconfigurationException(f"The probe ({origin}) cannot be audited: {err}") from err


def warn_overlapping_windows(probe: Probe, origin: str) -> None:
    """Warn where the probe's samples are overlapping windows of one series, in order
    (:func:`~lightning_causal.causal.engine.overlapping_windows.overlapping_windows`): the first ``probe_size`` windows
    of a rolling-window dataset cover a short stretch of the series and are dependent, and the causal graph's tests treat
    them as independent (standard errors too small, p-values too small), silently. The way out: windows spread over the
    series, passed as ``probe=``."""
    inputs = probe.inputs if isinstance(probe.inputs, tuple) else (probe.inputs,)
    for k, x in enumerate(inputs):
        found = overlapping_windows(x)
        if found is None:
            continue
        pairs, of, shift, dim = found
        steps = x.shape[dim]
        which = f"input {k} " if len(inputs) > 1 else ""
        warnings.warn(
            f"The probe's samples ({origin}) are overlapping windows of one series: in {pairs} of {of} consecutive pairs, "
            f"sample i + 1 of {which}{list(x.shape)} is sample i shifted by {shift} step{'s' if shift > 1 else ''} along "
            f"dimension {dim} ({steps} steps), so the {len(probe)} samples cover about {steps + shift * of} steps of the "
            "series and are dependent: the audits' means rest on fewer independent samples, and CausalGraphAudit's tests "
            "take them as independent (standard errors and p-values too small). Pass `probe=` windows spread over the "
            f"series, e.g. `probe=torch.utils.data.Subset(val_dataset, range(0, len(val_dataset), {steps}))` (windows "
            "that share no step; the callback's `unpack_batch=` reads them) or a random subset of the windows "
            "(docs/your_model.md, 'Forecasting models')", stacklevel=outside_package())
        return


@contextlib.contextmanager
def validation_data(trainer: Trainer) -> Iterator[None]:
    """The fit's validation dataloaders loaded for the probe to be read in the block, where Lightning
    has not loaded them yet; unloaded again on exit.

    Lightning loads them before ``on_train_start`` only when the first epoch validates (or in the
    sanity check): with ``check_val_every_n_epoch > 1`` and ``num_sanity_val_steps=0`` the probe was
    the training data, silently. They are requested here as Lightning requests them (the
    ``val_dataloader`` hook, the trainer's own processing), with the global random states and those
    of the datamodule's and the LightningModule's generators (either may define the hook; the module's held at any
    depth of its tree) restored afterwards, and the validation loop is then left as it
    was: Lightning requests them again when the fit first validates, at the same point of the random
    streams as without the callback. A hook that draws at random (a random subset of the validation
    set) would otherwise shift training's streams, and validate on other samples than the same fit
    without the callback. The attributes of the datamodule and the module are put back too, after the
    probe's reading (:func:`attributes_untouched`): a fold index the hook advances per request would otherwise give every
    later validation the next fold, a collate function reading a value the hook sets reads it, and a flag that guards a
    list the hook fills stays with its list."""
    if trainer.val_dataloaders is not None or not trainer.enable_validation:
        yield
        return
    val_loop = trainer.fit_loop.epoch_loop.val_loop
    names = ("_combined_loader", "_max_batches", "_last_val_dl_reload_epoch", "_seen_batches_per_dataloader")
    saved = {name: getattr(val_loop, name) for name in names if hasattr(val_loop, name)}
    try:
        owners = (trainer.datamodule, trainer.lightning_module)  # the hook may be the module's own
        with attributes_untouched(*owners):  # after the reading: the loader's collate_fn may read what the hook set
            with rngs_untouched(*owners):
                trainer.validating = True
                try:
                    val_loop.setup_data()
                finally:
                    trainer.training = True
            yield
    finally:
        for name, value in saved.items():
            setattr(val_loop, name, value)


@contextlib.contextmanager
def attributes_untouched(*owners: Any) -> Iterator[None]:
    """Put back, on exit, ``owners``' attributes as they were on entry: each bound to the object it held (those the block
    added removed), and the items of the lists, deques, dicts and sets held on them (an ``nn.Module``'s registered modules,
    parameters and buffers among them). A ``val_dataloader`` hook called for the probe then leaves the datamodule and the
    module as the fit's own first request finds them without the callback, whatever it set: a fold index rotated per
    request (``self.fold = (self.fold + 1) % k``, ``self.folds.rotate(-1)`` on a deque), a flag with the list it guards (``if not self.loaded:
    self.items.extend(...); self.loaded = True``), a dataset cached on ``None`` (built again at the first validation, as
    without the callback), a module registered over a plain value. What objects further down hold (a dataset's own
    attributes) is left as the block leaves it.

    Args:
        owners: the objects (a datamodule, a LightningModule; ``None`` is skipped) whose attributes are kept.

    Examples:
        >>> class Folds:
        ...     def __init__(self):
        ...         self.fold, self.items = 0, []
        ...     def val_dataloader(self):
        ...         self.fold, self.seen = (self.fold + 1) % 3, True
        ...         self.items.append(self.fold)
        >>> folds = Folds()
        >>> with attributes_untouched(folds, None):
        ...     folds.val_dataloader()
        >>> folds.fold, hasattr(folds, "seen"), folds.items
        (0, False, [])
    """
    kept = [(vars(o), dict(vars(o))) for o in owners if o is not None and hasattr(o, "__dict__")]
    dicts = [(v, dict(v)) for _, before in kept for v in before.values() if isinstance(v, dict)]
    others = [(v, list(v)) for _, before in kept for v in before.values() if isinstance(v, (list, deque, set))]
    try:
        yield
    finally:
        for attributes, before in kept:
            for name in [k for k in attributes if k not in before]:
                del attributes[name]
            attributes.update(before)
        put_back_items(dicts)  # only what the block changed is touched
        for held, items in others:  # a list, a deque or a set: its items back, in place, where they changed
            if isinstance(held, set):
                if held != set(items):
                    held.clear()
                    held.update(items)
            elif len(held) != len(items) or any(a is not b for a, b in zip(held, items)):
                if isinstance(held, deque):  # no slice assignment; its maxlen kept
                    held.clear()
                    held.extend(items)
                else:
                    held[:] = items


def trainer_data(trainer: Trainer) -> tuple[Any, str]:
    """The validation data if any, else the training data, else ``None``; and where the probe is read
    from it: ``"val_dataloaders"``, or the first of several (``"val_dataloaders[0] of 2"``,
    ``"val_dataloaders['ood'] of 2"``), as :func:`~lightning_causal.data_reading.read_samples` reads them.
    Validation dataloaders all of which hold no samples (a split that kept no sample, a sampler that selects none:
    Lightning runs the fit and validates on nothing) are no validation data, as an empty list of them is; of several, the first that holds
    samples is read (``"val_dataloaders[1] of 2"``, that dataloader the source), as Lightning validates on it."""
    source, origin, _ = _trainer_data(trainer)
    return source, origin


def _trainer_data(trainer: Trainer) -> tuple[Any, str, int]:
    """:func:`trainer_data`, and how many validation dataloaders before the one read hold no samples."""
    for name, source in (("val_dataloaders", trainer.val_dataloaders), ("train_dataloader", trainer.train_dataloader)):
        if source is None or isinstance(source, (list, tuple, Mapping)) and not source:
            continue
        empty = [name == "val_dataloaders" and _holds_no_samples(loader) for loader in _loaders(source)]
        if all(empty):
            continue
        first = empty.index(False)  # an empty first validation dataloader beside one with samples: that one
        if isinstance(source, (list, tuple)) and len(source) > 1:
            return (source[first] if first else source), f"{name}[{first}] of {len(source)}", first
        if isinstance(source, Mapping) and len(source) > 1:
            key = list(source)[first]
            return (source[key] if first else source), f"{name}[{key!r}] of {len(source)}", first
        return source, name, 0
    return None, "", 0


def probe_source(given: Any, trainer: Trainer) -> tuple[Any, str]:
    """What the probe is read from: ``given`` (``probe=``, origin ``"probe"``), else :func:`trainer_data`; an
    info says which data the audits explain where that is the first of several dataloaders or, in a fit that
    validates on no data, the training data."""
    if given is not None:
        return given, "probe"
    source, origin, skipped = _trainer_data(trainer)
    _refuse_stream(source, origin)
    if source is not None and " of " in origin:  # several dataloaders: say which one the audits explain
        before = (f" (the first {'one holds' if skipped == 1 else f'{skipped} hold'} no samples)") if skipped else ""
        console_line(trainer, f"CausalAuditCallback explains {origin}{before}; pass `probe=` to explain other data")
    elif source is not None and origin == "train_dataloader":
        console_line(trainer, "CausalAuditCallback explains the first samples of the training data: this fit validates "
                              f"on no data ({_NO_VALIDATION}); pass `probe=` to explain other data")
    return source, origin


#: the fits that validate on no data, whose training data the callback reads (probe_source's line, _refuse_stream's)
_NO_VALIDATION = "no `val_dataloaders`, an empty validation set, `limit_val_batches=0` or no `validation_step`"


def _loaders(source: Any) -> list[Any]:
    """The dataloaders of a trainer's ``source``: one, or those of a list, tuple or mapping of them."""
    return list(source.values()) if isinstance(source, Mapping) else list(source) if isinstance(source, (list, tuple)) else [source]


def _holds_no_samples(loader: Any) -> bool:
    """Whether ``loader`` (a ``DataLoader``, or any iterable Lightning takes) reads a dataset of known length 0, or
    is a ``DataLoader`` of no batch (a sampler that selects no sample, ``drop_last`` of fewer samples than a batch:
    Lightning validates on none of them); a stream, or a dataset or sampler whose length is not known (no `__len__`,
    or one raising NotImplementedError), is not."""
    dataset = getattr(loader, "dataset", loader)
    if isinstance(dataset, IterableDataset):
        return False
    try:
        return len(dataset) == 0 or isinstance(loader, DataLoader) and len(loader) == 0
    except (TypeError, NotImplementedError):  # no length (NotImplementedError: Lightning's has_len takes it so, and fits)
        return False


def _refuse_stream(source: Any, origin: str) -> None:
    """Refuse, naming where the callback looked, the trainer's data when it is a stream (an ``IterableDataset``:
    a replay buffer served to a DQN's ``training_step``, a fit with no validation data), whose samples cannot be
    read by index without drawing from it."""
    loaders = _loaders(source)
    first = loaders[0] if loaders else None
    dataset = getattr(first, "dataset", None)
    if not isinstance(dataset, IterableDataset):
        return
    where = (f"the {origin} (this fit validates on no data: {_NO_VALIDATION})" if origin.startswith("train_dataloader")
             else f"the {origin}")
    raise MisconfigurationException(
        f"CausalAuditCallback reads its probe from {where}, whose dataset {type(dataset).__name__} is an "
        "IterableDataset (a stream), whose samples cannot be read by index without drawing from it; pass the "
        "samples to explain as `probe=`: tensors of inputs (`probe=states`, [N, ...]; for a replay buffer, the states "
        "it holds) or a batch as the stream yields it, with `unpack_batch=` where it is not (inputs, labels) "
        "(`unpack_batch=lambda batch: (batch[0], None, None)` for (states, actions, rewards, dones, next_states))")


def call_hint(model: torch.nn.Module, probe: Probe, err: BaseException | None = None) -> str:
    """How the audits call the model on the probe, and what decides it (``unpack_batch=``; for a LightningModule
    whose ``forward`` is not the network to explain, such as a GAN's generator, an ``audited_module`` property).
    Where ``err``, the model's refusal, says that ``forward`` misses a positional argument (or none is given), the hint
    names the labels read beside the inputs (a denoiser's timesteps ``t`` read as labels; where a later parameter of
    ``forward`` is named as a condition, ``y`` of ``forward(x_t, t, y)``, the labels as that condition) and inputs that
    ``training_step`` makes; not for another error (a classifier's shape mismatch, whose labels are labels). Where the
    probe was read last for ``model`` by the default ``unpack_batch`` from mapping batches whose keys name forward's
    parameters (a CLIP-like ``forward(pixels, input_ids)`` beside ``{"pixels", "input_ids", "label"}``), the
    ``unpack_batch=`` that passes those keys instead."""
    inputs = probe.inputs if isinstance(probe.inputs, tuple) else (probe.inputs,)
    args = probe.additional_forward_args
    call = ", ".join(f"<tensor {list(x.shape)}>" for x in inputs)
    keys = _KEYS_FIX.get(model) if isinstance(model, torch.nn.Module) else None
    if keys is not None:  # forward's parameters are keys of the batch the default read otherwise: the fix that passes them
        return (f"The audits call {model_name(model)}.forward as `model({call}{', ...' if args is not None else ''})`, "
                f"the input the default `unpack_batch` read from the batch, but forward takes ({', '.join(keys[0])}), keys "
                f"of the batch: pass {keys[1]}")
    if isinstance(args, Mapping):
        call += "".join(f", {k}=..." for k in args)
    elif isinstance(args, tuple):
        call += "".join(", ..." for _ in args)
    elif args is not None:
        call += ", ..."
    missing = err is None or isinstance(err, TypeError) and "positional argument" in str(err)
    labels = probe.labels if missing else None
    condition = _condition_parameter(model, len(inputs) + (len(args) if isinstance(args, tuple) else 0))
    read = ("" if labels is None else
            f" (the labels it read, {list(labels.shape)} of {labels.dtype}, reach no model call: where `forward` takes "
            "them as an input, the timesteps t of a denoiser's `forward(x_t, t)`, give the batch (x_t, t) as ((x_t, t),) or "
            "pass `unpack_batch=lambda batch: ((batch[0], batch[1]), None, None)`)" if condition is None else
            f" (the labels it read, {list(labels.shape)} of {labels.dtype}, reach no model call: `forward` takes them as "
            f"its `{condition[1]}`, a condition (a class-conditional denoiser's labels), after `{condition[0]}`, which the "
            f"batch does not hold; make `{condition[0]}` in `unpack_batch=` as `training_step` does and pass the labels "
            f"after it: `unpack_batch=lambda batch: ((*make(batch[0]), batch[1]), None, None)`, `make(x0)` returning "
            f"forward's inputs before `{condition[1]}` ((x_t, t) drawn for x0), with `explain=` the input to explain "
            f"(`explain='{condition[2]}'`); given as ((inputs, labels),) the labels would be read as `{condition[0]}`"
            + ("" if not has_default(model, condition[1]) else
               f", which is right only where they are the timesteps themselves: a batch ({condition[2]}, {condition[0]}) "
               f"of noisy inputs beside a `{condition[1]}` left at its default, given as (({condition[2]}, "
               f"{condition[0]}),)")
            + ")")
    return (f"The audits call {model_name(model)}.forward as `model({call})`, the inputs and forward arguments that "
            f"`unpack_batch` read from the batch{read}: give `forward` these parameters (e.g. `forward(self, input_ids, "
            "attention_mask=None)` for a Hugging Face batch), or pass `unpack_batch=` a callable batch -> (inputs, labels, "
            "additional_forward_args) that matches it"
            + ("; where `training_step` makes forward's inputs from the batch (a denoiser's noisy x_t and timesteps t drawn "
               "for clean samples x0), `unpack_batch=` may make them the same way (its draws start from a fixed seed and "
               "leave training's random streams as they were)" if missing else "")
            + (_audited_module_hint(model) if isinstance(model, LightningModule) else ""))


#: names of forward parameters that take a condition, a class-conditional model's labels (classifier-free guidance)
_CONDITION_NAMES = frozenset({"y", "label", "labels", "class_label", "class_labels", "cond", "condition", "c"})
#: names of a denoiser's noise level, the parameter a conditional denoiser's batches (x0, y) lack before the condition
#: (``tau``: a flow's time; ``noise_cond``, ``c_noise``: a score model's and EDM's preconditioned noise input)
_TIMESTEP_NAMES = frozenset({"t", "ts", "time", "times", "timestep", "timesteps", "time_step", "time_steps", "step",
                             "steps", "tau", "taus", "time_cond", "sigma", "sigmas", "log_sigma", "log_sigmas", "noise_level",
                             "noise_levels", "noise_labels", "noise_cond", "noise_conds", "c_noise", "log_snr", "log_snrs",
                             "logsnr"})


def _condition_parameter(model: torch.nn.Module, given: int) -> tuple[str, str, str] | None:
    """``(missing, condition, first)`` where ``forward``'s parameter after the ``given`` positional values is named as a
    denoiser's noise level and a later one as a condition (``forward(x_t, t, y)`` given ``x0`` alone: the labels are its
    ``y``, not its ``t``); ``first`` is forward's first parameter (the input to explain). ``None`` otherwise (a
    recurrent cell's ``forward(x, h, c)``, whose ``c`` is its cell state; ``forward(x, mask, labels=None)``, labels for
    a loss), also for a ``forward`` whose signature cannot be read."""
    names = positional_names(model)  # a compiled model's (eager_module), not its wrapper's `(*args, **kwargs)`
    if names is None or len(names) <= given or names[given] not in _TIMESTEP_NAMES:
        return None
    condition = next((name for name in names[given + 1:] if name in _CONDITION_NAMES), None)
    return None if condition is None else (names[given], condition, names[0])


def _audited_module_hint(module: LightningModule) -> str:
    """Where ``forward`` of a LightningModule is not the network the probe is for (Lightning's GAN example: ``forward``
    is the generator, the probe holds real samples for the discriminator), the way to choose the network."""
    children = [name for name, child in module.named_children() if any(True for _ in child.parameters())]
    example = next((n for n in children if "disc" in n.lower() or "critic" in n.lower()), children[-1] if children else "net")
    return (f". If `forward` is not the network to explain (a GAN whose `forward` is its generator, a module of several "
            f"networks), give {type(module).__name__} a property `audited_module` returning it (`return self.{example}`): "
            "the audits then call that network, and their layer names are its module names")
