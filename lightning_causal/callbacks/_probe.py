"""Turn what a user passes as ``probe`` (or the trainer's data) into a fixed :class:`Probe`
(read by :func:`~lightning_causal.data_reading.read_samples`, which moves no random stream)."""

from __future__ import annotations

import warnings
from typing import Any

import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import Tensor

from lightning_causal.audits.base import Probe
from lightning_causal.batches import INPUT_KEYS, LABEL_KEYS, UnpackBatch, unpack, unread_keys
from lightning_causal.causal.engine.finite import check_finite_samples, per_sample_tensors
from lightning_causal.data_reading import read_samples

__all__ = ["check_finite_probe", "probe_from"]


def probe_from(source: Any, size: int, unpack_batch: UnpackBatch | None = None) -> Probe:
    """The first ``size`` samples of ``source`` in dataset order, split by ``unpack_batch``.

    ``source`` is a :class:`Probe` (used as it is, its first ``size`` samples), a tensor, a batch
    (tensors in nested tuples, lists or mappings, as the training batches), a ``Dataset``, a ``DataLoader`` (its
    dataset is read directly by index, so neither shuffling nor a distributed sampler's padding changes the
    probe: every rank gets the same samples; a sampler that selects part of the dataset, such as a
    ``SubsetRandomSampler`` or a list of indices, gives the first ``size`` of its indices) or a list
    or dict of dataloaders (the first is used). Reading restores the global random states and every
    generator reachable from the source (:func:`rngs_untouched`), so that a dataset that augments
    its samples at random does not shift training's random streams.
    """
    if isinstance(source, Probe):
        return source.subset(slice(0, size))
    batch = read_samples(source, size)
    try:
        inputs, labels, args = unpack(batch, unpack_batch)
    except ValueError as err:
        raise MisconfigurationException(f"CausalAuditCallback cannot read the probe batch: {err}") from err
    unread = unread_keys(batch) if unpack_batch is None else []
    if unread:
        key = next(k for k in INPUT_KEYS if k in batch)
        label = next((k for k in LABEL_KEYS if k in batch), None)
        warnings.warn(
            f"The probe's batches hold {unread} besides the inputs {key!r}" + (f" and the labels {label!r}" if label else "")
            + f": the default `unpack_batch` passes them to no model call (the audits call `model(batch[{key!r}])`). If "
            f"forward needs them, pass `unpack_batch=lambda batch: (batch[{key!r}], "
            + (f"batch[{label!r}]" if label else "None") + ", {" + ", ".join(f"{k!r}: batch[{k!r}]" for k in unread) + "})`",
            UserWarning, stacklevel=3)
    first = inputs if isinstance(inputs, Tensor) else inputs[0]
    if first.dim() == 0:
        raise MisconfigurationException("Expected `probe` inputs with a batch dimension [N, ...] but got a 0-d tensor (one "
                                        "number); one sample is x.unsqueeze(0)")
    if first.shape[0] == 0:
        raise MisconfigurationException(f"Expected a non-empty `probe` but got {first.shape[0] if first.dim() else 0} samples")
    try:
        probe = Probe(inputs, labels, args)
    except (TypeError, ValueError) as err:
        raise MisconfigurationException(f"CausalAuditCallback cannot build the probe: {err}") from err
    return probe.subset(slice(0, size))


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
