"""The training inputs a :class:`~lightning_causal.repair.module.CausalRepairModule` gives its terms'
``setup``: up to :data:`SETUP_SAMPLES` inputs of the train dataloader's data, read without moving any
random stream, on the module's device and in the dtype of training batches (:func:`train_inputs`)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from lightning.pytorch import Trainer
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import Tensor
from torch.utils.data import DataLoader, IterableDataset

from lightning_causal.batches import num_rows
from lightning_causal.data_reading import read_samples, rngs_untouched
from lightning_causal.repair.base import SEVERAL_INPUTS_FIX, RepairTerm

__all__ = ["SETUP_SAMPLES", "train_inputs"]

#: Inputs gathered from the train dataloader for ``RepairTerm.setup`` (kept small: it is a hint).
SETUP_SAMPLES = 512


def train_inputs(
    trainer: Trainer,
    inputs_of: Callable[[Any], Any],
    device: torch.device,
    terms: Sequence[RepairTerm],
    check_only: bool,
) -> Tensor | None:
    """Up to ``SETUP_SAMPLES`` inputs (``inputs_of(batch)``) of the trainer's train dataloader's data, read
    without moving any random stream (:func:`~lightning_causal.data_reading.read_samples`; an iterable
    dataset: its first batches, with every generator reachable from the loader restored), on ``device``
    and in the dtype Lightning gives training batches (``precision_plugin.convert_input``: float64 under
    ``"64-true"``, bfloat16 under ``"bf16-true"``). With ``check_only`` (no term reads them), one sample
    checks that the ``terms`` can act on the batches (an iterable dataset is not read) and ``None`` is
    returned.

    Raises:
        MisconfigurationException: the batches hold several inputs, which the terms do not support.
    """
    loader = getattr(trainer, "train_dataloader", None)
    if isinstance(loader, (list, tuple, dict)):
        loader = next(iter(loader.values() if isinstance(loader, dict) else loader), None)
    if loader is None:
        return None
    if isinstance(loader, DataLoader) and not isinstance(loader.dataset, IterableDataset):
        batches: Any = [_as_trained(trainer, read_samples(loader, 1 if check_only else SETUP_SAMPLES, loader_order=True),
                                    device)]
    elif check_only:
        return None
    else:
        batches = []
        with rngs_untouched(loader):
            count = 0
            for batch in loader:
                batches.append(_as_trained(trainer, batch, device))
                count += num_rows(inputs_of(batches[-1]))
                if count >= SETUP_SAMPLES:
                    break
    taken = [_setup_input(trainer, device, inputs_of(b), terms) for b in batches]
    return torch.cat(taken)[:SETUP_SAMPLES] if taken and not check_only else None


def _as_trained(trainer: Trainer, batch: Any, device: torch.device) -> Any:
    """``batch`` as the training step receives it: through the batch-transfer hooks Lightning runs on
    training batches (``on_before_batch_transfer``, ``transfer_batch_to_device``, ``on_after_batch_transfer``:
    the module's, a ``wrap()``'s wrapped module's, or a datamodule's), so that ``unpack_batch`` reads
    the batches it reads in training (a hook that turns a mapping into a tuple, say)."""
    module = trainer.lightning_module
    batch = module._on_before_batch_transfer(batch, dataloader_idx=0)
    return module._apply_batch_transfer_handler(batch, device, dataloader_idx=0)


def _setup_input(trainer: Trainer, device: torch.device, x: Any, terms: Sequence[RepairTerm]) -> Tensor:
    if not isinstance(x, Tensor):
        raise MisconfigurationException(
            f"CausalRepairModule's terms ({', '.join(t.name for t in terms)}) act on one input tensor but "
            f"the training batches hold {len(x)} inputs (a model of several inputs), which they do not support; "
            f"{SEVERAL_INPUTS_FIX}")
    # in the dtype training batches reach the model in: float64 under "64-true", bfloat16 under "bf16-true"
    return trainer.precision_plugin.convert_input(x.to(device))
