"""What :class:`~lightning_causal.callbacks.audit.CausalAuditCallback` reads from the trainer and the
LightningModule: the module the audits explain, the step at which an epoch's epoch-end values are
logged, whether a resumed fit skipped an epoch's end, and the split of every audit's rows across
processes under a distributed strategy."""

from __future__ import annotations

from typing import Any

import torch
from lightning.pytorch import LightningModule, Trainer

from lightning_causal._compat import autocast_dtype, is_autocast_enabled
from lightning_causal.causal.engine.batching import RowShard
from lightning_causal.causal.engine.chosen_input import model_name
from lightning_causal.causal.engine.rounding import weights_dtype, weights_dtypes

__all__ = ["audit_precision", "audited", "ended_at_last_batch", "epoch_end_step", "explained_name", "row_shard",
           "saved_in_epoch_end", "tag_prefix"]


def audit_precision(model: torch.nn.Module, trainer: Trainer | None = None) -> dict[str, Any]:
    """The precision the audits of ``model`` compute in, as a report's ``"precision"`` entry says it: ``"weights"``, the
    dtype of most of its weights (:func:`~lightning_causal.causal.engine.rounding.weights_dtype`; ``None``: no floating
    weight); ``"other_weights"``, the other floating dtypes some of its weights hold, the coarsest first (``[]`` for
    none: a float32 model with a bfloat16 layer, ``["bfloat16"]``, whose outputs carry bfloat16's rounding);
    ``"autocast"``, the dtype autocast computes in where it is on for the weights' device as the audits run
    (``audit_model`` called inside ``torch.autocast``; not over float64 weights alone, which autocast leaves in
    float64), else ``None``: a ``"bf16-mixed"`` fit's callback audits
    outside it, on the float32 weights; ``"trainer"``, the fit's ``Trainer(precision=)`` (``None`` without a trainer).

    Examples:
        >>> audit_precision(torch.nn.Linear(2, 1).bfloat16())
        {'weights': 'bfloat16', 'other_weights': [], 'autocast': None, 'trainer': None}
        >>> with torch.autocast("cpu", dtype=torch.bfloat16):
        ...     audit_precision(torch.nn.Linear(2, 1))
        {'weights': 'float32', 'other_weights': [], 'autocast': 'bfloat16', 'trainer': None}
    """
    dtype, others = weights_dtype(model), weights_dtypes(model)
    others = sorted((d for d in others if d != dtype), key=lambda d: -torch.finfo(d).eps)  # the coarsest first
    device = next((t.device.type for t in model.parameters()), "cpu")
    try:
        auto = str(autocast_dtype(device)).removeprefix("torch.") if is_autocast_enabled(device) else None
    except (RuntimeError, TypeError, AttributeError):  # a device type autocast does not know
        auto = None
    if dtype == torch.float64 and not others:  # autocast casts no float64 tensor: a float64 model computes in float64
        auto = None
    return {"weights": str(dtype).removeprefix("torch.") if dtype is not None else None,
            "other_weights": [str(d).removeprefix("torch.") for d in others], "autocast": auto,
            "trainer": str(trainer.precision) if getattr(trainer, "precision", None) is not None else None}


def audited(pl_module: LightningModule) -> torch.nn.Module:
    """The module audits explain: ``pl_module.audited_module`` where it names one (a
    ``CausalRepairModule.wrap`` explains the wrapped module, so layer names and tags do not change
    with wrapping), else ``pl_module`` itself."""
    return getattr(pl_module, "audited_module", pl_module)


def explained_name(module: torch.nn.Module) -> str:
    """The network the audits explain, as a report names it (its ``"model"`` entry): the class of ``module``, or, where
    ``module`` names another network through ``audited_module`` (an EMA copy of its network, a GAN's discriminator, the
    module a ``CausalRepairModule.wrap`` wraps), ``"<its class>.audited_module (<that network's class>)"``, so that a
    report says whose weights it explains.

    Args:
        module: the LightningModule of the fit, or the model given to ``audit_model``.

    Examples:
        >>> explained_name(torch.nn.Linear(2, 1))
        'Linear'
    """
    target = audited(module)  # type: ignore[arg-type]
    if target is module:
        return model_name(module)
    return f"{model_name(module)}.audited_module ({model_name(target)})"


def ended_at_last_batch(trainer: Trainer) -> bool:
    """Whether the fit resumed from a checkpoint written at the end of its epoch's last training batch
    (``on_train_batch_end``: ``ModelCheckpoint(every_n_train_steps=N)`` or ``train_time_interval`` there),
    before that epoch's validation and ``on_train_epoch_end``: Lightning then starts the next epoch, and
    calls no epoch-end hook of that one. Read at ``on_train_start``, from Lightning's restart stage."""
    loop = trainer.fit_loop.epoch_loop
    return trainer.ckpt_path is not None and loop.restarted_on_train_batch_end and loop.batch_progress.is_last_batch


def saved_in_epoch_end(trainer: Trainer) -> bool:
    """Whether the fit resumed from a checkpoint written inside an epoch's ``on_train_epoch_end`` (Lightning's restart
    stage ``resumed_on_epoch_end``): ``OnExceptionCheckpoint`` when an audit raised there, before the epoch was
    recorded as audited, or a callback listed before the audit callback saving there. Lightning then starts the
    next epoch and calls no epoch-end hook of that one. Read at ``on_train_start``."""
    return trainer.ckpt_path is not None and trainer.fit_loop.resumed_on_epoch_end


def epoch_end_step(trainer: Trainer) -> int:
    """The step at which Lightning logs an epoch's epoch-end metrics (``val_loss``, ``on_epoch``
    scalars): its count of batches that stepped the optimizers, less one. This is not
    ``global_step - 1``: ``global_step`` counts optimizer steps (two per batch with two optimizers
    stepped by hand), Lightning's logging step counts batches (as ``LearningRateMonitor`` does)."""
    return max(trainer.fit_loop.epoch_loop._batches_that_stepped - 1, 0)


def tag_prefix(logger: Any) -> str:
    """What ``logger`` puts before every metric name it logs: ``"p-"`` for ``TensorBoardLogger(prefix="p")`` (Lightning's
    ``_add_prefix``, with the logger's ``LOGGER_JOIN_CHAR``), ``""`` without a prefix. The audits' scalars carry it as the
    fit's own (``p-val_loss``); what the renderer writes to the logger's ``SummaryWriter`` directly (histograms, figures,
    the text card) is put under it too, and the custom-scalars layout needs it to find the scalars."""
    prefix = getattr(logger, "_prefix", "")
    return f"{prefix}{getattr(logger, 'LOGGER_JOIN_CHAR', '-')}" if isinstance(prefix, str) and prefix else ""


def row_shard(trainer: Trainer) -> RowShard | None:
    """Under a distributed strategy, every audit's rows are split across the processes and
    gathered through the strategy (see :func:`~lightning_causal.causal.engine.batching.sharded_rows`)."""
    if trainer.world_size < 2:
        return None
    strategy = trainer.strategy
    return RowShard(trainer.global_rank, trainer.world_size, lambda t: strategy.all_gather(t), device=strategy.root_device)
