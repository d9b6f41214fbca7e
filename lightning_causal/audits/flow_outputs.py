"""A normalizing flow's return value ``(z, log_det)`` read as a classifier's: a latent ``z`` shaped as the input beside
one number per sample (the log-determinant of the Jacobian). Every audit reads an explained output as logits, so
``output=0`` (the index the refusal of a tuple offers) explains ``z``'s coordinates as class scores: the largest
coordinate as the predicted class, a softmax of ``z`` as probabilities, a counterfactual that makes another coordinate
the largest. :func:`flow_parts` recognises the return value, :func:`flow_hint` adds the way out to the refusal of the
tuple, :func:`warn_flow_latent` warns where an audit explains ``z`` as classes (at the callback's and
``audit_model``'s set-up, ``check_probe_outputs``, and after a direct ``audit.run`` of a probe with class labels,
``logit_reads.judged_run``). A flow's log-likelihood
``[N]`` is one output, which ``FairnessAudit`` reads as a binary logit: :func:`warn_saturated_decisions` warns where
its sigmoid decides one class for every sample while the labels hold both."""

from __future__ import annotations

import warnings

import torch

from lightning_causal.audits.base import Audit, Probe
from lightning_causal.audits.label_task import label_task, task_model
from lightning_causal.audits.logit_reads import LOWER_IS_LIKELIER_ROWS, class_labels
from lightning_causal.causal.engine.batching import kinded
from lightning_causal.causal.engine.user_frame import outside_package

__all__ = ["DECIDING_ROWS", "decides_labels", "flow_hint", "flow_parts", "warn_flow_latent", "warn_saturated_decisions"]


def flow_parts(raw: object, probe: Probe) -> tuple[int, int] | None:
    """``(i, j)`` where ``raw`` is a tuple or list holding at ``i`` a floating tensor of the shape of one of the probe's
    inputs (a flow's latent ``z``, as wide as the input it maps one to one) and at ``j`` a floating tensor of one number
    per sample, ``[N]`` or ``[N, 1]`` (its log-determinant, or a log-likelihood); else ``None``.

    Examples:
        >>> x = torch.randn(4, 3)
        >>> flow_parts((x * 2, torch.zeros(4)), Probe(x)), flow_parts((torch.randn(4, 2), torch.zeros(4)), Probe(x))
        ((0, 1), None)
    """
    if not isinstance(raw, (tuple, list)) or len(raw) < 2:
        return None
    inputs = probe.inputs if isinstance(probe.inputs, tuple) else (probe.inputs,)
    shapes = {x.shape for x in inputs if isinstance(x, torch.Tensor) and x.is_floating_point() and x.dim() >= 2}
    tensors = [(k, t) for k, t in enumerate(raw) if isinstance(t, torch.Tensor) and t.is_floating_point()]
    latent = next((k for k, t in tensors if t.shape in shapes), None)
    rows = len(probe)
    per_sample = next((k for k, t in tensors if k != latent and t.shape in (torch.Size([rows]), torch.Size([rows, 1]))),
                      None)
    return None if latent is None or per_sample is None else (latent, per_sample)


#: The fewest labelled probe rows on which :func:`decides_labels` judges whether an output is a classifier's (those of
#: :func:`~lightning_causal.audits.logit_reads.class_labels`).
DECIDING_ROWS = LOWER_IS_LIKELIER_ROWS


def decides_labels(out: torch.Tensor, labels: object) -> bool:
    """Whether the largest of ``out`` ``[N, C]`` is the probe's class label on half of its rows or more and on a tenth of
    them more than the most frequent label's share, judged on :data:`DECIDING_ROWS` labelled rows or more of two classes
    or more: then ``out`` is a classifier's logits (a hybrid's head beside its features' log-likelihood), no latent.

    Examples:
        >>> logits = torch.tensor([[2.0, 0.0], [0.0, 2.0]]).repeat(10, 1)
        >>> decides_labels(logits, torch.arange(2).repeat(10)), decides_labels(-logits, torch.arange(2).repeat(10))
        (True, False)
    """
    labels = class_labels(labels)
    if labels is None or len(labels) != len(out) or bool((labels >= out.shape[1]).any()):
        return False
    agree = float((out.detach().argmax(1) == labels).float().mean())
    return agree >= 0.5 and agree >= float(labels.bincount().max()) / len(labels) + 0.1


def _likelihood(i: int, j: int) -> str:
    """The ``output=`` of the log-likelihood under a standard normal base, for ``z`` at ``i`` and ``log_det`` at ``j``."""
    return (f"`output=lambda out: torch.distributions.Normal(0.0, 1.0).log_prob(out[{i}]).flatten(1).sum(1) + "
            f"out[{j}].flatten()` (log p(x) under a standard normal base, one number per sample, in nats; "
            "`SobolAudit(probability=False)`)")


def flow_hint(raw: object, probe: Probe) -> str:
    """Words added to the refusal of a tuple without ``output=`` where it reads as a flow's ``(z, log_det)``
    (:func:`flow_parts`): ``output=0`` would explain ``z`` as class scores; the log-likelihood's ``output=``. Empty
    otherwise."""
    parts = flow_parts(raw, probe)
    if parts is None:
        return ""
    i, j = parts
    return (f". out[{i}] {list(raw[i].shape)} has the shape of the input and out[{j}] {list(raw[j].shape)} one number "
            "per sample, as a normalizing flow's `(z, log_det)`: there `output=" f"{i}` would explain z's coordinates as "
            f"class scores; explain the log-likelihood, {_likelihood(i, j)}, or one coordinate of z with `target=k`")


def warn_flow_latent(audit: Audit, raw: object, out: object, probe: Probe, model: torch.nn.Module | None = None) -> None:
    """Warn where ``audit`` explains the latent ``z`` of a return value that reads as a flow's ``(z, log_det)``
    (:func:`flow_parts`; ``z`` itself or flattened) as class scores: under ``target=None`` (its largest coordinate), or
    for an audit that reads the decision itself (``CounterfactualAudit``'s misclassified samples and flips). Not where the
    audit names a coordinate (``target=k``), nor where the output's largest element decides the probe's labels
    (:func:`decides_labels`: a trained hybrid's logits as wide as its input; an untrained one, at a callback's set-up,
    is warned of), nor where ``model`` says its task (a classification or regression loss held, ``hparams.task``: an
    actor-critic's ``(logits, value)``, a classifier's ``(logits, confidence)`` as wide as the input)."""
    parts = flow_parts(raw, probe)
    if parts is None or not isinstance(out, torch.Tensor) or out.dim() != 2:
        return
    i, j = parts
    z = raw[i]
    if not (out is z or (out.shape == z.flatten(1).shape and torch.equal(out, z.flatten(1)))):
        return
    options = getattr(audit, "options", None)
    if getattr(audit, "target", options.get("target") if isinstance(options, dict) else None) is not None:
        return
    if decides_labels(out, probe.labels):  # a classifier's logits as wide as its input (a hybrid on 2 features, 2 classes)
        return
    if model is not None and label_task(model) == "multiclass":  # the whole model's word: a head chosen by index says none
        return  # a classifier's (logits, confidence) as wide as its input (not "multilabel": a flow's coupling nets
        # ending in nn.Sigmoid, a VAE holding nn.BCEWithLogitsLoss for its reconstruction say that too)
    if model is not None and _head_of_another_width(model, probe, i):
        return  # a policy's logits, an autoencoder's reconstruction: no step of a flow, which keeps the width throughout
    warnings.warn(
        f"Audit {audit.name!r} explains out[{i}] {list(z.shape)} of a return value whose out[{j}] "
        f"{list(raw[j].shape)} is one number per sample and whose out[{i}] has the shape of the input, as a normalizing "
        "flow's `(z, log_det)` does. If it is one: the package's audits read their output as class scores, so the largest "
        "coordinate of z is taken for the predicted class (`target=None`), a softmax of z for probabilities and a "
        "counterfactual makes another coordinate the largest, none of which is a decision of a density model; explain "
        f"the log-likelihood, {_likelihood(i, j)}, or one coordinate of z with `target=k` (a flow classifier explains its "
        "class scores log p(x | y) + log p(y), `[N, C]`). A policy's or classifier's logits as wide as the input (an "
        "actor-critic's `(logits, value)`) are read rightly: nothing to do", UserWarning, stacklevel=outside_package())


def _head_of_another_width(model: torch.nn.Module, probe: Probe, i: int) -> bool:
    """Whether ``out[i]`` of ``model`` comes out of a layer of torch's that changes the width (``nn.Linear``'s
    ``in_features`` not its ``out_features``, a convolution's channels; through an activation after it): a head reading
    a hidden layer, an actor-critic's policy logits or an autoencoder's reconstruction (its decoder's last layer),
    as wide as the input by chance. Every step of a normalizing flow is a bijection that keeps the width, so its ``z``
    comes out of none. Read on the layer calls (:func:`~lightning_causal.causal.engine.layer_calls.layer_calls`) of one
    pass of 2 probe rows in :func:`~lightning_causal.causal.engine.state.audit_mode` (only where the warning would be
    given); ``False`` where that pass fails."""
    from lightning_causal.causal.engine.forward import Forward
    from lightning_causal.causal.engine.layer_calls import layer_calls
    from lightning_causal.causal.engine.state import as_tuple, audit_mode

    part = probe.subset(torch.arange(min(2, len(probe)), device=probe.first.device))
    try:
        with layer_calls() as calls, audit_mode(model):
            raw = Forward(model, num_samples=len(part), **part.forward_options).raw(*as_tuple(part.inputs))
    except Exception:  # the runs name what failed
        return False
    call = calls.made(raw[i]) if isinstance(raw, (tuple, list)) and len(raw) > i else None
    for _ in range(2):  # the layer that returned it, or the one before an activation that did
        if call is None:
            return False
        module = call.module
        widths = [(getattr(module, a, None), getattr(module, b, None))
                  for a, b in (("in_features", "out_features"), ("in_channels", "out_channels"))]
        if type(module).__module__.startswith("torch.") and any(isinstance(w, int) for w, _ in widths):
            return any(isinstance(w, int) and w != v for w, v in widths)
        if any(True for _ in module.parameters()):
            return False
        call = call.source  # the layer that returned its input
    return False


def warn_saturated_decisions(audit: Audit, out: object, probe: Probe, model: torch.nn.Module | None = None) -> None:
    """Warn where ``audit`` compares class probabilities (``FairnessAudit`` with ``compare`` "probability" or left to
    choose) of one output ``[N]`` or ``[N, 1]``, read as a binary logit, whose sigmoid is below 0.01 on every one of
    :data:`DECIDING_ROWS` probe rows or more (or above 0.99 on every one) while the probe's 0/1 labels hold both classes:
    a per-sample log-likelihood (a flow's ``log p(x)``, about -10 for 8 features), an energy or an unbounded score read
    as a logit gives a cf_gap of 0 and positive rates of 0 or 1 that say nothing of it. Not where ``compare`` is left
    to choose and ``model`` says it regresses (a held ``nn.MSELoss``): the audit compares its outputs then; nor where
    ``model`` says it classifies (an ``nn.BCEWithLogitsLoss`` held: a rare-event classifier whose bias starts at the
    class prior has every probability below 0.01) and its mean probability is within 100x of the labels' rate."""
    if not (hasattr(audit, "compare") and getattr(audit, "compare", None) in (None, "probability")):
        return
    task = label_task(task_model(model, getattr(audit, "output", None)))
    if task == "regression" and audit.compare is None:
        return  # left to choose, FairnessAudit compares the outputs of a model that says it regresses
    labels = probe.labels
    if not (isinstance(out, torch.Tensor) and out.is_floating_point() and out.shape[1:] in ((), (1,))
            and len(out) >= DECIDING_ROWS and isinstance(labels, torch.Tensor) and labels.shape == (len(out),)):
        return
    if not (bool(((labels == 0) | (labels == 1)).all()) and bool((labels == 0).any()) and bool((labels == 1).any())):
        return
    out = out.detach().flatten()
    side = "below -4.6" if bool((out < -4.6).all()) else "above 4.6" if bool((out > 4.6).all()) else None
    if side is None:
        return
    rate, mean = float(labels.double().mean()), float(torch.sigmoid(out.double()).mean())
    if task not in (None, "regression") and min(rate, 1 - rate) <= 100 * min(mean, 1 - mean):
        return  # a classifier that says so, within 100x of its labels' rate: a rare-event one started at the prior
        # (a log-likelihood of -10 gives 5e-5 where 1 label in 60 is positive; a VAE holding nn.BCEWithLogitsLoss says
        # "multilabel" too, and is warned)
    warnings.warn(kinded(
        f"Audit {audit.name!r} compares class probabilities, the sigmoid of the model's one output as P(class 1), but that "
        f"output is {side} on every one of the probe's {len(out)} samples (P(class 1) {'< 0.01' if side[0] == 'b' else '> 0.99'} "
        f"everywhere, from {float(out.min()):.3g} to {float(out.max()):.3g}) while {int(labels.sum())} of its labels are 1: a "
        "per-sample log-likelihood (a normalizing flow's log p(x)), an energy or a score of its own units read as a "
        "binary logit, whose cf_gap is 0 and positive rates say nothing of it. If the output is one of those, pass "
        "compare='output' (cf_gap: the mean change of the output in its own units, nats for a log-likelihood); a rare-"
        "event classifier's logit is read rightly (nothing to do)", f"saturated decisions: {audit.name}"),
        stacklevel=outside_package())  # its range moves between audit epochs: shown once per fit (kinded)
