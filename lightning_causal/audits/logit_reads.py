"""Outputs that the package's audits read as logits (higher = likelier) but that are none: energies, distances or losses
per class (:func:`lower_is_likelier`: the probe's labels are the class of the smallest output) and 0/1 prediction sets
(:func:`set_rows`), and a flow's latent or log-likelihood read as classes (:mod:`~lightning_causal.audits.flow_outputs`).
One judge, :func:`judge_outputs` (one pass, then :func:`warn_outputs`), serves both paths that warn of them, so that a
model and probe get the same warnings by either: the callback's audit epochs (all their audits in one pass, each run
inside :func:`outputs_judged`), and a direct ``audit.run(model, probe)`` (:func:`judged_run`, which wraps every
:class:`~lightning_causal.audits.base.Audit` subclass's ``run``: one pass, once per run, after it runs); the callback's
set-up and ``audit_model`` warn by :func:`warn_outputs` on the pass of their own checks.
"""

from __future__ import annotations

import functools
import inspect
import typing
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import torch

from lightning_causal.audits.label_task import label_task, task_model
from lightning_causal.causal.engine.ablation import mask_reads
from lightning_causal.causal.engine.forward import Forward, select_output
from lightning_causal.causal.engine.layer_calls import layer_calls, order_unread
from lightning_causal.causal.engine.state import as_tuple, audit_mode
from lightning_causal.causal.engine.user_frame import outside_package

if TYPE_CHECKING:
    from lightning_causal.audits.base import Audit, Probe

__all__ = ["JUDGED_ROWS", "LOWER_IS_LIKELIER_ROWS", "ORDER_ROWS", "class_labels", "judge_outputs", "judged_run",
           "lower_is_likelier", "outputs_judged", "read_call_order", "set_rows", "targets_of_positions", "warn_outputs",
           "warn_read_as_logits"]


def targets_of_positions(probe: Probe) -> torch.Tensor | None:
    """The probe's labels, less the ignore index ``-100`` of cross entropy where they are per-position
    targets shaped like the inputs' first two dimensions (a language model's batch: ``labels`` ``[N, T]``
    with -100 at padding and prompt positions), which marks positions without a target, not a class.

    Args:
        probe: the probe.
    """
    labels, first = probe.labels, probe.first
    if (isinstance(labels, torch.Tensor) and labels.dim() >= 2 and first.dim() >= 2 and labels.shape[:2] == first.shape[:2]
            and not labels.is_floating_point() and not labels.dtype.is_complex):
        return labels[labels != -100]
    return labels


def warn_read_as_logits(explained: Sequence[tuple[Audit, object]], model: torch.nn.Module, labels: object) -> None:
    """One warning naming the audits of ``explained`` (each with the output it explains) whose output looks like
    energies (:func:`lower_is_likelier` of the probe's ``labels``), one naming those whose output is 0/1 prediction
    sets (:func:`set_rows`).

    Args:
        explained: ``(audit, the output it explains on the probe)`` pairs.
        model: the model audited (whether it says it regresses).
        labels: the probe's labels (:func:`targets_of_positions`).
    """
    lowest = [audit for audit, out in explained if lower_is_likelier(out, labels, model, audit.output) is not None]
    if lowest:  # energies read as logits: every audit's class, probability and flip would be the least likely class's
        _warn_energies([audit.name for audit in lowest], [audit.name for audit in lowest if not _packaged(audit)])
    sets = [(audit.name, tied) for audit, out in explained if (tied := set_rows(out)) is not None]
    if sets:  # 0/1 memberships read as logits: the first member of a set explained, softmaxes of 0s and 1s
        _warn_sets(sets)


#: whether the audits run now are judged already (:func:`outputs_judged`)
_JUDGED: ContextVar[bool] = ContextVar("lightning_causal_outputs_judged", default=False)


@contextmanager
def outputs_judged() -> Iterator[None]:
    """Inside, audit runs do not judge their outputs (:func:`judged_run`): the caller judged them for all its audits
    in one pass (the callback's audit epoch, ``audit_model``), left them to a later pass (the callback's set-up, which
    sees the model before its first training step), or an outer run judges them (an audit's ``run`` calling
    ``super().run``)."""
    token = _JUDGED.set(True)
    try:
        yield
    finally:
        _JUDGED.reset(token)


#: The most probe rows :func:`judged_run`'s pass holds, spread over the probe: the shares :func:`lower_is_likelier`
#: judges are read as well on them, and a cheap audit of a large probe pays no whole pass more (an InputEffectAudit of
#: 4 patches on 512 images of 64 x 64 took 16% more CPU time with a pass of the whole probe)
JUDGED_ROWS = 256


def _annotated_probe(annotation: Any) -> bool:
    """Whether a ``run``'s probe parameter is annotated as a ``Probe`` alone (``Probe``, ``Probe | None``,
    ``Optional[Probe]``, or those as strings): a union naming another type too (``Tensor | Probe``) reads that type
    itself, as an unannotated parameter may."""
    if isinstance(annotation, str):
        names = {part.strip() for part in annotation.replace("Optional[", "").replace("]", "").split("|")}
        return bool(names) and {name.rsplit(".", 1)[-1] for name in names} - {"None"} == {"Probe"}
    from lightning_causal.audits.base import Probe  # it imports this module

    members = [a for a in (typing.get_args(annotation) or (annotation,)) if a is not type(None)]
    return bool(members) and all(isinstance(a, type) and issubclass(a, Probe) for a in members)


def judged_run(run: Callable[..., Any]) -> Callable[..., Any]:
    """``run``, an audit's ``run(model, probe, *, max_batch_size=None)``, that also warns, as the callback's audit
    epochs do (:func:`judge_outputs`, the same judge), where the output the audit explains reads as energies or 0/1 sets
    (:func:`warn_read_as_logits`), or as a flow's latent or log-likelihood explained as classes
    (:mod:`~lightning_causal.audits.flow_outputs`), on one pass after the run, once per run (not inside
    :func:`outputs_judged`); before it, where no watched pass has yet called the model, :func:`read_call_order`'s pass,
    so that the run reads the model's task by call order. Every run, judged here or by its caller, reads each attention
    mask once (:func:`~lightning_causal.causal.engine.ablation.mask_reads`). The model, the probe and ``max_batch_size`` are read by
    ``run``'s own parameters, however
    the caller passed them (a subclass's ``run(self, net, data, max_batch_size=None)`` called ``run(net=m, data=p)`` or
    ``run(m, p, 64)``). A probe that is no :class:`~lightning_causal.audits.base.Probe` and has no ``.inputs`` (the
    samples as they are, a tensor or ``(x, y)``) is refused with a ``TypeError`` naming the parameter and the way out,
    ``audit.run(model, Probe(x, y))``, where ``run`` is the package's own or annotates that parameter as a ``Probe``; a
    user's subclass whose ``run`` leaves it unannotated (or names another type) gets what it was given, as before, and
    is judged only when given a ``Probe``.
    A pass or an ``output=`` that fails says nothing here: the run reports it.

    Args:
        run: the audit class's own ``run``.
    """
    signature = inspect.signature(run)
    params = list(signature.parameters.values())
    # the package's own runs read a Probe; a user's run, only where it says so (it may read a tensor itself)
    probe_only = (str(run.__module__).split(".")[0] == "lightning_causal"  # as _packaged reads it
                  or (len(params) >= 3 and _annotated_probe(params[2].annotation)))

    @functools.wraps(run)
    def judged(self: Audit, *args: Any, **kwargs: Any) -> Any:
        with mask_reads():  # each attention mask read once per run
            return _judged(self, *args, **kwargs)

    def _judged(self: Audit, *args: Any, **kwargs: Any) -> Any:
        if _JUDGED.get():
            return run(self, *args, **kwargs)
        from lightning_causal.audits.base import Probe  # it imports this module

        try:  # model and probe are run's first two parameters after self
            bound = signature.bind(self, *args, **kwargs)
        except TypeError:  # the run names the mistake
            bound = None
        given = bound is not None and len(bound.args) >= 3 and isinstance(bound.args[2], Probe)
        if probe_only and bound is not None and len(bound.args) >= 3 and not given and not hasattr(bound.args[2], "inputs"):
            # a tensor or a tuple (x, y) given as the probe: refused here, not by the run's bare AttributeError
            raise TypeError(f"Expected argument `{list(signature.parameters)[2]}` to be a Probe (lightning_causal.Probe, "
                            f"the samples the audit explains) but got {type(bound.args[2]).__name__}: wrap the samples, "
                            "`audit.run(model, Probe(x, y))` (inputs a tensor [N, ...] or a tuple of them, labels "
                            "optional, `additional_forward_args=` the forward's other arguments)")
        with outputs_judged():
            if given:  # before the run reads the model's task
                read_call_order(bound.args[1], bound.args[2])
            result = run(self, *args, **kwargs)
            if given:  # after the run: its passes come first
                judge_outputs([self], bound.args[1], bound.args[2], bound.arguments.get("max_batch_size"))
        return result

    return judged


def judge_outputs(audits: Sequence[Audit], model: torch.nn.Module, probe: Probe, max_batch_size: object = None) -> None:
    """The warnings of outputs that the audits read as what they are not (:func:`warn_outputs`), on one pass of
    ``model`` in :func:`~lightning_causal.causal.engine.state.audit_mode` (nothing of it kept) over at most
    :data:`JUDGED_ROWS` rows of ``probe``, or ``max_batch_size`` where given but :data:`LOWER_IS_LIKELIER_ROWS` at
    least, spread evenly over it (the first rows of a probe sorted by class hold one class; a cheap audit of a large
    probe pays no whole pass more): the one judge of a direct run (:func:`judged_run`) and of the callback's audit
    epochs (all its audits in that pass), so that the same model and probe get the same warnings by either path. A
    pass that fails, or an ``output=`` that does not select (that audit left out), says nothing here: the runs report
    it.

    Args:
        audits: the audits whose explained outputs are judged.
        model: the model audited.
        probe: the probe.
        max_batch_size: the rows a pass holds (``None``: :data:`JUDGED_ROWS`).

    Examples:
        >>> import warnings
        >>> from lightning_causal.audits import InputEffectAudit, Probe
        >>> sets = torch.nn.Linear(2, 3)
        >>> sets.forward = lambda x: (x[:, :1].repeat(1, 3) > torch.tensor([-1.0, 0.0, 1.0])).float()  # prediction sets
        >>> with warnings.catch_warnings(record=True) as seen:
        ...     warnings.simplefilter("always")
        ...     judge_outputs([InputEffectAudit()], sets, Probe(torch.randn(30, 2)))
        >>> [str(w.message)[:60] for w in seen]
        ["The output explained by audit 'input_effect' holds only 0s a"]
    """
    if not isinstance(model, torch.nn.Module) or not len(probe):
        return
    rows = min(len(probe), JUDGED_ROWS if not isinstance(max_batch_size, int) else max(max_batch_size, LOWER_IS_LIKELIER_ROWS))
    try:
        spread = torch.arange(rows, device=probe.first.device) * len(probe) // rows  # evenly over the probe
        part = probe if rows == len(probe) else probe.subset(spread)
        raw = _watched_pass(model, part)
    except Exception:  # the runs name what failed
        return
    explained = []
    for audit in audits:
        try:
            explained.append((audit, select_output(raw, audit.output)))
        except Exception:  # its run names what failed
            continue
    warn_outputs(explained, raw, model, part)


def _watched_pass(model: torch.nn.Module, probe: Probe) -> object:
    """``model``'s return value on ``probe``, in :func:`~lightning_causal.causal.engine.state.audit_mode` (nothing of
    the pass kept) and watched by :func:`~lightning_causal.causal.engine.layer_calls.layer_calls`: the layer its output
    comes out of, by call order, for :func:`~lightning_causal.audits.label_task.label_task`."""
    with layer_calls(), audit_mode(model):
        return Forward(model, num_samples=len(probe), **probe.forward_options).raw(*as_tuple(probe.inputs))


#: The probe rows of the watched pass a direct run takes first where its model's call order is unread
#: (:func:`read_call_order`)
ORDER_ROWS = 2


def read_call_order(model: object, probe: Probe) -> None:
    """Where no watched pass has called ``model`` and one would tell its task
    (:func:`~lightning_causal.causal.engine.layer_calls.order_unread`: it holds a ``Sigmoid``, ``Softmax`` or
    ``LogSoftmax``), one watched pass of its first :data:`ORDER_ROWS` probe rows, nothing of it kept: a first direct
    run then reads the model's task (:func:`~lightning_causal.audits.label_task.label_task`) by the layer that computes
    its output, as the later runs do after :func:`judge_outputs`' pass, not by the layer it registers last (a sigmoid
    gate registered after a softmax head, a head's activation registered before its body). No pass where a watched
    one has called the model (the callback's probe check, an earlier run), nor for a model without such an activation.
    A pass that fails says nothing here: the run reports it.

    Args:
        model: the model audited.
        probe: the probe.
    """
    if not isinstance(model, torch.nn.Module) or not len(probe) or not order_unread(model):
        return
    rows = min(len(probe), ORDER_ROWS)
    try:
        _watched_pass(model, probe if rows == len(probe) else probe.subset(slice(0, rows)))
    except Exception:  # noqa: BLE001 - the run names what failed; its task is then read by registration order
        return


def warn_outputs(explained: Sequence[tuple[Audit, object]], raw: object, model: torch.nn.Module, probe: Probe, *,
                 read_as_logits: bool = True) -> None:
    """The warnings of :func:`judge_outputs` on a pass already run: ``raw``, the model's return value on ``probe``, and
    ``explained``, each audit with the output it explains. A flow's latent explained as classes
    (:func:`~lightning_causal.audits.flow_outputs.warn_flow_latent`), a log-likelihood compared as a binary logit
    (:func:`~lightning_causal.audits.flow_outputs.warn_saturated_decisions`) and, with ``read_as_logits``, energies and
    0/1 sets (:func:`warn_read_as_logits`; the callback's set-up, which sees the model before its first training step,
    leaves them to its audit epochs: an untrained binary classifier's head is backwards about one fit in four).

    Args:
        explained: ``(audit, the output it explains on the probe)`` pairs.
        raw: the model's return value on ``probe``.
        model: the model audited.
        probe: the probe ``raw`` is of.
        read_as_logits: also warn of energies and 0/1 sets.
    """
    from lightning_causal.audits.flow_outputs import (  # it imports this module
        warn_flow_latent,
        warn_saturated_decisions,
    )

    for audit, out in explained:
        warn_flow_latent(audit, raw, out, probe, model)  # a flow's (z, log_det) with z explained as classes
        warn_saturated_decisions(audit, out, probe, model)  # a log-likelihood read as a binary logit
    if read_as_logits:
        warn_read_as_logits(explained, model, targets_of_positions(probe))


def class_labels(labels: object) -> torch.Tensor | None:
    """``labels`` as class indices ``[N]`` (``long``) where :func:`lower_is_likelier` (and
    :func:`~lightning_causal.audits.flow_outputs.decides_labels`) may judge on them: 1-D, of
    :data:`LOWER_IS_LIKELIER_ROWS` rows or more, whole numbers (floats too), two classes or more, none negative."""
    if not (isinstance(labels, torch.Tensor) and labels.dim() == 1 and len(labels) >= LOWER_IS_LIKELIER_ROWS
            and not labels.dtype.is_complex and labels.dtype != torch.bool):
        return None
    if labels.is_floating_point() and not bool((labels == labels.round()).all()):
        return None
    labels = labels.long()
    return labels if bool((labels >= 0).all()) and len(labels.unique()) >= 2 else None


#: The fewest labelled probe rows on which :func:`lower_is_likelier` judges an output's direction.
LOWER_IS_LIKELIER_ROWS = 20


def lower_is_likelier(out: object, labels: object, model: torch.nn.Module | None = None, output: object = None,
                      ) -> tuple[float, float] | None:
    """``(smallest, largest)``: the shares of the probe's class labels that the smallest and the largest of the explained
    outputs ``out`` ``[N, C]`` agree with, where the smallest decides the labels and the largest does not, or ``None``.
    Such outputs are energies, distances or losses per class (lower = more likely: an energy-based classifier, a
    nearest-prototype head's distances, a conformal wrapper's non-conformity scores), which the package's audits read as
    logits: its predicted class is the largest output (the least likely class), its probabilities their softmax, its
    counterfactuals flip the largest. Judged on
    :data:`LOWER_IS_LIKELIER_ROWS` labelled rows or more of two classes or more, one whole-number class per row: the
    smallest agrees with half of the labels or more, with half of them more than the largest does, and with a tenth of
    them more than the most frequent label's share (an untrained model predicting one class everywhere is no
    energy model). Not for a model that says it regresses (:func:`~lightning_causal.audits.options.label_task`).

    Examples:
        >>> energies = torch.tensor([[0.0, 2.0, 3.0], [2.0, 0.0, 3.0], [3.0, 2.0, 0.0]]).repeat(8, 1)
        >>> lower_is_likelier(energies, torch.arange(3).repeat(8)), lower_is_likelier(-energies, torch.arange(3).repeat(8))
        ((1.0, 0.0), None)
    """
    if not (isinstance(out, torch.Tensor) and out.dim() == 2 and out.shape[1] >= 2 and out.is_floating_point()):
        return None
    labels = class_labels(labels)
    if labels is None or len(labels) != len(out) or bool((labels >= out.shape[1]).any()):
        return None
    if label_task(task_model(model, output)) == "regression":
        return None
    out = out.detach()
    smallest = float((out.argmin(1) == labels).float().mean())
    largest = float((out.argmax(1) == labels).float().mean())
    majority = float(labels.bincount().max()) / len(labels)
    if smallest >= 0.5 and smallest >= largest + 0.5 and smallest >= majority + 0.1:
        return smallest, largest
    return None


def _packaged(audit: Audit) -> bool:
    """Whether ``audit`` runs the package's ``run`` (that of the class :func:`judged_run` wraps, ``functools.wraps``
    keeping its module): one of the package's audit classes, or a user's subclass that keeps its ``run`` (one that only
    renames ``InputEffectAudit`` reads the largest output as the package's does); one whose ``run`` is the user's is not."""
    return str(getattr(type(audit).run, "__module__", "")).split(".")[0] == "lightning_causal"


def _warn_energies(lowest: list[str], own: Sequence[str] = ()) -> None:
    """One warning naming every audit whose explained output :func:`lower_is_likelier` found lower where likelier (no
    figure in it: the same words at every audit epoch, shown once per fit); ``own``: those of them of the user's own
    classes, which may read the smallest output as the class themselves."""
    names = ", ".join(repr(name) for name in lowest)
    yours = ""
    if own:
        many = len(own) > 1
        yours = (f" Audit{'s' if many else ''} {', '.join(repr(name) for name in own)} {'are' if many else 'is'} of your "
                 "own class: where it reads the smallest output as the likeliest class itself (`out.argmin(1)`), that "
                 "reading is right, but the package's estimators it calls read the largest under `target=None`: pass "
                 "them the argmin as `target=`, or the outputs negated as above.")
    warnings.warn(
        "The probe's labels are the class of the SMALLEST output (on half of its samples or more, half of them more than "
        f"of the largest), for the output{'s' if len(lowest) > 1 else ''} explained by audit{'s' if len(lowest) > 1 else ''} "
        f"{names}: those outputs look like energies, distances or losses per class (lower = more likely; a conformal "
        "wrapper's non-conformity scores, APS or 1 - p), but the package's audits and estimators read an output as "
        "logits (higher = more likely): `target=None` would explain the largest output (the least likely class), "
        "probabilities would be its softmax, counterfactuals would flip the largest output and `misclassified` would "
        "count the correct samples. "
        "Pass `output=lambda out: -out` to each audit (logits = -energy; a callback's audits all take it), or have "
        "`forward` return -energy; for non-conformity scores, explain the logits they are computed from. A classifier of "
        "logits whose training has not yet turned its head the labels' way (backwards at initialisation, early in a fit) "
        f"reads so too, and needs no `output=`.{yours}",
        UserWarning, stacklevel=outside_package())


def set_rows(out: object) -> tuple[int, int] | None:
    """``(tied, rows)``: where every entry of the explained output ``out`` ``[N, C]`` (``C >= 2``) is 0 or 1 (a
    conformal wrapper's prediction sets, multi-hot; thresholded decisions), one 1 at least (0s alone are a head
    initialised to zeros), and some rows hold no 1 or several (an empty set, a set of several classes), how many such
    rows of its ``N``; else ``None``. The audits read such an output as
    logits: `target=None` explains each row's first largest entry, the first class of a set (class 0 of an empty set).

    Examples:
        >>> set_rows(torch.tensor([[1.0, 1.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.0, 0.0]])), set_rows(torch.eye(3))
        ((2, 3), None)
    """
    if not (isinstance(out, torch.Tensor) and out.dim() == 2 and out.shape[1] >= 2 and out.is_floating_point()
            and out.numel()):
        return None
    out = out.detach()
    # an output of 0s alone (a head initialised to zeros, before training) is no set
    if not bool(((out == 0) | (out == 1)).all()) or not bool((out == 1).any()):
        return None
    tied = int((out.sum(1) != 1).sum())
    return (tied, int(out.shape[0])) if tied else None


def _warn_sets(sets: list[tuple[str, tuple[int, int]]]) -> None:
    """One warning naming every audit whose explained output :func:`set_rows` found a 0/1 set with ties (no figure in it:
    the same words at every audit epoch, shown once per fit)."""
    names = ", ".join(repr(name) for name, _ in sets)
    many = len(sets) > 1
    warnings.warn(
        f"The output{'s' if many else ''} explained by audit{'s' if many else ''} {names} hold{'' if many else 's'} only "
        "0s and 1s, and some of the probe's rows hold no 1 or several (a prediction set of a conformal wrapper, "
        "multi-hot decisions): the audits read an output as logits, so `target=None` explains the first class of each "
        "set (class 0 of an empty set) and a softmax of 0/1 memberships is no class probability (the fairness gap, "
        "SobolAudit's probability=True, the deletion curves); each effect is a step (a class leaving or joining the "
        "set, -1, 0 or 1) and gradients are 0. Pass `output=` one score per sample: the set size (`lambda s: "
        "s.sum(1, keepdim=True)`, with `SobolAudit(probability=False)` and `CompareSettings(score=\"raw\")`), class "
        "k's membership (`target=k`), or the scores the set is cut from (the wrapped classifier's logits)",
        UserWarning, stacklevel=outside_package())
