"""What :class:`~lightning_causal.callbacks.audit.CausalAuditCallback` checks of the trainer it is set up
in: audits of one name in two audit callbacks (refused), a strategy that shards the parameters across processes
(refused), a weight-averaging callback listed before it (warned) and ``StochasticWeightAveraging``'s BatchNorm epoch
(not audited; warned where the fit-end audit falls after it), a training dataloader without a length (warned), a fit that
ran no training step (warned at its end: nothing audited), weights changed after an epoch's audit with no training step
between (warned: the audit explained the weights before the change), and Lightning's ``sync_dist`` advice for the
callback's own scalars under DDP (silenced)."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
from lightning.pytorch import Callback, Trainer
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from lightning.pytorch.utilities.warnings import PossibleUserWarning

from lightning_causal._user_warnings import warn_at_users_line
from lightning_causal.audits.base import Audit

__all__ = [
    "averaging_callbacks",
    "check_names_across_callbacks",
    "buffers_written",
    "check_unsharded_parameters",
    "quiet_sync_dist_advice",
    "swa_batch_norm_epoch",
    "warn_averaging_before",
    "warn_changed_after_audit",
    "warn_endless_epochs",
    "weight_sums",
    "warn_no_training",
]


def _shards_parameters(strategy: object) -> bool:
    """Whether ``strategy`` splits the parameters across processes, so that each forward pass gathers them
    (collectives): FSDP, ``ModelParallelStrategy`` (tensor parallelism, FSDP2) and DeepSpeed's ZeRO stage 3."""
    from lightning.pytorch.strategies import DeepSpeedStrategy, FSDPStrategy, ModelParallelStrategy

    if isinstance(strategy, (FSDPStrategy, ModelParallelStrategy)):
        return True
    return isinstance(strategy, DeepSpeedStrategy) and bool(getattr(strategy, "zero_stage_3", False))


def check_unsharded_parameters(trainer: Trainer) -> None:
    """Refuse a fit of several processes whose strategy shards the parameters.

    Each forward pass of such a model runs collectives that every process must call alike, but the audits share
    their rows across the processes unequally (a row more or less, another number of passes; a chunk run again in
    halves where one device ran out of memory): the processes' passes would not pair up and the fit would hang.
    """
    if trainer.world_size > 1 and _shards_parameters(trainer.strategy):
        raise MisconfigurationException(
            f"CausalAuditCallback cannot audit under {type(trainer.strategy).__name__} across {trainer.world_size} processes: "
            "the strategy shards the parameters, so every forward pass gathers them with collectives that all processes "
            "must run alike, while the audits share their rows (and so their passes) unequally among the processes; the "
            "fit would hang. Audit under DDP (`strategy='ddp'`), or after the fit on one process: save a full checkpoint "
            "and call `lightning_causal.audit_model(model, audits, data)`")


def check_names_across_callbacks(audits: Sequence[Audit], others: Sequence[Sequence[Audit]]) -> None:
    """Audits of one name in two audit callbacks of the trainer (``audits``: this callback's; ``others``:
    the other audit callbacks' audits) log the same tags (``causal/<name>/...``): their values would mix
    in one series, at the same steps where both audit, and each callback's drift compares with its own
    previous audit (another epoch, another probe), so the series would jump between two bases."""
    mine = [a.name for a in audits]
    shared = [name for name in mine if any(name in [a.name for a in theirs] for theirs in others)]
    if shared:
        # one audit object listed in both callbacks: `name=` on it renames it in both, and its state (the causal graph
        # audit's previous graph) would be shared too; each callback needs an object of its own
        same = [a.name for a in audits if any(a is b for theirs in others for b in theirs)]
        way_out = ("pass `name=` to the audits of one callback to tell them apart" if not same else
                   f"{same} {'is one audit object' if len(same) == 1 else 'are audit objects'} listed in both: build a "
                   f"second audit object for the other callback, with a `name=` of its own (e.g. "
                   f"`{type(next(a for a in audits if a.name == same[0])).__name__}(..., name='{same[0]}_2')`); `name=` on "
                   "the one object would rename it in both")
        raise MisconfigurationException(
            f"Expected the audit callbacks of one trainer to hold audits of distinct names but {shared} are in "
            f"more than one: their scalars (causal/{shared[0]}/...) and drift would mix in one series; {way_out}")


def _swa_with_batch_norm(trainer: Trainer) -> Callback | None:
    """The trainer's ``StochasticWeightAveraging`` where its module holds BatchNorm layers and the fit has an epoch
    limit: then the averaging adds an epoch after ``max_epochs`` (``fit_loop.max_epochs += 1`` at fit start, taken off
    when training ends) that copies the averaged weights into the module at its start and runs the training data
    forward, with no backward pass nor optimizer step, to recompute the BatchNorm statistics (Lightning 2.5 to 2.6)."""
    from lightning.pytorch.callbacks import StochasticWeightAveraging

    module = trainer.lightning_module
    if module is None or trainer.max_epochs in (None, -1):
        return None
    swa = next((cb for cb in trainer.callbacks if isinstance(cb, StochasticWeightAveraging)), None)
    return swa if swa is not None and swa.pl_module_contains_batch_norm(module) else None


def swa_batch_norm_epoch(trainer: Trainer, epoch: int) -> bool:
    """Whether ``epoch`` is the epoch that ``StochasticWeightAveraging`` adds after ``max_epochs`` to recompute a
    BatchNorm model's statistics under the averaged weights (:func:`_swa_with_batch_norm`). It trains nothing, so the
    callback does not audit it as a training epoch; the epoch before it is the fit's last. Read from the ``max_epochs``
    the averaging kept at fit start (its ``_max_epochs``, set in its ``on_fit_start``), as its own hooks do."""
    swa = _swa_with_batch_norm(trainer)
    return swa is not None and getattr(swa, "_max_epochs", -1) not in (None, -1) and epoch == swa._max_epochs


def _every_epoch_scheduled(callback: Callback, max_epochs: int | None) -> bool:
    """Whether ``callback``'s readable schedule holds every epoch a fit of ``max_epochs`` may end in:
    ``every_n_epochs=1``, or ``epochs=`` holding ``0 .. max_epochs - 1`` (``max_epochs`` known)."""
    epochs = getattr(callback, "epochs", None)
    if epochs is None:
        return getattr(callback, "every_n_epochs", None) == 1
    return max_epochs is not None and max_epochs >= 0 and set(range(max_epochs)) <= set(epochs)


def _averaging_kinds() -> tuple[type, ...]:
    """Lightning's callbacks that copy averaged weights into the model when training ends (``StochasticWeightAveraging``;
    ``WeightAveraging`` and its ``EMAWeightAveraging``: Lightning >= 2.6)."""
    from lightning.pytorch import callbacks as lightning_callbacks

    return tuple(getattr(lightning_callbacks, k) for k in ("StochasticWeightAveraging", "WeightAveraging")
                 if hasattr(lightning_callbacks, k))


def averaging_callbacks(trainer: Trainer) -> list[Callback]:
    """The callbacks of ``trainer`` that copy averaged weights into the model when training ends (:func:`_averaging_kinds`)."""
    kinds = _averaging_kinds()
    return [cb for cb in trainer.callbacks if isinstance(cb, kinds)]


def warn_averaging_before(callback: Callback, trainer: Trainer) -> None:
    """``StochasticWeightAveraging`` listed before ``callback`` swaps the averaged weights in at
    ``on_train_end`` before the fit-end audit runs there: that audit explains other weights than
    the epoch audits (which see the trained ones), unless the user says so; not for a ``StochasticWeightAveraging`` where
    the schedule audits the last epoch (``callback.should_audit``): it swaps only when the fit reaches that epoch, audited
    at its end (no fit-end audit), and a fit that ends before it (early stopping) keeps the trained weights; nor for any
    averaging where the schedule holds every epoch (``every_n_epochs=1``, :func:`_every_epoch_scheduled`): the epoch a fit
    ends in, also early, is audited at its end on the trained weights, and no fit-end audit runs. On a model with BatchNorm layers
    ``StochasticWeightAveraging`` swaps them in at the start of the epoch it adds after ``max_epochs``
    (:func:`swa_batch_norm_epoch`), before training ends in either order: warned, with no advice to reorder the
    callbacks (which would not help), where the schedule (``callback.should_audit``) leaves the last epoch to the
    fit-end audit (a callable schedule is not called here: warned). Call it only where the callback audits at the
    end of fit."""
    from lightning.pytorch import callbacks as lightning_callbacks

    kinds = _averaging_kinds()
    callbacks = list(trainer.callbacks)
    mine = next((i for i, cb in enumerate(callbacks) if cb is callback), len(callbacks))
    batch_norm_swa = _swa_with_batch_norm(trainer)  # its swap comes before training ends in either order: said below
    last = -1 if trainer.max_epochs is None else trainer.max_epochs - 1
    readable = getattr(callback, "epochs", None) is not None or not callable(getattr(callback, "every_n_epochs", None))
    last_audited = last >= 0 and readable and callback.should_audit(last)  # type: ignore[attr-defined]
    # StochasticWeightAveraging swaps only when the fit reaches its last epoch, audited then at its end (no fit-end
    # audit); a fit ended earlier (early stopping) keeps the trained weights: never the averaged ones in a fit-end audit
    # every epoch on the schedule: the epoch a fit ends in (early stopping, max_steps) is audited at its end, before any
    # averaging swaps (WeightAveraging/EMAWeightAveraging swap whenever training ends), and no fit-end audit runs
    every = readable and _every_epoch_scheduled(callback, trainer.max_epochs)
    swaps = [cb for cb in callbacks[:mine] if isinstance(cb, kinds) and cb is not batch_norm_swa and not every
             and not (last_audited and isinstance(cb, lightning_callbacks.StochasticWeightAveraging))]
    before = [type(cb).__name__ for cb in swaps]
    if before:
        warn_at_users_line(
            f"CausalAuditCallback comes after {before[0]} in `callbacks=`: when training ends, the averaging "
            "swaps its averaged weights in before the fit-end audit (of a last epoch off the schedule), which then "
            "explains the averaged weights while every other audit explains the trained ones. List "
            f"CausalAuditCallback before {before[0]} to explain the trained weights throughout, or pass "
            "`on_fit_end=False`")
        return
    if batch_norm_swa is None or last_audited:
        return  # the last epoch is audited at its end, on the trained weights (a callable is not called at set-up)
    warn_at_users_line(
        "CausalAuditCallback's fit-end audit (of a last epoch off the schedule) will explain StochasticWeightAveraging's "
        "averaged weights, whatever the order in `callbacks=`: the model has BatchNorm layers, so the averaging adds an "
        f"epoch after `max_epochs` that swaps the averaged weights in at its start and recomputes the BatchNorm "
        "statistics (that epoch trains nothing and is not audited), before training ends; every other audit explains the "
        f"trained weights. Put the last epoch ({last}) on the schedule (`epochs=`, `every_n_epochs=`) to explain the "
        "trained weights throughout, or pass `on_fit_end=False`")


def quiet_sync_dist_advice() -> None:
    """Silence Lightning's advice to log with ``sync_dist=True`` for the callback's own scalars:
    every rank holds the same audit values (the audits gather their shards), and a collective
    per scalar could hang a fit if one rank skipped an audit (its report failed to write).

    The filter reads the advice's text, ``It is recommended to use `self.log(<name>!r, ..., sync_dist=True)` ...``
    (Lightning 2.5.0 to 2.6.6 alike, ``trainer/connectors/logger_connector/result.py``), with the tag in either of
    the quotes ``repr`` gives it: double quotes where it holds an apostrophe (an audit named ``"user's"``)."""
    warnings.filterwarnings("ignore", message=r"It is recommended to use `self\.log\(['\"](causal|compare)/",
                            category=PossibleUserWarning)


def warn_endless_epochs(trainer: Trainer) -> None:
    """Audits run at the end of training epochs: a training dataloader without a length (an
    ``IterableDataset`` stream, trained with ``max_steps``) may never end its first epoch, so a fit of
    any number of steps gets at most one audit, at its end. A warning says so and how to get epochs."""
    if trainer.num_training_batches != float("inf"):
        return
    warn_at_users_line("CausalAuditCallback audits at the end of training epochs, but the training dataloader has no length: if "
                       "it never runs out (a stream trained with `max_steps`), its first epoch ends only when training stops, "
                       "and the callback audits at most once, at the end of fit. For audits during training, give the Trainer "
                       "`limit_train_batches=<int>` (epochs of that many batches, audited on the schedule) or the dataset a `__len__`")


def _no_training_reason(trainer: Trainer) -> str:
    """Why Lightning ran no training step in a fit that was not resumed nor interrupted: ``limit_train_batches=0``,
    a training dataloader of no batch, or ``max_epochs``/``max_steps`` reached before the first step."""
    if trainer.limit_train_batches == 0:
        return "the Trainer has `limit_train_batches=0`"
    if trainer.num_training_batches == 0:
        return "the training dataloader holds no batch (an empty dataset, or fewer samples than a batch with `drop_last=True`)"
    return f"`max_epochs={trainer.max_epochs}`, `max_steps={trainer.max_steps}` ended it before the first step"


def warn_no_training(trainer: Trainer) -> None:
    """Warn (process 0) that a fit ran no training step, so the callback audited nothing: Lightning skips training,
    ``on_train_start`` and ``on_train_end`` included (no probe is read, no epoch ends, no fit-end audit runs), where
    ``limit_train_batches=0``, the training dataloader has no batch, or the limits are reached before the first step.
    Lightning itself says nothing of ``limit_train_batches=0``.

    Args:
        trainer: the Lightning ``Trainer`` whose fit ends.
    """
    warn_at_users_line(
        f"CausalAuditCallback ran no audit: this fit ran no training step, as {_no_training_reason(trainer)}, so Lightning "
        "called none of the hooks that read the probe and audit (no epoch ended, and the audit at the end of fit, "
        "`on_fit_end=True`, audits the last trained epoch: there is none). Give the fit training batches, or audit the "
        "model as it is with `lightning_causal.audit_model(model, audits, data)`")


def _forward_weights(module: torch.nn.Module) -> list[tuple[str, torch.Tensor]]:
    """The named weights ``module``'s forward uses: its parameters (lazy ones left out), a pruned one
    (``torch.nn.utils.prune``, ``ModelPruning``: a parameter ``X_orig`` beside a buffer ``X_mask``) as the weight ``X``
    the pruning computed, so that pruning made permanent (``X_orig * X_mask`` written into a parameter ``X``) changes
    nothing and a new mask does; and its floating-point buffers (a merged layer's task vector or an edit kept in a buffer,
    ``F.linear(x, self.lin.weight + self.delta)``; BatchNorm's running statistics), a pruning mask aside."""
    named, seen = [], set()
    for prefix, sub in module.named_modules():
        for name, p in sub._parameters.items():
            if p is None or torch.nn.parameter.is_lazy(p) or id(p) in seen:  # a tied weight (an LM's head) read once
                continue
            seen.add(id(p))
            base = name[:-len("_orig")] if name.endswith("_orig") else None
            pruned = getattr(sub, base, None) if base is not None and base + "_mask" in sub._buffers else None
            if isinstance(pruned, torch.Tensor):
                name, p = base, pruned
            named.append((f"{prefix}.{name}" if prefix else name, p))
        for name, b in sub._buffers.items():
            if (not isinstance(b, torch.Tensor) or torch.nn.parameter.is_lazy(b) or id(b) in seen
                    or not (b.is_floating_point() or b.is_complex())
                    or (name.endswith("_mask") and name[:-len("_mask")] + "_orig" in sub._parameters)):  # read in X
                continue
            seen.add(id(b))
            named.append((f"{prefix}.{name}" if prefix else name, b))
    return named


def weight_sums(module: torch.nn.Module) -> tuple[tuple[str, ...], torch.Tensor | None]:
    """The names of the weights ``module``'s forward uses (:func:`_forward_weights`) and each one's sum and Euclidean
    norm ``[P, 2]`` (float32, on the first weight's device: read with no wait for the device and no copy of a float32
    weight; compared once, by :func:`warn_changed_after_audit`): equal when read twice with no write to the weights
    between (the same reductions of the same values)."""
    named = _forward_weights(module)
    if not named:
        return (), None
    device = named[0][1].device
    with torch.no_grad():
        rows = []
        for _, p in named:
            v = torch.view_as_real(p.detach()) if p.is_complex() else p.detach()
            v = v if v.dtype in (torch.float32, torch.float64) else v.float()
            rows.append(torch.stack([v.sum(), torch.linalg.vector_norm(v)]).to(device, torch.float32))
    return tuple(n for n, _ in named), torch.stack(rows)


def buffers_written(start: tuple | None, end: tuple | None, module: torch.nn.Module) -> frozenset[str]:
    """The buffers of ``module`` whose :func:`weight_sums` moved from ``start`` (an epoch's start) to ``end`` (its last
    training step), or that one of them lacks (a state registered as ``None`` and set by the forward): states the forward
    keeps, which training writes (BatchNorm's running statistics, a hidden state carried across batches,
    ``spectral_norm``'s vectors, a quantization observer's range), no weights; a forward pass in train mode after the
    audit (a callback's or ``on_train_epoch_end``'s, ``torch.no_grad()`` or not) or a carried state's reset at the
    epoch's end moves them with no edit, which :func:`warn_changed_after_audit` does not warn of. Compared by name, so
    also where the weights' names changed between (a lazy module built by the first step). Empty where either reading
    is missing (a fit resumed mid-epoch)."""
    if start is None or end is None:
        return frozenset()
    buffers = {f"{prefix}.{name}" if prefix else name for prefix, sub in module.named_modules() for name in sub._buffers}
    return frozenset(_moved(start, end) & buffers)


def _moved(a: tuple[tuple[str, ...], torch.Tensor | None], b: tuple[tuple[str, ...], torch.Tensor | None]) -> set[str]:
    """The names whose rows differ between two :func:`weight_sums` readings, or that one of them lacks."""
    if a[0] == b[0]:  # the same weights (most calls): one comparison
        if a[1] is None or b[1] is None:
            return set()
        return {name for name, m in zip(a[0], (a[1] != b[1].to(a[1].device)).any(1).tolist(), strict=True) if m}
    at, bt = {n: i for i, n in enumerate(a[0])}, {n: i for i, n in enumerate(b[0])}
    common = [n for n in a[0] if n in bt]
    moved = set(at) ^ set(bt)
    if common:
        rows = a[1][[at[n] for n in common]] != b[1][[bt[n] for n in common]].to(a[1].device)
        moved |= {name for name, m in zip(common, rows.any(1).tolist(), strict=True) if m}
    return moved


def warn_changed_after_audit(before: tuple | None, module: torch.nn.Module, where: str,
                             now: tuple[tuple[str, ...], torch.Tensor | None] | None = None) -> bool:
    """Warn where the weights of ``module`` changed since the audit of epoch ``before[0]`` though no training step ran
    between: a change made after the callbacks' ``on_train_epoch_end`` (the LightningModule's own, which Lightning calls
    after them: federated averaging of local copies into the audited network, a projection; a callback listed after this
    one), which that audit did not see. ``before``: ``(epoch, names, sums, trained, written)``, that epoch,
    :func:`weight_sums` right after its audit, those of the epoch's last training step (``None`` where unread: a fit
    stopped mid-epoch) and the buffers its training steps wrote (:func:`buffers_written`). The weights are compared by
    name; the buffers training writes are left out (a forward pass in train mode after the audit moves them with no
    edit), and so are weights back to those of the last step (a callback listed before
    this one that swapped other weights in for the epoch's end, as an EMA for its checkpoint, and back when the next
    epoch starts: the audit explained the weights the epoch ended with). ``where``: when it is found (``"at the start
    of epoch 3"``). ``now``: :func:`weight_sums` of ``module`` where already read (read here otherwise).
    Returns whether it warned."""
    if before is None:
        return False
    epoch, names, sums, trained, written = before
    now = weight_sums(module) if now is None else now
    moved = _moved(now, (names, sums)) - written
    if trained is not None and moved:  # those back to the last step's weights: the epoch's end, which the audit explained
        moved &= _moved(now, trained)
    if not moved:
        return False
    changed = [name for name in dict.fromkeys((*now[0], *names)) if name in moved]  # in forward order
    shown = ", in " + ", ".join(changed[:5]) + (f" and {len(changed) - 5} more" if len(changed) > 5 else "")
    warn_at_users_line(
        f"CausalAuditCallback: the weights of the audited {type(module).__name__} changed after the audit of epoch "
        f"{epoch} with no training step since ({where}){shown}: a change made after the callbacks' `on_train_epoch_end`, in "
        "your LightningModule's own (which Lightning calls after them: averaging local copies into the audited network, "
        "as in federated learning, a projection) or by a callback listed after this one. Each such audit explains the "
        "weights before the change, and its report too; make the change in the epoch's last `training_step` or in "
        "`on_train_batch_end`, list such a callback before CausalAuditCallback in `Trainer(callbacks=[...])` (its "
        "`on_train_epoch_end` then runs before the audit), or audit the weights it makes with "
        "`lightning_causal.audit_model(model, audits, data)`")
    return True
