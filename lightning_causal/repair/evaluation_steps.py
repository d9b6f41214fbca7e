"""The steps of a :class:`~lightning_causal.repair.module.CausalRepairModule` outside training:
``validation_step`` / ``test_step`` log the task loss (and the accuracy of class logits) and ``predict_step``
gives the model's output (:class:`EvaluationSteps`). A mixin: the ``unpack``, ``model_outputs``, ``_call_model``
and ``task_loss`` it reads are the module's."""

from __future__ import annotations

from typing import Any

from lightning.pytorch import LightningModule
from typing_extensions import override

from lightning_causal.batches import num_rows
from lightning_causal.repair.objective import eager_step

__all__ = ["EvaluationSteps"]


class EvaluationSteps(LightningModule):
    """``validation_step``, ``test_step`` and ``predict_step`` of :class:`~lightning_causal.repair.module.CausalRepairModule`."""

    @override
    @eager_step
    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Logs ``val_loss`` and, for class logits ``[N, C]`` (``C >= 2``) with class-index labels ``[N]``,
        ``val_acc`` (Lightning suffixes them with ``/dataloader_idx_<i>`` when there are several validation
        dataloaders). A single output (a binary logit, a probability, a regression) or soft labels ``[N, C]``
        log ``val_loss`` only: an argmax over one column, or against soft labels, is no accuracy.

        Args:
            batch: the batch, read by the module's ``unpack_batch``
                (:meth:`~lightning_causal.repair.module.CausalRepairModule.unpack`).
            batch_idx: the batch's index (unused).
            dataloader_idx: the dataloader's index (Lightning passes it with several dataloaders;
                unused).
        """
        self._evaluation_step(batch, "val")

    @override
    @eager_step
    def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Logs ``test_loss`` and ``test_acc`` (``trainer.test``), as :meth:`validation_step` logs ``val_loss``
        and ``val_acc``.

        Args:
            batch: as in :meth:`validation_step`.
            batch_idx: as in :meth:`validation_step`.
            dataloader_idx: as in :meth:`validation_step`.
        """
        self._evaluation_step(batch, "test")

    def _evaluation_step(self, batch: Any, prefix: str) -> None:
        x, y, args = self.unpack(batch)
        if y is None:
            return
        out = self.model_outputs(x, args)
        logs = {f"{prefix}_loss": self.task_loss(out, y)}
        if out.dim() == 2 and out.shape[1] >= 2 and y.dim() == 1 and not y.is_floating_point():
            logs[f"{prefix}_acc"] = (out.argmax(1) == y).float().mean()
        self.log_dict(logs, batch_size=num_rows(x))

    @override
    @eager_step
    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Any:
        """The model's output on the batch's inputs (``unpack_batch``; labels are ignored).

        Args:
            batch: the batch, read by the module's ``unpack_batch``
                (:meth:`~lightning_causal.repair.module.CausalRepairModule.unpack`).
            batch_idx: the batch's index (unused).
            dataloader_idx: the dataloader's index (Lightning passes it with several dataloaders;
                unused).
        """
        x, _, args = self.unpack(batch)
        return self._call_model(x, args)
