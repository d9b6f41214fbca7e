"""Turn what a user passes as ``probe`` (or the trainer's data) into a fixed :class:`Probe`."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, TensorDataset

from lightning_causal.audits.base import Probe
from lightning_causal.batches import UnpackBatch, unpack
from lightning_causal.causal.engine.state import rng_preserved

__all__ = ["probe_from"]


def _from_dataset(dataset: Dataset, size: int, collate: Any) -> Any:
    if isinstance(dataset, TensorDataset):  # slice without a Python loop over samples
        return tuple(t[:size] for t in dataset.tensors)
    try:
        n = min(size, len(dataset))  # type: ignore[arg-type]
    except TypeError as err:
        raise MisconfigurationException(
            "Expected `probe` data with a length (a map-style Dataset); pass tensors for iterable datasets"
        ) from err
    items = [dataset[i] for i in range(n)]
    return (collate or torch.utils.data.default_collate)(items)


def _read(source: Any, size: int) -> Any:
    if isinstance(source, (list, tuple)) and source and all(isinstance(s, DataLoader) for s in source):
        source = source[0]
    if isinstance(source, DataLoader):
        return _from_dataset(source.dataset, size, source.collate_fn)
    if isinstance(source, Dataset):
        return _from_dataset(source, size, None)
    head = _batch_head(source, size)
    if head is None:
        raise MisconfigurationException(
            "Expected argument `probe` to be a Probe, a tensor, a batch (a tuple, list or mapping of tensors, nested "
            f"like the training batches, e.g. ((x1, x2), y)), a Dataset or a DataLoader but got {_describe(source)}"
        )
    return head


def _batch_head(batch: Any, size: int) -> Any:
    """The first ``size`` samples of a batch: every tensor of a nested tuple, list or mapping
    sliced (``None`` if anything else is in it, or no tensor is)."""
    if isinstance(batch, Tensor):
        return batch[:size]
    if isinstance(batch, Mapping):
        items = {k: _batch_head(v, size) for k, v in batch.items()}
        return items if items and all(v is not None for v in items.values()) else None
    if isinstance(batch, (tuple, list)) and batch:
        items = [_batch_head(v, size) for v in batch]
        return type(batch)(items) if all(v is not None for v in items) else None
    return None


def _describe(value: Any) -> str:
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of [{', '.join(_describe(v) for v in value[:4])}{', ...' if len(value) > 4 else ''}]"
    if isinstance(value, Mapping):
        return f"a mapping with keys {list(value)[:6]}"
    return type(value).__name__


def probe_from(source: Any, size: int, unpack_batch: UnpackBatch | None = None) -> Probe:
    """The first ``size`` samples of ``source`` in dataset order, split by ``unpack_batch``.

    ``source`` is a :class:`Probe` (used as it is, its first ``size`` samples), a tensor, a batch
    (tensors in nested tuples, lists or mappings, as the training batches), a ``Dataset``, a ``DataLoader`` (its
    dataset is read directly, so neither shuffling nor a distributed sampler's padding changes the
    probe: every rank gets the same samples) or a list of dataloaders (the first is used). Reading
    happens with the global random states saved and restored, so that a dataset that augments
    its samples at random does not shift training's random streams.
    """
    if isinstance(source, Probe):
        return source.subset(slice(0, size))
    with rng_preserved():
        batch = _read(source, size)
    try:
        inputs, labels, args = unpack(batch, unpack_batch)
    except ValueError as err:
        raise MisconfigurationException(f"CausalAuditCallback cannot read the probe batch: {err}") from err
    first = inputs if isinstance(inputs, Tensor) else inputs[0]
    if first.dim() == 0 or first.shape[0] == 0:
        raise MisconfigurationException(f"Expected a non-empty `probe` but got {first.shape[0] if first.dim() else 0} samples")
    try:
        probe = Probe(inputs, labels, args)
    except (TypeError, ValueError) as err:
        raise MisconfigurationException(f"CausalAuditCallback cannot build the probe: {err}") from err
    return probe.subset(slice(0, size))
