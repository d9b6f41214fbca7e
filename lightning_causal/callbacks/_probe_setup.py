"""The probe made ready before the first training step of
:class:`~lightning_causal.callbacks.audit.CausalAuditCallback`: moved to the module's device (and dtype,
as Lightning converts a batch), one forward pass checked (each audit's ``output``, finite values, class
labels), and each audit validated and run once on 2 samples (a dry run whose state is restored)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from lightning.pytorch import LightningModule, Trainer
from lightning.pytorch.utilities.exceptions import MisconfigurationException

from lightning_causal.audits.base import Audit, AuditResult, Probe
from lightning_causal.audits.flow_outputs import flow_hint
from lightning_causal.audits.logit_reads import outputs_judged, targets_of_positions, warn_outputs
from lightning_causal.audits.options import label_task, task_model
from lightning_causal.callbacks._explain import audited_view, explained_position
from lightning_causal.callbacks._no_trace import hooks_removed, no_trace
from lightning_causal.callbacks._probe import (
    call_hint,
    check_finite_probe,
    warn_overlapping_windows,
)
from lightning_causal.callbacks._result_checks import check_state, checked_result
from lightning_causal.callbacks._trainer_facts import audited, row_shard
from lightning_causal.callbacks._warnings import WarningsOncePerFit
from lightning_causal.causal.engine.batching import (
    is_out_of_memory,
    kinds_about,
    settle_shards,
    sharded_rows,
)
from lightning_causal.causal.engine.checks import check_class_labels
from lightning_causal.causal.engine.forward import Forward, dtype_hint, select_output
from lightning_causal.causal.engine.forward_args import marks_kept
from lightning_causal.causal.engine.layer_calls import layer_calls
from lightning_causal.causal.engine.lazy_modules import NEVER_CALLED_LAZY, unbuilt_lazy_modules
from lightning_causal.causal.engine.linked_samples import GRAPH_HINT, linked_hint
from lightning_causal.causal.engine.pass_errors import export_guard_hint
from lightning_causal.causal.engine.quantized import refuse_dynamic_quantized
from lightning_causal.causal.engine.user_frame import outside_package
from lightning_causal.reporting.tensorboard import scalar_tags

__all__ = ["NEVER_CALLED_LAZY", "check_probe_outputs", "checked_probe", "dry_run", "probe_to_device", "unbuilt_lazy_modules"]


def _check_rows_of_a_flat_probe(probe: Probe, out: object, model: torch.nn.Module | None = None) -> None:
    """A 1-D probe ``[N]`` is N samples of one value; a model that took it for one sample of N features (an
    ``nn.Linear`` reads a vector as one row) returns no row per sample, and the audits failed later on
    torch's shape errors naming neither. Integer ids beside an ``nn.EmbeddingBag`` of ``model`` are the flat
    ``indices`` of every bag (called with ``offsets``): the way out is the bags padded to ``[N, K]``
    (:func:`~lightning_causal.causal.engine.linked_samples.linked_hint`), not a reshape."""
    x = probe.first
    if isinstance(x, torch.Tensor) and x.dim() == 1 and isinstance(out, torch.Tensor) and (out.dim() == 0 or out.shape[0] != x.shape[0]):
        bags = linked_hint(model, (x,))
        fix = (bags if bags != GRAPH_HINT else f"for one sample of {x.shape[0]} features pass probe[None] ([1, "
               f"{x.shape[0]}]), for {x.shape[0]} samples of one feature probe[:, None]")
        raise MisconfigurationException(
            f"Expected argument `probe` to hold one row per sample but got a 1-D tensor [{x.shape[0]}] (read as {x.shape[0]} samples "
            f"of one value) for which the model returned shape {list(out.shape)}: {fix}")


def checked_probe(
    audits: Sequence[Audit], probe: Probe, origin: str, trainer: Trainer, pl_module: LightningModule,
    collected: WarningsOncePerFit, *, explain: int | str | None = None,
) -> tuple[Probe, set[str], int | None]:
    """``probe`` on the module's device, checked by a forward pass and by every audit's dry run, the
    scalar tags the dry runs logged, and the position of the input the callback's ``explain`` names
    (:func:`~lightning_causal.callbacks._explain.explained_position`; ``None`` without it): each audit's dry
    run explains what :func:`~lightning_causal.callbacks._explain.audited_view` gives it. Warnings go through
    ``collected`` (once per fit). ``origin`` names where the probe was read in the messages.

    Raises:
        MisconfigurationException: the model rejects the probe, an audit's ``output`` does not select
            from its return value or selects no real-valued scores (an integer argmax), labels are no classes of the explained output (unless the model says
            that output is a regression: :func:`~lightning_causal.audits.options.label_task`), ``explain`` names no
            input of the probe, or a dry run fails.
    """
    model = audited(pl_module)
    position = explained_position(explain, model, probe)
    probe = probe_to_device(probe, trainer, pl_module)
    with no_trace(model), sharded_rows(row_shard(trainer)), collected.collect(show=trainer.is_global_zero):
        # before the first training step: an untrained head's argmin is the label about one binary fit in four, no
        # energy; each audit epoch judges the outputs (logit_reads.judge_outputs)
        check_probe_outputs(audits, model, probe, origin, read_as_logits=False)
        dry = [dry_run(audit, *audited_view(audit, model, probe, position)) for audit in audits]
    return probe, {tag for result in dry if result is not None for tag in scalar_tags(result)}, position


def check_probe_outputs(audits: Sequence[Audit], model: torch.nn.Module, probe: Probe, origin: str, *,
                        read_as_logits: bool = True) -> None:
    """One forward pass of ``model`` on ``probe`` (on its device) checked for every audit: the model takes the probe,
    each audit's ``output`` selects real-valued scores of one row per sample, the inputs that reach them are finite,
    and the labels are classes of the explained output (unless the model says that output is a regression). Used
    before a fit's first audit and by :func:`~lightning_causal.callbacks.posthoc.audit_model`; ``origin`` names
    where the probe was read in the messages. Warns, on that pass, of what the audit epochs and a direct run warn of
    (:func:`~lightning_causal.audits.logit_reads.warn_outputs`, the rules of their judge: a flow's latent or
    log-likelihood read as classes and, with ``read_as_logits``, energies and 0/1 prediction sets); the callback's
    set-up, which sees the model before its first training step, leaves the energies and sets to its audit epochs.

    Raises:
        MisconfigurationException: as :func:`checked_probe` says.
    """
    refuse_dynamic_quantized(model, MisconfigurationException)  # the model's own refusal, before the probe's
    try:
        with layer_calls():  # the layer its output comes out of, by call order, for label_task
            raw = Forward(model, num_samples=len(probe), **probe.forward_options).raw(
                *(probe.inputs if isinstance(probe.inputs, tuple) else (probe.inputs,))
            )
    except Exception as err:
        if is_out_of_memory(err):  # not the call's fault (its parameters): the probe runs whole in this pass and the audits'
            raise MisconfigurationException(
                f"The probe of shape {list(probe.first.shape)} ran the model out of memory in one forward pass: {err}. The "
                "audits run the probe's samples together in a pass, whatever `max_batch_size=`: audit fewer probe samples "
                "(`probe_size=`), or free memory on the device") from err
        inputs = probe.inputs if isinstance(probe.inputs, tuple) else (probe.inputs,)
        said = dtype_hint(model, inputs, err) is not None or export_guard_hint(err) is not None  # the hint is in err
        hint = "" if said else f" {call_hint(model, probe, err)}"
        raise MisconfigurationException(
            f"The probe of shape {list(probe.first.shape)} is rejected by the model: {err}.{hint}"
        ) from err
    warn_overlapping_windows(probe, origin)
    widths, explained = [], []
    for audit in audits:  # each audit explains its own `output` of the return value
        try:
            out = select_output(raw, audit.output)
        except Exception as err:
            hint = flow_hint(raw, probe) if audit.output is None else ""
            raise MisconfigurationException(f"Audit {audit.name!r} is misconfigured: {err}{hint}") from err
        _check_rows_of_a_flat_probe(probe, out, model)
        _check_scores(audit, out, model)
        _warn_elements_as_classes(audit, raw, out, model, probe)
        check_finite_probe(probe, out, origin)
        explained.append((audit, out))
        # a head the model says is a regression (a held nn.PoissonNLLLoss, a task declared per head) has no classes:
        # its labels may be integer counts beyond its width
        regression = label_task(task_model(model, audit.output)) == "regression"
        widths += [int(out.shape[1])] if out.dim() == 2 and not regression else []
    warn_outputs(explained, raw, model, probe, read_as_logits=read_as_logits)  # the audit epochs' and direct runs' words
    if widths:  # the labels are classes of one of the explained heads (the widest)
        try:
            check_class_labels("the labels of `probe`", targets_of_positions(probe), max(widths), error=MisconfigurationException)
        except MisconfigurationException as err:  # a model without class outputs: its labels only pair samples
            raise MisconfigurationException(
                f"{err}; where the labels are no classes of the explained output (an autoencoder's, a VAE's or an "
                "embedding model's labels, used only to pair samples), leave them out of the probe: "
                "`unpack_batch=lambda batch: (batch[0], None, None)`; where they are classes of a head that grows during "
                "the fit (class-incremental learning), validate on the classes the head has at the start, or leave them "
                "out as above (the probe is read once, at the start of fit)") from err


def _warn_elements_as_classes(audit: Audit, raw: object, out: object, model: torch.nn.Module, probe: Probe) -> None:
    """Warn where ``target=None`` (the largest output) would pick one of the elements of a return value shaped as one
    of the model's inputs (a denoiser's predicted noise, an autoencoder's reconstruction ``[N, C, H, W]``): an explained
    output ``[N, D]`` of more columns than its ``C`` channels holds its pixels (``out.flatten(1)``), no classes, and each
    sample would be explained at whichever was largest. Not where the model says its task (a loss held, a ``task``
    hyperparameter: the task warnings speak there), nor for a pixel's channels (a segmentation map's ``out[:, :, i, j]``),
    nor for one position's scores over a vocabulary the input is one-hot in (a character model's ``[N, T, V]`` of
    one-hot ``[N, T, V]`` inputs, ``out[:, -1]``: the next character's classes). The target is the audit's ``target``
    or, for an audit that keeps it among its ``options`` (``CausalGraphAudit``), that one."""
    options = getattr(audit, "options", None)
    target = getattr(audit, "target", options.get("target", 0) if isinstance(options, dict) else 0)
    if target is not None or not isinstance(raw, torch.Tensor) or raw.dim() < 3:
        return
    if not isinstance(out, torch.Tensor) or out.dim() != 2 or out.shape[1] <= raw.shape[1]:
        return
    inputs = probe.inputs if isinstance(probe.inputs, tuple) else (probe.inputs,)
    shaped = [x for x in inputs if isinstance(x, torch.Tensor) and x.shape == raw.shape]
    if not shaped:
        return
    if out.shape[1] == raw.shape[-1] and any(_one_hot(x) for x in shaped):
        return
    if label_task(task_model(model, audit.output)) is not None:
        return
    warnings.warn(
        f"Audit {audit.name!r} explains the predicted class (`target=None`: the largest of the {int(out.shape[1])} outputs "
        f"its `output=` selects), but {type(model).__name__} returns {list(raw.shape)}, the shape of its input (a denoiser's "
        "predicted noise, an autoencoder's reconstruction): those outputs are pixels of it, no classes, and each sample is "
        "explained at whichever is largest. Pass `output=` one score per sample, a region's mean "
        "(`lambda out: out[:, :, 2:6, 2:6].mean((2, 3))`), or `target=k` for element k (one audit per element, each with "
        "its own `name=`)", UserWarning, stacklevel=outside_package())


def _one_hot(x: torch.Tensor) -> bool:
    """Whether ``x`` is one-hot along its last dimension (each position one 1, the rest 0): categorical inputs."""
    return bool(x.numel()) and bool(((x == 0) | (x == 1)).all()) and bool((x.sum(-1) == 1).all())


def _check_scores(audit: Audit, out: object, model: torch.nn.Module) -> None:
    """Refuse an explained output that is no real-valued score: an integer or boolean tensor (a policy's
    ``forward`` returning ``q.argmax(1)``, the actions; a classifier's predicted classes), which no estimator
    can take differences of (the dry run would fail on torch's 'mean(): could not infer output dtype')."""
    if not isinstance(out, torch.Tensor) or out.is_floating_point() or out.is_complex():
        return
    where = (f"give {type(model).__name__} a property `audited_module` returning the network that computes them "
             "(`return self.net`), " if isinstance(model, LightningModule) else "")
    raise MisconfigurationException(
        f"Audit {audit.name!r} is misconfigured: the output it explains is {out.dtype} {list(out.shape)} (class indices or "
        "actions, e.g. an argmax), which no intervention changes by degrees; the audits explain real-valued scores "
        f"(logits, Q-values): have `forward` return them, {where}or pass `output=` selecting them from what it returns")


def dry_run(audit: Audit, model: torch.nn.Module, probe: Probe, *, quiet_run: bool = False) -> AuditResult | None:
    """``audit`` validated and run on 2 probe samples, its state restored; under DDP every process learns
    whether one failed, and all raise alike. ``quiet_run``: the warnings of the run on 2 samples are ignored (left to
    the full run, which gives them again: ``audit_model``'s); the set-up's (``validate``, of the whole probe:
    ``FairnessAudit``'s on a Gaussian policy's means) are shown whatever it says.

    Raises:
        MisconfigurationException: naming the audit, from its error.
    """
    state = audit.state_dict()
    error: BaseException | None = None
    result = None
    try:
        # its outputs judged at the audit epochs (energies decide no label before the first training step)
        with hooks_removed(model, f"Audit {audit.name!r}"), outputs_judged(), kinds_about(f"Audit {audit.name!r}"):
            audit.validate(model, probe)
            with warnings.catch_warnings():
                if quiet_run:
                    warnings.simplefilter("ignore")
                result = audit.dry_run(model, probe)
        result = None if result is None else checked_result(audit, result)  # a dry run of its own may return None
        check_state(audit, audit.state_dict())  # what a checkpoint must give back on resume
    except Exception as err:
        error = err
    finally:
        audit.load_state_dict(state)
    error = settle_shards(error)  # under DDP every process learns whether one failed, and all raise alike
    if error is not None:
        raise MisconfigurationException(f"Audit {audit.name!r} is misconfigured: {error}") from error
    return result


def probe_to_device(probe: Probe, trainer: Trainer, pl_module: LightningModule) -> Probe:
    """``probe`` on the module's device, its floating inputs and forward arguments converted as the
    precision plugin converts a training batch (the weights' dtype under ``"64-true"``/``"bf16-true"``)."""
    probe = probe.to(pl_module.device)
    convert = trainer.precision_plugin.convert_input  # floating tensors to the weights' dtype under "64-true"/"bf16-true"
    args = probe.additional_forward_args  # a float side input (model(img, meta)) is the model's input too, as in training
    # a cut probe's marks kept (forward_args.marks_kept): the plugin's apply_to_collection rebuilds a plain tuple or dict
    return Probe(convert(probe.inputs), probe.labels, marks_kept(convert(args), args) if args is not None else None)
