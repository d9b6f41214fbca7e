"""CausalAuditCallback: causal audits of the model on an epoch schedule."""

from __future__ import annotations

import ast
import contextlib
import os
import re
import time
import warnings
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import torch
from lightning.pytorch import Callback, LightningModule, Trainer
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities import rank_zero_info, rank_zero_warn
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from lightning.pytorch.utilities.warnings import PossibleUserWarning
from typing_extensions import override

from lightning_causal.audits.base import Audit, AuditResult, Probe
from lightning_causal.audits.drift import vector_drift
from lightning_causal.batches import UnpackBatch
from lightning_causal.callbacks._no_trace import audit_seed, no_trace
from lightning_causal.callbacks._probe import (
    call_hint,
    check_finite_probe,
    probe_from,
    trainer_data,
    validation_data,
)
from lightning_causal.callbacks._warnings import WarningsOncePerFit
from lightning_causal.causal.engine.batching import (
    PeerFailure,
    RowShard,
    current_shard,
    settle_shards,
    sharded_rows,
)
from lightning_causal.causal.engine.checks import check_class_labels, check_int
from lightning_causal.causal.engine.forward import Forward, dtype_hint, select_output
from lightning_causal.reporting.figure_kinds import KINDS
from lightning_causal.reporting.json_report import report_path, try_write_probe_file, write_report
from lightning_causal.reporting.tensorboard import TensorBoardRenderer, scalar_tags

__all__ = ["CausalAuditCallback"]

_ON_ERROR = ("raise", "warn")


class CausalAuditCallback(Callback):
    r"""Run causal audits of the model after validation, on an epoch schedule.

    Each audit epoch, every audit explains the model on a fixed probe set. Scalars
    ``causal/<audit>/<metric>`` go to ``trainer.callback_metrics`` (monitored on any schedule by
    :class:`~lightning_causal.callbacks.monitoring.AuditEarlyStopping` and ``AuditModelCheckpoint``)
    and to every logger (other than TensorBoard, with an ``epoch`` value, as Lightning's own rows);
    rich content (histograms, maps drawn by kind of data, figures, a compact text card, a
    custom-scalars layout) goes to the ``TensorBoardLogger``, all at the step of that
    epoch's end (that of its ``val_loss`` where validation ends the epoch); one JSON report per audit epoch goes to ``report_dir``. Warnings raised
    inside the audits (e.g. by Captum) show once per fit. From the second audit on, each audit also
    reports its causal drift (``drift/<vector>/{spearman,topk_jaccard,shift}``). The checkpoint
    state (plain values and tensors: audited epochs, drift vectors, each audit's ``state_dict()``)
    lets a resumed run neither audit an epoch twice nor lose the comparisons with the last audit;
    the extra audit at the end of fit is compared with the last scheduled one but is no base for
    later ones (a fit resumed from a checkpoint saved after it goes on as the uninterrupted fit). A fit resumed
    with a changed set of audits restores that state for the audits of the same name, with a warning.

    An audit leaves no trace on training: it runs in eval mode with every submodule's mode, the
    parameters' ``requires_grad`` and ``.grad``, all buffers and the global RNG states restored.
    Each audit starts from the global generators seeded with 0 (``_no_trace.AUDIT_SEED``): a model
    that draws noise in eval mode (MC dropout kept on) draws the same noise at every audit of the
    same weights, whatever training drew before.

    Args:
        audits: the :class:`~lightning_causal.audits.Audit` objects to run, with distinct names. Several
            callbacks on one trainer hold audits of different names (``name=``; one name in two callbacks is
            refused at set-up, as their scalars and drift would mix in one series): the names make the
            checkpoint's ``state_key`` (Lightning refuses two callbacks of one key), the tags and the report names.
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
            ``probe.source`` name it: ``"val_dataloaders[0] of 2"``).
        probe_size: number of probe samples.
        every_n_epochs: audit every n-th epoch (epochs ``n-1, 2n-1, ...``), or a callable
            ``epoch -> bool``: training epochs, audited at their end whether they validate or not
            (``check_val_every_n_epoch``), once however often they validate (``val_check_interval``); an epoch
            cut by ``max_steps`` or early stopping is the last one (a training dataloader without a length: at most one
            audit, at the end of fit, with a warning).
        epochs: explicit epochs to audit (overrides ``every_n_epochs``).
        on_fit_end: also audit the last epoch when training ends (``on_train_end``, while the model is still
            on its training device) if the schedule skipped it; not after an exception or interrupt.
        max_batch_size: rows per forward pass of the interventions (default: memory budget).
        report_dir: where JSON reports go (default ``<log_dir>/causal_audit``; none under
            ``fast_dev_run``, which writes no logs, unless ``report_dir`` is given): ``epoch_0003.json``;
            a later audit callback of the trainer writing to the same directory names its reports
            after its audits (``epoch_0003_sobol+layer_map.json``), so that neither replaces the other's. Reports
            already there of the epochs this fit may audit (an earlier run's) are named in a warning before training.
        on_error: ``"raise"`` (stop training, naming the audit) or ``"warn"`` (log and continue:
            a failed audit logs ``causal/<name>/failed`` = 1 and its error in the report, the other
            audits of the epoch their results, and the epoch is audited; an epoch whose report could not
            be written is recorded in ``failed_epochs``, not audited).
        unpack_batch: ``batch -> (inputs, labels, additional_forward_args)`` for the probe data
            (default: :func:`~lightning_causal.batches.default_unpack_batch`: a tensor, ``(x, y)``,
            or a mapping with ``x``/``input_ids``/... and ``y``/``labels``/...).
        figure_kind: how maps are drawn in TensorBoard (``"image"``, ``"sequence"``,
            ``"sequence_features_last"``, ``"tabular"``, ``"tokens"``); ``None``: from the probe's shape
            (:func:`~lightning_causal.reporting.figure_kinds.infer_kind`). ``"sequence_features_last"``
            draws ``[N, T, F]`` along ``T`` whatever its shape (``"sequence"`` reads ``[N, A, B]`` as
            ``[N, C, T]`` unless ``A >= 4 B``); a sequence kind draws ``[N, T]`` along ``T`` in every
            audit (Sobol' maps and counterfactuals included).

    Before the first training step (``on_train_start``), the probe is read, every audit is
    validated against the real model and run once on 2 probe samples (a dry run that leaves no
    trace), and ``report_dir`` is checked by writing a file: every misconfiguration raises
    there, naming the parameter, instead of after the first epochs. A callback used for another
    ``fit`` starts fresh (probe, schedule, report directory).

    Audits run during ``trainer.fit`` only; ``trainer.validate``/``test`` with the callback audit
    nothing (a warning says so). Under mixed precision (``"bf16-mixed"``, ``"16-mixed"``) the audits
    run outside autocast, on the float32 weights (the numbers of ``audit.run`` called by hand); under
    ``"64-true"``/``"bf16-true"`` the probe (its inputs and floating forward arguments, as Lightning
    converts a training batch) is converted to the weights' dtype and the audits compute in it. A callback that changes the weights when training ends (``StochasticWeightAveraging``, ``EMAWeightAveraging``)
    does so after the last audit when it comes after this callback in ``callbacks=``: the reports explain the trained
    weights, not the averaged ones. Listed before it, it swaps the averaged weights in before the fit-end audit of a
    last epoch off the schedule (both run in ``on_train_end``, in the order of ``callbacks=``), which then explains
    them; a warning at set-up says so.

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
        audits: Sequence[Audit],
        probe: Any = None,
        probe_size: int = 256,
        every_n_epochs: int | Callable[[int], bool] = 1,
        *,
        epochs: Iterable[int] | None = None,
        on_fit_end: bool = True,
        max_batch_size: int | None = None,
        report_dir: str | os.PathLike | None = None,
        on_error: str = "raise",
        unpack_batch: UnpackBatch | None = None,
        figure_kind: str | None = None,
    ) -> None:
        if isinstance(audits, Audit):
            audits = [audits]
        audits = list(audits) if isinstance(audits, (list, tuple)) else audits
        if not isinstance(audits, list) or not audits:
            raise MisconfigurationException(f"Expected argument `audits` to be a non-empty list of Audit objects but got {audits!r}")
        bad = [a for a in audits if not isinstance(a, Audit)]
        if bad:
            raise MisconfigurationException(
                f"Expected argument `audits` to hold Audit objects but got {[type(b).__name__ for b in bad]}"
            )
        names = [a.name for a in audits]
        if len(set(names)) != len(names):
            raise MisconfigurationException(f"Expected audits with distinct names but got {names}; pass `name=` to tell them apart")
        check_int("probe_size", probe_size, minimum=1, error=MisconfigurationException)
        if not callable(every_n_epochs) and (
            isinstance(every_n_epochs, bool) or not isinstance(every_n_epochs, int) or every_n_epochs < 1
        ):
            raise MisconfigurationException(
                f"Expected argument `every_n_epochs` to be an int >= 1 or a callable of the epoch but got {every_n_epochs!r}"
            )
        if epochs is not None:
            epochs = sorted(set(epochs))
            if any(isinstance(e, bool) or not isinstance(e, int) or e < 0 for e in epochs):
                raise MisconfigurationException(f"Expected argument `epochs` to hold non-negative ints but got {epochs}")
        check_int("max_batch_size", max_batch_size, minimum=1, none_ok=True, error=MisconfigurationException)
        if report_dir is not None and not isinstance(report_dir, (str, os.PathLike)):
            raise MisconfigurationException(f"Expected argument `report_dir` to be None, a str or an os.PathLike but got {report_dir!r}")
        if on_error not in _ON_ERROR:
            raise MisconfigurationException(f"Expected argument `on_error` to be one of {_ON_ERROR} but got {on_error!r}")
        if unpack_batch is not None and not callable(unpack_batch):
            raise MisconfigurationException(
                f"Expected argument `unpack_batch` to be None or a callable batch -> (inputs, labels, additional_forward_args) "
                f"but got {unpack_batch!r}"
            )
        if figure_kind is not None and figure_kind not in KINDS:
            raise MisconfigurationException(f"Expected argument `figure_kind` to be None or one of {KINDS} but got {figure_kind!r}")
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
        self._renderer = TensorBoardRenderer(figure_kind=figure_kind)
        self._warned_no_tb = False
        self._warnings = WarningsOncePerFit()

    @property
    @override
    def state_key(self) -> str:
        return self._generate_state_key(audits=[a.name for a in self.audits])

    # ------------------------------------------------------------------ schedule
    def should_audit(self, epoch: int) -> bool:
        """Whether ``epoch`` (0-based) is on the schedule and not audited yet."""
        if epoch in self.audited_epochs:
            return False
        if self.epochs is not None:
            return epoch in self.epochs
        if callable(self.every_n_epochs):
            return bool(self.every_n_epochs(epoch))
        return (epoch + 1) % self.every_n_epochs == 0

    # ------------------------------------------------------------------ hooks
    @override
    def setup(self, trainer: Trainer, pl_module: LightningModule, stage: str) -> None:
        if stage != "fit":
            if not self.audited_epochs:  # e.g. `trainer.validate(model)` with the callback: it would run no audit, silently
                rank_zero_warn(
                    "CausalAuditCallback runs its audits during `trainer.fit` only (at the end of training epochs); "
                    f"this `trainer.{getattr(stage, 'value', stage)}` run audits nothing. To audit a trained model, "
                    "call `audit.run(model, Probe(x, y))` for each audit")
            return
        self._check_names_across_callbacks(trainer)
        self._reset()  # a new fit starts fresh; a resumed one reloads its state after setup
        self.report_dir = self._resolved_report_dir(trainer)
        self._report_tag = self._shared_report_tag(trainer)
        if self.report_dir is not None:
            self._check_report_dir(trainer)
        if trainer.world_size > 1:
            quiet_sync_dist_advice()
        self._warn_averaging_before(trainer)
        from lightning_causal.callbacks import monitoring  # imported here: it imports this module

        monitoring.advise_lightning_monitors(self, trainer)

    def _check_names_across_callbacks(self, trainer: Trainer) -> None:
        """Audits of one name in two audit callbacks of the trainer log the same tags
        (``causal/<name>/...``): their values would mix in one series, at the same steps where both
        audit, and each callback's drift compares with its own previous audit (another epoch, another
        probe), so the series would jump between two bases."""
        others = [cb for cb in trainer.callbacks if isinstance(cb, CausalAuditCallback) and cb is not self]
        mine = [a.name for a in self.audits]
        shared = [name for name in mine if any(name in [a.name for a in cb.audits] for cb in others)]
        if shared:
            raise MisconfigurationException(
                f"Expected the audit callbacks of one trainer to hold audits of distinct names but {shared} are in "
                f"more than one: their scalars (causal/{shared[0]}/...) and drift would mix in one series; pass "
                "`name=` to the audits of one callback to tell them apart")

    def _warn_averaging_before(self, trainer: Trainer) -> None:
        """``StochasticWeightAveraging`` listed before this callback swaps the averaged weights in at
        ``on_train_end`` before the fit-end audit runs there: that audit explains other weights than
        the epoch audits (which see the trained ones), unless the user says so."""
        from lightning.pytorch import callbacks as lightning_callbacks

        if not self.on_fit_end_audit:
            return
        # Lightning's averaging callbacks (WeightAveraging, EMAWeightAveraging: Lightning >= 2.6) copy the average in there
        kinds = tuple(getattr(lightning_callbacks, k) for k in ("StochasticWeightAveraging", "WeightAveraging")
                      if hasattr(lightning_callbacks, k))
        callbacks = list(trainer.callbacks)
        mine = next((i for i, cb in enumerate(callbacks) if cb is self), len(callbacks))
        before = [type(cb).__name__ for cb in callbacks[:mine] if isinstance(cb, kinds)]
        if before:
            rank_zero_warn(
                f"CausalAuditCallback comes after {before[0]} in `callbacks=`: when training ends, the averaging "
                "swaps its averaged weights in before the fit-end audit (of a last epoch off the schedule), which then "
                "explains the averaged weights while every other audit explains the trained ones. List "
                f"CausalAuditCallback before {before[0]} to explain the trained weights throughout, or pass "
                "`on_fit_end=False`")

    @override
    def on_train_start(self, trainer: Trainer, pl_module: LightningModule) -> None:
        self._warn_earlier_reports(trainer)
        _warn_endless_epochs(trainer)
        with validation_data(trainer) if self._probe_source is None else contextlib.nullcontext():
            source, self.probe_origin = (self._probe_source, "probe") if self._probe_source is not None else trainer_data(trainer)
            if source is None:
                return  # no data to probe: audits are skipped with a warning when they are due
            if " of " in self.probe_origin:  # several dataloaders: say which one the audits explain
                rank_zero_info(f"CausalAuditCallback explains {self.probe_origin}; pass `probe=` to explain other data")
            elif self.probe_origin == "train_dataloader":
                rank_zero_info("CausalAuditCallback explains the first samples of the training data: this fit validates on "
                               "no data (no `val_dataloaders`, `limit_val_batches=0` or no `validation_step`); pass `probe=` "
                               "to explain other data")
            probe = probe_from(source, self.probe_size, self.unpack_batch)
        self._set_probe(probe, trainer, pl_module)
        self._check_resumed_probe()
        from lightning_causal.callbacks import monitoring  # imported here: it imports this module

        monitoring.check_monitors_after_dry_run(self, trainer)

    @override
    def on_train_epoch_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        if trainer.sanity_checking or not self.should_audit(trainer.current_epoch):
            return
        self._run(trainer, pl_module, trainer.current_epoch, "epoch_end")

    @override
    def on_train_end(self, trainer: Trainer, pl_module: LightningModule) -> None:
        """The fit-end audit (``on_fit_end=True``) of a last epoch the schedule skipped. It runs here,
        when training ends normally, because Lightning calls ``on_fit_end`` after its strategy's
        teardown has moved the module off the training device (the probe stays there)."""
        last = max(trainer.current_epoch - 1, 0)
        if not self.on_fit_end_audit or last in self.audited_epochs or last in self.failed_epochs or self.probe is None:
            return
        self._run(trainer, pl_module, last, "fit_end")

    @override
    def state_dict(self) -> dict[str, Any]:
        audit_states = {a.name: state for a in self.audits if (state := a.state_dict())}
        return {
            "audited_epochs": list(self.audited_epochs),
            "failed_epochs": list(self.failed_epochs),
            "previous_vectors": {a: {k: v.detach().cpu() for k, v in vs.items()} for a, vs in self._previous_vectors.items()},
            "audit_states": audit_states,
            "probe": self._probe_summary() if self.probe is not None else self._checkpoint_probe,
        }

    @override
    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        mine = {a.name for a in self.audits}  # a removed audit's drift base is not carried into later checkpoints
        self.audited_epochs = [int(e) for e in state_dict.get("audited_epochs", [])]
        self.failed_epochs = [int(e) for e in state_dict.get("failed_epochs", [])]
        self._checkpoint_probe = state_dict.get("probe")
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
        warning naming the audits that start fresh and those whose state is dropped."""
        states = checkpoint.get("callbacks") or {}
        if self.state_key in states:
            return  # Lightning restores it (load_state_dict)
        claimed = {cb.state_key for cb in trainer.callbacks}
        prefix = f"{type(self).__qualname__}{{"
        unclaimed = [k for k in states if isinstance(k, str) and k.startswith(prefix) and k not in claimed]
        if not unclaimed:
            return
        if len(unclaimed) > 1:
            rank_zero_warn(f"CausalAuditCallback with audits {[a.name for a in self.audits]} restores no state from the "
                           f"checkpoint: it holds several audit callbacks' states ({unclaimed}) and none of this key; "
                           "its audits start fresh (no drift at the first audit)")
            return
        state = states[unclaimed[0]]
        try:  # "CausalAuditCallback{'audits': [...]}" (see state_key)
            old = [str(a) for a in ast.literal_eval(unclaimed[0][len(prefix) - 1:])["audits"]]
        except (ValueError, SyntaxError, KeyError, TypeError):
            old = list(dict.fromkeys([*state.get("previous_vectors", {}), *state.get("audit_states", {})]))
        mine = [a.name for a in self.audits]
        if not set(mine) & set(old):
            return  # another callback's audits (one removed, this one new): nothing of it is this callback's
        self.load_state_dict(state)
        rank_zero_warn(f"CausalAuditCallback: the checkpoint's audit callback state {unclaimed[0]!r} is restored for the "
                       f"audits {[a for a in mine if a in old]} (schedule, drift, audit states); "
                       f"start fresh: {[a for a in mine if a not in old]}; dropped: {[a for a in old if a not in mine]}")

    def _probe_summary(self) -> dict[str, Any]:
        assert self.probe is not None
        return {"samples": len(self.probe), "shape": list(self.probe.first.shape[1:]), "source": self.probe_origin}

    def _check_resumed_probe(self) -> None:
        """A fit resumed with another probe (a changed ``probe_size``, other data): its first audits'
        drift, and the carried states (a causal graph's edges gained and lost), would compare audits of
        different samples; a warning says so."""
        before, self._checkpoint_probe = self._checkpoint_probe, None
        if before is None or self.probe is None or not (self._previous_vectors or any(a.state_dict() for a in self.audits)):
            return
        now = self._probe_summary()
        if before != now:
            rank_zero_warn(f"CausalAuditCallback resumes with another probe ({now}) than the checkpoint's audits ({before}): "
                           "the first resumed audit's drift compares audits of different samples; keep `probe` and "
                           "`probe_size` to compare the model alone")

    # ------------------------------------------------------------------ set-up
    def _reset(self) -> None:
        self.probe, self.probe_origin = None, ""
        self.audited_epochs, self.failed_epochs = [], []
        self.last_results, self.last_scalars, self._previous_vectors = {}, {}, {}
        self.dry_run_tags = set()
        self._checkpoint_probe = None
        self._warned_no_tb = False
        self._warnings.reset()
        for audit in self.audits:
            audit.load_state_dict({})

    def _resolved_report_dir(self, trainer: Trainer) -> str | None:
        """``report_dir`` as given, else ``<log_dir>/causal_audit`` (none under ``fast_dev_run``)."""
        if self._report_dir_given is not None:
            return self._report_dir_given
        if trainer.fast_dev_run:
            return None  # fast_dev_run writes no logs nor checkpoints: no report either (audits still run)
        root = trainer.log_dir if trainer.loggers else None
        return os.path.join(root or trainer.default_root_dir, "causal_audit")

    def _shared_report_tag(self, trainer: Trainer) -> str:
        """``""`` for the first audit callback of the trainer writing to this ``report_dir``; for a
        later one, its audits' names, which name its report files (``epoch_0003_<names>.json``):
        callbacks auditing the same epoch would otherwise replace each other's reports."""
        mine = self._resolved_report_dir(trainer)
        if mine is None:
            return ""
        sharing = [cb for cb in trainer.callbacks if isinstance(cb, CausalAuditCallback)
                   and cb._resolved_report_dir(trainer) is not None
                   and os.path.abspath(cb._resolved_report_dir(trainer)) == os.path.abspath(mine)]  # type: ignore[arg-type]
        if not sharing or sharing[0] is self:
            return ""
        return "+".join(re.sub(r"[^\w.-]+", "-", a.name) for a in self.audits)

    def _check_report_dir(self, trainer: Trainer) -> None:
        """Write and remove a file in ``report_dir`` on rank 0; every rank learns the outcome."""
        error = None
        if trainer.is_global_zero:
            error = try_write_probe_file(self.report_dir)  # type: ignore[arg-type]
        error = trainer.strategy.broadcast(error, src=0)
        if error is None:
            return
        message = f"Expected argument `report_dir` to be a writable directory but writing to {self.report_dir!r} failed: {error}"
        if self.on_error == "raise":
            raise MisconfigurationException(message)
        rank_zero_warn(f"{message}; JSON reports will be skipped (on_error='warn')")
        self.report_dir = None

    def _warn_earlier_reports(self, trainer: Trainer) -> None:
        """Reports of this callback's names in ``report_dir`` for epochs this fit may audit (an earlier
        run's, in a reused directory): they would mix with this fit's, replaced where it audits the same
        epoch and left where it does not (another schedule, fewer epochs)."""
        if self.report_dir is None or not trainer.is_global_zero or not os.path.isdir(self.report_dir):
            return
        tag = f"_{re.escape(self._report_tag)}" if self._report_tag else ""
        pattern = re.compile(rf"epoch_(\d+){tag}(?:_fit_end)?\.json")
        start = trainer.current_epoch  # a resumed fit: the reports of the epochs before it are its own
        earlier = sorted({int(m.group(1)) for name in os.listdir(self.report_dir)
                          if (m := pattern.fullmatch(name)) and int(m.group(1)) >= start})
        if earlier:
            rank_zero_warn(f"CausalAuditCallback: `report_dir` {self.report_dir!r} already holds reports of epochs {earlier} "
                           f"(of an earlier run), at or after the epoch this fit starts at ({start}): this fit replaces those "
                           "of the epochs it audits and leaves the others; pass another `report_dir` to keep runs apart")

    def _set_probe(self, probe: Probe, trainer: Trainer, pl_module: LightningModule) -> None:
        model = _audited(pl_module)
        probe = self._to_device(probe, trainer, pl_module)
        with no_trace(model), sharded_rows(_shard(trainer)), self._warnings.collect(show=trainer.is_global_zero):
            try:
                raw = Forward(model, num_samples=len(probe), **probe.forward_options).raw(
                    *(probe.inputs if isinstance(probe.inputs, tuple) else (probe.inputs,))
                )
            except Exception as err:
                inputs = probe.inputs if isinstance(probe.inputs, tuple) else (probe.inputs,)
                hint = "" if dtype_hint(model, inputs, err) is not None else f" {call_hint(model, probe)}"  # a dtype: said in err
                raise MisconfigurationException(
                    f"The probe of shape {list(probe.first.shape)} is rejected by the model: {err}.{hint}"
                ) from err
            widths = []
            for audit in self.audits:  # each audit explains its own `output` of the return value
                try:
                    out = select_output(raw, audit.output)
                except Exception as err:
                    raise MisconfigurationException(f"Audit {audit.name!r} is misconfigured: {err}") from err
                check_finite_probe(probe, out, self.probe_origin)
                widths += [int(out.shape[1])] if out.dim() == 2 else []
            if widths:  # the labels are classes of one of the explained heads (the widest)
                check_class_labels("the labels of `probe`", probe.labels, max(widths), error=MisconfigurationException)
            dry = [self._dry_run(audit, model, probe) for audit in self.audits]
        self.dry_run_tags = {tag for result in dry if result is not None for tag in scalar_tags(result)}
        self.probe = probe

    @staticmethod
    def _dry_run(audit: Audit, model: torch.nn.Module, probe: Probe) -> AuditResult | None:
        state = audit.state_dict()
        error: BaseException | None = None
        result = None
        try:
            audit.validate(model, probe)
            result = audit.dry_run(model, probe)
        except Exception as err:
            error = err
        finally:
            audit.load_state_dict(state)
        error = settle_shards(error)  # under DDP every process learns whether one failed, and all raise alike
        if error is not None:
            raise MisconfigurationException(f"Audit {audit.name!r} is misconfigured: {error}") from error
        return result if isinstance(result, AuditResult) else None

    @staticmethod
    def _to_device(probe: Probe, trainer: Trainer, pl_module: LightningModule) -> Probe:
        probe = probe.to(pl_module.device)
        convert = trainer.precision_plugin.convert_input  # floating tensors to the weights' dtype under "64-true"/"bf16-true"
        args = probe.additional_forward_args  # a float side input (model(img, meta)) is the model's input too, as in training
        return Probe(convert(probe.inputs), probe.labels, convert(args) if args is not None else None)

    # ------------------------------------------------------------------ run
    def _run(self, trainer: Trainer, pl_module: LightningModule, epoch: int, stage: str) -> None:
        if self.probe is None:
            rank_zero_warn("CausalAuditCallback found no probe data (no probe, no validation or training data); skipping")
            return
        t0 = time.perf_counter()
        bases = (dict(self._previous_vectors), {a.name: a.state_dict() for a in self.audits}) if stage == "fit_end" else None
        results = self._audit_all(trainer, _audited(pl_module), epoch)
        if bases is not None:  # the fit-end audit is compared with the last one, but is no base for later audits:
            self._previous_vectors = bases[0]  # a fit resumed from a checkpoint saved after it goes on as an uninterrupted one
            for audit in self.audits:
                audit.load_state_dict(bases[1][audit.name])
        total = time.perf_counter() - t0
        if trainer.world_size > 1:  # one value on every process (rank 0's, the one in its report): monitors agree
            total = float(trainer.strategy.broadcast(total, src=0))
        if not self._write_report(trainer, epoch, stage, results, total):
            self.failed_epochs.append(epoch)
            return
        self.audited_epochs.append(epoch)
        scalars = {t: v for r in results for t, v in scalar_tags(r).items()}
        scalars["causal/audit_seconds"] = total
        self.last_scalars = scalars
        if stage == "epoch_end":  # monitorable (callback_metrics); `log` is not allowed in on_train_end
            pl_module.log_dict(scalars, on_step=False, on_epoch=True, sync_dist=False, logger=False)
        for logger in trainer.loggers:  # at the step of the rich content, one step per audit
            # with the epoch, as Lightning's own rows (a CSV row without it is lost to a group-by-epoch);
            # TensorBoard already has an `epoch` point at this step (the card names the epoch too)
            epoch_column = {} if isinstance(logger, TensorBoardLogger) else {"epoch": epoch}
            logger.log_metrics({**scalars, **epoch_column}, step=_epoch_end_step(trainer))
        self._render(trainer, epoch, results, stage)
        if total > 2.0:
            rank_zero_info(f"Causal audit at epoch {epoch} took {total:.1f} s")

    def _write_report(self, trainer: Trainer, epoch: int, stage: str, results: list[AuditResult], total: float) -> bool:
        """Write the JSON report on global rank 0 (atomically); every rank learns whether it was
        written. A failed write raises (``on_error="raise"``, naming ``report_dir``) or warns."""
        error = None
        if trainer.is_global_zero and self.report_dir is not None:
            try:
                probe = {"source": self.probe_origin, "samples": len(self.probe) if self.probe is not None else 0}
                write_report(self.report_dir, epoch, stage, results, tag=self._report_tag,
                             extra={"audit_seconds": total, "world_size": trainer.world_size, "probe": probe})
            except (OSError, TypeError, ValueError) as err:  # a full disk; a custom audit's value JSON cannot hold
                error = repr(err)
        error = trainer.strategy.broadcast(error, src=0)
        if error is None:
            return True
        message = f"Causal audit report of epoch {epoch} could not be written to `report_dir` {self.report_dir!r}: {error}"
        if self.on_error == "raise":
            raise RuntimeError(message)
        rank_zero_warn(f"{message}; training continues and the epoch is recorded as failed")
        return False

    def _audit_all(self, trainer: Trainer, model: torch.nn.Module, epoch: int) -> list[AuditResult]:
        from tqdm.auto import tqdm

        results = []
        with no_trace(model), sharded_rows(_shard(trainer)), self._warnings.collect(show=trainer.is_global_zero):
            bar = tqdm(self.audits, desc=f"causal audit (epoch {epoch})", delay=2.0, leave=False,
                       disable=not trainer.is_global_zero or trainer.progress_bar_callback is None)
            for audit in bar:
                result = self._run_one(audit, model, epoch)
                if result is not None:
                    results.append(result)
        return results

    def _run_one(self, audit: Audit, model: torch.nn.Module, epoch: int) -> AuditResult | None:
        t0 = time.perf_counter()
        result, error = None, None
        try:
            with audit_seed():  # a model's own noise: the same draws at every audit of the same weights
                result = audit.run(model, self.probe, max_batch_size=self.max_batch_size)  # type: ignore[arg-type]
        except Exception as err:
            error = err
        # under DDP, an audit that failed in one process fails in every one (with on_error="warn" the
        # others would otherwise go on to the next audit's collectives while it still waits in this one's)
        error = settle_shards(error)
        if error is not None:
            if self.on_error == "raise":
                raise RuntimeError(f"Causal audit {audit.name!r} failed at epoch {epoch}: {error}") from error
            rank_zero_warn(f"Causal audit {audit.name!r} failed at epoch {epoch}: {error!r}; training continues")
            shard = current_shard()
            if shard is not None and shard.rank != 0 and not isinstance(error, PeerFailure):  # rank 0 only names this process
                warnings.warn(f"Causal audit {audit.name!r} failed at epoch {epoch} in process {shard.rank}: {error!r}", stacklevel=2)
            return AuditResult(audit.name, scalars={"failed": 1.0}, meta={"error": repr(error), "epoch": epoch})
        assert result is not None
        result.meta.update(epoch=epoch, seconds=time.perf_counter() - t0)
        result.scalars.update(vector_drift(self._previous_vectors.get(audit.name, {}), result.vectors))
        self._previous_vectors[audit.name] = {k: v.detach().cpu() for k, v in result.vectors.items() if v.dim() == 1}
        bad = result.non_finite()
        if bad:
            why = "".join(f"; {note}" for note in result.meta.get("notes", []))  # the audit's own explanation, if any
            rank_zero_warn(f"Causal audit {audit.name!r} at epoch {epoch} produced NaN or infinite values in {bad}{why}")
            result.meta.setdefault("notes", []).append(f"non-finite values in {bad}")
        self.last_results[audit.name] = result
        return result

    def _render(self, trainer: Trainer, epoch: int, results: list[AuditResult], stage: str = "epoch_end") -> None:
        if not trainer.is_global_zero:  # other ranks' writers are no-ops: build no figures there
            return
        tb = next((lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)
        if tb is None:
            if not self._warned_no_tb:
                rank_zero_info("CausalAuditCallback: no TensorBoardLogger, so heatmaps, histograms and figures are skipped "
                               "(scalars still go to every logger, reports to JSON)")
                self._warned_no_tb = True
            return
        probe, report = self.probe, report_path(self.report_dir, epoch, stage, tag=self._report_tag) if self.report_dir is not None else None
        self._renderer.render(tb.experiment, epoch, results, probe.first if probe else None, step=_epoch_end_step(trainer),
                              probe_labels=probe.labels if probe else None, report=report)


def _audited(pl_module: LightningModule) -> torch.nn.Module:
    """The module audits explain: ``pl_module.audited_module`` where it names one (a
    ``CausalRepairModule.wrap`` explains the wrapped module, so layer names and tags do not change
    with wrapping), else ``pl_module`` itself."""
    return getattr(pl_module, "audited_module", pl_module)


def quiet_sync_dist_advice() -> None:
    """Silence Lightning's advice to log with ``sync_dist=True`` for the callback's own scalars:
    every rank holds the same audit values (the audits gather their shards), and a collective
    per scalar could hang a fit if one rank skipped an audit (its report failed to write)."""
    warnings.filterwarnings("ignore", message=r"It is recommended to use `self\.log\('(causal|compare|captum)/",
                            category=PossibleUserWarning)


def _epoch_end_step(trainer: Trainer) -> int:
    """The step at which Lightning logs an epoch's epoch-end metrics (``val_loss``, ``on_epoch``
    scalars): its count of batches that stepped the optimizers, less one. This is not
    ``global_step - 1``: ``global_step`` counts optimizer steps (two per batch with two optimizers
    stepped by hand), Lightning's logging step counts batches (as ``LearningRateMonitor`` does)."""
    return max(trainer.fit_loop.epoch_loop._batches_that_stepped - 1, 0)


def _shard(trainer: Trainer) -> RowShard | None:
    """Under a distributed strategy, every audit's rows are split across the processes and
    gathered through the strategy (see :func:`~lightning_causal.causal.engine.batching.sharded_rows`)."""
    if trainer.world_size < 2:
        return None
    strategy = trainer.strategy
    return RowShard(trainer.global_rank, trainer.world_size, lambda t: strategy.all_gather(t), device=strategy.root_device)


def _warn_endless_epochs(trainer: Trainer) -> None:
    """Audits run at the end of training epochs: a training dataloader without a length (an
    ``IterableDataset`` stream, trained with ``max_steps``) may never end its first epoch, so a fit of
    any number of steps gets at most one audit, at its end. A warning says so and how to get epochs."""
    if trainer.num_training_batches != float("inf"):
        return
    rank_zero_warn("CausalAuditCallback audits at the end of training epochs, but the training dataloader has no length: if "
                   "it never runs out (a stream trained with `max_steps`), its first epoch ends only when training stops, "
                   "and the callback audits at most once, at the end of fit. For audits during training, give the Trainer "
                   "`limit_train_batches=<int>` (epochs of that many batches, audited on the schedule) or the dataset a `__len__`")
