"""Turn what a user passes as ``probe`` (or the trainer's data) into a fixed :class:`Probe`."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, TensorDataset

from lightning_causal.audits.base import Probe

__all__ = ["split_batch", "probe_from"]

_INPUT_KEYS = ("x", "input", "inputs", "image", "images", "features")
_LABEL_KEYS = ("y", "label", "labels", "target", "targets")


def split_batch(batch: Any) -> tuple[Tensor | tuple[Tensor, ...], Tensor | None]:
    """``(inputs, labels)`` of a batch: a tensor, ``(x, y)``, ``(x,)`` or a dict with ``x``/``y``-like keys."""
    if isinstance(batch, Tensor):
        return batch, None
    if isinstance(batch, Mapping):
        x = next((batch[k] for k in _INPUT_KEYS if k in batch), None)
        y = next((batch[k] for k in _LABEL_KEYS if k in batch), None)
        if x is None:
            raise MisconfigurationException(
                f"Expected a probe batch dict with one of the keys {_INPUT_KEYS} but got keys {list(batch)}"
            )
        return x, y
    if isinstance(batch, Sequence) and batch and all(isinstance(t, Tensor) for t in batch):
        if len(batch) == 1:
            return batch[0], None
        if len(batch) == 2:
            return batch[0], batch[1]
        return tuple(batch[:-1]), batch[-1]
    raise MisconfigurationException(
        f"Expected a probe batch to be a tensor, (inputs, labels) or a dict but got {type(batch).__name__}"
    )


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


def probe_from(source: Any, size: int) -> Probe:
    """The first ``size`` samples of ``source`` in dataset order.

    ``source`` is a tensor, a tuple ``(inputs, labels)``, a ``Dataset``, a ``DataLoader`` (its
    dataset is read directly, so neither shuffling nor a distributed sampler's padding changes the
    probe: every rank gets the same samples) or a list of dataloaders (the first is used).
    """
    if isinstance(source, (list, tuple)) and source and all(isinstance(s, DataLoader) for s in source):
        source = source[0]
    if isinstance(source, DataLoader):
        batch = _from_dataset(source.dataset, size, source.collate_fn)
    elif isinstance(source, Dataset):
        batch = _from_dataset(source, size, None)
    elif isinstance(source, Tensor):
        batch = source[:size]
    elif isinstance(source, tuple) and source and all(isinstance(t, Tensor) for t in source):
        batch = tuple(t[:size] for t in source)
    else:
        raise MisconfigurationException(
            "Expected argument `probe` to be a tensor, a tuple of tensors, a Dataset or a DataLoader "
            f"but got {type(source).__name__}"
        )
    inputs, labels = split_batch(batch)
    if isinstance(inputs, Tensor):
        inputs = inputs[:size]
    else:
        inputs = tuple(t[:size] for t in inputs)
    first = inputs if isinstance(inputs, Tensor) else inputs[0]
    if first.dim() == 0 or first.shape[0] == 0:
        raise MisconfigurationException(f"Expected a non-empty `probe` but got {first.shape[0] if first.dim() else 0} samples")
    return Probe(inputs, labels[:size] if labels is not None else None)
