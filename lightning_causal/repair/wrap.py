"""``CausalRepairModule.wrap``: a repair fit of an existing ``LightningModule``, whose task loss
(its ``training_step``), forward, evaluation and predict steps, optimizers and training-loop hooks
(:data:`DELEGATED_HOOKS`) are the wrapped module's; so are its dataloader, batch-transfer, ``backward``
and evaluation-mode hooks where it defines them (:data:`DATA_HOOKS`), and its ``log`` calls reach the
trainer through the wrap's."""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

from lightning.pytorch import LightningModule
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from lightning.pytorch.utilities.model_helpers import is_overridden
from lightning.pytorch.utilities.parsing import lightning_getattr, lightning_setattr
from lightning.pytorch.utilities.signature_utils import is_param_in_hook_signature
from torch import Tensor, nn
from typing_extensions import override

from lightning_causal.repair.base import RepairTerm
from lightning_causal.repair.evaluation_steps import ValidationStepWithData
from lightning_causal.repair.module import CausalRepairModule
from lightning_causal.repair.objective import eager_step

__all__ = ["DATA_HOOKS", "DELEGATED_HOOKS", "UNDELEGATED_HOOKS", "WRAP_OPTIONS"]


@contextlib.contextmanager
def _logs_through(inner: LightningModule, outer: LightningModule) -> Iterator[None]:
    """While the outer module runs a hook, ``inner.log`` / ``inner.log_dict`` are the outer
    module's: the wrapped module's logging reaches the trainer through the public ``log`` API.
    Reentrant: a delegated ``optimizer_step`` runs the training step (its closure) inside it."""
    if "log" in vars(inner):  # already routed by an enclosing hook
        yield
        return
    inner.log, inner.log_dict = outer.log, outer.log_dict  # instance attributes shadow the methods
    try:
        yield
    finally:
        del inner.log, inner.log_dict


def _with_batch_idx(step: Callable[..., Any], batch: Any, batch_idx: Any) -> tuple[Any, ...]:
    """The leading arguments Lightning gives the step ``step`` of a module: ``(batch, batch_idx)``, or
    ``(batch,)`` where its signature takes one argument (``def training_step(self, batch)``: Lightning
    passes ``batch_idx`` only to steps that take two arguments or name it)."""
    return (batch, batch_idx) if is_param_in_hook_signature(step, "batch_idx", min_args=2) else (batch,)


class _WrappedRepairModule(CausalRepairModule):
    """:meth:`CausalRepairModule.wrap`: delegates the task loss, forward, evaluation steps and optimizers."""

    _saves_hyperparameters = False  # the wrapped module's are checkpointed (``on_save_checkpoint``)
    _wraps = True
    model: LightningModule  # the wrapped module (checked in __init__): its hooks, log and steps are delegated to

    def __init__(self, lightning_module: LightningModule, terms: Sequence[RepairTerm], **options: Any) -> None:
        if not isinstance(lightning_module, LightningModule):
            hint = ""
            if isinstance(getattr(lightning_module, "_orig_mod", None), LightningModule):  # torch.compile(module)
                hint = ("; it is a torch.compile'd LightningModule: wrap the module itself, "
                        "`torch.compile(CausalRepairModule.wrap(module, terms))` (the repair's steps run eagerly; a "
                        "network compiled inside the module, `self.net = torch.compile(net)`, runs compiled)")
            raise MisconfigurationException(
                f"Expected argument `lightning_module` to be a LightningModule but got {type(lightning_module)}{hint}")
        if not lightning_module.automatic_optimization:
            raise MisconfigurationException(
                f"Expected argument `lightning_module` to use automatic optimization but {type(lightning_module).__name__} has "
                "`automatic_optimization=False`: manual optimization cannot be wrapped (the repair adds its terms to the loss "
                "that Lightning optimises). Subclass CausalRepairModule instead and step the optimizers in its "
                "`training_step` with `total, logs = self.objective(batch, batch_idx)` and `self.manual_backward(total)`")
        unused = {k: v for k, v in options.items() if k not in WRAP_OPTIONS}
        if unused:  # lr, task_loss, fuse_forward: the wrapped module's optimizers and training_step are used instead
            raise MisconfigurationException(
                f"Expected the options of CausalRepairModule.wrap to be among {list(WRAP_OPTIONS)} but got "
                f"{', '.join(f'{k}={v!r}' for k, v in unused.items())}: a wrap() fit uses the wrapped module's "
                "`configure_optimizers` (its learning rate) and its `training_step` (its task loss); set them there")
        super().__init__(lightning_module, terms, **options)
        for hook in DATA_HOOKS:  # only those it defines: Lightning's choice between the module's and a datamodule's
            if is_overridden(hook, lightning_module):  # hooks (and whether it has loaders) is then the unwrapped one
                self.__dict__[hook] = functools.partial(_wrapped_hook, self, hook)
        self._step_extras: dict[str, Any] | None = None  # the other keys of the wrapped training_step's dict
        self._log_hyperparams = lightning_module._log_hyperparams  # the loggers get its hyper-parameters, as unwrapped

    def __getattr__(self, name: str) -> Any:
        """The wrapped module's own submodules (``pl_module.backbone``) and the methods and properties its
        class adds to ``LightningModule`` (``pl_module.sample(...)``) as attributes of the wrap: callbacks that
        reach into the LightningModule, e.g. Lightning's ``BackboneFinetuning`` (freezes and unfreezes
        ``pl_module.backbone``), act on the wrapped module as unwrapped. Its plain instance attributes
        (tensors, numbers, ``hparams``) are not forwarded (tensors would be counted twice by code that walks
        the modules), nor private names."""
        try:
            return super().__getattr__(name)  # CausalRepairModule's: the wrapped module's submodules among them
        except AttributeError:
            inner = self.__dict__.get("_modules", {}).get("model")
            if (isinstance(inner, nn.Module) and not name.startswith(("_", "lc_"))  # lc_: the engine's site modules
                    and hasattr(type(inner), name) and not hasattr(LightningModule, name)):  # its class's methods, properties
                return getattr(inner, name)
            raise

    @property
    def example_input_array(self) -> Any:
        """The wrapped module's ``example_input_array`` (the wrap's ``forward`` is its): the model summary's
        sizes and TensorBoard's ``log_graph=True`` work as unwrapped."""
        return self.model.example_input_array

    @example_input_array.setter
    def example_input_array(self, example: Any) -> None:
        self.model.example_input_array = example

    @property
    def lr(self) -> Any:
        """The wrapped module's learning rate: its ``lr`` attribute or ``hparams.lr`` (Lightning's
        ``lightning_getattr``), so that ``Tuner(trainer).lr_find(wrapped)`` reads and sets the rate its
        ``configure_optimizers`` uses, as unwrapped. ``AttributeError`` where it has none."""
        return lightning_getattr(self.model, "lr")

    @lr.setter
    def lr(self, value: Any) -> None:
        lightning_setattr(self.model, "lr", value)

    @property
    def learning_rate(self) -> Any:
        """The wrapped module's ``learning_rate`` (attribute or hyper-parameter), as :attr:`lr`."""
        return lightning_getattr(self.model, "learning_rate")

    @learning_rate.setter
    def learning_rate(self, value: Any) -> None:
        lightning_setattr(self.model, "learning_rate", value)

    @property
    def hparams(self) -> Any:  # type: ignore[override]
        """The wrapped module's hyper-parameters (``self.save_hyperparameters()`` in its ``__init__``), the
        very mapping: ``wrapped.hparams.lr`` reads (and sets) what its ``configure_optimizers`` reads, as
        unwrapped. A checkpoint holds them under ``checkpoint["causal_repair"]["wrapped"]`` (what
        ``load_from_checkpoint(path, model=MyModule)`` builds it from), not as the wrap's own
        ``hyper_parameters``, which would be given to the wrap's constructor on loading."""
        return self.model.hparams

    @property
    def hparams_initial(self) -> Any:  # type: ignore[override]
        """The wrapped module's initial hyper-parameters: what the loggers record, as before wrapping
        (its current ones are checkpointed under ``checkpoint["causal_repair"]["wrapped"]``)."""
        return self.model.hparams_initial

    @property
    def audited_module(self) -> nn.Module:
        """What the audits explained before wrapping: the wrapped module's own ``audited_module`` where it has one
        (an EMA copy of its network, a GAN's discriminator), else the wrapped module; audits see the same layer
        names and log the same tags as before wrapping."""
        return getattr(self.model, "audited_module", self.model)

    @override
    @eager_step
    def training_step(self, batch: Any, batch_idx: int) -> Tensor | dict[str, Any] | None:
        """The repair's training step; where the wrapped module's ``training_step`` returns a dict,
        its other keys are returned with the total loss as ``"loss"``, so that they reach its
        ``on_train_batch_end(outputs, ...)`` (and the callbacks') as unwrapped."""
        if not self.model.automatic_optimization:  # set after `wrap()`: its steps would step the optimizers too
            raise MisconfigurationException(
                f"The wrapped module {type(self.model).__name__} has `automatic_optimization=False`, which "
                "CausalRepairModule.wrap does not support (the repair adds its terms to the loss that Lightning "
                "optimises); keep automatic optimization, or subclass CausalRepairModule and step the optimizers "
                "in its `training_step` with `total, logs = self.objective(batch, batch_idx)`")
        self._step_extras = None
        total = super().training_step(batch, batch_idx)
        extras, self._step_extras = self._step_extras, None
        return total if total is None or not extras else {**extras, "loss": total}

    def task_step(self, batch: Any, batch_idx: int) -> Tensor | None:
        with _logs_through(self.model, self):
            out = self.model.training_step(*_with_batch_idx(self.model.training_step, batch, batch_idx))
        if out is None:
            return None  # Lightning's "skip this batch"
        loss = out.get("loss") if isinstance(out, Mapping) else out
        if not isinstance(loss, Tensor):
            raise MisconfigurationException(
                f"Expected the wrapped module's `training_step` to return a loss tensor, a dict with 'loss' or None but got {type(out)}"
            )
        # its dict's other keys (e.g. predictions): returned by `training_step` for its `on_train_batch_end`
        self._step_extras = {k: v for k, v in out.items() if k != "loss"} if isinstance(out, Mapping) else None
        return loss

    # `None` in a fit without validation data where the wrapped module has none, which would not warn unwrapped
    @functools.partial(ValidationStepWithData, users_step=lambda wrap: is_overridden("validation_step", wrap.model))
    @override
    @eager_step
    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Any:
        return self._delegated_step("validation_step", batch, batch_idx, dataloader_idx)

    @override
    @eager_step
    def test_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Any:
        return self._delegated_step("test_step", batch, batch_idx, dataloader_idx)

    def _delegated_step(self, hook: str, batch: Any, batch_idx: int, dataloader_idx: int) -> Any:
        """The wrapped module's evaluation step, given ``dataloader_idx`` where its signature takes it
        (several dataloaders), so that wrapping does not change which data loaders a module accepts.
        A step the wrapped module does not define: nothing during ``fit`` (Lightning skips such a
        validation), an error for ``trainer.validate``/``test`` (Lightning's, instead of empty metrics)."""
        if not is_overridden(hook, self.model):
            fn = getattr(getattr(self._trainer, "state", None), "fn", None)
            if fn is not None and getattr(fn, "value", fn) != "fit":
                raise MisconfigurationException(
                    f"No `{hook}()` method defined on the wrapped module {type(self.model).__name__} to run "
                    f"`Trainer.{getattr(fn, 'value', fn)}`")
            return None
        step = getattr(self.model, hook)
        extra = (dataloader_idx,) if is_param_in_hook_signature(step, "dataloader_idx") else ()
        with _logs_through(self.model, self):
            return step(*_with_batch_idx(step, batch, batch_idx), *extra)

    @override
    @eager_step
    def predict_step(self, *args: Any, **kwargs: Any) -> Any:
        if len(args) >= 2:  # (batch, batch_idx[, dataloader_idx]), as Lightning gives them: batch_idx where it takes one
            args = (*_with_batch_idx(self.model.predict_step, args[0], args[1]), *args[2:])
        return self.model.predict_step(*args, **kwargs)

    @override
    def configure_optimizers(self) -> Any:
        return self.model.configure_optimizers()


#: The options :meth:`CausalRepairModule.wrap` takes (the others, ``lr``, ``task_loss`` and ``fuse_forward``,
#: are the wrapped module's business: its ``configure_optimizers`` and ``training_step``).
WRAP_OPTIONS = ("unpack_batch", "output", "explain", "setup_inputs")
#: The wrapped module's hooks that a ``wrap()`` fit calls (its training loop's behaviour: epoch and batch
#: hooks, gradient clipping, scheduler steps, the gradients' release before a validation, checkpoint hooks,
#: ``setup``/``teardown``, the layers it builds in ``configure_model`` and the callbacks it returns from
#: ``configure_callbacks``).
DELEGATED_HOOKS = (
    "setup", "teardown", "on_fit_start", "on_fit_end", "on_train_start", "on_train_end",
    "on_train_epoch_start", "on_train_epoch_end", "on_train_batch_start", "on_train_batch_end",
    "on_validation_start", "on_validation_end", "on_validation_epoch_start", "on_validation_epoch_end",
    "on_validation_batch_start", "on_validation_batch_end", "on_test_start", "on_test_end",
    "on_test_epoch_start", "on_test_epoch_end", "on_test_batch_start", "on_test_batch_end",
    "on_predict_start", "on_predict_end", "on_predict_epoch_start", "on_predict_epoch_end",
    "on_predict_batch_start", "on_predict_batch_end", "on_before_zero_grad", "on_before_backward",
    "on_after_backward", "on_before_optimizer_step", "configure_gradient_clipping", "lr_scheduler_step",
    "optimizer_step", "optimizer_zero_grad", "on_validation_model_zero_grad", "on_save_checkpoint",
    "on_load_checkpoint", "configure_model", "configure_callbacks",
)
#: The wrapped module's hooks a ``wrap()`` fit calls where the module defines them, and only there: each
#: is then an attribute of the wrap instance, so that Lightning sees the wrap define exactly the hooks the
#: module defines (whether the module brings its own dataloaders; which of a module's and a datamodule's
#: batch-transfer hooks run).
DATA_HOOKS = (
    "on_before_batch_transfer", "transfer_batch_to_device", "on_after_batch_transfer", "train_dataloader",
    "val_dataloader", "test_dataloader", "predict_dataloader", "prepare_data", "backward",
    "on_validation_model_eval", "on_validation_model_train", "on_test_model_eval", "on_test_model_train",
    "on_predict_model_eval",
)
#: Hooks of the wrapped module a ``wrap()`` fit does not call: none since :data:`DATA_HOOKS` are delegated
#: (kept for code that imported it).
UNDELEGATED_HOOKS: tuple[str, ...] = ()
#: Hooks where the repair module does its own work (set up the terms, checkpoint their state, drop the records of
#: their set-up at the fit's end) before the wrapped module's. The model's carried state is read again after a
#: validation by the module's ``train(False)`` (:meth:`CausalRepairModule.train`), whatever hooks the wrapped module has.
_OWN_FIRST = ("on_train_start", "on_save_checkpoint", "on_load_checkpoint", "on_fit_end")


def _wrapped_hook(wrap: _WrappedRepairModule, name: str, *args: Any, **kwargs: Any) -> Any:
    """The wrapped module's hook ``name`` (one of :data:`DATA_HOOKS`), its ``log`` reaching the trainer."""
    with _logs_through(wrap.model, wrap):
        return getattr(wrap.model, name)(*args, **kwargs)


def _delegating(name: str) -> Callable[..., Any]:
    """The hook ``name`` of a ``wrap()`` module: the wrapped module's own where it overrides it (its
    ``log`` reaching the trainer), after the repair module's part for :data:`_OWN_FIRST`; else the default."""
    own = getattr(CausalRepairModule, name)

    def hook(self: _WrappedRepairModule, *args: Any, **kwargs: Any) -> Any:
        if not is_overridden(name, self.model):
            return own(self, *args, **kwargs)
        if name in _OWN_FIRST:
            own(self, *args, **kwargs)
        with _logs_through(self.model, self):
            return getattr(self.model, name)(*args, **kwargs)

    hook.__name__ = hook.__qualname__ = name
    hook.__doc__ = f"The wrapped module's ``{name}`` (where it defines one)."
    return hook


for _name in DELEGATED_HOOKS:
    setattr(_WrappedRepairModule, _name, _delegating(_name))
