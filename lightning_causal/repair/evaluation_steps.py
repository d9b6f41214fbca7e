"""The steps of a :class:`~lightning_causal.repair.module.CausalRepairModule` outside training:
``validation_step`` / ``test_step`` log the task loss (and the accuracy of class logits) and ``predict_step``
gives the model's output (:class:`EvaluationSteps`). A mixin: the ``unpack``, ``model_outputs``, ``_call_model``
and ``task_loss`` it reads are the module's. ``validation_step`` reads as not defined (``None``, Lightning's
convention for a step a module does not have) while a fit without validation data runs
(:class:`ValidationStepWithData`)."""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import Any

from lightning.pytorch import LightningModule
from lightning.pytorch.trainer.states import TrainerFn, TrainerStatus
from typing_extensions import override

from lightning_causal.batches import num_rows
from lightning_causal.repair.module_arguments import check_task_outputs
from lightning_causal.repair.objective import eager_step
from lightning_causal.step_metrics import step_metrics

__all__ = ["EvaluationSteps", "ValidationStepWithData"]


class ValidationStepWithData:
    """A ``validation_step`` that the module has only where there is something to validate: while a fit
    without validation data runs (no ``val_dataloaders``, no ``val_dataloader()`` of the module or the
    datamodule), reading it on the module gives ``None``, as for a module without one, so that Lightning does
    not warn "You defined a `validation_step` but have no `val_dataloader`" (a ``PossibleUserWarning`` about a
    step the user did not write, an error under ``filterwarnings = error`` or ``python -W error``); Lightning
    skips that fit's validation either way. Elsewhere (a fit with validation data, ``trainer.validate``, after
    the fit, without a trainer) it is the step. A subclass's own ``validation_step`` replaces it (and is the
    user's: Lightning's warning is then theirs).

    Args:
        step: the ``validation_step`` function.
        users_step: ``module -> bool``, whether the step runs one the user wrote (a wrapped module's own
            ``validation_step``): then it stays, and so does Lightning's warning about it. Default: never.
    """

    def __init__(self, step: Callable[..., Any], users_step: Callable[[Any], bool] | None = None) -> None:
        self.step = step
        self.users_step = users_step
        functools.update_wrapper(self, step)

    def __get__(self, module: LightningModule | None, owner: type | None = None) -> Any:
        if module is None:
            return self.step
        if _fitting_without_val_data(module) and not (self.users_step is not None and self.users_step(module)):
            return None
        own = module.__dict__.get(_OWN_STEP, _NONE)
        return self.step.__get__(module, owner) if own is _NONE else own

    def __set__(self, module: LightningModule, value: Any) -> None:
        """A step set on the module itself: Lightning's ``trainer.fit(torch.compile(repair))`` sets the compiled
        wrapper of the step (and ``to_uncompiled`` the module's own bound step again), a user ``validation_step = None``.
        Kept beside, and read as the step where the class's would be (an instance's attribute would hide this
        descriptor, and Lightning's warning came back for a compiled module)."""
        module.__dict__[_OWN_STEP] = value

    def __delete__(self, module: LightningModule) -> None:
        if module.__dict__.pop(_OWN_STEP, _NONE) is _NONE:
            raise AttributeError("validation_step")


_OWN_STEP = "_own_validation_step"  # where ValidationStepWithData keeps a step set on the module itself
_NONE = object()


def _fitting_without_val_data(module: LightningModule) -> bool:
    """Whether ``module``'s trainer runs a fit now that has no validation data (Lightning's own test in its
    check of the fit's configuration: the fit loop's validation data source is not defined). Where those private
    internals are missing or changed, ``False``: the module has its step as usual."""
    # read from the instance's dict: unpickling a module that keeps its own bound step (_OWN_STEP) reads the step
    # before the module's state is set, where `module._trainer` raised AttributeError and the load failed
    trainer = vars(module).get("_trainer")
    if trainer is None:
        return False
    try:  # Lightning's private internals: where they changed, the step as usual (and Lightning's warning), never an error
        if trainer.state.fn != TrainerFn.FITTING or trainer.state.status != TrainerStatus.RUNNING:
            return False
        source = trainer.fit_loop.epoch_loop.val_loop._data_source
        return source is not None and source.is_defined() is False
    except Exception:  # noqa: BLE001 - an error here read as a missing validation_step and stopped the fit
        return False


class EvaluationSteps(LightningModule):
    """``validation_step``, ``test_step`` and ``predict_step`` of :class:`~lightning_causal.repair.module.CausalRepairModule`."""

    @ValidationStepWithData
    @override
    @eager_step
    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Logs ``val_loss`` and, for class logits ``[N, C]`` (``C >= 2``) with class-index labels ``[N]``,
        ``val_acc`` (Lightning suffixes them with ``/dataloader_idx_<i>`` when there are several validation
        dataloaders). A single output (a binary logit, a probability, a regression) or soft labels ``[N, C]``
        log ``val_loss`` only: an argmax over one column, or against soft labels, is no accuracy. The module has
        no ``validation_step`` (``None``) while a fit without validation data runs (:class:`ValidationStepWithData`).

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
        self.log_dict(step_metrics(prefix, self._task_loss_of(out, y), out, y), batch_size=num_rows(x))

    def _task_loss_of(self, out: Any, y: Any) -> Any:
        """``task_loss(out, y)``, its outputs checked on the first call (:func:`check_task_outputs`: per-position
        logits ``[N, T, C]`` beside class indices ``[N, T]``, which cross-entropy reads with the positions as classes)."""
        if not self.__dict__.get("_outputs_checked", False):
            self.__dict__["_outputs_checked"] = True
            check_task_outputs(self.task_loss, out, y)
        return self.task_loss(out, y)

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
