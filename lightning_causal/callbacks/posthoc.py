"""Audit a trained model once, outside ``trainer.fit`` (a loaded checkpoint, two models to compare):
:func:`audit_model` reads the probe and runs every audit as :class:`~lightning_causal.callbacks.audit.CausalAuditCallback`
does at an audit epoch, and optionally writes its JSON report and TensorBoard content."""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

import torch
from lightning.fabric.utilities.apply_func import apply_to_collection
from lightning.pytorch import LightningDataModule
from lightning.pytorch.loggers import TensorBoardLogger
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from lightning.pytorch.utilities.model_helpers import is_overridden

from lightning_causal._compat import with_note
from lightning_causal.audits.base import Audit, AuditResult, Probe
from lightning_causal.audits.group_regions import figure_axes
from lightning_causal.batches import UnpackBatch
from lightning_causal.callbacks._audit_options import check_audit_options, share_class_names
from lightning_causal.callbacks._explain import (
    audited_view,
    check_explain,
    explained_input,
    explained_marks,
    explained_position,
)
from lightning_causal.callbacks._no_trace import no_trace
from lightning_causal.callbacks._one_audit import (
    drift_base,
    failure_hint,
    finish_result,
    non_finite_weights,
    run_audit,
)
from lightning_causal.callbacks._probe import probe_from
from lightning_causal.callbacks._probe_setup import (
    check_probe_outputs,
    dry_run,
)
from lightning_causal.callbacks._trainer_facts import audit_precision, explained_name, tag_prefix
from lightning_causal.causal.engine.checks import check_int
from lightning_causal.causal.engine.forward_args import marks_kept
from lightning_causal.causal.engine.lazy_modules import unbuilt_refusal
from lightning_causal.reporting.figure_kinds import FigureKind
from lightning_causal.reporting.image_figures import ImageOrigin, check_origin
from lightning_causal.reporting.json_report import write_report
from lightning_causal.reporting.tensorboard import TensorBoardRenderer, scalar_tags

__all__ = ["audit_model"]


def audit_model(
    model: torch.nn.Module,
    audits: Audit | Sequence[Audit],
    data: Any,
    probe_size: int = 256,
    *,
    unpack_batch: UnpackBatch | None = None,
    explain: int | str | None = None,
    class_names: Sequence[str] | None = None,
    max_batch_size: int | None = None,
    figure_kind: FigureKind | None = None,
    image_origin: ImageOrigin = "upper",
    epoch: int = 0,
    report_dir: str | os.PathLike | None = None,
    writer: Any = None,
    step: int | None = None,
    previous: Iterable[AuditResult] | None = None,
) -> list[AuditResult]:
    """Run ``audits`` once on ``model`` as :class:`~lightning_causal.callbacks.audit.CausalAuditCallback` runs
    them at an audit epoch: the same probe (the first ``probe_size`` samples of ``data`` in dataset order, read
    as the callback reads its ``probe=`` or the validation data), the network ``model.audited_module`` names where
    it has one, ``explain=``, ``class_names=``, each audit in eval mode from the global generators seeded with 0
    and the model left as found. A checkpoint of a fit, loaded, audited with the fit's audits and validation
    loader, gives the numbers that fit's report holds for that epoch. What the callback compares with the
    previous audit compares here with another model: ``previous=`` (the results of the checkpoint before, or of
    the model before fine-tuning or repair) adds the callback's ``drift/<vector>/{spearman,topk_jaccard,shift}``
    scalars (:func:`~lightning_causal.audits.drift.vector_drift`, by audit name), and an audit that keeps state
    between runs (``CausalGraphAudit``: ``edges_gained``, ``edges_lost``, ``edge_jaccard_previous``) compares with
    its own last run: pass the same audit objects for both models (fresh ones have no previous run).

    Before any audit runs in full, every audit is validated and run on 2 probe samples, its state restored, as the
    callback does before a fit's first audit (:meth:`~lightning_causal.audits.Audit.dry_run`): a wrong option of the
    fifth audit fails before the first four ran, with its own error and a note naming it (``... (its dry run on 2
    probe samples, before any audit ran in full)``).

    Args:
        model: the trained model, a ``LightningModule`` (e.g. ``MyModule.load_from_checkpoint(path)``) or any
            ``nn.Module``; the audits are not run on the device of your choice but on the model's: move it first.
            The probe's floating inputs and forward arguments take the dtype of the model's floating weights where
            they all have one (a ``"64-true"`` fit's checkpoint, ``model.double()``), as a fit's precision plugin
            converts its batches.
        audits: the :class:`~lightning_causal.audits.Audit` objects, with distinct names (a sequence, or one).
        data: where the probe is read: a ``LightningDataModule`` (its ``val_dataloader()`` after ``prepare_data()``
            and ``setup("validate")``, or without one its ``train_dataloader()`` after ``setup("fit")``: the data a
            fit's callback reads without ``probe=``), or anything the callback's
            ``probe=`` takes (a ``Probe``, a tensor, a batch, a ``Dataset``, a ``DataLoader``, read in dataset order
            whatever its shuffling).
        probe_size: the number of samples of ``data`` explained (its first ones), as the callback's.
        unpack_batch: ``batch -> (inputs, labels, additional_forward_args)``, as the callback's.
        explain: for a model of several inputs, the input the audits of one input explain, as the callback's.
        class_names: one name per class, given to every audit that takes ``class_names`` and has none (the audits are
            changed in place), as the callback's.
        max_batch_size: rows per forward pass of the interventions (``None``: memory budget).
        figure_kind: how the maps are drawn in TensorBoard, as the callback's (``None``: from the probe's shape;
            ``"frames"``: the audits name a clip's frames ``frames``, not a volume's ``depth``).
        image_origin: where row 0 of an image is drawn in TensorBoard (``"upper"``, ``"lower"``: a spectrogram's lowest
            frequency at the bottom), as the callback's.
        epoch: the epoch the report and the TensorBoard content are filed under.
        report_dir: where the JSON report is written (``<report_dir>/epoch_<epoch>.json``, as the callback's, with its
            top-level entries: ``audit_seconds`` of the audits' full runs, ``world_size`` 1, ``probe``; read with
            :func:`~lightning_causal.reporting.json_report.load_report`); ``None``: none.
        writer: a ``TensorBoardLogger`` or a ``SummaryWriter`` (anything with its ``add_*`` methods) that receives the
            scalars (``causal/<audit>/<metric>``, the callback's tags, after a logger's ``prefix=`` as in the fit:
            ``p-causal/...``) and the rich content the callback draws (under the prefix too: histograms, figures,
            the text card ``p-causal/summary``);
            ``None``: none.
        step: the TensorBoard step (``None``: ``epoch``). The fit logged an epoch's audit at that epoch's
            ``val_loss`` step: for a model of one optimizer, its end-of-epoch checkpoint's ``global_step - 1``
            (``torch.load(path)["global_step"] - 1``), which lines the post-hoc run up with the fit's in TensorBoard.
        previous: results of another model (what this function returned for it; any iterable) to report the drift against;
            ``None``: no drift scalars.

    Returns:
        one :class:`~lightning_causal.audits.AuditResult` per audit, in the order of ``audits``.

    Raises:
        Exception: an audit's own error (the model's, yours) as raised, in its dry run or its full run, with a note naming
            the audit (and, where a device ran out of memory, the ``max_batch_size`` to try).
        MisconfigurationException: an argument outside what it allows, a model holding lazy modules not built yet
            (``nn.LazyLinear`` before its first call, which the audits would build), a probe that cannot be read, ``explain``
            naming no input of it, or a probe the callback would refuse before a fit's first audit (a probe the model
            rejects, an ``output`` selecting no real-valued scores, non-finite inputs reaching them, labels that are
            no classes of the explained output).

    Examples:
        >>> import torch
        >>> from lightning_causal.audits import InputEffectAudit
        >>> model = torch.nn.Linear(3, 2)
        >>> [r.audit for r in audit_model(model, InputEffectAudit(ace_values=None), torch.randn(8, 3))]
        ['input_effect']
    """
    audit_list, _ = check_audit_options(audits, probe_size, 1, None, max_batch_size, report_dir, "raise", unpack_batch,
                                        figure_kind)
    check_origin(image_origin, error=MisconfigurationException)
    if not isinstance(model, torch.nn.Module):
        raise MisconfigurationException(f"Expected argument `model` to be a torch.nn.Module but got {type(model).__name__}")
    check_int("epoch", epoch, minimum=0, error=MisconfigurationException)
    check_int("step", step, minimum=0, none_ok=True, error=MisconfigurationException)
    tb = writer.experiment if isinstance(writer, TensorBoardLogger) else writer
    prefix = tag_prefix(writer) if isinstance(writer, TensorBoardLogger) else ""  # the fit's tags, p-causal/... under prefix="p"
    if tb is not None and not (hasattr(tb, "add_scalar") and hasattr(tb, "add_figure")):
        raise MisconfigurationException(
            f"Expected argument `writer` to be None, a TensorBoardLogger or a SummaryWriter but got {type(writer).__name__}"
            "; to log the scalars to another logger (CSVLogger, MLflow's, W&B's), log them from what audit_model returns, "
            "under the fit's tags: `logger.log_metrics({tag: v for r in results for tag, v in scalar_tags(r).items()}, step=...)` "
            "(`from lightning_causal.reporting import scalar_tags`)")
    before = _previous_vectors(previous)
    share_class_names(audit_list, class_names)
    explain = check_explain(explain)
    if isinstance(data, LightningDataModule):
        data = _datamodule_data(data)
    if data is None:
        raise MisconfigurationException("Expected argument `data` to hold the samples to explain but got None")
    target = getattr(model, "audited_module", model)
    lazy = unbuilt_refusal(target)
    if lazy is not None:  # the audits' first pass would build them from the audits' seed: a model not left as found
        raise MisconfigurationException(lazy)
    probe = probe_from(data, probe_size, unpack_batch, origin="data", model=model)
    listed = _listed_batches(data, probe)  # a list of batches read as a list of samples: said beside any error
    device = next((p.device for p in target.parameters()), None)
    with torch.inference_mode(False):  # converted under a caller's inference_mode, the probe would hold inference tensors
        probe = _as_weights(probe.to(device) if device is not None else probe, target)
    position = explained_position(explain, target, probe)
    results = []
    with no_trace(target), figure_axes(figure_kind), _noted(listed):  # clips' frames, clouds' points
        check_probe_outputs(audit_list, target, probe, "`data`")  # the callback's checks before a fit's first audit
        # and its dry runs: each audit validated and run on 2 samples (its state restored), so that a wrong option of the
        # last audit fails before the others ran in full
        failed = _dry_runs(audit_list, target, probe, position, max_batch_size)
        if failed is not None:  # raised outside the except clause: its own cause and context kept, as a full run's
            raise failed
        start = time.perf_counter()  # the callback's audit_seconds: its audits' full runs, not their dry runs
        for audit in audit_list:
            t0, notes, said = time.perf_counter(), [], []
            try:
                result = run_audit(audit, target, probe, position, max_batch_size, notes, said)
            except Exception as err:  # the error as raised (its type, its traceback), with the audit that raised it named
                _name_audit(err, audit, target, max_batch_size, len(probe))
                raise

            def warn(what: str, name: str = audit.name) -> None:  # NaN or infinite values, at audit_model's caller
                warnings.warn(f"Audit {name!r} {what}", UserWarning, stacklevel=4)

            results.append(finish_result(audit, result, notes, epoch=epoch, seconds=time.perf_counter() - t0,
                                         previous=before.get(audit.name, {}), warn=warn, model=target, said=said))
        seconds = time.perf_counter() - start
    report, precision = None, audit_precision(target)  # the dtype the audits computed in: the report's and the card's
    if report_dir is not None:  # the top-level entries of the callback's reports, in its order: two runs' reports compare
        report = write_report(report_dir, epoch, "epoch_end", results, extra={
            "audit_seconds": seconds, "world_size": 1, "probe": {"source": "audit_model", "samples": len(probe)},
            "model": explained_name(model), "precision": precision})
    if tb is not None:
        at = epoch if step is None else step
        for tag, value in (t for r in results for t in scalar_tags(r).items()):
            tb.add_scalar(prefix + tag, value, at)
        renderer = TensorBoardRenderer(figure_kind=figure_kind, image_origin=image_origin)
        unobserved, times = explained_marks(target, probe, position)  # padded or unobserved entries, time stamps
        renderer.render(tb, epoch, results, explained_input(probe, position), step=at, probe_labels=probe.labels, report=report,
                        scalar_prefix=prefix, model=explained_name(model), probe_unobserved=unobserved, probe_times=times,
                        precision=precision)
        if hasattr(tb, "flush"):
            tb.flush()
    return results


def _listed_batches(data: Any, probe: Probe) -> str | None:
    """What to say beside an error where ``data`` is a list of mappings none of which holds a 0-dim tensor (a batch's
    labels have a dimension of samples, a sample's label none): a list of samples (a tokenizer's) is read as the
    dataset it is, its items stacked, so a list of batches ``[batch]`` became ``len(data)`` samples each a whole batch
    (a probe input ``[1, 64, 12, 4]`` where the batch held ``[64, 12, 4]``), which the model then fails on with an
    error of its own; ``None`` where ``data`` is no such list."""
    if not (isinstance(data, list) and data and all(isinstance(item, Mapping) for item in data)):
        return None
    tensors = [t for item in data for t in item.values() if isinstance(t, torch.Tensor)]
    if not tensors or any(t.dim() == 0 for t in tensors):
        return None
    first, k = probe.first, len(data)
    shape = f", the probe's input {list(first.shape)}" if isinstance(first, torch.Tensor) else ""
    return (f"Argument `data` is a list of {k} mapping{'s' * (k != 1)}, read as a list of samples (a dataset, each item "
            f"one sample{shape}); if it holds batches, pass one batch (`data=batches[0]`) or "
            "the list as a loader of batches, `torch.utils.data.DataLoader(batches, batch_size=None)`, whose batches are "
            "joined along the samples")


@contextlib.contextmanager
def _noted(note: str | None) -> Iterator[None]:
    """Add ``note`` (if any) to an error raised inside and re-raise it (:func:`~lightning_causal._compat.with_note`: on
    Python 3.10, which has no exception notes, the note ends the message of an error of one message argument)."""
    try:
        yield
    except Exception as err:
        if note is not None:
            with_note(err, note)
        raise


def _dry_runs(audits: list[Audit], model: torch.nn.Module, probe: Probe, position: int | None,
              max_batch_size: int | None) -> Exception | None:
    """The error of the first of ``audits`` whose dry run (:func:`~lightning_causal.callbacks._probe_setup.dry_run`) failed,
    the audit's own (not the wrapping ``MisconfigurationException``) with the note naming the audit and its dry run;
    ``None`` where every dry run passed. The warnings of their runs on 2 samples are left to the full runs, which give
    them again; those of the audits' set-up (``validate``, which no full run repeats) are shown."""
    for audit in audits:
        try:
            dry_run(audit, *audited_view(audit, model, probe, position), quiet_run=True)
        except MisconfigurationException as err:
            cause = err.__cause__ if isinstance(err.__cause__, Exception) else err
            _name_audit(cause, audit, model, max_batch_size, len(probe), " (its dry run on 2 probe samples, before any "
                                                                         "audit ran in full)")
            return cause
    return None


def _name_audit(err: Exception, audit: Audit, model: torch.nn.Module, max_batch_size: int | None, rows: int, when: str = "") -> None:
    """Add to ``err``, raised by ``audit`` (``when``: in its dry run), a note naming the audit, where a device ran out of
    memory the ``max_batch_size`` to try, and the non-finite weights of ``model`` (an audit that refuses the NaN outputs of
    diverged weights)."""
    weights = non_finite_weights(model)
    with_note(err, f"Raised by audit {audit.name!r} of audit_model{when}{failure_hint(err, max_batch_size, rows)}"
              + (f"; {weights}" if weights else ""))


def _as_weights(probe: Probe, model: torch.nn.Module) -> Probe:
    """``probe``'s floating inputs and forward arguments in the dtype of ``model``'s floating weights where they all
    have one other than the inputs' (a checkpoint of a ``"64-true"`` or ``"bf16-true"`` fit, ``model.double()``), as
    the fit's precision plugin converts its batches and the callback its probe; labels as they are."""
    dtypes = {p.dtype for p in model.parameters() if p.is_floating_point()}
    if len(dtypes) != 1:
        return probe  # no floating weights, or several dtypes (a partly quantised or half model): as given
    dtype = dtypes.pop()

    def cast(value: Any) -> Any:  # as the precision plugin's convert_input: namedtuples, dataclasses kept
        return apply_to_collection(value, torch.Tensor, lambda t: t.to(dtype) if t.is_floating_point() else t)

    args = probe.additional_forward_args  # a cut probe's marks kept (forward_args.marks_kept): a weight stays whole
    return Probe(cast(probe.inputs), probe.labels, marks_kept(cast(args), args))


def _previous_vectors(previous: Any) -> dict[str, dict[str, torch.Tensor]]:
    """The 1-D vectors of ``previous`` by audit name, as the callback keeps the last audit's."""
    if previous is None:
        return {}
    results = list(previous) if isinstance(previous, Iterable) and not isinstance(previous, (AuditResult, str, Mapping)) else None
    if results is None or not all(isinstance(r, AuditResult) for r in results):
        raise MisconfigurationException(
            f"Expected argument `previous` to be None or AuditResults (a list, what audit_model returned for the other "
            f"model) but got {type(previous).__name__}")
    return {r.audit: drift_base(r) for r in results}


def _datamodule_data(datamodule: LightningDataModule) -> Any:
    """The data a fit's callback would probe: the validation dataloaders after ``prepare_data()`` and
    ``setup("validate")``, as ``trainer.validate`` prepares them; a module without ``val_dataloader``, its
    training dataloader after ``setup("fit")``."""
    datamodule.prepare_data()
    if is_overridden("val_dataloader", datamodule, LightningDataModule):
        datamodule.setup("validate")
        return datamodule.val_dataloader()
    if not is_overridden("train_dataloader", datamodule, LightningDataModule):
        raise MisconfigurationException(
            f"Expected argument `data` to be a LightningDataModule with a `val_dataloader` or `train_dataloader` but "
            f"{type(datamodule).__name__} defines neither")
    datamodule.setup("fit")
    return datamodule.train_dataloader()
