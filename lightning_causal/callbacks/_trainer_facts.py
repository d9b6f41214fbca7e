"""What :class:`~lightning_causal.callbacks.audit.CausalAuditCallback` reads from the trainer and the
LightningModule: the module the audits explain, the step at which an epoch's epoch-end values are
logged, and the split of every audit's rows across processes under a distributed strategy."""

from __future__ import annotations

import torch
from lightning.pytorch import LightningModule, Trainer

from lightning_causal.causal.engine.batching import RowShard

__all__ = ["audited", "epoch_end_step", "row_shard"]


def audited(pl_module: LightningModule) -> torch.nn.Module:
    """The module audits explain: ``pl_module.audited_module`` where it names one (a
    ``CausalRepairModule.wrap`` explains the wrapped module, so layer names and tags do not change
    with wrapping), else ``pl_module`` itself."""
    return getattr(pl_module, "audited_module", pl_module)


def epoch_end_step(trainer: Trainer) -> int:
    """The step at which Lightning logs an epoch's epoch-end metrics (``val_loss``, ``on_epoch``
    scalars): its count of batches that stepped the optimizers, less one. This is not
    ``global_step - 1``: ``global_step`` counts optimizer steps (two per batch with two optimizers
    stepped by hand), Lightning's logging step counts batches (as ``LearningRateMonitor`` does)."""
    return max(trainer.fit_loop.epoch_loop._batches_that_stepped - 1, 0)


def row_shard(trainer: Trainer) -> RowShard | None:
    """Under a distributed strategy, every audit's rows are split across the processes and
    gathered through the strategy (see :func:`~lightning_causal.causal.engine.batching.sharded_rows`)."""
    if trainer.world_size < 2:
        return None
    strategy = trainer.strategy
    return RowShard(trainer.global_rank, trainer.world_size, lambda t: strategy.all_gather(t), device=strategy.root_device)
