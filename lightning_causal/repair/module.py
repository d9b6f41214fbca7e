"""CausalRepairModule: fine-tune a model with causal repair terms added to its task loss."""

from __future__ import annotations

import contextlib
import io
import os
import pickle
from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import torch
from lightning.pytorch import LightningModule
from lightning.pytorch.utilities import rank_zero_warn
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from lightning.pytorch.utilities.model_helpers import is_overridden
from lightning.pytorch.utilities.parsing import lightning_getattr, lightning_setattr
from lightning.pytorch.utilities.signature_utils import is_param_in_hook_signature
from torch import Tensor, nn
from torch.nn import functional as F
from torch.utils.data import DataLoader, IterableDataset
from typing_extensions import override

from lightning_causal._cli import built_by_cli, peek_checkpoint, saved_cli_config
from lightning_causal.batches import UnpackBatch, num_rows, unpack
from lightning_causal.causal.engine.checks import check_callable, check_float
from lightning_causal.causal.engine.forward import (
    ForwardArgs,
    OutputSpec,
    check_output_spec,
    select_output,
)
from lightning_causal.data_reading import read_samples, rngs_untouched
from lightning_causal.repair.base import RepairTerm

__all__ = ["CausalRepairModule"]

#: Inputs gathered from the train dataloader for ``RepairTerm.setup`` (kept small: it is a hint).
SETUP_SAMPLES = 512
#: The checkpoint entry holding the terms' state (``RepairTerm.state_dict``).
CHECKPOINT_KEY = "causal_repair"


def _check_terms(terms: Sequence[RepairTerm]) -> list[RepairTerm]:
    if isinstance(terms, RepairTerm):
        terms = [terms]
    if isinstance(terms, (str, bytes)) or not isinstance(terms, Sequence) or not all(isinstance(t, RepairTerm) for t in terms):
        raise MisconfigurationException(f"Expected argument `terms` to be a sequence of RepairTerm objects but got {terms!r}")
    names = [t.name for t in terms]
    if len(set(names)) != len(names):
        raise MisconfigurationException(f"Expected argument `terms` to have unique names (logged as repair/<name>) but got {names}")
    return list(terms)


@contextlib.contextmanager
def _forward_arguments_checked(args: Any, who: str) -> Iterator[None]:
    """A model call with the batch's keyword forward arguments ``args``: a ``TypeError`` saying the
    forward does not take one of them becomes an error naming it, where it came from (``unpack_batch``)
    and an ``unpack_batch=`` without it."""
    try:
        yield
    except TypeError as err:
        key = next((k for k in args if f"unexpected keyword argument '{k}'" in str(err)), None) if isinstance(args, Mapping) else None
        if key is None:
            raise
        kept = ", ".join(f"{k!r}: b[{k!r}]" for k in args if k != key)
        raise MisconfigurationException(
            f"CausalRepairModule's {who} calls the model with the batch's forward arguments {sorted(args)} (read from "
            "the batch by `unpack_batch`: a mapping's 'attention_mask' and 'token_type_ids' are keyword arguments), but "
            f"the model's forward does not take {key!r} ({err}). Pass `unpack_batch=` without it, e.g. "
            f"`unpack_batch=lambda b: (b['input_ids'], b['labels'], {{{kept}}})`, or let the model's forward take it") from err


def _eager_step(step: Callable[..., Any]) -> Callable[..., Any]:
    """``step`` run eagerly under ``torch.compile``: ``trainer.fit(torch.compile(repair))`` compiles the
    module's steps, and TorchDynamo cannot trace the repair's own work (the terms' hooks, the compiled-model
    stance of the estimators, the wrapped module's logging routed through this one): it failed with an
    internal error. The step's Python runs eagerly; a network compiled inside (``self.net = torch.compile(net)``)
    still runs its compiled code."""
    return torch.compiler.disable(step)


def _fusable(term: RepairTerm) -> bool:
    fns = callable(getattr(term, "extra_inputs", None)) and callable(getattr(term, "loss_from_outputs", None))
    return fns and getattr(term, "fusable", True)


class CausalRepairModule(LightningModule):
    r"""Fine-tune ``model`` on ``task loss + Σ_i w_i(epoch) · term_i`` (causal repair).

    .. math:: L(\theta) = L_{task}(\theta) + \sum_i w_i(\text{epoch})\, R_i(f_\theta; x, y)

    ``training_step`` computes the task loss with :meth:`task_step` (default:
    ``task_loss(model(x, *args), y)`` with ``(x, y, args) = unpack_batch(batch)``; override it for
    other data) and adds each term's weighted loss. A non-finite total raises an error naming
    the task loss or the term that is not finite (one check of the total per step).
    It logs ``repair/task_loss``, ``repair/<term name>`` (unweighted), the parts of a term that
    keeps them in ``last_parts`` (``BackdoorSuppressionTerm``: ``repair/<name>/unlearn``, ``/path``,
    ``/distill``, unweighted) and ``repair/total``. When
    training starts (first fit only), each term's ``setup(model, train_inputs)`` runs once; for
    terms that read them (``needs_train_inputs``), ``train_inputs`` holds up to 512 training
    inputs, those of the train dataloader's first batches read by index from its dataset, with
    every random state restored: neither the
    global RNGs nor the loader's, the sampler's or the dataset's own generators move, so a term of
    weight 0 leaves training bit-identical. Checkpoints hold each term's ``state_dict`` (e.g. the
    frozen reference of :class:`~lightning_causal.repair.backdoor.BackdoorSuppressionTerm`); a fit
    resumed with ``ckpt_path=`` restores it instead of running ``setup`` again (terms whose
    ``state_dict`` is ``None`` are set up again).
    Terms whose weight is 0 at an epoch are skipped (not computed). Works with any precision
    plugin (e.g. ``"bf16-mixed"``) and strategy; terms compute their distances in at least float32.
    ``predict_step`` returns the model's output on the batch's inputs.
    ``trainer.fit(torch.compile(repair))`` runs the steps eagerly (TorchDynamo cannot trace the
    terms' work) and gives the weights of the uncompiled fit; a network compiled inside the model
    runs its compiled code either way.

    The model and the terms are objects, not hyper-parameters (``lr`` and ``fuse_forward`` are saved): load a checkpoint with
    ``CausalRepairModule.load_from_checkpoint(path, model=MyNet(), terms=[...])``, or load the
    repaired model alone with ``MyNet().load_state_dict(CausalRepairModule.model_state_dict(path))``.
    A module that ``LightningCLI`` builds from a config saves the config (the model and the terms
    are plain data there), so its checkpoints load with ``CausalRepairModule.load_from_checkpoint(path)``.

    Args:
        model: the network to repair (its parameters are optimised).
        terms: :class:`~lightning_causal.repair.base.RepairTerm` objects with unique names.
        task_loss: ``(outputs, y) -> loss`` (default cross-entropy).
        lr: Adam learning rate.
        unpack_batch: ``batch -> (inputs, labels, additional_forward_args)`` (default:
            :func:`~lightning_causal.batches.default_unpack_batch`, the convention of
            :class:`~lightning_causal.callbacks.CausalAuditCallback`).
        output: which tensor of the model's return value the task loss takes (``None``: a tensor,
            ``.logits`` or ``["logits"]``; a key, an index or a callable).
        fuse_forward: evaluate ``x`` and the extra inputs of terms that declare them
            (``extra_inputs(x)`` / ``loss_from_outputs(out, extra_out, y)``, e.g. the
            counterfactuals of :class:`~lightning_causal.repair.fairness.CounterfactualFairnessTerm`)
            in one forward pass, shared with the task loss (same objective, fewer kernel launches:
            the speed-up is in ``benchmarks/RESULTS.md``). Models with BatchNorm layers that use the
            batch's statistics (training mode) are run unfused whatever this says (the joint pass
            would mix the batch statistics and change the task loss); set ``False`` for other models
            whose output on a row depends on the other rows in train mode.
            Used by the default :meth:`task_step` only (not with ``wrap`` or an overridden ``task_step``).

    With ``automatic_optimization = False`` (a subclass), override ``training_step`` to step the
    optimizers: ``total, logs = self.objective(batch, batch_idx)``, ``self.manual_backward(total)``;
    the default ``training_step`` refuses manual optimization (Lightning would ignore its loss).

    Raises:
        MisconfigurationException: invalid arguments, a batch without labels for the default
            :meth:`task_step`, or manual optimization with the default ``training_step``.

    Examples:
        >>> from lightning_causal.causal import AttributeFlip
        >>> from lightning_causal.repair import CounterfactualFairnessTerm
        >>> module = CausalRepairModule(nn.Linear(3, 2), [CounterfactualFairnessTerm(AttributeFlip(0), 0)])
        >>> [t.name for t in module.terms]
        ['counterfactual_fairness']
    """

    def __init__(
        self,
        model: nn.Module,
        terms: Sequence[RepairTerm],
        task_loss: Callable[[Tensor, Tensor], Tensor] = F.cross_entropy,
        lr: float = 1e-3,
        *,
        fuse_forward: bool = True,
        unpack_batch: UnpackBatch | None = None,
        output: OutputSpec = None,
    ) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise MisconfigurationException(f"Expected argument `model` to be a torch.nn.Module but got {type(model)}")
        if not callable(task_loss):
            raise MisconfigurationException(f"Expected argument `task_loss` to be a callable (outputs, y) -> loss but got {task_loss!r}")
        if isinstance(model, LightningModule) and not isinstance(self, _WrappedRepairModule):
            own = [hook for hook in ("training_step", "configure_optimizers") if is_overridden(hook, model)]
            if own:
                rank_zero_warn(
                    f"CausalRepairModule(model=...) got the LightningModule {type(model).__name__}, which it uses as a network "
                    f"only: its {' and '.join(f'`{h}`' for h in own)} are not called (the repair trains "
                    f"`task_loss(model(x), y)` with Adam at lr={lr}). To fine-tune it with its own task loss, optimizers "
                    "and hooks, use `CausalRepairModule.wrap(module, terms)`")
        check_float("lr", lr, minimum=0.0, open_min=True, error=MisconfigurationException)
        check_callable("unpack_batch", unpack_batch, "a callable batch -> (inputs, labels, additional_forward_args)",
                       none_ok=True, error=MisconfigurationException)
        self.output = check_output_spec(output, MisconfigurationException)
        self.unpack_batch = unpack_batch
        self.model = model
        self.terms = _check_terms(terms)
        self.task_loss = task_loss
        if not isinstance(self, _WrappedRepairModule):  # a wrap's `lr` is the wrapped module's (a property)
            self.lr = float(lr)
        self._setup_done = False
        self._restored_terms: dict[str, Any] = {}  # term name -> state_dict, from a checkpoint
        self._checkpoint_terms: list[str] = []  # the names of the terms of the fit that saved the checkpoint
        self._fuse = bool(fuse_forward)
        if self._saves_hyperparameters and built_by_cli():  # a config: the model and the terms as plain data too
            self.save_hyperparameters()
        elif self._saves_hyperparameters:  # the plain options; the objects (model, terms, callables) are not
            self.save_hyperparameters("lr", "fuse_forward")

    #: Whether ``__init__`` saves ``lr`` and ``fuse_forward`` as hyper-parameters (a ``wrap()`` module
    #: saves the wrapped module's instead, under ``checkpoint["causal_repair"]["wrapped"]``).
    _saves_hyperparameters = True

    @classmethod
    def wrap(cls, lightning_module: LightningModule, terms: Sequence[RepairTerm], **options: Any) -> CausalRepairModule:
        """Fine-tune an existing ``LightningModule`` with repair terms.

        The task loss is the wrapped module's own ``training_step`` loss (its ``self.log`` calls
        still reach the trainer), ``forward``, ``validation_step``/``test_step`` and
        ``configure_optimizers`` are the wrapped module's (``trainer.test`` of a module without
        ``test_step`` is an error, as unwrapped; its steps get the arguments Lightning would give them,
        ``batch_idx`` only where they take it), and the terms see the wrapped module
        as the model. The wrapped module's parameters are the ones updated: save or reuse it as
        before. Its hooks run as unwrapped (epoch and batch hooks, ``on_before_optimizer_step``,
        ``configure_gradient_clipping``, ``optimizer_step``, ``lr_scheduler_step``, ``on_save_checkpoint``/
        ``on_load_checkpoint``, ``setup``/``teardown``, ``configure_model``, ``configure_callbacks``:
        :data:`~lightning_causal.repair.module.DELEGATED_HOOKS`);
        its dataloader and batch-transfer hooks are not called (a warning names those it defines:
        :data:`~lightning_causal.repair.module.UNDELEGATED_HOOKS`). A
        :class:`~lightning_causal.callbacks.CausalAuditCallback` explains the wrapped module, so
        audits use its own layer names and log the same tags as before wrapping; its submodules are attributes
        of the wrap (``wrapped.backbone``, for callbacks such as Lightning's ``BackboneFinetuning``), and so are
        the methods and properties its class adds to ``LightningModule``. A
        ``training_step`` returning ``None`` skips the batch; a dict's ``"loss"`` is the task loss, and its
        other keys (e.g. predictions) reach its ``on_train_batch_end(outputs, ...)`` and the callbacks' as
        unwrapped, with ``outputs["loss"]`` the total (task loss and weighted terms) that is optimised.
        ``predict_step`` is the wrapped module's too. Checkpoints hold the wrapped module's weights
        under ``model.`` and its hyper-parameters (``self.save_hyperparameters()``): resume with
        ``trainer.fit(CausalRepairModule.wrap(MyModule(), terms), ckpt_path=path)``, load the wrap with
        ``CausalRepairModule.load_from_checkpoint(path, model=MyModule, terms=terms)`` (``MyModule``
        built from them), or load the module's weights alone with
        ``MyModule().load_state_dict(CausalRepairModule.model_state_dict(path))``.
        ``options`` (``unpack_batch``, ``output``) are those of :class:`CausalRepairModule`; ``lr``,
        ``task_loss`` and ``fuse_forward`` are refused (the wrapped module's optimizers and task loss are used).

        Raises:
            MisconfigurationException: not a ``LightningModule``, manual optimization, or another option.

        Examples:
            >>> from lightning_causal.models import LightningClassifier
            >>> from lightning_causal.causal import AttributeFlip
            >>> from lightning_causal.repair import CounterfactualFairnessTerm
            >>> inner = LightningClassifier(nn.Linear(3, 2), lr=0.01)
            >>> wrapped = CausalRepairModule.wrap(inner, [CounterfactualFairnessTerm(AttributeFlip(0), 0)])
            >>> wrapped.model is inner
            True
        """
        return _WrappedRepairModule(lightning_module, terms, **options)

    @classmethod
    def load_from_checkpoint(cls, checkpoint_path: Any, *args: Any, **kwargs: Any) -> Any:  # type: ignore[override]
        """Lightning's ``load_from_checkpoint``; the model and the terms are not saved as
        hyper-parameters, so pass them: ``load_from_checkpoint(path, model=MyNet(), terms=[...])``
        (the weights are the checkpoint's, and so are ``lr`` and ``fuse_forward``). The terms matter
        for training only: without ``terms=`` the module loads without terms, for inference
        (``forward``, ``predict_step``, audits); a fit of it warns that the checkpoint's terms are not trained.

        A module built by ``LightningCLI`` is built again from the config it saved:
        ``load_from_checkpoint(path)`` (``model=``, ``terms=`` replace the config's).

        A checkpoint of a ``wrap()`` fit loads as the wrap (the wrapped module's steps, optimizers
        and hooks), with ``model=`` the wrapped module's class, built from the hyper-parameters it
        saved (``self.save_hyperparameters()``), ``load_from_checkpoint(path, model=MyModule,
        terms=[...])``, or an instance of it.

        Raises:
            MisconfigurationException: ``model=`` not given (for a checkpoint without it in a CLI
                config), or ``model=`` a class for a checkpoint that is not of a ``wrap()`` fit.
        """
        checkpoint = peek_checkpoint(checkpoint_path, kwargs.get("weights_only"))
        config = saved_cli_config(checkpoint)
        if config is not None and all(name in kwargs or name in config for name in ("model", "terms")):
            return super().load_from_checkpoint(checkpoint_path, *args, **kwargs)  # built from its config, as in the fit
        if "model" not in kwargs:
            raise MisconfigurationException(
                "Expected the argument `model` in CausalRepairModule.load_from_checkpoint: the model is an object, not a "
                "saved hyper-parameter; pass it, e.g. `CausalRepairModule.load_from_checkpoint(path, model=MyNet())` "
                "(`terms=[...]` too to train on), or load the model alone with "
                "`MyNet().load_state_dict(CausalRepairModule.model_state_dict(path))`"
            )
        kwargs.setdefault("terms", [])  # for inference: the terms act in training only
        wrapped = _wrapped_entry(checkpoint) if cls is CausalRepairModule else None
        model = kwargs["model"]
        if isinstance(model, type) and wrapped is not None and wrapped.get("unsaved"):
            raise MisconfigurationException(
                f"Could not build `model` {model.__name__} from the hyper-parameters its wrap() checkpoint saved: "
                f"{wrapped['unsaved']} are objects, not plain values, and were not saved (the checkpoint stays readable "
                f"with `weights_only=True`); pass an instance, `model={model.__name__}(...)`")
        if isinstance(model, type):
            if wrapped is None or not issubclass(model, LightningModule):
                raise MisconfigurationException(
                    f"Expected argument `model` of CausalRepairModule.load_from_checkpoint to be a module instance but got the "
                    f"class {model.__name__}: a class (built from its saved hyper-parameters) is for a checkpoint of a wrap() fit "
                    "and a LightningModule class, and this checkpoint is not a wrap() fit"
                    + ("" if wrapped is None else f" ({model.__name__} is not a LightningModule)"))
            try:
                kwargs["model"] = model = model(**wrapped["hyper_parameters"])
            except TypeError as err:  # e.g. an argument it does not save (an nn.Module, `ignore=`d)
                raise MisconfigurationException(
                    f"Could not build `model` {model.__name__} from the hyper-parameters its wrap() checkpoint saved "
                    f"({sorted(wrapped['hyper_parameters'])}): {err}; pass an instance, `model={model.__name__}(...)`") from err
        if wrapped is None:
            return super().load_from_checkpoint(checkpoint_path, *args, **kwargs)
        kwargs["lightning_module"] = kwargs.pop("model")  # loads as the wrap: the wrapped module's steps and optimizers
        return super(CausalRepairModule, _WrappedRepairModule).load_from_checkpoint(checkpoint_path, *args, **kwargs)

    @staticmethod
    def model_state_dict(checkpoint: str | os.PathLike | Mapping[str, Any], map_location: Any = "cpu") -> dict[str, Tensor]:
        """The repaired model's own state dict from a checkpoint of a :class:`CausalRepairModule`
        (or :meth:`wrap`) fit: its ``model.`` entries without the prefix, for
        ``MyNet().load_state_dict(...)`` (with ``wrap``, the wrapped LightningModule's class).

        Args:
            checkpoint: a checkpoint path (read with ``torch.load(weights_only=True)``: tensors and plain
                values only), or a loaded checkpoint (a mapping with ``"state_dict"``).
            map_location: ``torch.load``'s ``map_location`` for a path.

        Raises:
            MisconfigurationException: not a path or a checkpoint, a file holding objects other than
                tensors and plain values, or no ``model.`` entries in it.

        Examples:
            >>> module = CausalRepairModule(nn.Linear(3, 2), [])
            >>> sd = CausalRepairModule.model_state_dict({"state_dict": module.state_dict()})
            >>> sorted(sd), nn.Linear(3, 2).load_state_dict(sd)
            (['bias', 'weight'], <All keys matched successfully>)
        """
        if isinstance(checkpoint, (str, os.PathLike)):
            try:  # tensors and plain values only: a shared checkpoint runs no pickled code
                checkpoint = torch.load(checkpoint, map_location=map_location, weights_only=True)
            except pickle.UnpicklingError as err:
                why = next((line.strip() for line in str(err).splitlines() if "Unsupported global" in line), "unsupported objects")
                raise MisconfigurationException(
                    f"Expected argument `checkpoint` {os.fspath(checkpoint)!r} to hold tensors and plain values only (it is "
                    f"read with `torch.load(weights_only=True)`) but it holds other objects ({why.split('. Please use')[0]}). "
                    "If you trust the file, load it yourself (`torch.load(path, weights_only=False)`) and pass the mapping"
                ) from err
        state = checkpoint.get("state_dict") if isinstance(checkpoint, Mapping) else None
        if not isinstance(state, Mapping):
            raise MisconfigurationException(
                f"Expected argument `checkpoint` to be a checkpoint path or a mapping with 'state_dict' but got {type(checkpoint).__name__}")
        inner = {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}
        if not inner:
            raise MisconfigurationException(
                f"Expected a checkpoint of a CausalRepairModule fit (weights under 'model.') but got the keys {list(state)[:5]}")
        return inner

    @property
    def audited_module(self) -> nn.Module:
        """The module a :class:`~lightning_causal.callbacks.CausalAuditCallback` explains (this one)."""
        return self

    @override
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.model(*args, **kwargs)

    def unpack(self, batch: Any) -> tuple[Tensor, Tensor | None, Any]:
        """``(inputs, labels, additional_forward_args)`` of ``batch`` (``unpack_batch``)."""
        try:
            return unpack(batch, self.unpack_batch)
        except ValueError as err:
            raise MisconfigurationException(f"CausalRepairModule cannot read the batch: {err}") from err

    def model_outputs(self, x: Tensor, args: Any = None) -> Tensor:
        """The model's selected output (``output=``) on ``x`` with forward arguments ``args``."""
        return select_output(self._call_model(x, args), self.output)

    def _call_model(self, x: Tensor | tuple[Tensor, ...], args: Any = None) -> Any:
        """The model's return value on the inputs ``x`` (one tensor, or a tuple: several inputs)."""
        fargs = ForwardArgs(args)
        return self.model(*(x if isinstance(x, tuple) else (x,)), *fargs.args, **fargs.kwargs)

    def task_step(self, batch: Any, batch_idx: int) -> Tensor | None:
        """The task loss of ``batch``: ``task_loss(model(x, *args), y)``; override for unlabeled
        data (returning ``None`` skips the batch, as in Lightning)."""
        x, y, args = self.unpack(batch)
        if y is None:
            raise MisconfigurationException(
                "CausalRepairModule's default `task_step` needs batches with labels but got a batch without labels; "
                "pass labelled data, `unpack_batch=` or override `task_step`"
            )
        with _forward_arguments_checked(args, "default `task_step`"):
            out = self.model_outputs(x, args)
        return self.task_loss(out, y)

    @override
    @_eager_step
    def training_step(self, batch: Any, batch_idx: int) -> Tensor | None:
        if not self.automatic_optimization:  # Lightning would ignore the returned loss: nothing would train
            raise MisconfigurationException(
                f"{type(self).__name__} has `automatic_optimization=False` but uses CausalRepairModule's "
                "`training_step`, which returns the loss for Lightning to optimise: no weight would change. "
                "Keep automatic optimization, or override `training_step` to step the optimizers yourself with "
                "`total, logs = self.objective(batch, batch_idx)` and `self.manual_backward(total)`"
            )
        step = self.objective(batch, batch_idx)
        if step is None:
            return None
        total, logs = step
        self.log_dict(logs, on_step=True, on_epoch=True, batch_size=num_rows(self.unpack(batch)[0]))
        return total

    def objective(self, batch: Any, batch_idx: int = 0) -> tuple[Tensor, dict[str, Tensor]] | None:
        """The training loss of ``batch`` without logging: ``(total, logs)`` with ``logs`` the
        detached ``repair/...`` values that :meth:`training_step` logs, or ``None`` when the task
        step skips the batch. Usable without a trainer (weights at ``current_epoch``, 0 then), e.g.
        in a plain PyTorch loop.

        Raises:
            FloatingPointError: the total is not finite; the message names the task loss or the
                terms that are not.
        """
        x, y, args = self.unpack(batch)
        active = [(t, w) for t in self.terms if (w := t.weight_at(self.current_epoch)) != 0.0]
        default_task = type(self).task_step is CausalRepairModule.task_step
        fuse = self._fuse and default_task and args is None and not self._batch_statistics_in_use()
        fused = [t for t, _ in active if _fusable(t)] if fuse else []
        if fused and y is not None:
            task, values = self._fused_step(x, y, fused)
        else:
            task, values = self.task_step(batch, batch_idx), {}
            if task is None:
                return None
            if not isinstance(task, Tensor):  # e.g. a dict, as a LightningModule's training_step may return
                raise MisconfigurationException(
                    f"Expected `{type(self).__name__}.task_step` to return the task loss as a tensor (or None to skip the "
                    f"batch) but got {type(task).__name__}" + (": return its 'loss'" if isinstance(task, Mapping) else ""))
        total, logs = task, {"repair/task_loss": task.detach()}
        for term, w in active:
            before = getattr(term, "last_parts", None)
            if term.name in values:
                value = values[term.name]
            elif args is None:
                value = term.loss(self.model, x, y)
            else:
                with _forward_arguments_checked(args, f"term {term.name!r}"):
                    value = term.loss(self.model, x, y, additional_forward_args=args)
            total = torch.add(total, value, alpha=w)  # total + w·value in one autograd node
            logs[f"repair/{term.name}"] = value.detach()
            parts = getattr(term, "last_parts", None)
            if isinstance(parts, Mapping) and parts is not before:  # a term's parts of this step (BackdoorSuppressionTerm's)
                logs.update({f"repair/{term.name}/{k}": torch.as_tensor(float(v)) for k, v in parts.items()})
        if not torch.isfinite(total):
            bad = [k.removeprefix("repair/") for k, v in logs.items() if not torch.isfinite(v).all()]
            raise FloatingPointError(f"CausalRepairModule: non-finite loss at epoch {self.current_epoch} from {bad}")
        logs["repair/total"] = total.detach()
        return total, logs

    def _batch_statistics_in_use(self) -> bool:
        """Whether a BatchNorm layer of the model normalises by the batch's statistics now (training
        mode, or no running statistics): a joint forward pass of ``x`` and the counterfactuals would
        mix them, and the task loss would not be the one of ``x`` alone."""
        return any(isinstance(m, nn.modules.batchnorm._BatchNorm) and (m.training or not m.track_running_stats)
                   for m in self.model.modules())  # not cached: `sync_batchnorm=True` replaces the modules at set-up

    def _fused_step(self, x: Tensor, y: Tensor, terms: list[RepairTerm]) -> tuple[Tensor, dict[str, Tensor]]:
        """One forward pass over ``x`` and every term's extra inputs; task loss on the ``x`` rows."""
        extras = [t.extra_inputs(x) for t in terms]  # type: ignore[attr-defined]
        out = self.model_outputs(torch.cat([x, *extras]))
        n = x.shape[0]
        head = out[:n]  # one slice shared by the task loss and every term
        task = self.task_loss(head, y)
        values, start = {}, n
        for term, extra in zip(terms, extras):
            values[term.name] = term.loss_from_outputs(head, out[start : start + extra.shape[0]], y)  # type: ignore[attr-defined]
            start += extra.shape[0]
        return task, values

    @override
    @_eager_step
    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> None:
        """Logs ``val_loss`` and, for class logits ``[N, C]`` (``C >= 2``) with class-index labels ``[N]``,
        ``val_acc`` (Lightning suffixes them with ``/dataloader_idx_<i>`` when there are several validation
        dataloaders). A single output (a binary logit, a probability, a regression) or soft labels ``[N, C]``
        log ``val_loss`` only: an argmax over one column, or against soft labels, is no accuracy."""
        x, y, args = self.unpack(batch)
        if y is None:
            return
        out = self.model_outputs(x, args)
        logs = {"val_loss": self.task_loss(out, y)}
        if out.dim() == 2 and out.shape[1] >= 2 and y.dim() == 1 and not y.is_floating_point():
            logs["val_acc"] = (out.argmax(1) == y).float().mean()
        self.log_dict(logs, batch_size=num_rows(x))

    @override
    @_eager_step
    def predict_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Any:
        """The model's output on the batch's inputs (``unpack_batch``; labels are ignored)."""
        x, _, args = self.unpack(batch)
        return self._call_model(x, args)

    @override
    def on_train_start(self) -> None:
        if self._setup_done:
            return
        self._setup_done = True
        restored, self._restored_terms = self._restored_terms, {}
        saved, self._checkpoint_terms = self._checkpoint_terms, []
        absent = [name for name in saved if name not in {t.name for t in self.terms}]
        if absent:  # e.g. a module loaded for inference (no `terms=`) and then fit
            rank_zero_warn(
                f"CausalRepairModule: the checkpoint was saved by a fit with the repair terms {absent}, which this module does "
                f"not have (its terms: {[t.name for t in self.terms]}); they are not trained. Pass them, "
                "`terms=[...]`, to go on repairing")
        fresh = [t for t in self.terms if t.name not in restored]
        inputs = self._train_inputs(fresh, check_only=not any(t.needs_train_inputs for t in fresh)) if fresh else None
        for term in self.terms:
            if term.name in restored:
                term.load_state_dict(restored[term.name], self.model)
            else:
                term.setup(self.model, inputs)

    @override
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        entry: dict[str, Any] = {"term_names": [t.name for t in self.terms]}
        if self._setup_done:
            entry["terms"] = {t.name: state for t in self.terms if (state := t.state_dict()) is not None}
        if isinstance(self, _WrappedRepairModule):  # what `load_from_checkpoint(path, model=MyModule)` rebuilds it from
            plain, other = _plain_values(dict(self.model.hparams))
            entry["wrapped"] = {"class": f"{type(self.model).__module__}.{type(self.model).__qualname__}",
                                "hyper_parameters": plain, "unsaved": other}
        checkpoint[CHECKPOINT_KEY] = entry

    @override
    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        saved = checkpoint.get(CHECKPOINT_KEY) or {}
        self._restored_terms = dict(saved.get("terms", {}))  # restored at the next `on_train_start`
        self._checkpoint_terms = [str(n) for n in saved.get("term_names", self._restored_terms)]
        self._setup_done = False

    def _train_inputs(self, terms: Sequence[RepairTerm], check_only: bool) -> Tensor | None:
        """Up to ``SETUP_SAMPLES`` inputs of the train dataloader's data, read without moving any
        random stream (:func:`~lightning_causal.data_reading.read_samples`; an iterable dataset:
        its first batches, with every generator reachable from the loader restored), on the module's
        device and in the dtype Lightning gives training batches (``precision_plugin.convert_input``:
        float64 under ``"64-true"``, bfloat16 under ``"bf16-true"``). With ``check_only`` (no term reads them), one sample checks that the terms can act on the
        batches (an iterable dataset is not read) and ``None`` is returned."""
        loader = getattr(self.trainer, "train_dataloader", None)
        if isinstance(loader, (list, tuple, dict)):
            loader = next(iter(loader.values() if isinstance(loader, dict) else loader), None)
        if loader is None:
            return None
        if isinstance(loader, DataLoader) and not isinstance(loader.dataset, IterableDataset):
            batches: Any = [read_samples(loader, 1 if check_only else SETUP_SAMPLES, loader_order=True)]
        elif check_only:
            return None
        else:
            batches = []
            with rngs_untouched(loader):
                count = 0
                for batch in loader:
                    batches.append(batch)
                    count += num_rows(self.unpack(batch)[0])
                    if count >= SETUP_SAMPLES:
                        break
        taken = [self._setup_input(self.unpack(b)[0], terms) for b in batches]
        return torch.cat(taken)[:SETUP_SAMPLES] if taken and not check_only else None

    def _setup_input(self, x: Any, terms: Sequence[RepairTerm]) -> Tensor:
        if not isinstance(x, Tensor):
            raise MisconfigurationException(
                f"CausalRepairModule's terms ({', '.join(t.name for t in terms)}) act on one input tensor but "
                f"the training batches hold {len(x)} inputs (a model of several inputs), which they do not support")
        # in the dtype training batches reach the model in: float64 under "64-true", bfloat16 under "bf16-true"
        return self.trainer.precision_plugin.convert_input(x.to(self.device))

    @override
    def configure_optimizers(self) -> Any:
        return torch.optim.Adam(self.model.parameters(), lr=self.lr)


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


def _plain_values(hparams: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``hparams`` split into the values ``torch.load(weights_only=True)`` reads back (numbers, strings,
    tensors, containers of them) and the names of the others (modules, callables: objects), which a
    checkpoint does not keep, so that it stays readable without running pickled code."""
    plain, other = {}, []
    for key, value in hparams.items():
        buffer = io.BytesIO()
        try:
            torch.save(value, buffer)
            buffer.seek(0)
            torch.load(buffer, weights_only=True)
        except Exception:  # noqa: BLE001 - anything that does not round-trip as plain data
            other.append(key)
        else:
            plain[key] = value
    return plain, other


def _wrapped_entry(checkpoint: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``wrapped`` entry (the wrapped module's class and hyper-parameters) of a checkpoint of a
    ``wrap()`` fit, or ``None``."""
    saved = checkpoint.get(CHECKPOINT_KEY)
    return saved.get("wrapped") if isinstance(saved, Mapping) else None


class _WrappedRepairModule(CausalRepairModule):
    """:meth:`CausalRepairModule.wrap`: delegates the task loss, forward, evaluation steps and optimizers."""

    _saves_hyperparameters = False  # the wrapped module's are checkpointed (``on_save_checkpoint``)

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
        skipped = [hook for hook in UNDELEGATED_HOOKS if is_overridden(hook, lightning_module)]
        if skipped:
            rank_zero_warn(
                f"CausalRepairModule.wrap: {type(lightning_module).__name__} defines {', '.join(f'`{h}`' for h in skipped)}, "
                "which the repair fit does not call (it calls the wrapped module's steps, `configure_optimizers` and the "
                "hooks in `lightning_causal.repair.module.DELEGATED_HOOKS`); pass its dataloaders to `trainer.fit`, move "
                "batch transforms into a LightningDataModule, or subclass CausalRepairModule")
        super().__init__(lightning_module, terms, **options)
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
            return super().__getattr__(name)
        except AttributeError:
            inner = self.__dict__.get("_modules", {}).get("model")
            if not isinstance(inner, nn.Module) or name.startswith(("_", "lc_")):  # lc_: the causal engine's site modules
                raise
            child = inner.__dict__.get("_modules", {}).get(name)
            if child is not None:
                return child
            if hasattr(type(inner), name) and not hasattr(LightningModule, name):  # its class's methods and properties
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
    def hparams_initial(self) -> Any:  # type: ignore[override]
        """The wrapped module's initial hyper-parameters: what the loggers record, as before wrapping
        (its current ones are checkpointed under ``checkpoint["causal_repair"]["wrapped"]``)."""
        return self.model.hparams_initial

    @property
    def audited_module(self) -> nn.Module:
        """The wrapped module: audits see its own layer names and log the same tags as before wrapping."""
        return self.model

    @override
    @_eager_step
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

    @override
    @_eager_step
    def validation_step(self, batch: Any, batch_idx: int, dataloader_idx: int = 0) -> Any:
        return self._delegated_step("validation_step", batch, batch_idx, dataloader_idx)

    @override
    @_eager_step
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
    @_eager_step
    def predict_step(self, *args: Any, **kwargs: Any) -> Any:
        if len(args) >= 2:  # (batch, batch_idx[, dataloader_idx]), as Lightning gives them: batch_idx where it takes one
            args = (*_with_batch_idx(self.model.predict_step, args[0], args[1]), *args[2:])
        return self.model.predict_step(*args, **kwargs)

    @override
    def configure_optimizers(self) -> Any:
        return self.model.configure_optimizers()


#: The options :meth:`CausalRepairModule.wrap` takes (the others, ``lr``, ``task_loss`` and ``fuse_forward``,
#: are the wrapped module's business: its ``configure_optimizers`` and ``training_step``).
WRAP_OPTIONS = ("unpack_batch", "output")
#: The wrapped module's hooks that a ``wrap()`` fit calls (its training loop's behaviour: epoch and batch
#: hooks, gradient clipping, scheduler steps, checkpoint hooks, ``setup``/``teardown``, the layers it builds in
#: ``configure_model`` and the callbacks it returns from ``configure_callbacks``).
DELEGATED_HOOKS = (
    "setup", "teardown", "on_fit_start", "on_fit_end", "on_train_start", "on_train_end",
    "on_train_epoch_start", "on_train_epoch_end", "on_train_batch_start", "on_train_batch_end",
    "on_validation_start", "on_validation_end", "on_validation_epoch_start", "on_validation_epoch_end",
    "on_validation_batch_start", "on_validation_batch_end", "on_test_start", "on_test_end",
    "on_test_epoch_start", "on_test_epoch_end", "on_test_batch_start", "on_test_batch_end",
    "on_predict_start", "on_predict_end", "on_predict_epoch_start", "on_predict_epoch_end",
    "on_predict_batch_start", "on_predict_batch_end", "on_before_zero_grad", "on_before_backward",
    "on_after_backward", "on_before_optimizer_step", "configure_gradient_clipping", "lr_scheduler_step",
    "optimizer_step", "optimizer_zero_grad", "on_save_checkpoint", "on_load_checkpoint", "configure_model",
    "configure_callbacks",
)
#: The wrapped module's hooks a ``wrap()`` fit does not call (a datamodule may define the batch-transfer
#: hooks, which the wrapper would hide); a module defining one is warned about at ``wrap()``.
UNDELEGATED_HOOKS = (
    "on_before_batch_transfer", "transfer_batch_to_device", "on_after_batch_transfer", "train_dataloader",
    "val_dataloader", "test_dataloader", "predict_dataloader", "prepare_data", "backward",
    "on_validation_model_eval", "on_validation_model_train", "on_test_model_eval", "on_test_model_train",
    "on_predict_model_eval",
)
#: Hooks where the repair module does its own work (set up the terms, checkpoint their state) before the wrapped module's.
_OWN_FIRST = ("on_train_start", "on_save_checkpoint", "on_load_checkpoint")


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
