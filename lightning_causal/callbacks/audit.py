"""CausalAuditCallback: causal audits of the model on an epoch schedule.

An audit epoch's run (the audits, the report, the scalars and the TensorBoard content) is in
``_audit_run.py`` (:class:`~lightning_causal.callbacks._audit_run.AuditRun`, a mixin)."""

from __future__ import annotations

import contextlib
import copy
import os
import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from typing_extensions import override

from lightning_causal._console import console_line
from lightning_causal._user_warnings import warn_at_users_line
from lightning_causal.audits.base import Audit, AuditResult, Probe
from lightning_causal.audits.group_regions import figure_axes
from lightning_causal.batches import UnpackBatch
from lightning_causal.callbacks._audit_options import (
    OnError,
    check_audit_options,
    share_class_names,
)
from lightning_causal.callbacks._audit_run import AuditRun
from lightning_causal.callbacks._explain import check_explain
from lightning_causal.callbacks._fit_checks import (
    averaging_callbacks,
    buffers_written,
    check_names_across_callbacks,
    check_unsharded_parameters,
    quiet_sync_dist_advice,
    swa_batch_norm_epoch,
    warn_averaging_before,
    warn_changed_after_audit,
    warn_endless_epochs,
    warn_no_training,
    weight_sums,
)
from lightning_causal.callbacks._probe import (
    note_cut_probe,
    probe_from,
    probe_source,
    validation_data,
)
from lightning_causal.callbacks._probe_setup import (
    NEVER_CALLED_LAZY,
    checked_probe,
    unbuilt_lazy_modules,
)
from lightning_causal.callbacks._report_dir import (
    check_report_dir,
    report_tag,
    resolved_report_dir,
    same_directory,
    warn_earlier_reports,
)
from lightning_causal.callbacks._resume import (
    probe_summary,
    unclaimed_audit_state,
    warn_other_probe,
)
from lightning_causal.callbacks._schedule import scheduled, warn_nothing_scheduled
from lightning_causal.callbacks._trainer_facts import (
    audited,
    ended_at_last_batch,
    saved_in_epoch_end,
)
from lightning_causal.callbacks._trainer_only import check_trainer
from lightning_causal.callbacks._warnings import WarningsOncePerFit
from lightning_causal.causal.engine.checks import check_int
from lightning_causal.reporting.figure_kinds import FigureKind
from lightning_causal.reporting.image_figures import ImageOrigin, check_origin
from lightning_causal.reporting.tensorboard import TensorBoardRenderer

__all__ = ["CausalAuditCallback", "audit_seconds_tag"]

AUDIT_SECONDS = "causal/audit_seconds"


class CausalAuditCallback(AuditRun, Callback):
    r"""Run causal audits of the model after validation, on an epoch schedule.

    Each audit epoch, every audit explains the model on a fixed probe set. Scalars
    ``causal/<audit>/<metric>`` go to ``trainer.callback_metrics`` (monitored on any schedule by
    :class:`~lightning_causal.callbacks.monitoring.AuditEarlyStopping` and ``AuditModelCheckpoint``)
    and to every logger (other than TensorBoard, with an ``epoch`` value, as Lightning's own rows);
    rich content (histograms, maps drawn by kind of data, figures, a compact text card, a
    custom-scalars layout) goes to the ``TensorBoardLogger``, all at the step of that
    epoch's end (that of its ``val_loss`` where validation ends the epoch); one JSON report per audit epoch goes to ``report_dir``.
    The audits' wall time is ``causal/audit_seconds``; a later audit callback of the same Trainer logs its
    own, ``causal/audit_seconds_<its audits' names>`` (:func:`audit_seconds_tag`). Warnings raised
    inside the audits (e.g. by Captum) show once per fit. From the second audit on, each audit also
    reports its causal drift (``drift/<vector>/{spearman,topk_jaccard,shift}``). The checkpoint
    state (plain values and tensors: audited epochs, drift vectors, each audit's ``state_dict()``)
    lets a resumed run neither audit an epoch twice nor lose the comparisons with the last audit (an epoch
    whose end a checkpoint of its last batch skips, or one written in its ``on_train_epoch_end`` before its audit
    was recorded (``OnExceptionCheckpoint`` when an audit raised: an audit epoch that raises gives back the drift
    bases it started from), is audited when the fit resumes, on its end weights; the last epoch of a finished
    training cannot be, as the resumed fit trains nothing, and a warning says so at its end);
    the extra audit at the end of fit is compared with the last scheduled one but is no base for
    later ones (a fit resumed from a checkpoint saved after it goes on as the uninterrupted fit). A fit resumed
    with a changed set of audits restores that state for the audits of the same name, with a warning.

    An audit leaves no trace on training: it runs in eval mode with every submodule's mode, the
    parameters' ``requires_grad`` and ``.grad``, all buffers and the global RNG states restored.
    Each audit starts from the global generators seeded with 0 (``_no_trace.AUDIT_SEED``): a model
    that draws noise in eval mode (MC dropout kept on) draws the same noise at every audit of the
    same weights, whatever training drew before.

    Args:
        audits: the :class:`~lightning_causal.audits.Audit` objects to run (a sequence, or one audit alone), with distinct names. Several
            callbacks on one trainer hold audits of different names (``name=``; one name in two callbacks is
            refused at set-up, as their scalars and drift would mix in one series): the names make the
            checkpoint's ``state_key`` (Lightning refuses two callbacks of one key), the tags and the report names. Callbacks
            whose audits have the same names, one audit object given to both included, meet Lightning's "Found more than one
            stateful callback of type `CausalAuditCallback`" at ``Trainer(...)``, before the callback's own check can name
            them: give each callback audit objects of its own, named apart (``InputEffectAudit(..., name="input_effect_2")``).
        probe: a :class:`~lightning_causal.audits.Probe`, a tensor, a batch nested like the training batches
            (``(inputs, labels)``, ``((x1, x2), y)``, a mapping, a dataclass), a ``Dataset``, a list of samples (as
            ``DataLoader(samples)`` takes them: dicts, or tuples with 0-dim labels) or a ``DataLoader``; ``None``
            takes the first ``probe_size`` samples of the validation data (requested at the start of fit also when the
            first epoch does not validate, its random draws undone, and requested again by the fit when it first
            validates; else, in a fit without validation, the training data),
            on the indices its sampler draws from when the sampler selects part of the dataset (a
            ``WeightedRandomSampler``: the samples of non-zero weight, in dataset order; a dataset that augments
            at random draws from the global generators seeded with 0, as the audits, so every fit, resumed or not,
            explains the same probe); of
            several validation dataloaders, the first (``probe_origin`` and each report's
            ``probe.source`` name it: ``"val_dataloaders[0] of 2"``). NumPy arrays in a batch are read as tensors (a
            replay buffer's sampled ``(states, actions, ...)``). Data of an ``IterableDataset`` (a stream: a replay
            buffer's, with no validation data) has no samples to read by index: the fit stops at set-up asking for
            ``probe=``.
        probe_size: number of probe samples: the first ``probe_size`` of a ``probe`` given as well (a tensor or
            batch of more samples is cut to them, and set-up says so; ``probe_size=len(x)`` audits them all).
        every_n_epochs: audit every n-th epoch (epochs ``n-1, 2n-1, ...``), or a callable
            ``epoch -> bool``: training epochs, audited at their end whether they validate or not
            (``check_val_every_n_epoch``), once however often they validate (``val_check_interval``); an epoch
            cut by ``max_steps`` or early stopping is the last one (a training dataloader without a length: at most one
            audit, at the end of fit, with a warning). A callable must take the epoch as its one positional argument
            (checked here) and return one truth value (a tensor of several elements stops the fit naming the epoch).
        epochs: explicit epochs to audit, 0-based (an iterable of non-negative ints: ``[0, 4, 9]``, ``range(0, 30, 5)``;
            overrides ``every_n_epochs``).
        on_fit_end: also audit the last epoch when training ends (``on_train_end``, while the model is still
            on its training device) if the schedule skipped it; not after an exception or interrupt. With ``False``, a
            schedule of no epoch below ``max_epochs`` (``epochs=[]``) audits nothing, and set-up warns.
        max_batch_size: rows per forward pass of the interventions (default: memory budget).
        report_dir: where JSON reports go (default ``<log_dir>/causal_audit``: the first logger's ``log_dir``
            (``trainer.log_dir``) for a ``TensorBoardLogger`` or ``CSVLogger``, ``default_root_dir`` with
            ``logger=False``, and for another logger (MLflow's, W&B's, your own) ``<save_dir>/<name>/<version>``, where
            ``ModelCheckpoint`` puts its ``checkpoints/``; none under
            ``fast_dev_run``, which writes no logs, unless ``report_dir`` is given): ``epoch_0003.json``;
            a later audit callback of the trainer writing to the same directory names its reports
            after its audits (``epoch_0003_sobol+layer_map.json``), so that neither replaces the other's. Reports
            already there of the epochs this fit may audit (an earlier run's) are named in a warning before training.
        on_error: ``"raise"`` (stop training, naming the audit, its error chained; an error of running out of
            memory also names the ``max_batch_size`` to try) or ``"warn"`` (log and continue:
            a failed audit logs ``causal/<name>/failed`` = 1 and its error in the report, the other
            audits of the epoch their results, and the epoch is audited; an epoch whose report could not
            be written is recorded in ``failed_epochs``, not audited; a logger's or the drawing's error after
            the report (a full disk under TensorBoard) is said, the epoch audited). ``"raise"`` stops there too,
            naming what was being logged, the epoch left unrecorded (a resumed fit audits it again).
        unpack_batch: ``batch -> (inputs, labels, additional_forward_args)`` for the probe data
            (default: :func:`~lightning_causal.batches.default_unpack_batch`: a tensor, ``(x, y)``,
            or a mapping with ``x``/``input_ids``/... and ``y``/``labels``/...).
        figure_kind: how maps are drawn in TensorBoard (``"frames"``, ``"image"``, ``"points"``, ``"sequence"``,
            ``"sequence_features_last"``, ``"tabular"``, ``"tokens"``); ``None``: from the probe's shape
            (:func:`~lightning_causal.reporting.figure_kinds.infer_kind`). ``"sequence_features_last"``
            draws ``[N, T, F]`` along ``T`` whatever its shape (``"sequence"`` reads ``[N, A, B]`` as
            ``[N, C, T]`` unless ``A >= 4 B``); a sequence kind draws ``[N, T]`` along ``T`` in every
            audit (Sobol' maps and counterfactuals included). ``"points"`` (never inferred) scatters the
            points of a point cloud ``[N, P, 3]`` in space, each coloured by its score, and the audits name its groups'
            points ``points`` (:func:`~lightning_causal.audits.group_regions.point_clouds`); ``"frames"`` (never
            inferred) every frame of a video ``[N, C, T, H, W]`` (``"image"``: its frame of largest effect), and
            the audits then name its groups' frames ``frames`` in their rows, Sobol' tags, the text card and the report
            (:func:`~lightning_causal.audits.group_regions.video_clips`; a volume's ``depth`` otherwise).
        image_origin: where row 0 of an image is drawn in TensorBoard under the ``"image"`` and ``"frames"`` kinds (each
            frame of a video): ``"upper"`` (default)
            at the top, as a photograph; ``"lower"`` at the bottom, as audio tools draw a spectrogram ``[N, 1, F, T]``
            (``librosa.display.specshow``: the lowest frequency below). The input, every map and the counterfactuals
            of every audit are drawn alike; the text card and the report keep the data's row indices (``rows 10–14``:
            frequency bins 10 to 14). Not ``"upper"`` or ``"lower"``: ``MisconfigurationException``.
        explain: for a model of several inputs (``forward(self, image, tab)``, batches ``((image, tab), y)``), the input
            the audits of one input tensor explain: its position in the probe's inputs tuple (``1``) or the name of
            ``forward``'s parameter (``"tab"``). Those audits (``InputEffectAudit``, ``CaptumBaseline``,
            ``LayerMapAudit``, ``CounterfactualAudit``, ``FairnessAudit``, an audit of your own) get that input alone
            and the model called with every other input in its own place, passed along as per-sample forward arguments
            (:func:`~lightning_causal.causal.engine.chosen_input.chosen_input`; module names stay the model's, and the
            maps are drawn beside that input). The audits of every input (``UnitImportanceAudit``,
            ``CausalGraphAudit``: :attr:`~lightning_causal.audits.base.Audit.takes_every_input`) explain the whole
            probe as without it. ``SobolAudit`` draws new inputs that the others cannot follow, and is still
            refused. Checked at set-up against the probe (a probe of one input, a position out of range, a name
            that is not one of ``forward``'s parameters taking an input: ``MisconfigurationException``).
            ``None`` (default): the probe as it is (an audit of one input refuses a probe of several).
        class_names: one name per class of the model, given to every audit that takes ``class_names`` and was given
            none (``InputEffectAudit``, ``CaptumBaseline``, ``SobolAudit``, ``CounterfactualAudit``,
            ``CausalGraphAudit``, ``BackdoorAudit``: titles, tables and tags then name the classes,
            ``P(class 'benign')``), so that they need not be repeated per audit; an audit's own ``class_names``
            is kept. The audits are changed in place (``audit.class_names``).
        figures_every_n_audits: draw the TensorBoard figures and images (maps, bars, graphs, curves, intervals) at
            the first audit, every n-th after it and the fit's last (drawn when training ends, at that audit's step,
            where the count left it out: ``max_epochs``, early stopping, ``max_steps``); scalars, histograms, the text card and
            the JSON report at every audit. In a long run the figures are nearly all of the event file and their
            drawing can outlast the audits (docs/recipes.md, "In TensorBoard"). Default 1: every audit.

    Before the first training step (``on_train_start``), the probe is read, every audit is
    validated against the real model and run once on 2 probe samples (a dry run that leaves no
    trace), and ``report_dir`` is checked by writing a file: every misconfiguration raises
    there, naming the parameter, instead of after the first epochs. A callback used for another
    ``fit`` starts fresh (probe, schedule, report directory); ``copy.copy(callback)`` is a callback of its own
    (audits copied, its own renderer and state), which may share a Trainer with the original (given audits of other
    names).

    Audits run during ``trainer.fit`` only; ``trainer.validate``/``test`` with the callback audit
    nothing (a warning says so): :func:`~lightning_causal.callbacks.posthoc.audit_model` audits a trained
    model once, on the same probe. They explain ``pl_module`` (its ``forward``), or the network its property
    ``audited_module`` returns where it has one (a GAN whose ``forward`` is the generator: ``return
    self.discriminator``; ``CausalRepairModule.wrap`` names the wrapped module); layer names are that network's. Under mixed precision (``"bf16-mixed"``, ``"16-mixed"``) the audits
    run outside autocast, on the float32 weights (the numbers of ``audit.run`` called by hand); under
    ``"64-true"``/``"bf16-true"`` the probe (its inputs and floating forward arguments, as Lightning
    converts a training batch) is converted to the weights' dtype and the audits compute in it. A callback that changes the weights when training ends (``StochasticWeightAveraging``, ``EMAWeightAveraging``)
    does so after the last audit when it comes after this callback in ``callbacks=``: the reports explain the trained
    weights, not the averaged ones. Listed before it, it swaps the averaged weights in before the fit-end audit of a
    last epoch off the schedule (both run in ``on_train_end``, in the order of ``callbacks=``), which then explains
    them; a warning at set-up says so (for ``StochasticWeightAveraging`` only where the last epoch is off the schedule: it
    swaps only in a fit that reaches it; for none where every epoch is on it, ``every_n_epochs=1``: the epoch a fit ends
    in is audited at its end, with no fit-end audit). On a model with BatchNorm layers ``StochasticWeightAveraging`` adds an epoch after
    ``max_epochs`` that swaps the averaged weights in at its start and recomputes the BatchNorm statistics, training
    nothing: that epoch is not audited, and a fit-end audit of the last epoch comes after it in either order, explaining
    the averaged weights (set-up warns where the schedule leaves the last epoch to it).

    Raises:
        MisconfigurationException: for invalid arguments, at construction or before the first
            training step (unknown layers, empty probe, a probe the model rejects, an audit the
            dry run rejects, an unwritable ``report_dir``).

    Examples:
        >>> from lightning_causal.audits import InputEffectAudit
        >>> cb = CausalAuditCallback([InputEffectAudit(patch_size=2)], every_n_epochs=5)
        >>> cb.state_key
        "CausalAuditCallback{'audits': ['input_effect']}"
    """

    def __init__(
        self,
        audits: Audit | Sequence[Audit],
        probe: Any = None,
        probe_size: int = 256,
        every_n_epochs: int | Callable[[int], bool] = 1,
        *,
        epochs: Iterable[int] | None = None,
        on_fit_end: bool = True,
        max_batch_size: int | None = None,
        report_dir: str | os.PathLike | None = None,
        on_error: OnError = "raise",
        unpack_batch: UnpackBatch | None = None,
        figure_kind: FigureKind | None = None,
        image_origin: ImageOrigin = "upper",
        explain: int | str | None = None,
        class_names: Sequence[str] | None = None,
        figures_every_n_audits: int = 1,
    ) -> None:
        audits, epochs = check_audit_options(audits, probe_size, every_n_epochs, epochs, max_batch_size, report_dir,
                                             on_error, unpack_batch, figure_kind, on_fit_end=on_fit_end)
        check_origin(image_origin, error=MisconfigurationException)
        self.class_names = share_class_names(audits, class_names)
        check_int("figures_every_n_audits", figures_every_n_audits, minimum=1, error=MisconfigurationException)
        self.figures_every_n_audits = figures_every_n_audits
        self.explain = check_explain(explain)
        self._explained: int | None = None  # the position `explain` names in the probe's inputs (set-up)
        self.audits = audits
        self._probe_source = probe
        self.probe_size = probe_size
        self.every_n_epochs = every_n_epochs
        self.epochs = epochs
        self.on_fit_end_audit = on_fit_end
        self.max_batch_size = max_batch_size
        self._report_dir_given = os.fspath(report_dir) if report_dir is not None else None
        self.report_dir = self._report_dir_given
        self._report_tag = ""  # see _shared_report_tag
        self._seconds_tag = AUDIT_SECONDS  # see audit_seconds_tag
        self.on_error = on_error
        self.unpack_batch = unpack_batch
        self.probe: Probe | None = None
        self.probe_origin = ""  # where the probe was read: "probe", "val_dataloaders", "val_dataloaders[0] of 2", ...
        self.audited_epochs: list[int] = []
        self.failed_epochs: list[int] = []
        self.last_results: dict[str, AuditResult] = {}
        self.last_scalars: dict[str, float] = {}
        self.dry_run_tags: set[str] = set()  # the scalar tags of the dry run before training
        self._previous_vectors: dict[str, dict[str, torch.Tensor]] = {}
        self._checkpoint_probe: dict[str, Any] | None = None  # the probe of the audits a resumed fit compares with
        self._epoch_ended_in_checkpoint: int | None = None  # see _audit_epoch_ended_in_checkpoint
        self._state_restored = False  # see on_train_start
        self._train_started = False  # see on_fit_end
        self._unbuilt_probe: Probe | None = None  # read, checked after the first step: see on_train_start
        self._renderer = TensorBoardRenderer(figure_kind=figure_kind, image_origin=image_origin)
        self._warned_no_tb = False
        self._stops_said: set[int] = set()  # Lightning's EarlyStopping told of its stop at a NaN audit: see monitoring
        self._warnings = WarningsOncePerFit()
        self._fit_clock: float | None = None  # see AuditRun._run
        self._undrawn = None  # see AuditRun._draw_last
        self._audited_sums: tuple | None = None  # see on_train_epoch_start
        self._trained_sums: tuple | None = None  # see on_train_batch_end
        self._start_sums: tuple | None = None  # see on_train_epoch_start
        self._said_changed_after = False

    def __copy__(self) -> CausalAuditCallback:
        """``copy.copy(callback)``: a callback of the same configuration with its own audits (shallow copies of
        them, each reset as a fit resets it), renderer and state, as one built with the same arguments: two copies
        in one Trainer (one given other audits or renamed ones) keep their own text cards, warnings and schedule
        records. The probe given (``probe=``) and the callables are shared, as the arguments would be."""
        new = type(self).__new__(type(self))
        new.__dict__.update(self.__dict__)
        new.audits = [copy.copy(audit) for audit in self.audits]
        r = self._renderer
        new._renderer = TensorBoardRenderer(max_samples=r.max_samples, bar_top=r.bar_top, figure_kind=r.figure_kind,
                                            image_origin=r.image_origin)
        new._warnings = WarningsOncePerFit()
        new.report_dir, new._report_tag, new._seconds_tag = self._report_dir_given, "", AUDIT_SECONDS
        new._reset()
        return new

    @property
    @override
    def state_key(self) -> str:
        return self._generate_state_key(audits=[a.name for a in self.audits])

    # ------------------------------------------------------------------ schedule
    def should_audit(self, epoch: int) -> bool:
        """Whether ``epoch`` (0-based) is on the schedule and not audited yet.

        Args:
            epoch: the epoch (0-based).
        """
        if epoch in self.audited_epochs:
            return False
        if self.epochs is not None:
            return epoch in self.epochs
        if callable(self.every_n_epochs):
            return scheduled(self.every_n_epochs, epoch)
        return (epoch + 1) % self.every_n_epochs == 0

    # ------------------------------------------------------------------ hooks
    @override
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        check_trainer(trainer, "setup")
        if stage != "fit":
            if not self.audited_epochs:  # e.g. `trainer.validate(model)` with the callback: it would run no audit, silently
                warn_at_users_line(
                    "CausalAuditCallback runs its audits during `trainer.fit` only (at the end of training epochs); "
                    f"this `trainer.{getattr(stage, 'value', stage)}` run audits nothing. To audit a trained model (a loaded "
                    "checkpoint) once, as this callback would on its probe, call `lightning_causal.audit_model(model, "
                    "audits, datamodule_or_loader, probe_size=...)` (`writer=` and `report_dir=` for TensorBoard and "
                    "the JSON report)")
            return
        others = [cb.audits for cb in trainer.callbacks if isinstance(cb, CausalAuditCallback) and cb is not self]
        check_names_across_callbacks(self.audits, others)
        check_unsharded_parameters(trainer)
        self._reset()  # a new fit starts fresh; a resumed one reloads its state after setup
        self.report_dir = self._resolved_report_dir(trainer)
        self._report_tag = self._shared_report_tag(trainer)
        self._seconds_tag = audit_seconds_tag(self, trainer.callbacks)
        self._renderer.card = [cb for cb in trainer.callbacks if isinstance(cb, CausalAuditCallback)].index(self)
        if self.report_dir is not None:
            self._check_report_dir(trainer)
        if trainer.world_size > 1:
            quiet_sync_dist_advice()
        if self.on_fit_end_audit:
            warn_averaging_before(self, trainer)
        warn_nothing_scheduled(self.every_n_epochs, self.epochs, self.on_fit_end_audit, trainer)
        from lightning_causal.callbacks import monitoring  # imported here: it imports this module

        monitoring.advise_lightning_monitors(self, trainer)

    @override
    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        check_trainer(trainer, "on_train_start")
        self._train_started = True  # on_fit_end: a resumed fit of a finished training never gets here
        # weights an averaging callback copies in change after the audits by design (warned of where it matters): the
        # weights-changed-after-an-audit check is off for the fit, and its readings skipped
        self._said_changed_after = bool(averaging_callbacks(trainer))
        warn_earlier_reports(self.report_dir, self._report_tag, trainer)
        warn_endless_epochs(trainer)
        with validation_data(trainer) if self._probe_source is None else contextlib.nullcontext():
            source, self.probe_origin = probe_source(self._probe_source, trainer)
            if source is None:  # in no fit: Lightning skips training, this hook too, where the training data has no batch
                raise MisconfigurationException(
                    "CausalAuditCallback found no data to read its probe from at the training's start (no `probe=`, no "
                    "validation or training dataloader on the Trainer): pass `probe=` the samples to explain")
            probe = probe_from(source, self.probe_size, self.unpack_batch, origin=self.probe_origin, model=pl_module)
            if self._probe_source is not None:
                note_cut_probe(source, probe, self.probe_size, trainer)
        if unbuilt_lazy_modules(pl_module):
            # a lazy module (nn.LazyLinear) that the first training step builds: built by the checks' pass it drew its
            # weights from the audits' seeded generators, not training's, and the fit differed from one without the
            # callback; its probe is checked after that step (the dry runs leave no trace)
            self._unbuilt_probe = probe
            console_line(trainer, f"CausalAuditCallback checks its probe after the first training step: the model's lazy "
                                  f"modules ({', '.join(unbuilt_lazy_modules(pl_module)[:3])}) are built by that step")
        else:
            self._checked(probe, trainer, pl_module)
        last = trainer.current_epoch - 1  # see _audit_epoch_ended_in_checkpoint
        # a checkpoint of the epoch's end skipped its audit only where it holds this callback's state (of other audits, that
        # epoch was another callback's to audit, and its report would be replaced)
        skipped = ended_at_last_batch(trainer) or (saved_in_epoch_end(trainer) and self._state_restored)
        if skipped and last >= 0 and last not in self.failed_epochs and self.should_audit(last):
            self._epoch_ended_in_checkpoint = last
        self._fit_clock = time.perf_counter()  # the first audit's cost is set against the training before it

    @override
    def on_fit_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """A fit resumed from a checkpoint of a finished training runs no training and none of the hooks that audit: its
        last epoch, scheduled but not audited in the checkpoint (an ``OnExceptionCheckpoint`` written when that
        epoch's audit raised, a checkpoint of its last batch), stays unaudited; a warning says so and what audits it.
        A fresh fit that ran no training step (``limit_train_batches=0``, a training dataloader of no batch) audited
        nothing, fit-end audit included (it audits the last trained epoch): a warning says why
        (:func:`~lightning_causal.callbacks._fit_checks.warn_no_training`).

        Args:
            trainer: the Lightning ``Trainer`` running the fit.
            pl_module: the ``LightningModule`` being trained.
        """
        check_trainer(trainer, "on_fit_end")
        if self._train_started or trainer.interrupted:
            return
        if not self._state_restored:  # a fresh fit that ran no training step: nothing read, nothing audited
            warn_no_training(trainer)
            return
        last = trainer.current_epoch - 1
        if last >= 0 and last not in self.failed_epochs and self.should_audit(last):
            warn_at_users_line(
                f"CausalAuditCallback did not audit epoch {last}: this fit resumed from a checkpoint of a finished training, so "
                "Lightning ran no training and no hook that audits, and the "
                f"checkpoint holds no audit of that epoch (written before it: an audit that raised, `OnExceptionCheckpoint`, "
                f"or a checkpoint of its last batch). Audit the checkpoint's weights with `lightning_causal.audit_model(model, "
                f"audits, data, epoch={last})`, or resume with a larger `max_epochs`/`max_steps` (the callback then audits epoch {last} "
                "first)")

    def _checked(self, probe: Probe, trainer: Trainer, pl_module: LightningModule) -> None:
        """The probe checked by a forward pass and every audit's dry run (a resumed fit's other probe warned of, the
        monitors of audit scalars checked), before the first audit: at the training's start, or after its first step
        where that step builds the model's lazy modules."""
        self._set_probe(probe, trainer, pl_module)
        self._check_resumed_probe()
        from lightning_causal.callbacks import monitoring  # imported here: it imports this module

        monitoring.check_monitors_after_dry_run(self, trainer)

    @override
    def on_train_batch_end(self, trainer: Trainer, pl_module: LightningModule, outputs: Any, batch: Any, batch_idx: int) -> None:
        """The probe's checks left for after the first training step, which built the model's lazy modules; at the last
        batch of an epoch to be audited, the weights its step made (``weight_sums``, read by ``on_train_epoch_start``).

        Args:
            trainer: the Lightning ``Trainer`` running the fit.
            pl_module: the ``LightningModule`` being trained.
            outputs: what ``training_step`` returned.
            batch: the training batch.
            batch_idx: its index.
        """
        if self._unbuilt_probe is not None:  # after the first step, built or not (a module training does not call)
            probe, self._unbuilt_probe = self._unbuilt_probe, None
            lazy = unbuilt_lazy_modules(pl_module)
            if lazy:  # the checks' passes would stop on torch's 'Attempted to use an uninitialized parameter'
                raise MisconfigurationException(
                    f"CausalAuditCallback cannot audit a model holding lazy modules that its first training step did "
                    f"not build ({', '.join(lazy[:3])}): {NEVER_CALLED_LAZY}")
            self._checked(probe, trainer, pl_module)
        if getattr(trainer, "is_last_batch", False) and not self._said_changed_after and self.should_audit(trainer.current_epoch):
            self._trained_sums = weight_sums(audited(pl_module))  # the weights the epoch's last step made

    @override
    def on_train_batch_start(self, trainer: Trainer, pl_module: LightningModule, batch: Any, batch_idx: int) -> None:
        self._audit_epoch_ended_in_checkpoint(trainer, pl_module)

    def _audit_epoch_ended_in_checkpoint(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """A fit resumed from a checkpoint written after the last batch of epoch ``e`` but before that epoch's
        end (``ModelCheckpoint(every_n_train_steps=N)`` at its last batch) starts at epoch ``e + 1``: Lightning
        calls no ``on_train_epoch_end`` for ``e``. The restored weights are those of ``e``'s end, so ``e``, if
        scheduled and not audited, is audited before the first resumed batch (when Lightning has set its logging
        step; at the end of the resumed epoch or fit if none runs) as in the uninterrupted fit (same report, same
        step), though it reaches no ``callback_metrics`` (no monitor of this fit reads it). Not the epoch
        ``StochasticWeightAveraging`` adds for a BatchNorm model's statistics (``swa_batch_norm_epoch``), which trains
        nothing and is not audited at its end either."""
        epoch, self._epoch_ended_in_checkpoint = self._epoch_ended_in_checkpoint, None
        if epoch is not None and self.should_audit(epoch) and not swa_batch_norm_epoch(trainer, epoch):
            self._fit_clock = None  # its training was the earlier run's: the cost line sets it against none of this one
            self._run(trainer, pl_module, epoch, "epoch_end", monitored=False)

    @override
    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        check_trainer(trainer, "on_train_epoch_end")
        if not trainer.sanity_checking:
            self._audit_epoch_ended_in_checkpoint(trainer, pl_module)  # a resumed epoch that ran no batch
        if trainer.sanity_checking or not self.should_audit(trainer.current_epoch):
            return
        if swa_batch_norm_epoch(trainer, trainer.current_epoch):  # StochasticWeightAveraging's: it trains nothing
            return
        if self._unbuilt_probe is not None:  # no training step yet (on_train_batch_start returned -1): nothing built
            lazy = ", ".join(unbuilt_lazy_modules(pl_module)[:3]) or "none left"
            warn_at_users_line(
                f"CausalAuditCallback did not audit epoch {trainer.current_epoch}: no training step ran before its end "
                f"(`on_train_batch_start` returned -1) to build the model's lazy modules ({lazy}), which the audits "
                "would build from their own seed, not training's; the first epoch that trains is audited as scheduled")
            return
        self._run(trainer, pl_module, trainer.current_epoch, "epoch_end")
        if not self._said_changed_after:  # read again where the next hook of no training step sees them
            module = audited(pl_module)
            self._audited_sums = (trainer.current_epoch, *weight_sums(module), self._trained_sums,
                                  buffers_written(self._start_sums, self._trained_sums, module))
        self._trained_sums = None
        from lightning_causal.callbacks import monitoring  # imported here: it imports this module

        monitoring.warn_lightning_non_finite_stops(self, trainer)  # Lightning's EarlyStopping stops silently at a NaN

    @override
    def on_train_epoch_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """Whether the weights the last epoch's audit explained changed before this epoch's first step
        (:func:`~lightning_causal.callbacks._fit_checks.warn_changed_after_audit`; said once per fit), and, for an epoch
        to be audited, the weights at its start, against which its last step tells the buffers training writes
        (:func:`~lightning_causal.callbacks._fit_checks.buffers_written`).

        Args:
            trainer: the Lightning ``Trainer`` running the fit.
            pl_module: the ``LightningModule`` being trained.
        """
        self._trained_sums = None
        # the weights now, read once: against the last audit's, and for an epoch to be audited the start against which
        # its last step tells the buffers its steps write (buffers_written): states the forward keeps, not weights
        audit_next = not self._said_changed_after and self.should_audit(trainer.current_epoch)
        now = weight_sums(audited(pl_module)) if audit_next or self._audited_sums is not None else None
        self._check_weights_after_audit(pl_module, f"at the start of epoch {trainer.current_epoch}", now)
        self._start_sums = now if audit_next and not self._said_changed_after else None

    def _check_weights_after_audit(self, pl_module: LightningModule, where: str, now: tuple | None = None) -> None:
        """:func:`~lightning_causal.callbacks._fit_checks.warn_changed_after_audit` of the weights the last audit read
        (``where``: when; ``now``: the weights' :func:`~lightning_causal.callbacks._fit_checks.weight_sums` where read),
        once per fit."""
        before, self._audited_sums = self._audited_sums, None
        if before is not None:
            self._said_changed_after = warn_changed_after_audit(before, audited(pl_module), where, now=now)

    @override
    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """The fit-end audit (``on_fit_end=True``) of a last epoch the schedule skipped, and the figures of the
        fit's last audit where ``figures_every_n_audits`` left them out. It runs here,
        when training ends normally, because Lightning calls ``on_fit_end`` after its strategy's
        teardown has moved the module off the training device (the probe stays there).

        Args:
            trainer: the Lightning ``Trainer`` running the fit.
            pl_module: the ``LightningModule`` being trained.
        """
        check_trainer(trainer, "on_train_end")
        self._check_weights_after_audit(pl_module, "at the end of training")
        self._audit_epoch_ended_in_checkpoint(trainer, pl_module)  # a resumed fit that ran no batch
        last = max(trainer.current_epoch - 1, 0)
        if swa_batch_norm_epoch(trainer, last):  # the fit's last epoch is the one before StochasticWeightAveraging's
            last -= 1
        if self.on_fit_end_audit and last not in self.audited_epochs and last not in self.failed_epochs and self.probe is not None:
            self._run(trainer, pl_module, last, "fit_end")
        self._draw_last()  # the last audit's figures, left out by figures_every_n_audits

    @override
    def teardown(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        """Drop ``log`` and ``log_dict``, the fitted module's bound methods that Lightning attaches to every
        callback at the start of a run: kept, they keep that module, its trainer and the optimizers' states alive
        as long as the callback (a sweep that reuses one callback or keeps each fit's for its ``last_scalars``,
        after ``del model, trainer``). The next run attaches its own.

        Args:
            trainer: the Lightning ``Trainer`` ending its run.
            pl_module: the ``LightningModule`` of that run.
            stage: ``"fit"``, ``"validate"``, ``"test"`` or ``"predict"``.
        """
        for name in ("log", "log_dict"):
            vars(self).pop(name, None)

    @override
    def state_dict(self) -> dict[str, Any]:
        audit_states = {a.name: state for a in self.audits if (state := a.state_dict())}
        return {
            "audited_epochs": list(self.audited_epochs),
            "failed_epochs": list(self.failed_epochs),
            "previous_vectors": {a: {k: v.detach().cpu() for k, v in vs.items()} for a, vs in self._previous_vectors.items()},
            "audit_states": audit_states,
            "probe": probe_summary(self.probe, self.probe_origin) if self.probe is not None else self._checkpoint_probe,
        }

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        mine = {a.name for a in self.audits}  # a removed audit's drift base is not carried into later checkpoints
        self.audited_epochs = [int(e) for e in state_dict.get("audited_epochs", [])]
        self.failed_epochs = [int(e) for e in state_dict.get("failed_epochs", [])]
        self._checkpoint_probe = state_dict.get("probe")
        self._state_restored = True
        self._previous_vectors = {a: dict(vs) for a, vs in state_dict.get("previous_vectors", {}).items() if a in mine}
        audit_states = state_dict.get("audit_states", {})
        for audit in self.audits:
            if audit.name in audit_states:
                audit.load_state_dict(audit_states[audit.name])

    @override
    def on_load_checkpoint(self, trainer: Trainer, pl_module: LightningModule, checkpoint: dict[str, Any]) -> None:
        """A fit resumed with a changed set of audits (one added, removed or renamed): the ``state_key``
        names the audits, so Lightning finds no state of this key and would restore nothing, silently
        (no drift at the first resumed audit, a ``SobolAudit`` re-choosing its class). When the
        checkpoint holds one audit callback's state that no callback of the trainer claims, and it has
        audits of this callback's names, it is restored here for them (schedule, drift bases, audit states), with a
        warning naming the audits that start fresh and those whose state is dropped.

        Args:
            trainer: the Lightning ``Trainer`` running the fit.
            pl_module: the ``LightningModule`` being trained.
            checkpoint: the loaded checkpoint dict (its ``"callbacks"`` entry holds the callbacks'
                states).
        """
        found = unclaimed_audit_state(self.state_key, f"{type(self).__qualname__}{{", [a.name for a in self.audits],
                                      trainer.callbacks, checkpoint.get("callbacks") or {})
        if found is not None:
            self.load_state_dict(found[0])
            warn_at_users_line(found[1])

    def _check_resumed_probe(self) -> None:
        """A fit resumed with another probe than the checkpoint's audits: a warning (:func:`warn_other_probe`),
        where drift bases or audit states were carried."""
        before, self._checkpoint_probe = self._checkpoint_probe, None
        if before is None or self.probe is None or not (self._previous_vectors or any(a.state_dict() for a in self.audits)):
            return
        warn_other_probe(before, probe_summary(self.probe, self.probe_origin))

    # ------------------------------------------------------------------ set-up
    def _reset(self) -> None:
        self.probe, self.probe_origin, self._explained = None, "", None
        self._epoch_ended_in_checkpoint = None
        self.audited_epochs, self.failed_epochs = [], []
        self.last_results, self.last_scalars, self._previous_vectors = {}, {}, {}
        self.dry_run_tags = set()
        self._checkpoint_probe = None
        self._state_restored = False  # load_state_dict sets it: a resumed fit's state of this callback
        self._train_started = False
        self._unbuilt_probe = None
        self._audited_sums = None  # (epoch, names, sums, trained, written): the weights an epoch's audit explained
        self._trained_sums = None  # (names, sums): the weights of the last step of an epoch to be audited
        self._start_sums = None  # (names, sums): the weights at the start of an epoch to be audited (buffers_written)
        self._said_changed_after = False
        self._warned_no_tb = False
        self._stops_said = set()
        self._fit_clock = None
        self._undrawn = None
        self._warnings.reset()
        self._renderer.reset()
        for audit in self.audits:  # each fit starts fresh: load_state_dict({}) resets an audit (Audit.load_state_dict)
            try:
                audit.load_state_dict({})
            except Exception as err:
                raise MisconfigurationException(
                    f"Audit {audit.name!r}: load_state_dict({{}}) raised {err!r}; the callback calls it with an empty dict at "
                    "the start of every fit to reset the audit, so read missing keys as a fresh start (`state.get(...)`)") from err

    def _resolved_report_dir(self, trainer: Trainer) -> str | None:
        """``report_dir`` as given, else ``<log_dir>/causal_audit`` (:func:`~lightning_causal.callbacks._report_dir.run_directory`;
        none under ``fast_dev_run``)."""
        return resolved_report_dir(self._report_dir_given, trainer)

    def _shared_report_tag(self, trainer: Trainer) -> str:
        """``""`` for the first audit callback of the trainer writing to this ``report_dir``; for a
        later one, its audits' names, which name its report files (``epoch_0003_<names>.json``):
        callbacks auditing the same epoch would otherwise replace each other's reports."""
        mine = self._resolved_report_dir(trainer)
        if mine is None:
            return ""
        sharing = [cb for cb in trainer.callbacks if isinstance(cb, CausalAuditCallback)
                   and same_directory(cb._resolved_report_dir(trainer), mine)]
        if not sharing or sharing[0] is self:
            return ""
        return report_tag(self.audits)

    def _check_report_dir(self, trainer: Trainer) -> None:
        """Write and remove a file in ``report_dir`` on rank 0; every rank learns the outcome (:func:`check_report_dir`:
        not writable, it raises, or with ``on_error="warn"`` the reports are skipped)."""
        self.report_dir = check_report_dir(self.report_dir, self.on_error, trainer)  # type: ignore[arg-type]

    def _set_probe(self, probe: Probe, trainer: Trainer, pl_module: LightningModule) -> None:
        with figure_axes(self._renderer.figure_kind):  # the dry run's tags are the audits' (frames_0-3, points_4-4)
            self.probe, self.dry_run_tags, self._explained = checked_probe(self.audits, probe, self.probe_origin, trainer,
                                                                           pl_module, self._warnings, explain=self.explain)


def audit_seconds_tag(callback: CausalAuditCallback, callbacks: Iterable[Any]) -> str:
    """The tag of ``callback``'s audit time among a Trainer's ``callbacks``: ``causal/audit_seconds`` for
    the first :class:`CausalAuditCallback`, ``causal/audit_seconds_<its audits' names>`` (the names that
    tag its report files, joined by ``+``) for each later one. One tag for all overwrote the first
    callback's time with the second's where both audit an epoch (one step), and mixed them in one
    series where they do not.

    Args:
        callback: the audit callback.
        callbacks: the Trainer's callbacks, in order.

    Examples:
        >>> from lightning_causal.audits import InputEffectAudit, SobolAudit
        >>> first, second = CausalAuditCallback([InputEffectAudit()]), CausalAuditCallback([SobolAudit(), InputEffectAudit(name="ie")])
        >>> audit_seconds_tag(first, [first, second]), audit_seconds_tag(second, [first, second])
        ('causal/audit_seconds', 'causal/audit_seconds_sobol+ie')
    """
    audit_callbacks = [cb for cb in callbacks if isinstance(cb, CausalAuditCallback)]
    if not audit_callbacks or audit_callbacks[0] is callback:
        return AUDIT_SECONDS
    return f"{AUDIT_SECONDS}_{report_tag(callback.audits)}"
