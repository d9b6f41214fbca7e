"""Turn what a user passes as ``probe`` (or the trainer's data) into a fixed :class:`Probe`."""

from __future__ import annotations

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
    if isinstance(source, Tensor):
        return source[:size]
    if isinstance(source, tuple) and source and all(isinstance(t, Tensor) for t in source):
        return tuple(t[:size] for t in source)
    raise MisconfigurationException(
        "Expected argument `probe` to be a Probe, a tensor, a tuple of tensors, a Dataset or a DataLoader "
        f"but got {type(source).__name__}"
    )


def probe_from(source: Any, size: int, unpack_batch: UnpackBatch | None = None) -> Probe:
    """The first ``size`` samples of ``source`` in dataset order, split by ``unpack_batch``.

    ``source`` is a :class:`Probe` (used as it is, its first ``size`` samples), a tensor, a tuple
    of tensors (a batch), a ``Dataset``, a ``DataLoader`` (its
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
