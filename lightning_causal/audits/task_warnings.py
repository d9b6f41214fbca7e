"""Warnings of an audit whose explained quantity does not fit the model's task.

:func:`warn_softmax_of_regression`: a softmax over outputs that are no logits (a regression, a
multi-label classifier, an embedding); :func:`warn_predicted_class_of_regression`: ``target=None``
(the largest output) where the outputs are no classes of one decision; :func:`first_row_outputs`
computes the explained output they read on the probe's first sample. The task is read by
:mod:`lightning_causal.audits.label_task`.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

from lightning_causal.audits.label_task import (
    LEVEL_WAYS_OUT,
    ascending_outputs,
    embedding_output,
    independent_probabilities,
    label_task,
    level_outputs,
    multi_hot_labels,
    regression_labels,
    task_model,
)
from lightning_causal.causal.engine.user_frame import outside_package

__all__ = ["continuous_distribution_read", "continuous_guess", "continuous_moment", "first_row_outputs", "probabilities_warning", "ran_outputs", "softmax_of_probabilities", "unlabelled_regression", "warn_predicted_class_of_regression", "warn_softmax_of_regression"]

#: what a model that says it regresses is told, where its probe holds no labels (an autoencoder's)
#: the way out of the ascending-outputs warnings (:func:`ascending_outputs`) for a classifier that says nothing of its
#: task and predicts its last class on every row, its logits ranked alike
_ASCENDING_LOGITS = ("If they are logits trained by cross-entropy, say so and this warning goes: hold the loss in the model "
                     "(`self.loss_fn = nn.CrossEntropyLoss()`) or declare the task (`self.save_hyperparameters({'task': "
                     "'multiclass'})`); a regression says `{'task': 'regression'}`")
_SAYS_REGRESSION = ("the model says it is a regression (a regression loss it holds, e.g. nn.MSELoss, or `task='regression'`; "
                    "a classifier holding one for an auxiliary loss says so with `self.hparams.task = 'multiclass'`)")


def _shape(labels: Tensor) -> str:
    """``"[N, 4]"``: the labels' shape with ``N`` for their rows, so that a warning reads alike on the 2 samples of the
    callback's dry run and on the whole probe (shown once per fit by its exact text)."""
    return f"[{', '.join(['N', *map(str, labels.shape[1:])])}]"


def unlabelled_regression(labels: Any, model: Any) -> bool:
    """Whether a probe without ``labels`` (an autoencoder's, whose inputs are its targets) explains a model that says it
    regresses (:func:`label_task`: ``nn.MSELoss`` held, ``task="regression"``): its outputs are no class scores, as
    with real-valued labels (:func:`regression_labels`, which reads labels and says nothing without them).

    Examples:
        >>> from torch import nn
        >>> class AE(nn.Module):
        ...     def __init__(self):
        ...         super().__init__()
        ...         self.net, self.loss = nn.Linear(4, 4), nn.MSELoss()
        >>> unlabelled_regression(None, AE()), unlabelled_regression(None, nn.Linear(4, 4))
        (True, False)
    """
    return labels is None and model is not None and label_task(model) == "regression"


def warn_softmax_of_regression(audit: str, labels: Any, fix: str, model: Any = None, *,
                               outputs: Tensor | Callable[[], Tensor] | None = None, output: Any = None,
                               probe: Any = None) -> None:
    """Warn that ``audit`` applies a softmax to the model's outputs although the probe's labels are
    a regression target (:func:`regression_labels`: a multi-output regression, whose outputs are not
    logits: the softmax of ``(10 x0, x1)`` is explained by ``x0`` alone). Integer labels, class-like
    floats (one-hot or soft labels, class indices stored as floats) and probes without labels say nothing, unless the
    model says it regresses (:func:`unlabelled_regression`: an autoencoder's flat reconstruction; integer labels beside
    it: a VAE of digits that says ``task="regression"``, its probe holding the digits' classes).

    Multi-hot labels (:func:`multi_hot_labels`) are taken for a multi-label classifier (trained
    with ``BCEWithLogitsLoss``): each output's own sigmoid is its probability, and the softmax over
    the ``C`` outputs is neither; the warning then says how to explain one label's sigmoid. One-hot
    float labels (one class per sample, a softmax classifier's) say nothing, unless ``model`` says
    it is multi-label (:func:`label_task`); a ``model`` that says it is a regression (``nn.MSELoss``)
    is warned about whatever its float labels hold (proportions summing to 1 too). ``outputs`` (the
    explained output on some probe rows, or a callable computing it) and ``output`` (the audit's
    ``output=``): an embedding (:func:`embedding_output`) is warned about whatever the labels, the
    softmax of its coordinates being no probability; so are per-level logits (:func:`level_outputs`: an
    ordinal head's cumulative logits, a survival model's hazards, whose labels are ranks ``[N]``). A tensor ``output=``
    reads of a continuous distribution (:func:`continuous_distribution_read`: a Gaussian policy's action means) is
    warned about whatever the labels; ``probe`` (or the one ``outputs`` carries, :func:`first_row_outputs`) is read for it.
    """
    read = continuous_distribution_read(model, probe if probe is not None else getattr(outputs, "probe", None),
                                        output, outputs) if outputs is not None else None
    if read is not None:  # a Gaussian policy's action means: their softmax is no probability of an action
        warnings.warn(
            f"{audit} explains the softmax over the model's outputs, but they are {read}, a continuous distribution "
            f"({continuous_guess(labels, task_model(model, output))}): the softmax of its coordinates is no probability; "
            f"pass {fix} to explain the output itself", UserWarning, stacklevel=outside_package())
        return
    model = task_model(model, output)
    # integer labels are a regression's only where the model says so (a VAE's `task='regression'` beside its digits' labels)
    said = unlabelled_regression(labels, model) or (isinstance(labels, Tensor) and not labels.is_floating_point()
                                                    and regression_labels(labels, model=model))
    if outputs is not None and said:
        out = outputs() if callable(outputs) else outputs
        if out.dim() == 2 and out.shape[1] > 1:
            warnings.warn(
                f"{audit} explains the softmax over the model's outputs, but {_SAYS_REGRESSION}: the softmax of outputs "
                f"that are not logits mixes them; pass {fix} to explain the output itself", UserWarning,
                stacklevel=outside_package())
        return
    if outputs is not None and not multi_hot_labels(labels, model) and not regression_labels(labels, model=model):
        out = outputs() if callable(outputs) else outputs
        levels = level_outputs(labels, out, model, output)
        if levels is not None:
            warnings.warn(
                f"{audit} explains the softmax over the model's outputs, but {levels}: their softmax is no probability "
                f"of a rank; {LEVEL_WAYS_OUT}; or pass {fix} to explain the outputs themselves", UserWarning,
                stacklevel=outside_package())
            return
        embedding = embedding_output(out, model, output)
        if embedding is not None:
            warnings.warn(
                f"{audit} explains the softmax over the model's outputs, but they are an embedding ({embedding}): the "
                f"softmax of its coordinates is no probability; pass {fix} to explain the outputs themselves, or `output=` "
                "class scores such as temperature-scaled similarities to class centroids (`output=lambda out: out @ "
                "centroids.T / 0.1`)", UserWarning, stacklevel=outside_package())
            return
        # a model that trains its outputs as one class's logits (cross-entropy) says they are logits, small as they may
        # be (a two-class head early in training, every logit in [0, 1])
        said_classes = label_task(model) == "multiclass"
        probabilities = independent_probabilities(out) if not said_classes else None
        quantiles = ascending_outputs(out) if not said_classes and probabilities is None else None
        if probabilities is not None:  # sigmoids: a multi-label head's, a detector's best score per class
            warnings.warn(probabilities_warning(softmax_of_probabilities(
                f"{audit} explains", probabilities, f"pass {fix} to explain the outputs themselves"), output, out),
                stacklevel=outside_package())
        elif quantiles is not None:  # a quantile regressor's, whose probe holds no labels to say it regresses
            warnings.warn(
                f"{audit} explains the softmax over the model's outputs, but {quantiles}, as a quantile regressor's "
                "quantiles do (0.1, 0.5, 0.9: a pinball loss): their softmax is no probability, and moves with the gaps "
                f"between them (the spread), not with the quantile explained; pass {fix} with `target=k` to explain quantile "
                f"k itself. {_ASCENDING_LOGITS}", UserWarning, stacklevel=outside_package())
        return
    if isinstance(labels, Tensor) and labels.is_floating_point():
        if multi_hot_labels(labels, model):
            message = (
                f"{audit} explains the softmax over the model's outputs, but the probe's labels are multi-hot "
                f"{_shape(labels)} (a multi-label classifier?): each output's sigmoid is its own probability and "
                f"their softmax is not one; pass `output=lambda out: out[:, [k]]` to explain label k's sigmoid, "
                f"or {fix} to explain the outputs themselves"
            )
        elif regression_labels(labels, model=model):
            message = (
                f"{audit} explains the softmax over the model's outputs, but the probe's labels are floats (a regression?): "
                f"the softmax of outputs that are not logits mixes them; pass {fix} to explain the output itself"
            )
        else:
            return
        warnings.warn(message, UserWarning, stacklevel=outside_package())


#: the kind a fit shows the warning of a softmax of independent probabilities by: once per output explained, whichever
#: audits give it (:func:`probabilities_warning` adds the output)
PROBABILITIES_KIND = "softmax of independent probabilities"


def probabilities_warning(message: str, output: Any = None, outputs: Tensor | None = None) -> UserWarning:
    """``message`` (:func:`softmax_of_probabilities`) as a ``UserWarning`` that a fit's callback shows once per output
    explained, for the first audit that gives it, not once per audit
    (:func:`~lightning_causal.causal.engine.batching.fit_kind`): the evidence is the outputs alone, every entry in
    [0, 1] with rows that do not sum to 1, which a two-class head trained with a functional ``F.cross_entropy`` or
    distillation also gives (it learns only the difference of its two logits), so the Sobol' analysis,
    ``CaptumBaseline`` and ``FairnessAudit`` warned four times at one audit epoch (newuser106); outside a fit
    (``audit.run``, ``audit_model``) each audit still warns. Its kind carries the output the audit explains: its
    ``output=`` selection (a key or index by value, a callable by identity: two lambdas may select different heads) and
    the width of ``outputs``, the tensor read, so that an audit of another head (``output="b"`` beside ``output="a"``)
    still warns of its own.

    Examples:
        >>> import torch
        >>> from lightning_causal.causal.engine.batching import fit_kind
        >>> fit_kind(probabilities_warning("SobolAudit 'sobol' explains ...", "a", torch.rand(8, 3)))
        "softmax of independent probabilities: output 'a', 3 wide"
    """
    warning = UserWarning(message + " (a fit shows this once per output, for the first audit that takes this softmax of "
                                    "it; the others read it alike)")
    warning.lightning_causal_kind = f"{PROBABILITIES_KIND}: {_explained(output, outputs)}"  # type: ignore[attr-defined]
    return warning  # not kinded(): per output, not per audit


def _explained(output: Any, outputs: Tensor | None) -> str:
    """The output an audit explains, for :func:`probabilities_warning`'s kind: its ``output=`` selection (``None``: the
    model's return value; a string, number or tuple by value; anything else, a callable, by identity) and the width of
    the tensor read."""
    selected = ("the model's return value" if output is None else
                f"output {output!r}" if isinstance(output, (str, int, tuple)) else
                f"output {getattr(output, '__qualname__', type(output).__name__)} at {id(output):#x}")
    width = "" if outputs is None or outputs.dim() == 0 else f", {outputs.shape[-1]} wide"
    return selected + width


def softmax_of_probabilities(reads: str, probabilities: str, fix: str, labels: str = "") -> str:
    """The warning that a softmax is taken of outputs that are independent probabilities (``probabilities``:
    :func:`~lightning_causal.audits.label_task.independent_probabilities`'s reason), one sentence whose subject
    ``reads`` ("SobolAudit 'sobol' explains") the softmax, naming ``fix`` (the caller's way to read the outputs
    themselves) and the logit of class k's own probability (``labels``: what that needs of the probe's labels, for an
    audit that reads them); shared by the audits that take a softmax (the Sobol'
    analysis, Captum's perturbation curves, ``FairnessAudit``).

    Examples:
        >>> softmax_of_probabilities("X explains", "they lie in [0, 1]", "pass `raw=True`")[:60]
        "X explains the softmax over the model's outputs, but they li"
    """
    return (f"{reads} the softmax over the model's outputs, but {probabilities}, as independent probabilities do (a "
            "sigmoid per class: a multi-label or one-vs-rest head, a detector's best score per class, DUQ's RBF kernel "
            "values per class centroid, a capsule network's class capsules' lengths): their softmax is no class "
            f"probability (a score of 0.9 beside two of 0 becomes 0.55); {fix}, or `output=lambda out: out[:, [k]].float().logit(eps=1e-6)` to explain class k's own "
            f"probability as a binary classifier's logit{labels} (eps: a score of 0, no detection, or a saturated 1 is no infinite "
            "logit; float: half precision rounds 1 - 1e-6 back to 1). If they are logits trained by cross-entropy (a "
            "cosine classifier's similarities), say so and this warning goes: hold the loss in the model "
            "(`self.loss_fn = nn.CrossEntropyLoss()`) or declare the task (`self.save_hyperparameters({'task': "
            "'multiclass'})` in a LightningModule, `self.hparams = {'task': 'multiclass'}` on a plain nn.Module)")


def first_row_outputs(model: Any, probe: Any, output: Any, rows: int = 1) -> Callable[[], Tensor]:
    """A callable giving the model's explained output (``output``: the audit's ``output=``) on the
    probe's first sample (its first ``rows`` samples), with its forward arguments, for
    :func:`warn_predicted_class_of_regression`; it leaves no trace. It carries ``probe`` and ``first_row`` (the pass's
    return value and explained tensor, run once for both), which that warning reads (:func:`continuous_distribution_read`)."""
    ran: list[tuple[Any, Tensor]] = []

    def first_row() -> tuple[Any, Tensor]:
        if not ran:
            ran.append(_first_row(model, probe, output, rows))
        return ran[0]

    def outputs() -> Tensor:
        return first_row()[1]
    outputs.probe, outputs.model, outputs.first_row = probe, model, first_row  # type: ignore[attr-defined]
    return outputs


def ran_outputs(model: Any, probe: Any, raw: Any, picked: Tensor, shown: Tensor | None = None) -> Callable[[], Tensor]:
    """:func:`first_row_outputs` of a pass the caller has run: ``raw`` the model's return value on some rows of
    ``probe`` (or on rows an analysis drew from it), ``picked`` the tensor ``output=`` selects of it, and ``shown`` the
    outputs the call gives (default ``picked``): the warnings' checks of what the outputs are, without a pass of their
    own.

    Examples:
        >>> from torch.distributions import Normal
        >>> from lightning_causal.audits import Probe
        >>> probe, mu = Probe(torch.zeros(2, 3)), torch.tensor([[0.5, -1.0], [0.2, 0.1]])
        >>> continuous_distribution_read(None, probe, "mean", ran_outputs(None, probe, Normal(mu, 1.0), mu))
        "the Normal's mean"
    """
    def outputs() -> Tensor:
        return picked if shown is None else shown
    outputs.probe, outputs.model, outputs.first_row = probe, model, lambda: (raw, picked)  # type: ignore[attr-defined]
    return outputs


def _first_row(model: Any, probe: Any, output: Any, rows: int = 1) -> tuple[Any, Tensor]:
    """The model's return value on the probe's first sample (its first ``rows``), with its forward arguments, and the
    tensor ``output`` selects of it; it leaves no trace."""
    from lightning_causal.causal.engine.forward import Forward
    from lightning_causal.causal.engine.state import audit_mode

    sub = probe.subset(slice(0, max(1, min(rows, len(probe)))))
    inputs = sub.inputs if isinstance(sub.inputs, tuple) else (sub.inputs,)
    forward = Forward(model, num_samples=len(sub), output=output, **sub.forward_options)
    with audit_mode(model):
        raw = forward.raw(*inputs)
        return raw, forward.checked(raw, *inputs)  # a squeezed batch of one named at the dry run


#: the tensors of a continuous distribution that an ``output=`` reads (:func:`continuous_distribution_read`)
_MOMENTS = ("mean", "loc", "mode", "stddev", "variance", "scale")


def continuous_distribution_read(model: Any, probe: Any, output: Any, outputs: Any = None) -> str | None:
    """What the explained output is, where ``output`` (the audit's ``output=``) reads a tensor of a continuous
    ``torch.distributions`` object that the model returns or holds (a mapping's value, a tuple's item): a Gaussian
    policy's action means, ``"the Normal's mean"``, also of the base of a ``TransformedDistribution`` (a tanh-squashed
    Normal read as ``out.base_dist.mean``); ``None`` otherwise (a ``Categorical``'s logits, a tensor, a tuple
    ``(mean, log_std)``, which says nothing of what it holds). Its coordinates are no classes: the largest of a
    continuous action's means is force x in one state and force y in another. One pass of the probe's first sample,
    none where ``outputs`` (:func:`first_row_outputs` of the same probe) has run it.

    A classifier is never taken for one: ``None`` where the probe holds integer class labels that the tensor read has a
    coordinate for each of, along some dimension (a heteroscedastic classifier's ``Normal`` over its logits: labels
    below its width; one logit for labels 0 and 1; a
    distribution narrower than the labels' classes, a VAE encoder's posterior over a latent of 2 beside digits 0-9, is
    no classifier's and is read), for a distribution on the simplex (a ``Dirichlet``'s mean, an evidential
    classifier's class probabilities), where the tensor read equals as well a tensor the model returns beside the
    distribution, or a discrete distribution's, that is no view of the moment (a hybrid action's logits, zero like the
    Normal's mean of a freshly zeroed head), and where the pass or a moment fails (a forward that needs several rows, a
    distribution of the user's whose ``mean`` raises): the audit's own checks speak then.

    Examples:
        >>> from torch import nn
        >>> from torch.distributions import Categorical, Normal
        >>> from lightning_causal.audits import Probe
        >>> class Policy(nn.Module):
        ...     def forward(self, x):
        ...         return {"dist": Normal(x, 1.0), "pi": Categorical(logits=x)}
        >>> probe = Probe(torch.zeros(3, 2))
        >>> continuous_distribution_read(Policy(), probe, lambda out: out["dist"].mean)
        "the Normal's mean"
        >>> continuous_distribution_read(Policy(), probe, lambda out: out["pi"].logits) is None
        True
    """
    if output is None or probe is None:  # without output=, a distribution is read only through its logits
        return None
    labels = getattr(probe, "labels", None)
    classes = isinstance(labels, Tensor) and not (labels.is_floating_point() or labels.is_complex())
    if classes and (labels.numel() == 0 or labels.dtype == torch.bool):
        return None  # class labels: a classifier's probe, whatever distribution its logits come from
    same = getattr(outputs, "probe", None) is probe and getattr(outputs, "model", None) is model
    ran = getattr(outputs, "first_row", None) if same else None
    try:  # a warning's guess: a pass that fails here is left to the audit's own checks
        raw, picked = ran() if ran is not None else _first_row(model, probe, output)
    except Exception:  # noqa: BLE001
        return None
    if classes and (not isinstance(picked, Tensor) or int(labels.max()) < max((2, *picked.shape[1:]))):
        return None  # a coordinate for every class (one logit for two): a classifier's logits may be what it is over
    return continuous_moment(raw, picked)


def continuous_guess(labels: Any, model: Any = None) -> str:
    """What a continuous distribution read as the outputs (:func:`continuous_distribution_read`) likely is, for the
    warnings' words: a heteroscedastic regression's predictive distribution where ``labels`` are a regression target
    (:func:`regression_labels`, ``model`` its task), else a continuous action (a Gaussian policy's).

    Integer labels (which :func:`continuous_distribution_read` passes only where the distribution has fewer
    coordinates than their classes) name a latent distribution.

    Examples:
        >>> continuous_guess(torch.tensor([0.3, -1.2])), continuous_guess(None)
        ("a regression's predictive distribution, Normal(mean, std) beside real-valued labels?", 'a continuous action?')
    """
    if regression_labels(labels, model=model):
        return "a regression's predictive distribution, Normal(mean, std) beside real-valued labels?"
    if isinstance(labels, Tensor) and labels.numel() and not (labels.is_floating_point() or labels.is_complex()):
        return "a latent distribution, a VAE encoder's posterior, beside class labels it has fewer coordinates than?"
    return "a continuous action?"


def continuous_moment(raw: Any, picked: Tensor) -> str | None:
    """The check of :func:`continuous_distribution_read` on a pass already run: ``raw`` the model's return value,
    ``picked`` the tensor ``output=`` selects of it (a repair term's, on its batch). ``"the Normal's mean"``, or
    ``None`` (labels are not read here: the caller's).

    Examples:
        >>> from torch.distributions import Normal
        >>> mu = torch.tensor([[0.5, -1.0]])
        >>> continuous_moment(Normal(mu, 1.0), mu), continuous_moment({"logits": mu}, mu)
        ("the Normal's mean", None)
    """
    from torch.distributions import Distribution

    from lightning_causal.causal.engine.output_selection import _held_distributions, held_items

    if not isinstance(picked, Tensor):
        return None
    found = [raw] if isinstance(raw, Distribution) else [dist for _, dist in _held_distributions(raw)]
    found += [d.base_dist for d in found if isinstance(getattr(d, "base_dist", None), Distribution)]  # a tanh-squashed Normal's
    others = [v for v in _read_tensors(held_items(raw), found) if v.shape == picked.shape and torch.equal(v, picked)]
    for dist in found:
        if _or_none(lambda d=dist: d.support.is_discrete) is not False or _on_simplex(dist):
            continue  # discrete, unknown, or shares of one whole (a Dirichlet's class probabilities)
        for name in _MOMENTS:
            value = _or_none(lambda d=dist, n=name: getattr(d, n))
            if not (isinstance(value, Tensor) and value.shape == picked.shape and torch.equal(value, picked)):
                continue
            if any(not _same_storage(v, value) for v in others):
                return None  # it equals a tensor held beside the distribution as well (logits equal to a mean of zeros)
            base = getattr(dist, "base_dist", None)  # Independent(Normal), a TransformedDistribution's base
            kind = f"{type(dist).__name__}({type(base).__name__})" if base is not None else type(dist).__name__
            return f"the {kind}'s {name}"
    return None


def _or_none(read: Callable[[], Any]) -> Any:
    """``read()``, or ``None`` where it raises: a distribution's lazy moment (a ``TransformedDistribution``'s mean
    raises ``NotImplementedError``; a user's distribution anything)."""
    try:
        return read()
    except Exception:  # noqa: BLE001
        return None


def _on_simplex(dist: Any) -> bool:
    """Whether ``dist`` lives on the simplex (``Dirichlet``, ``RelaxedOneHotCategorical``, also inside
    ``Independent``): its coordinates are shares of one whole, class probabilities, not a continuous action's."""
    from torch.distributions import constraints

    support = _or_none(lambda: dist.support)
    while isinstance(support, constraints.independent):
        support = support.base_constraint
    return isinstance(support, type(constraints.simplex))


def _read_tensors(items: list[tuple[str, Any]], found: list[Any]) -> list[Tensor]:
    """The tensors a return value holds beside its distributions ``found``: its plain tensors (``items``, a mapping's
    values, a tuple's items, a dataclass's fields) and the logits and probabilities of its discrete distributions."""
    held = [v for _, v in items if isinstance(v, Tensor)]
    for dist in found:
        if _or_none(lambda d=dist: d.support.is_discrete) is True:
            held += [v for v in (_or_none(lambda d=dist, n=n: getattr(d, n)) for n in ("logits", "probs"))
                     if isinstance(v, Tensor)]
    return held


def _same_storage(a: Tensor, b: Tensor) -> bool:
    """Whether ``a`` and ``b`` share memory (a mean held beside its ``Normal``, whose ``loc`` is a view of it)."""
    return a.untyped_storage().data_ptr() == b.untyped_storage().data_ptr()


def warn_predicted_class_of_regression(audit: str, labels: Any, outputs: Tensor | Callable[[], Tensor], *, per_sample: bool = True,
                                       model: Any = None, output: Any = None, probe: Any = None) -> None:
    """Warn that ``audit``, given ``target=None``, explains the predicted class (the largest output)
    of a model whose probe labels are a regression target (:func:`regression_labels`) and which has
    several outputs (a forecast of ``H`` horizons, a ranker's graded relevance of ``L`` items, a multi-output
    regression): the largest output is no class, and the audit would explain horizon 0 for some samples and horizon 2
    for others.
    Multi-hot labels (:func:`multi_hot_labels`, a multi-label classifier) are warned about alike:
    each label is its own decision, and the largest logit picks one label per sample.
    An embedding (:func:`embedding_output`: rows of unit L2 norm, or a model holding a metric-learning
    loss) is warned about whatever its labels (class labels only pair its samples): its largest
    coordinate is no class; the warning names ``output=`` scores per sample (cosine similarity to class centroids).
    Outputs rising from the first to the last in every row (:func:`ascending_outputs`: a quantile regressor's, on a probe
    without labels; not of a model that says it classifies) are warned about alike, naming ``target=k``: on
    :data:`~lightning_causal.audits.label_task.GUESS_ROWS` rows or more, which callers that hold no outputs read
    (``first_row_outputs(..., rows=GUESS_ROWS)``).
    Per-level logits (:func:`level_outputs`: a multi-label model whose labels are ranks ``[N]``, an ordinal
    head's cumulative logits or a survival model's hazards) are warned about alike, naming ``output=`` the rank.
    A tensor ``output=`` reads of a continuous distribution (:func:`continuous_distribution_read`: a Gaussian policy's
    action means) is warned about whatever the labels, naming ``target=k``; ``probe`` (or the one ``outputs`` carries,
    :func:`first_row_outputs`) is read for it.
    ``outputs``: the model's explained output on some probe rows, or a callable that computes it. ``per_sample``: the class is chosen per sample (else once, the one
    predicted most often). ``output``: the audit's ``output=`` (:func:`embedding_output`). ``model``: its task decides multi-label and regression labels (:func:`multi_hot_labels`, :func:`regression_labels`). A model with one output, class labels and a probe without labels say nothing, unless the model says it regresses (:func:`unlabelled_regression`: an autoencoder's flat reconstruction).
    """
    raw_model, model = model, task_model(model, output)
    multi_label = multi_hot_labels(labels, model)
    regression = not multi_label and regression_labels(labels, model=model)
    out = outputs() if callable(outputs) else outputs
    width = int(out.shape[1]) if isinstance(out, Tensor) and out.dim() >= 2 else 1
    if width < 2:
        return
    how = ("each sample is explained at whichever of its outputs is largest, so the figures mix outputs across samples"
           if per_sample else "the output that is largest on most probe samples is explained, whichever that is")
    levels = None if multi_label or regression else level_outputs(labels, out, model, output)
    if levels is not None:
        warnings.warn(
            f"{audit} explains the predicted class (`target=None`: the largest of the model's {width} outputs), but "
            f"{levels}: the largest of them is no rank, and {how}; {LEVEL_WAYS_OUT}; or `target=k` for output k",
            UserWarning, stacklevel=outside_package())
        return
    embedding = None if multi_label or regression else embedding_output(out, model, output)
    if embedding is not None:
        warnings.warn(
            f"{audit} explains the predicted class (`target=None`: the largest of the model's {width} outputs), but the "
            f"outputs are an embedding ({embedding}): its largest coordinate is no class, and {how}. Pass `output=` a "
            "score per sample: the cosine similarity to each class's centroid (`output=lambda out: out @ centroids.T`, "
            "`centroids` [C, D] of unit rows, with `target=c`), to an anchor's embedding (`output=lambda out: out @ anchor`), "
            "or `target=k` for coordinate k", UserWarning, stacklevel=outside_package())
        return
    if not multi_label and not regression:
        read = continuous_distribution_read(raw_model, probe if probe is not None else getattr(outputs, "probe", None), output,
                                            outputs)
        if read is not None:  # a Gaussian policy's action means: its largest coordinate is no action
            warnings.warn(
                f"{audit} explains the predicted class (`target=None`: the largest of the model's {width} outputs), but "
                f"they are {read}, a continuous distribution ({continuous_guess(labels, model)}): its largest coordinate is "
                "no class, "
                f"and {how}. Pass `target=k` to explain coordinate k (one audit per coordinate, each with its own "
                "`name=`)", UserWarning, stacklevel=outside_package())
            return
        if unlabelled_regression(labels, model):  # an autoencoder's flat reconstruction [N, D]: its largest element
            warnings.warn(
                f"{audit} explains the predicted class (`target=None`: the largest of the model's {width} outputs), but "
                f"{_SAYS_REGRESSION}: {how}. Pass `target=k` to explain output k (one audit per output, each with its own "
                "`name=`), or `output=` one score per sample (a reconstruction's error needs the input: a wrapper module "
                "that returns it)", UserWarning, stacklevel=outside_package())
        elif label_task(model) != "multiclass" and (quantiles := ascending_outputs(out)) is not None:
            # on a probe without labels to say it regresses; not of logits trained by cross-entropy (a classifier
            # predicting its last class on every row), as warn_softmax_of_regression
            warnings.warn(
                f"{audit} explains the predicted class (`target=None`: the largest of the model's {width} outputs), but "
                f"{quantiles}, as a quantile regressor's quantiles do (0.1, 0.5, 0.9: a pinball loss): the largest is the "
                "highest quantile on every sample, no class. Pass `target=k` to explain quantile k (one audit per quantile, "
                f"each with its own `name=`). {_ASCENDING_LOGITS}", UserWarning, stacklevel=outside_package())
        return
    if multi_label:
        warnings.warn(
            f"{audit} explains the predicted class (`target=None`: the largest of the model's {width} outputs), but the "
            f"probe's labels are multi-hot {_shape(labels)} (a multi-label classifier?): each label is its own "
            f"decision, not one class among {width}, and {how}. Pass `target=k` to explain label k's logit (one audit "
            "per label, each with its own `name=`)", UserWarning, stacklevel=outside_package())
        return
    # integer labels are a regression's only where the model says so (a Poisson regression's counts; a held loss)
    columns = int(labels.shape[1]) if labels.dim() == 2 else 1  # the horizons of a forecast: the labels', not the outputs
    # one value per position: a forecast's horizons as much as a ranker's graded relevance of its items (no new rule)
    guess = (f" of {columns} values per sample, e.g. a forecast's {columns} horizons or a ranker's relevance grades of "
             f"{columns} items?" if columns > 1 else "?")
    why = (f"the probe's labels are real-valued {_shape(labels)} (a regression{guess})"
           if labels.is_floating_point() else f"{_SAYS_REGRESSION}, and its labels {_shape(labels)} of {labels.dtype} "
           "are read as its targets")
    warnings.warn(
        f"{audit} explains the predicted class (`target=None`: the largest of the model's {width} outputs), but "
        f"{why}: {how}. Pass `target=k` to explain output k (one audit per output, each with its own `name=`)",
        UserWarning, stacklevel=outside_package())
