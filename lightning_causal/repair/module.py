"""CausalRepairModule: fine-tune a model with causal repair terms added to its task loss.

Its parts live beside it: the checks of its arguments in ``module_arguments.py``, the objective's steps in
``objective.py``, the validation, test and predict steps in ``evaluation_steps.py`` (a mixin), the checkpoint
entry, the arguments of ``load_from_checkpoint`` and the weights-only reading in ``checkpoints.py``, the terms'
setup in ``term_setup.py``, their training inputs in ``train_inputs.py`` and ``CausalRepairModule.wrap`` in
``wrap.py`` (which builds on this module: imported where it is used)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from lightning.pytorch import LightningModule
from lightning.pytorch.callbacks import BaseFinetuning
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import Tensor, nn
from torch.distributions import Distribution
from torch.nn import functional as F
from typing_extensions import override

from lightning_causal._cli import built_by_cli
from lightning_causal._console import console_line, console_of
from lightning_causal._optimizers import adam_eps
from lightning_causal.audits.label_task import state_task
from lightning_causal.batches import UnpackBatch, Unpacked, num_rows, unpack, unread_keys_message
from lightning_causal.causal.engine.checks import check_int
from lightning_causal.causal.engine.chosen_input import (
    ChosenInput,
    check_input_choice,
    chosen_input,
    input_position,
)
from lightning_causal.causal.engine.forward import ForwardArgs, OutputSpec, select_output
from lightning_causal.causal.engine.forward_args import WholeAcrossBatches
from lightning_causal.causal.engine.output_selection import check_not_a_row, held_distribution
from lightning_causal.causal.engine.per_sample_results import _PAGE, detection_batch
from lightning_causal.causal.engine.state import audit_mode
from lightning_causal.causal.engine.user_frame import outside_package
from lightning_causal.repair.base import RepairTerm
from lightning_causal.repair.carried_state import (
    kept_step_state,
    task_pass_state,
    validation_batches,
)
from lightning_causal.repair.checkpoints import (
    load_arguments,
    model_state_dict,
    restored_terms,
    save_entry,
)
from lightning_causal.repair.evaluation_steps import EvaluationSteps
from lightning_causal.repair.module_arguments import (
    check_module_arguments,
    check_setup_inputs,
    check_task_labels,
)
from lightning_causal.repair.objective import (
    add_terms,
    batch_statistics_in_use,
    check_terms,
    checked_task_loss,
    eager_step,
    forward_arguments_checked,
    fusable,
    fused_losses,
    warn_of_schedules,
)
from lightning_causal.repair.paired_rows import PairedPasses, drawing, pass_records
from lightning_causal.repair.term_setup import SetupRecord, set_up_terms
from lightning_causal.repair.train_inputs import (  # noqa: F401 - SETUP_SAMPLES kept importable
    ONE_INPUT_FIX,
    SETUP_SAMPLES,
    one_input_only,
    train_inputs,
)
from lightning_causal.unpacked_rows import input_rows

__all__ = ["CausalRepairModule"]

_fusable = fusable  # kept importable from here (tests/repair/test_clp_term.py)

#: how the terms get image-level labels of a detector's targets, as both ways below say it
_LABELS_FROM_TARGETS = ("`unpack_batch=lambda batch: (batch[0], torch.stack([(t['labels'] == c).any() for t in "
                        f"batch[1]]).long(), None)`, with `output=` a score per image and class ({_PAGE})")

#: what `unpack` says of a detector's `(images, targets)` batch that the default task step cannot take
REPAIR_TARGETS_WAY = (
    "CausalRepairModule's default `task_step`, `task_loss(model(images), labels)`, cannot take a detector's loss of "
    "its targets: subclass it and override `task_step(self, batch, batch_idx)` to return that loss from `batch[1]`; "
    "`unpack_batch=` then gives the terms the images and image-level labels made from the targets (BackdoorSuppressionTerm "
    f"keeps them on its triggered copies), e.g. {_LABELS_FROM_TARGETS}")

#: what `unpack` says instead for a `CausalRepairModule.wrap`, whose own `training_step` keeps the detector's loss
WRAPPED_TARGETS_WAY = (
    "A wrapped module (`CausalRepairModule.wrap`) keeps its own `training_step`, the detector's loss of its targets, "
    "and needs no `task_step`: give the terms the images, `CausalRepairModule.wrap(module, terms, unpack_batch=lambda "
    "batch: (batch[0], None, None))`, or image-level labels made from the targets for a term that needs them, e.g. "
    f"{_LABELS_FROM_TARGETS}")

#: How a model that returns a ``torch.distributions`` object is fine-tuned on its negative log-likelihood: the task
#: loss takes one tensor (sliced by rows where a term's pass is fused with the task's), so ``output=`` stacks the
#: tensors that rebuild the distribution, and each term reads the model's return value through an ``output=`` of its own.
DISTRIBUTION_TASK_LOSS = (
    "The task loss takes one tensor: for a distribution's negative log-likelihood, stack the tensors it is rebuilt "
    "from, `output=lambda out: torch.stack([out.mean, out.stddev], -1)` with `task_loss=lambda o, y: "
    "-torch.distributions.Normal(o[..., 0], o[..., 1]).log_prob(y).mean()`, and give each term an `output=` of its "
    "own, which reads the model's return value (`CounterfactualFairnessTerm(flip, output='mean', distance='logit')`: "
    "a mean is no class's logit, whose sigmoid the default distance compares)")

#: Names of ``repair/wrap.py`` (which imports this module) still importable from here, read on first use.
_FROM_WRAP = ("_WrappedRepairModule", "DATA_HOOKS", "DELEGATED_HOOKS", "UNDELEGATED_HOOKS", "WRAP_OPTIONS")


def __getattr__(name: str) -> Any:
    if name in _FROM_WRAP:
        from lightning_causal.repair import wrap

        return getattr(wrap, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class CausalRepairModule(EvaluationSteps):
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
    inputs, the first batches a new iterator of the train dataloader would draw at that point, read
    by index from its dataset (Lightning has already created training's first iterator, so for a
    loader shuffled from the global generator they are not the first epoch's batches; a stream, an
    ``IterableDataset``, is read from a new iterator, with a warning: give ``setup_inputs=``), with
    every random state restored: neither the
    global RNGs nor the loader's, the sampler's or the dataset's own generators move, so a term of
    weight 0 leaves training bit-identical. Checkpoints hold each term's ``state_dict`` (e.g. the
    frozen reference of :class:`~lightning_causal.repair.backdoor.BackdoorSuppressionTerm`); a fit
    resumed with ``ckpt_path=`` restores it instead of running ``setup`` again (terms whose
    ``state_dict`` is ``None`` are set up again). The fit after a tuner's search
    (``Tuner(trainer).lr_find(repair)``, ``scale_batch_size``, or Lightning's ``LearningRateFinder`` /
    ``BatchSizeFinder`` at fit start), which set the terms up and restored the weights, does not set them up
    again: a term whose model weights (every parameter and buffer), training inputs and options (its public
    attributes that ``setup`` does not write) are those of the search's set-up gets that set-up's
    ``state_dict`` back, and the fit trains as after a fresh set-up; anything else is set up afresh.
    Terms whose weight is 0 at an epoch are skipped (not computed). Works with any precision
    plugin (e.g. ``"bf16-mixed"``) and strategy; terms compute their distances in at least float32.
    ``validation_step`` / ``test_step`` log ``val_loss`` / ``test_loss`` (and the accuracy of class logits);
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
        model: the network to repair (its parameters are optimised: see :meth:`configure_optimizers`; its submodules
            are attributes of the module too, ``repair.backbone``, for callbacks such as Lightning's ``BackboneFinetuning``).
        terms: :class:`~lightning_causal.repair.base.RepairTerm` objects with unique names.
        task_loss: ``(outputs, y) -> loss`` (default cross-entropy, which refuses a regression's real-valued labels at
            the first batch: pass ``F.mse_loss`` or the like there). A loss module says the network's
            task to the terms and audits that read labels (``nn.CrossEntropyLoss()``: one class per
            sample, so soft labels are read as classes without a guess warning): stated for the network, which audits
            read (:func:`~lightning_causal.audits.label_task.state_task`), and the network's task handed to each term
            (:meth:`~lightning_causal.repair.base.RepairTerm.take_task`), both again for a copy's network and when a
            fit starts, so that of two repair modules around one network the one fitted says it; a function says nothing.
        lr: Adam learning rate.
        unpack_batch: ``batch -> (inputs, labels, additional_forward_args)`` (default:
            :func:`~lightning_causal.batches.default_unpack_batch`, the convention of
            :class:`~lightning_causal.callbacks.CausalAuditCallback`).
        output: which tensor of the model's return value the task loss takes (``None``: a tensor,
            ``.logits`` or ``["logits"]``; a key, an index or a callable); also the one of each term
            without an ``output=`` of its own (set on the term).
        fuse_forward: evaluate ``x`` and the extra inputs of terms that declare them
            (``extra_inputs(x)`` / ``loss_from_outputs(out, extra_out, y)``, e.g. the
            counterfactuals of :class:`~lightning_causal.repair.fairness.CounterfactualFairnessTerm`)
            in one forward pass, shared with the task loss (same objective, fewer kernel launches:
            the speed-up is in ``benchmarks/RESULTS.md``). Models with BatchNorm layers that use the
            batch's statistics (training mode, or traced by ``torch.jit.trace`` in training mode, which fixes that mode) and quantization-aware models while an observer is on (``prepare_qat``: the
            fake-quant observers take their ranges from the pass's rows) are run unfused whatever this says (the joint pass
            would mix the batch statistics and change the task loss), as are models that carry a state across
            batches (``self.h = h.detach()``; the joint pass would leave the joint batch's state): the state sized by the
            batch that the task's pass changes is read at each fit's first step, each epoch's and the first after a
            validation loop (the module's ``eval()``, or the loop's batches counted since the last reading:
            :func:`~lightning_causal.repair.carried_state.validation_batches`) while none was found, which run unfused (the terms that the next steps fuse leave no state
            there: a step counter counts each step once); set ``False`` for other models
            whose output on a row depends on the other rows in train mode. A model that draws random numbers in
            training (dropout, a graph transformer's sign flips of its positional encodings) runs unfused from the
            first fused step that drew (thrown away, the generators put back): in one pass a row and its
            counterfactual get draws of their own, and the terms pair them as two passes of the same draws.
            Used by the default :meth:`task_step` only (not with ``wrap`` or an overridden ``task_step``);
            a term with another ``output=`` than the module's runs its own pass (the joint pass gives the
            module's output). Not with ``explain``.
        explain: for a model of several inputs, ``forward(self, image, tab)`` with batches whose inputs are a
            tuple, ``((image, tab), y)``: the input the terms act on, by its position in the inputs tuple (``1``)
            or ``forward``'s parameter name (``"tab"``), as ``CausalAuditCallback(explain=)``. The task loss
            takes every input, ``task_loss(model(image, tab), y)``; each term gets that input alone, the model
            called with every other input in its own place, passed along by row as a forward argument
            (:func:`~lightning_causal.causal.engine.chosen_input.chosen_input`), so a
            :class:`~lightning_causal.repair.fairness.CounterfactualFairnessTerm` flips a column of ``tab``
            beside each row's own image. ``None`` (default): the terms get the inputs as they are (one
            tensor). Terms that read training inputs at set-up, and terms whose loss makes rows of its own
            (``makes_own_rows``: :class:`~lightning_causal.repair.backdoor.BackdoorSuppressionTerm`, whose stamped
            copies the other inputs cannot follow), are refused with it. Saved as a hyper-parameter where given.
        setup_inputs: the training inputs ``[N, ...]`` (one tensor, every row given) that the terms' ``setup`` reads
            (``needs_train_inputs``: :class:`~lightning_causal.repair.backdoor.BackdoorSuppressionTerm` with
            ``trigger=None``), instead of up to 512 read from the train dataloader; moved to the module's device and
            the training batches' dtype. Give them where the training data is a stream (an ``IterableDataset``) over
            a shared source (a generator, a queue, a socket), which has no samples to read by index: the set-up reads
            a new iterator of it otherwise, and the samples it reads never reach training (a warning says so).
            ``None`` (default): read from the train dataloader. Not a hyper-parameter (a tensor).

    With ``automatic_optimization = False`` (a subclass), override ``training_step`` to step the
    optimizers: ``total, logs = self.objective(batch, batch_idx)``, ``self.manual_backward(total)``;
    the default ``training_step`` refuses manual optimization (Lightning would ignore its loss).

    Raises:
        MisconfigurationException: invalid arguments, a batch without labels for the default
            :meth:`task_step`, real-valued labels (a regression's) for a cross-entropy ``task_loss`` (the default, ``nn.CrossEntropyLoss()``), or manual optimization with the default ``training_step``; with ``explain``,
            batches of one input, a position past their inputs or a name that is no parameter of
            ``forward`` taking one of them.

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
        explain: int | str | None = None,
        setup_inputs: Tensor | None = None,
    ) -> None:
        super().__init__()
        self.output = check_module_arguments(model, task_loss, lr, unpack_batch, output, wraps=self._wraps)
        self.setup_inputs = check_setup_inputs(setup_inputs)
        self.unpack_batch = unpack_batch
        self.model = model
        self.terms = check_terms(terms)
        self.explain = check_input_choice(explain, "the batch's inputs tuple", MisconfigurationException)
        if self.explain is not None:
            _check_terms_explain(self.terms, self.explain)
        self._explained: tuple[int, int] | None = None  # (number of inputs, the explained input's position)
        # the ChosenInput wrapper of each (position, inputs, keywords): the terms' per-model records (whether the model
        # draws, the buffers its passes write, the backdoor term's Forward, the fairness term's readers) key on it
        self._wrappers: dict[tuple[int, int, bool], ChosenInput] = {}
        for term in self.terms:  # a term without its own output= explains the tensor the task loss takes
            if self.output is not None and getattr(term, "output", False) is None:
                term.output = self.output
        self.task_loss = task_loss
        self._state_task()
        if not self._wraps:  # a wrap's `lr` is the wrapped module's (a property)
            self.lr = float(lr)
        self._setup_done = False
        self._restored_terms: dict[str, Any] = {}  # term name -> state_dict, from a checkpoint
        self._checkpoint_terms: list[str] = []  # the names of the terms of the fit that saved the checkpoint
        self._setup_records: dict[str, SetupRecord] = {}  # term name -> its set-up's state and inputs, until a fit ends
        self._fuse = bool(fuse_forward)
        self._carried: tuple[tuple[str, tuple[int, ...]], ...] | None = None  # repair.carried_state.task_pass_state
        if self._saves_hyperparameters and built_by_cli():  # a config: the model and the terms as plain data too
            self.save_hyperparameters()
        elif self._saves_hyperparameters:  # the plain options; the objects (model, terms, callables) are not
            self.save_hyperparameters("lr", "fuse_forward", *(("explain",) if explain is not None else ()))

    #: Whether ``__init__`` saves ``lr`` and ``fuse_forward`` as hyper-parameters (a ``wrap()`` module
    #: saves the wrapped module's instead, under ``checkpoint["causal_repair"]["wrapped"]``).
    _saves_hyperparameters = True
    #: Whether the model is a wrapped ``LightningModule`` (``wrap()``): its ``lr`` is the wrapped module's, and
    #: checkpoints hold its class and hyper-parameters.
    _wraps = False

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
        ``configure_gradient_clipping``, ``optimizer_step``, ``lr_scheduler_step``,
        ``on_validation_model_zero_grad``, ``on_save_checkpoint``/
        ``on_load_checkpoint``, ``setup``/``teardown``, ``configure_model``, ``configure_callbacks``:
        :data:`~lightning_causal.repair.wrap.DELEGATED_HOOKS`);
        so are its dataloader, batch-transfer, ``backward`` and evaluation-mode hooks where it defines
        them, and only there (:data:`~lightning_causal.repair.wrap.DATA_HOOKS`: ``trainer.fit(repair)``
        uses its ``train_dataloader``; a datamodule's batch hooks run as unwrapped). A
        :class:`~lightning_causal.callbacks.CausalAuditCallback` explains the wrapped module, so
        audits use its own layer names and log the same tags as before wrapping; its submodules are attributes
        of the wrap (``wrapped.backbone``, for callbacks such as Lightning's ``BackboneFinetuning``), and so are
        the methods and properties its class adds to ``LightningModule``, and its ``hparams`` are the wrap's
        (a network it keeps as ``self.model`` is ``wrapped.model.model``: the wrap's ``model`` is the module). A
        ``training_step`` returning ``None`` skips the batch; a dict's ``"loss"`` is the task loss, and its
        other keys (e.g. predictions) reach its ``on_train_batch_end(outputs, ...)`` and the callbacks' as
        unwrapped, with ``outputs["loss"]`` the total (task loss and weighted terms) that is optimised.
        ``predict_step`` is the wrapped module's too. Checkpoints hold the wrapped module's weights
        under ``model.`` and its hyper-parameters (``self.save_hyperparameters()``): resume with
        ``trainer.fit(CausalRepairModule.wrap(MyModule(), terms), ckpt_path=path)``, load the wrap with
        ``CausalRepairModule.load_from_checkpoint(path, model=MyModule, terms=terms)`` (``MyModule``
        built from them), or load the module's weights alone with
        ``MyModule().load_state_dict(CausalRepairModule.model_state_dict(path))``.
        ``options`` (``unpack_batch``, ``output``, ``explain``, ``setup_inputs``) are those of :class:`CausalRepairModule`; ``lr``,
        ``task_loss`` and ``fuse_forward`` are refused (the wrapped module's optimizers and task loss are used).

        Args:
            lightning_module: the ``LightningModule`` to fine-tune (automatic optimization).
            terms: the repair terms added to its loss.
            **options: keyword options of :class:`CausalRepairModule`, as above.

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
        # imported here: wrap.py builds on this module
        from lightning_causal.repair.wrap import _WrappedRepairModule

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

        Args:
            checkpoint_path: the checkpoint's path (or a file-like object), as Lightning takes it.
            *args: passed on to Lightning's ``load_from_checkpoint``.
            **kwargs: ``model=``, ``terms=`` as above, and what Lightning's ``load_from_checkpoint``
                takes (``map_location=``, hyper-parameters to override).

        Raises:
            MisconfigurationException: ``model=`` not given (for a checkpoint without it in a CLI
                config), or ``model=`` a class for a checkpoint that is not of a ``wrap()`` fit.
        """
        kwargs, as_wrap = load_arguments(checkpoint_path, kwargs, may_wrap=cls is CausalRepairModule)
        if not as_wrap:
            return super().load_from_checkpoint(checkpoint_path, *args, **kwargs)
        # imported here: wrap.py builds on this module
        from lightning_causal.repair.wrap import _WrappedRepairModule

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
        return model_state_dict(checkpoint, map_location)

    @property
    def audited_module(self) -> nn.Module:
        """The module a :class:`~lightning_causal.callbacks.CausalAuditCallback` explains (this one)."""
        return self

    def __getattr__(self, name: str) -> Any:
        """The model's own submodules as attributes of the module (``repair.backbone`` is ``repair.model.backbone``):
        callbacks that reach into the LightningModule, e.g. Lightning's ``BackboneFinetuning`` (freezes and unfreezes
        ``pl_module.backbone``), act on the model. Its other attributes and private names are not forwarded."""
        try:
            return super().__getattr__(name)
        except AttributeError:
            inner = self.__dict__.get("_modules", {}).get("model")
            if not isinstance(inner, nn.Module) or name.startswith(("_", "lc_")):  # lc_: the causal engine's site modules
                raise
            child = inner.__dict__.get("_modules", {}).get(name)
            if child is None:
                raise
            return child

    @override
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        return self.model(*args, **kwargs)

    @property
    def _forwards_to(self) -> nn.Module:
        """The module ``forward`` passes every argument to (:data:`~lightning_causal.causal.engine.chosen_input.FORWARDS_TO`):
        ``explain=`` names the wrapped model's forward parameters."""
        return self.model

    def unpack(self, batch: Any) -> Unpacked:
        """``(inputs, labels, additional_forward_args)`` of ``batch`` (``unpack_batch``).

        Args:
            batch: a batch of the dataloader.
        """
        try:
            unpacked = unpack(batch, self.unpack_batch, getattr(self.model, "forward", None))  # forward names the keys
        except ValueError as err:
            # (images, targets): the loss reads them, in a task_step of a subclass or in a wrapped module's training_step
            way = f". {WRAPPED_TARGETS_WAY if self._wraps else REPAIR_TARGETS_WAY}" if detection_batch(batch) else ""
            raise MisconfigurationException(f"CausalRepairModule cannot read the batch: {err}{way}") from err
        if self.unpack_batch is None and not self.__dict__.get("_unread_checked", False):  # the first batch read
            # a padded audio batch's attention_mask (or any tensor of a mapping the default reads not) reaches no model
            # call: trained without it, silently, while the audit callback warns of the same batch
            self.__dict__["_unread_checked"] = True
            message = unread_keys_message(batch, unpacked[2], "CausalRepairModule's batches", "the task loss and the terms",
                                          getattr(self.model, "forward", None))
            if message:
                warnings.warn(message, UserWarning, stacklevel=outside_package())
        return unpacked

    def model_outputs(self, x: Tensor | tuple[Tensor, ...], args: Any = None) -> Tensor:
        """The model's selected output (``output=``) on ``x`` with forward arguments ``args``.

        Args:
            x: the inputs ``[N, ...]`` (or a tuple of them).
            args: the forward arguments (tuple: positional; Mapping: keywords); ``None``: none.

        Raises:
            MisconfigurationException: ``output=`` took a row of a model that returned one tensor
                (``output=0`` for a model that returns ``(logits, aux)`` in training mode only, and
                one tensor in eval mode, e.g. in ``validation_step``); a model that returns a
                ``torch.distributions`` object without ``output=`` (:data:`DISTRIBUTION_TASK_LOSS`).
            TypeError: a model that returns no tensor without ``output=``; a tuple of several tensors, such as
                ``(mean, log_var)``, named with the stacking that gives the task loss one tensor.
        """
        raw = self._call_model(x, args)
        try:
            picked = select_output(raw, self.output)
        except TypeError as err:  # a distribution: the task loss takes tensors, from which its NLL rebuilds it
            read, dist = ("out", raw) if isinstance(raw, Distribution) else (held_distribution(raw) or (None, None))
            several = isinstance(raw, (tuple, list)) and len(raw) > 1 and all(isinstance(t, Tensor) for t in raw)
            if self.output is None and dist is None and several:  # (mean, log_var): output=0 would feed the loss the mean
                raise TypeError(  # the type select_output raises, which callers catch
                    f"{err}. CausalRepairModule's task loss takes one tensor: where it needs several of them together "
                    "(a Gaussian NLL's `(mean, log_var)`, a mixture density network's `(logits_pi, mu, log_sigma)`), "
                    "stack or concatenate them, `output=lambda out: torch.stack(out, -1)` with `task_loss=lambda o, y: "
                    "F.gaussian_nll_loss(o[..., 0], y, o[..., 1].exp())`, and give each term an `output=` of its own, "
                    "which reads the model's return value (`CounterfactualFairnessTerm(flip, output=0, "
                    "distance='logit')`: |mean(x) - mean(x_cf)|)") from err
            if self.output is not None or dist is None or isinstance(getattr(dist, "logits", None), Tensor):
                raise
            held = f" holding a {type(dist).__name__} at `{read}`" if read != "out" else ""
            raise MisconfigurationException(
                f"Expected CausalRepairModule's model to return a tensor, an object with a `.logits` tensor or a mapping with "
                f"'logits' but got {type(raw).__name__}{held}, and no `output=`. {DISTRIBUTION_TASK_LOSS}"
                + (f"; here the {type(dist).__name__} is `{read}`: `output=lambda out: torch.stack([{read}.mean, {read}.stddev], "
                   f"-1)`, each term's `output=lambda out: {read}.mean`" if held else "")) from err
        try:
            check_not_a_row(raw, picked, self.output, num_rows(x))
        except ValueError as err:
            mode = "training" if self.model.training else "eval"
            raise MisconfigurationException(f"CausalRepairModule (the model in {mode} mode): {err}") from err
        return picked

    def _call_model(self, x: Tensor | tuple[Tensor, ...], args: Any = None) -> Any:
        """The model's return value on the inputs ``x`` (one tensor, or a tuple: several inputs)."""
        fargs = ForwardArgs(args)
        return self.model(*(x if isinstance(x, tuple) else (x,)), *fargs.args, **fargs.kwargs)

    def explained_batch(self, x: Any, args: Any = None) -> tuple[nn.Module, Tensor, Any]:
        """What the terms act on: with ``explain``, the model seen as a model of the explained input, that input of
        the inputs ``x`` and the forward arguments that carry the others beside ``args``
        (:func:`~lightning_causal.causal.engine.chosen_input.chosen_input`); without it, ``(model, x, args)``.

        Args:
            x: the batch's inputs (a tuple of several with ``explain``).
            args: the batch's forward arguments; ``None``: none.

        Raises:
            MisconfigurationException: with ``explain``, inputs that are not a tuple of several tensors, a
                position past them, or a name that is no parameter of ``forward`` taking one of them.
        """
        if self.explain is None:
            return self.model, x, args
        if not isinstance(x, tuple) or len(x) < 2:
            one = x[0] if isinstance(x, tuple) and x else x
            shape = list(one.shape) if isinstance(one, Tensor) else type(one).__name__
            raise MisconfigurationException(
                f"Expected batches of several inputs for argument `explain` ({self.explain!r}), which chooses the one the "
                f"terms act on, but the batch holds one input tensor ({shape}): leave `explain=None`, or give "
                "`unpack_batch=` that reads the inputs as a tuple, `lambda b: ((b['image'], b['tab']), b['y'], None)`")
        if self._explained is None or self._explained[0] != len(x):
            self._explained = (len(x), input_position(self.explain, self.model, len(x), "the batch",
                                                      MisconfigurationException))
        model, chosen, args = chosen_input(self.model, x, self._explained[1], args)
        if isinstance(model, ChosenInput):  # one wrapper a layout: the terms keep their per-model records across steps
            key = (model.position, model.num_inputs, model.keywords)
            kept = self._wrappers.get(key)
            if kept is None or kept.wrapped is not self.model:  # a new model (`module.model` reassigned): a new wrapper
                self._wrappers[key] = kept = model
            model = kept
        return model, chosen, args

    def task_step(self, batch: Any, batch_idx: int) -> Tensor | None:
        """The task loss of ``batch``: ``task_loss(model(x, *args), y)``; override for unlabeled
        data (returning ``None`` skips the batch, as in Lightning).

        Args:
            batch: the batch, read by ``unpack_batch`` (:meth:`unpack`).
            batch_idx: the batch's index.
        """
        x, y, args = self.unpack(batch)
        if y is None:
            raise MisconfigurationException(
                "CausalRepairModule's default `task_step` needs batches with labels but got a batch without labels; "
                + (REPAIR_TARGETS_WAY if detection_batch(batch) else "pass labelled data, `unpack_batch=` or override `task_step`")
            )
        with forward_arguments_checked(args, "default `task_step`"):
            out = self.model_outputs(x, args)
        if not self.__dict__.get("_in_batch_checked", False):  # the first batch
            self._refuse_labels_of_in_batch_scores(x, y, args, out)
            self.__dict__["_in_batch_checked"] = True
        return self._task_loss_of(out, y)

    def _refuse_labels_of_in_batch_scores(self, x: Tensor | tuple[Tensor, ...], y: Any, args: Any, out: Any) -> None:
        """Refuse, at the first batch, class labels given to the default task loss beside an explained output that is
        an in-batch score matrix: ``[n, n]`` for the batch's ``n`` rows and ``[n - 1, n - 1]`` for its first ``n - 1``
        (a CLIP-like model's ``logits_per_image``, row i scoring every caption of its batch), so that
        ``cross_entropy(s, y)`` pushes image i towards caption ``y_i`` of its batch, which trains without an error.
        Labels ``arange(n)`` (InfoNCE's, each row its own caption) are that model's own loss and pass. Only where the
        task pass's output ``out`` is ``[n, n]``, one pass of ``n - 1`` rows runs, once, in
        :func:`~lightning_causal.causal.engine.state.audit_mode` (modes, buffers, counters, global and module-held
        generators put back); a model that fails it is left to the fit."""
        n = num_rows(x)
        if (n < 3 or not isinstance(out, Tensor) or out.dim() < 2 or tuple(out.shape[:2]) != (n, n)
                or not isinstance(y, Tensor) or y.dim() != 1 or y.shape[0] != n or y.is_floating_point()
                or bool((y == torch.arange(n, device=y.device)).all())):
            return
        first = torch.arange(n - 1, device=y.device)
        taken, kw = ForwardArgs(args, n).take(first) if args is not None else ((), {})
        fewer_args = kw if kw else (taken or None)
        fewer_x = tuple(t[: n - 1] for t in x) if isinstance(x, tuple) else x[: n - 1]
        try:  # audit_mode: modes, buffers written in place, counters, global and module-held generators put back
            with audit_mode(self.model):
                fewer = self.model_outputs(fewer_x, fewer_args)
                shape = tuple(fewer.shape[:2]) if isinstance(fewer, Tensor) and fewer.dim() >= 2 else None
        except Exception:  # noqa: BLE001 - only a refusal is at stake: the fit's own pass says what fails
            return
        if shape != (n - 1, n - 1):
            return
        whole = (f" If an input holds fixed candidates, not the samples' own (a zero-shot classifier's class prompts, "
                 f"as many as the batch's {n} rows by chance), pass them whole as forward arguments, `unpack_batch=lambda "
                 "b: (b['pixels'], b['label'], mark_whole((prompts,), [0]))` (`from lightning_causal.causal import "
                 "mark_whole`), or keep them as a buffer." if isinstance(x, tuple) else "")
        raise MisconfigurationException(
            f"Expected CausalRepairModule's explained output to hold class scores of each sample, but it is [{n}, {n}] "
            f"for a batch of {n} rows and [{n - 1}, {n - 1}] for its first {n - 1}: an in-batch score matrix (a "
            "CLIP-like model's image-text similarities, row i scoring every caption of its batch), and the task loss "
            f"would read its columns as the classes of the labels (label {int(y[0])} of row 0: caption "
            f"{int(y[0])} of the batch), training without an error towards nonsense. Fine-tune a per-sample output: "
            "its zero-shot classifier (the image embedding against class prompts' embeddings kept as a buffer) with "
            "`unpack_batch=lambda b: (b['pixels'], b['label'], None)`; or, to train the contrastive loss, give labels "
            "`torch.arange(len(b['pixels']))` (each image's own caption) or override `task_step`; docs/recipes.md, 'Auditing "
            "a CLIP-like dual encoder'." + whole)

    @override
    @eager_step
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

    def objective(self, batch: Any, batch_idx: int = 0, *, epoch: int | None = None) -> tuple[Tensor, dict[str, Tensor]] | None:
        """The training loss of ``batch`` without logging: ``(total, logs)`` with ``logs`` the
        detached ``repair/...`` values that :meth:`training_step` logs, or ``None`` when the task
        step skips the batch. Usable without a trainer, e.g. in a Lightning Fabric or plain PyTorch
        loop: pass ``epoch=`` there, the epoch whose term weights apply (a trainer's
        ``current_epoch`` by default; without a trainer that is 0 at every step, and a term whose
        weight is a schedule of the epoch would keep its epoch-0 weight: it warns then).

        Args:
            batch: the batch, read by ``unpack_batch`` (:meth:`unpack`).
            batch_idx: the batch's index (passed to :meth:`task_step`).
            epoch: the epoch whose term weights apply, as above; ``None``: the trainer's
                ``current_epoch``.

        Raises:
            FloatingPointError: the total is not finite; the message names the task loss or the
                terms that are not.
            MisconfigurationException: ``epoch`` is not an integer >= 0.
        """
        epoch = self._weight_epoch(epoch)
        x, y, args = self.unpack(batch)
        undone: set[str] = set()
        active = [(t, w) for t in self.terms if (w := t.weight_at(epoch)) != 0.0]
        default_task = type(self).task_step is CausalRepairModule.task_step
        if default_task and not self.__dict__.get("_labels_checked", False):  # the first batch: cross-entropy on a
            check_task_labels(self.task_loss, y)  # regression's targets trains without an error, towards nonsense
            self.__dict__["_labels_checked"] = True
        state = self.__dict__.get("_carried")  # the state the task's pass sets (None: not read yet)
        trainer = self.__dict__.get("_trainer")
        if state == () and (self.__dict__.get("_carried_epoch") != epoch
                            or self.__dict__.get("_carried_validations") != validation_batches(trainer)):
            state = None  # read again at each epoch's first step (and after a validation loop): a state set up later
        watch = (kept_step_state(self.model)  # values: a memory bank
                 if state is None else None)  # helpers: also one in a datastore object of its own, `self.store.keys`
        # per model, held weakly (pass_records, as the terms keep theirs): whether its pass drew at its last check, and
        # the buffers its passes write; a model reassigned (module.model = ...) starts as in a new module
        draws, written = pass_records(self)
        fusable_now = (self._fuse and default_task and args is None and self.explain is None and not state
                       and not self._batch_statistics_in_use())  # with state == (): fused; None: fused from the next step if () then
        fuse = fusable_now and not draws.get(self.model, False)
        fused = [t for t, _ in active if fusable(t, self.output)] if fuse and state == () else []
        model, term_x, term_args = self.explained_batch(x, args)  # checked before the task loss calls the model
        if term_args is not None:  # a weight passed whole on the full batches stays whole on a short last one
            term_args = self.__dict__.setdefault("_whole_args", WholeAcrossBatches()).marked(term_args, num_rows(term_x))
        if fused and y is not None:
            # fused only without `explain`: term_x is x, one tensor (explained_batch refused a tuple of inputs)
            pairs = PairedPasses(self.model, term_x.device, written)
            kept = pairs.first_kept(lambda: fused_losses(self.model_outputs, self._task_loss_of, term_x, y, fused))
            if kept is None:  # dropout's masks differ between a row and its counterfactual in one pass: the terms would
                # penalise the model's noise; the pass undone (generators, spectral norm's vectors), this step runs
                draws[self.model] = True  # unfused, and the later ones while the task's pass draws (the terms pair them)
                fused = []
            else:
                task, values = kept
        if not (fused and y is not None):
            # read again at every step where the model drew at its last check (its dropout set to 0, eval mode)
            recheck = bool(draws.get(self.model, False)) and fusable_now and y is not None and isinstance(term_x, Tensor)
            drew = (drawing(self.model, term_x.device)  # a fused pass holds one input tensor
                    if (watch is not None and fuse and y is not None and isinstance(term_x, Tensor)) or recheck else None)
            task, values = checked_task_loss(self.task_step(batch, batch_idx), type(self).__name__), {}
            if task is None:
                return None
            if watch is not None:  # a state carried across batches (`self.h = h.detach()`): unfused from now on, as
                self._carried = state = task_pass_state(watch, self.model, num_rows(x))  # the joint pass would leave the joint batch's
                self._carried_epoch, self._carried_validations = epoch, validation_batches(trainer)
                if state == () and drew is not None and drew():  # the task's pass drew: a fused pass would too (the
                    draws[self.model] = True  # fused check's), unfused as from the next step's check
                elif state == () and fuse and y is not None:  # fused from the next step: the terms that step runs in
                    undone = {t.name for t, _ in active if fusable(t, self.output)}  # the task's pass change no state here
            if recheck and state == () and drew is not None and not drew():  # it drew before, nothing now: fused from
                draws[self.model] = False  # the next step, this step's terms undone, as a new module's first step
                undone = {t.name for t, _ in active if fusable(t, self.output)}
        return add_terms(model, task, active, values, (term_x, y, term_args), epoch, state, undone)

    def _weight_epoch(self, epoch: int | None) -> int:
        """The epoch whose term weights apply: ``epoch``, else ``current_epoch``; without a trainer (a
        Fabric or plain loop calling ``training_step`` or ``objective``) that is always 0, and a term
        whose weight is a schedule of the epoch is warned about once."""
        if epoch is not None:
            return int(check_int("epoch", epoch, minimum=0, error=MisconfigurationException))
        if self._trainer is None and not getattr(self, "_warned_no_epoch", False):
            self._warned_no_epoch = warn_of_schedules(self.terms)
        return self.current_epoch

    def _batch_statistics_in_use(self) -> bool:
        """Whether a BatchNorm layer of the model normalises by the batch's statistics now
        (:func:`~lightning_causal.repair.objective.batch_statistics_in_use`)."""
        return batch_statistics_in_use(self.model)

    def __getstate__(self) -> dict[str, Any]:
        """Pickled and copied without the per-model records of the fused check (:func:`~.paired_rows.pass_records`:
        weak references, which no pickle takes): a copy reads them again at its first step, as a new module."""
        state = super().__getstate__()
        state.pop("_draws", None)
        state.pop("_written", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        """A copy's network (``copy.deepcopy``, a pickle: ``ddp_spawn``'s processes) is another object than the one
        whose task ``__init__`` stated (:func:`~lightning_causal.audits.label_task.state_task`): stated for it too,
        and handed to the copy's terms."""
        super().__setstate__(state)
        self._state_task()

    def _state_task(self) -> None:
        """The task loss's task stated for the network (:func:`~lightning_causal.audits.label_task.state_task`: the
        audits read it, the terms get the network, not this module) and the network's task handed to each term
        (:meth:`~lightning_causal.repair.base.RepairTerm.take_task`): the one hand-over the terms read labels by."""
        model = self._modules.get("model")
        state_task(model, self._modules.get("task_loss", self.__dict__.get("task_loss")))
        if isinstance(model, nn.Module):
            for term in self.__dict__.get("terms", ()):
                term.take_task(model)

    @override
    def on_train_start(self) -> None:
        self._carried = None  # read again at the fit's first step (and each epoch's): the model's state (repair.carried_state)
        self._state_task()  # the module fitted now states it, where another around the same network stated its own since
        if self._setup_done:
            return
        self._setup_done = True
        restored, self._restored_terms = self._restored_terms, {}
        saved, self._checkpoint_terms = self._checkpoint_terms, []
        with console_of(self.trainer):  # the terms' set-up notes through the progress bar, which shows already
            reused = set_up_terms(self.terms, self.model, restored, saved, lambda fresh, check_only: train_inputs(
                self.trainer, lambda b: self.explained_batch(self.unpack(b)[0])[1], self.device, fresh, check_only,
                args_of=lambda b: self.unpack(b)[2], given=self.setup_inputs,
                reader=input_rows(self.model, self.unpack_batch)), self._setup_records,
                read=self.setup_inputs is None)
        if reused:
            console_line(self.trainer, f"CausalRepairModule: the terms {reused} were not set up again: an earlier set-up "
                         "(a tuner's search) ran on the same weights, training inputs and term options; its state is reused")

    @override
    def train(self, mode: bool = True) -> CausalRepairModule:
        """Training mode as for any module; leaving it in a Lightning validation loop (its ``eval()`` at the loop's
        start, while ``trainer.validating``) marks the model's carried state to be read again at the next training step,
        where none was found: a state the validation sets up (:mod:`~lightning_causal.repair.carried_state`). Here, not
        in a validation hook, so that a subclass's own ``on_validation_end`` (or ``on_validation_start``) without
        ``super()`` keeps it; one whose ``on_validation_model_eval`` puts the network in eval mode itself
        (``self.model.eval()``) is read again all the same, the step counting the validation batches run since
        (:func:`~lightning_causal.repair.carried_state.validation_batches`). An ``eval()`` outside a validation (an audit, a callback that looks at predictions
        mid-epoch, a Fabric or plain loop) marks nothing: the next step runs fused as it would without it (an unfused
        step draws other dropout masks), and a Fabric or plain loop's state is read again at each ``epoch=``.

        Args:
            mode: training mode (``True``) or evaluation mode (``False``).
        """
        trainer = self.__dict__.get("_trainer")
        if not mode and self.__dict__.get("_carried") == () and trainer is not None and trainer.validating:
            self._carried = None
        return super().train(mode)

    @override
    def on_fit_end(self) -> None:
        self._setup_records.clear()  # kept for the fit after a tuner's search, which exits before its fit's end

    @override
    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        save_entry(checkpoint, self.terms, self._setup_done, self._restored_terms, self.model if self._wraps else None)

    @override
    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self._restored_terms, self._checkpoint_terms = restored_terms(checkpoint)  # applied at the next `on_train_start`
        self._setup_done = False

    @override
    def configure_optimizers(self) -> Any:
        """Adam at ``lr`` over the model's parameters (``eps`` 1e-4 over float16 weights, ``"16-true"``, where torch's
        1e-8 is 0: :func:`~lightning_causal._optimizers.adam_eps`). Beside a finetuning callback of Lightning (``BackboneFinetuning``,
        any ``BaseFinetuning``), over those that require gradients (all of them where none does), as Lightning asks of
        such a module: the parameters it froze join when it unfreezes them, as a param group of its own at its learning
        rate (already in the optimizer, it skipped them with a warning and they trained at ``lr``). Without one, over all
        of them, as Lightning's usual ``Adam(self.parameters())``: a parameter frozen at the start and unfrozen by your
        own code trains once unfrozen. A model holding an ``nn.Embedding`` or ``nn.EmbeddingBag`` built with
        ``sparse=True`` whose weight trains is refused (``MisconfigurationException`` naming them and the way): Adam
        takes no sparse gradient, and the fit stopped at its first step on torch's error, which pointed to
        ``SparseAdam`` that this method cannot be told to use; a frozen one (``requires_grad=False``: the id table
        kept, the head repaired) gives no gradient and trains as any frozen parameter, unless a finetuning callback
        is there to unfreeze it."""
        callbacks = self._trainer.callbacks if self._trainer is not None else []
        finetuning = any(isinstance(callback, BaseFinetuning) for callback in callbacks)
        _refuse_sparse_embeddings(self.model, finetuning)
        params = list(self.model.parameters())
        if finetuning:
            params = [p for p in params if p.requires_grad] or params
        return torch.optim.Adam(params, lr=self.lr, eps=adam_eps(params))  # float16 weights: 1e-4, torch's 1e-8 is 0


def _refuse_sparse_embeddings(model: nn.Module, finetuning: bool) -> None:
    """Refuse, before the first step, a model whose embeddings give sparse gradients to the default Adam (a
    recommender's ``nn.Embedding(50_000, 16, sparse=True)``), naming them and the way: two optimizers under manual
    optimization, as the class docstring describes it. A frozen one gives none (unless ``finetuning``, a
    ``BaseFinetuning`` callback, may unfreeze it into Adam)."""
    sparse = [name or type(model).__name__ for name, m in model.named_modules()
              if isinstance(m, (nn.Embedding, nn.EmbeddingBag)) and m.sparse
              and (finetuning or not isinstance(m.weight, torch.Tensor) or m.weight.requires_grad)]
    if sparse:
        raise MisconfigurationException(
            f"CausalRepairModule's optimizer, Adam over every parameter, takes no sparse gradient, which the model's "
            f"embeddings built with sparse=True give: {sparse[:4]}. Subclass CausalRepairModule with "
            "`automatic_optimization = False`, a `configure_optimizers` returning [torch.optim.SparseAdam(<their "
            "weights>), torch.optim.Adam(<the other parameters>)] and a `training_step` that zeroes both, runs "
            "`total, logs = self.objective(batch, batch_idx)`, `self.manual_backward(total)` and steps both; or build "
            "the embeddings with sparse=False (dense gradients of the whole table)")


def _check_terms_explain(terms: Sequence[RepairTerm], explain: int | str) -> None:
    """Refuse, with ``explain``, the terms that cannot act on one input beside the others passed by row: a term
    that reads training inputs at set-up (``needs_train_inputs``: they would come without the other inputs) and a
    term whose loss makes rows of its own (``makes_own_rows``: :class:`~lightning_causal.repair.backdoor.BackdoorSuppressionTerm`'s
    stamped and augmented copies, which the other inputs cannot follow)."""
    for term in terms:
        why = one_input_only(term)
        if why is not None:
            raise MisconfigurationException(
                f"Expected terms that act on one input beside the others for argument `explain` ({explain!r}) but term "
                f"{term.name!r} ({type(term).__name__}) cannot: {why}. Leave `explain=None` and {ONE_INPUT_FIX}")
