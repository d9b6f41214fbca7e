"""FairnessAudit: counterfactual fairness gap, group fairness metrics and the hidden units that carry
the unfairness (CARE), for tabular rows (a flipped column) and token ids (swapped identity terms)."""

from __future__ import annotations

import math
import warnings
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Literal

import torch
from torch import Tensor, nn

from lightning_causal.audits.base import Audit, AuditResult, Probe, dry_rows, layer_names
from lightning_causal.audits.group_tags import group_tags
from lightning_causal.audits.label_task import (
    LEVEL_WAYS_OUT,
    ascending_outputs,
    independent_probabilities,
    level_outputs,
)
from lightning_causal.audits.options import (
    check_distinct_tags,
    check_name_count,
    check_names,
    check_one_label_per_sample,
    check_target,
    class_indices,
    embedding_output,
    first_row_outputs,
    label_task,
    regression_labels,
    single_input_error,
    task_model,
)
from lightning_causal.audits.task_warnings import (
    _SAYS_REGRESSION,
    continuous_distribution_read,
    continuous_guess,
    probabilities_warning,
    softmax_of_probabilities,
    unlabelled_regression,
)
from lightning_causal.causal.engine.ablation import padding_positions
from lightning_causal.causal.engine.batching import remembered_fit, rows_per_pass
from lightning_causal.causal.engine.checks import check_class_labels, check_int, in_unit_interval
from lightning_causal.causal.engine.forward import Forward, OutputSpec
from lightning_causal.causal.engine.input_sites import check_site
from lightning_causal.causal.engine.layer_calls import layer_calls, output_layer
from lightning_causal.causal.engine.ranking import largest_k
from lightning_causal.causal.engine.state import ONE_LOGIT_ROWS
from lightning_causal.causal.engine.units import per_layer_layouts
from lightning_causal.causal.engine.user_frame import outside_package
from lightning_causal.causal.scm.attribute_flip import (
    POSITION_ATTRIBUTE_FIX,
    resolve_counterfactual,
    warn_one_hot_flip,
)
from lightning_causal.causal.scm.counterfactual import CallableCounterfactual, Counterfactual
from lightning_causal.causal.scm.counterfactual_checks import (
    check_counterfactual_ids,
    token_readers,
)
from lightning_causal.causal.scm.fairness import (
    ONE_OUTPUT,
    _carrier_effects,
    _counterfactual_probabilities,
    _fairness_gap,
    check_compare,
    counterfactual_inputs,
    group_rates,
    one_value_per_sample,
    probabilities,
    target_classes,
    worst_spread,
)
from lightning_causal.causal.scm.intersections import Intersections, _world_gaps
from lightning_causal.causal.scm.scm import AdditiveNoiseSCM
from lightning_causal.causal.scm.token_swap import TokenSwap

__all__ = ["FairnessAudit"]

#: the audits whose ``validate`` checked what a model's outputs are, per model (:meth:`FairnessAudit._check_reading`):
#: their ``run`` on that model checks and warns no second time; kept beside the model, not on the audit, which a
#: spawned process pickles
_READ_CHECKED: weakref.WeakKeyDictionary[nn.Module, weakref.WeakSet[FairnessAudit]] = weakref.WeakKeyDictionary()


#: the note where the outputs hold more than two classes: the group rates read class 1 against the others
MULTICLASS_RATES = (
    "positive decision = class 1 of {classes} classes, every other negative: the group rates (positive_rate, tpr, fpr, "
    "accuracy) and their differences (demographic_parity_difference, equalized_odds_difference) read the share of each "
    "group predicted class 1, not how its predictions spread over the classes (a grade, a rank); for the decision you "
    "mean, give the audit one output and 0/1 labels: class k against the rest, `output=lambda out, k=k: out[:, [k]] - "
    "out[:, torch.arange(out.shape[1]) != k].logsumexp(1, keepdim=True)` with labels `(y == k).long()`; a rank above k "
    "of ordered classes, `output=lambda out, k=k: out[:, k + 1:].logsumexp(1, keepdim=True) - out[:, :k + 1].logsumexp(1, "
    "keepdim=True)` (an ordinal head's rank classes; CORAL's own cumulative logit: `out[:, [k]]`) with labels "
    "`(y > k).long()` (`unpack_batch=lambda b, k=k: (b[0], (b[1] > k).long(), None)`; `k=k` binds each audit's own k "
    "where they are built in a loop)"
)

#: added to :data:`MULTICLASS_RATES` where the audit's own ``output=`` is set ({yours}: what it reads from the model's
#: output): the lambdas named take the model's whole output, read as the classes' logits or log-probabilities
OWN_OUTPUT_RATES = (
    "; those lambdas read `out` as the classes' logits or log-probabilities and replace your own `output=`: compose "
    "them with it, `output=lambda out, k=k: f(yours(out))`, `f` the lambda named and `yours(out)` {yours} (read on "
    "probabilities, such as a Softmax's, they give no log-odds, and the rates are wrong in silence)"
)

#: groups of fewer probe rows are named in a note: their rates are uncertain (a Wilson 95% interval of
#: 0 positives in 5 rows is [0, 0.43]); the table's ``positive_rate_ci`` says how much
SMALL_GROUP = 30
_Z95 = 1.959963984540054  # the 97.5% quantile of the standard normal


def _spread(rates: Tensor) -> float:
    ok = rates[~rates.isnan()]
    return float(ok.max() - ok.min()) if ok.numel() >= 2 else float("nan")


def wilson_interval(positives: int, n: int, z: float = _Z95) -> list[float]:
    r"""Wilson's score interval ``[low, high]`` of a proportion ``positives / n`` (95% for the default ``z``;
    Wilson 1927, recommended for small ``n`` by Brown, Cai & DasGupta 2001):

    .. math:: \frac{\hat p + z^2/2n}{1 + z^2/n} ± \frac{z}{1 + z^2/n} \sqrt{\frac{\hat p (1 - \hat p)}{n} + \frac{z^2}{4 n^2}}

    the proportions π with :math:`(\hat p − π)^2 = z^2 π (1 − π) / n`. Unlike the normal approximation it
    stays within [0, 1] and is not empty at 0 or n positives, which a small group often has. ``[nan, nan]``
    for ``n = 0``.

    Args:
        positives: the count of positives (0 <= positives <= n).
        n: the count of rows.
        z: the normal quantile of the interval's level (1.96: 95%).

    Examples:
        >>> [round(v, 4) for v in wilson_interval(0, 5)]  # no positive decision in 5 rows: up to 43% is likely
        [0.0, 0.4345]
        >>> [round(v, 4) for v in wilson_interval(50, 100)]
        [0.4038, 0.5962]
    """
    if n <= 0:
        return [math.nan, math.nan]
    p, z2 = positives / n, z * z
    centre = (p + z2 / (2 * n)) / (1 + z2 / n)
    half = z / (1 + z2 / n) * math.sqrt(p * (1 - p) / n + z2 / (4 * n * n))
    # exact at 0 and n positives (centre - half is 0 there, 1 - (centre + half) too, but not in floats: 7e-18 at 0 of
    # 35, which drew a negative error bar); the estimate lies in the interval
    return [min(p, max(0.0, centre - half)), max(p, min(1.0, centre + half))]


def _scaled_targets(labels: Tensor, width: int) -> bool:
    """Whether ``labels`` in [0, 1] are a regression's min-max-scaled targets rather than a classifier's soft labels:
    one a sample (``[N]`` or ``[N, 1]``), not all 0 or 1, beside 3 outputs or more (``width``), where soft labels
    ``[N]`` have no class to threshold to (a quantile regressor's ``[N, 3]``: the softmax of its quantiles was
    compared and a 0.3 read as class 0; ``[N, 1]`` was refused as no class label per sample). As
    :func:`~lightning_causal.audits.label_task.soft_binary_targets` reads them for the audits that take the largest
    output as a class.

    Examples:
        >>> y = torch.tensor([0.3, 0.8, 1.0])
        >>> _scaled_targets(y, 3), _scaled_targets(y[:, None], 3), _scaled_targets(y, 2), _scaled_targets(y.round(), 3)
        (True, True, False, False)
    """
    one = labels.dim() == 1 or labels.dim() == 2 and labels.shape[1] == 1
    return one and width >= 3 and not bool(((labels == 0) | (labels == 1)).all())


class FairnessAudit(Audit):
    r"""Counterfactual fairness of a classifier on the probe (Kusner et al. 2017; CARE; Garg et al. 2019).

    Scalars: ``cf_gap`` = E|p_t(x_cf) − p_t(x)| over the probe samples the counterfactual changes
    (for a :class:`~lightning_causal.causal.scm.token_swap.TokenSwap`: the counterfactual token
    fairness gap over sentences with identity terms), ``cf_gap_max``, ``cf_flip_rate`` (share of
    those decisions that change), ``cf_changed`` (share of samples changed),
    ``demographic_parity_difference`` and, when the probe has labels,
    ``equalized_odds_difference``, plus ``positive_rate/<group>`` (``tpr``, ``fpr``,
    ``accuracy`` with labels) per sensitive group (the values of the sensitive column; for a token
    swap, sentences with first / second terms only among their real tokens, the table row named
    by its terms, words with ``vocabulary`` or ids, the first three of a longer list: an attention
    mask's padded positions are neither swapped nor read), ``<group>`` the group's name in the groups table as a tag
    (``positive_rate/female_x_C``, ``positive_rate/race_Black``: ``×`` read as ``x``; a token swap's sides
    ``first_terms`` and ``second_terms``), ``group_<g>`` where the group has no name or its name gives another's tag
    (with a note; a counterfactual's ``group_names`` that do are refused); ``meta["group_tags"]`` lists them. Vectors: ``cf_delta`` (per-sample Δp, a
    histogram) and, per layer, ``carriers/<layer>`` = E|c_u|
    (:func:`~lightning_causal.causal.scm.fairness.carrier_unit_effects`: the part of Δ each unit
    carries) with the scalar ``<layer>/top1_carrier_share`` (the strongest unit's share of the layer's
    summed E|c_u|); tables ``top_carriers/<layer>`` and ``groups`` (a row per group, named
    ``<column>=<value>`` where the sensitive column has a name and the groups are its values: ``sex=0``; a
    ``Counterfactual`` subclass's own ``groups(x)`` (sex × race) is named by its ``group_names``, else by id;
    :class:`~lightning_causal.causal.scm.intersections.Intersections` makes such groups of several attributes).
    Each row holds the group's ``count``, its rates, ``positive_rate_ci`` (Wilson's 95% interval, which a
    small group makes wide; drawn as ``intervals/groups``) and ``cf_gap``, the group's own E|Δp| over its
    rows the counterfactual changes (also the scalar ``cf_gap/<group>``): an intersectional bias that
    the mean gap dilutes shows there. Notes (the text card) name the groups of fewer than 30 probe rows,
    the named groups the probe holds no row of, how many probe rows are in no group (a value that is no level of
    the attributes: a three-level code told two levels), the groups ``min_group_size`` leaves out of the group
    differences (named there only, not among the small groups too), and with more than two groups the lowest and
    highest positive rate and the largest ``cf_gap`` (also ``meta["extremes"]``). ``meta["compared"]`` says what cf_gap is
    the change of (the text card says it too), ``meta["compare"]`` the ``compare`` the run used. A regression (a probe
    whose labels are fractional floats beyond [0, 1], or a model that says it regresses: an ``nn.MSELoss`` held,
    ``hparams.task``) gets no label metrics; with ``compare="output"`` (the default's choice for it) its gap is in
    output units, cf_gap = E|f_t(x_cf) − f_t(x)| over the changed samples (no cf_flip_rate: a regression makes no
    decision; a note says so and that the group rates read outputs above 0, those of column ``target`` of several
    outputs, as they do for several outputs and a probe with no labels, with a note); with ``compare="probability"`` it is
    warned about, naming ``compare="output"``, cf_gap being then the change of the output's sigmoid.
    Soft labels in [0, 1] are thresholded at 0.5 (not fractions one a sample beside 3 outputs or more: a quantile
    regressor's min-max-scaled targets, a regression); soft labels [N, C], rows summing to 1, are read by their largest entry. The group metrics compare
    binary decisions: with more than two classes a positive decision (and label) is class 1, every
    other class negative; a note says so (``meta["positive_decision"]``, ``"class 1 of 5"``, the figure's axis too;
    ``"output k above 0"`` of a regression's column ``target=k`` compared in its units),
    naming the one output that reads the decision meant (class k against the rest; a rank above k of ordered classes).

    Args:
        counterfactual: ``scm.flip(column)``, an ``AttributeFlip``, a ``TokenSwap``, a callable
            ``x -> x_cf``, or an ``AdditiveNoiseSCM`` with ``sensitive``
            (:func:`~lightning_causal.causal.scm.attribute_flip.resolve_counterfactual`).
        sensitive: the column to flip for an SCM (name or index); optional otherwise (a
            counterfactual knows its column; for a callable, the group column: an index, or a name of
            `feature_names`; or a one-hot encoded attribute's columns, a list of indices or names: group
            ``k`` is the rows whose column ``sensitive[k]`` is 1, named by that column).
        layers: module names whose units are ranked as carriers (optional), or ``"<module>:input"``.
        unit_dim: the dimension that indexes the units of ``layers``, one value or a mapping
            layer -> value (``-1`` for the neurons of ``[N, T, D]`` layers), as in ``unit_effects``.
        num_heads: split the unit dimension of ``layers`` into heads (a unit is a head), one value
            or a mapping layer -> value, as in ``unit_effects``.
        top_k: carrier units per layer in the table (and pairs of worlds in ``world_gaps``).
        target: class whose probability is compared (``None`` = the predicted class).
        output: which tensor of the model's return value holds the logits (see :class:`Audit`).
        name: tag (default ``"fairness"``).
        feature_names: one name per column of the probe; names the sensitive column in the report.
        vocabulary: for a ``TokenSwap``, the word of each token id (``vocabulary[id]``; with a Hugging
            Face tokenizer ``tokenizer.convert_ids_to_tokens(list(range(tokenizer.vocab_size)))``): the
            ``groups`` table and the text summary name the terms by their words (``first terms ['he',
            'his']``), and ``meta["pairs"]`` lists the pairs as words; without it, by their ids.
        worlds: with an :class:`~lightning_causal.causal.scm.intersections.Intersections`, also put every probe row
            into every combination of the attributes
            (:func:`~lightning_causal.causal.scm.intersections.world_gaps`): the scalar ``world_gap_max`` and the
            table ``world_gaps``, the ``top_k`` pairs of worlds by E|p_t(x_a) − p_t(x_b)| (``male × C ↔ female ×
            C``); costs a pass over the rows each combination changes, batched with the flip's (the probe's own pass
            is the gap's: the audit runs it once, for the gap, the worlds, the groups' decisions and the carrier
            ``layers``, whose activations it records in that pass and in the flip's).
        compare: what cf_gap compares: ``"probability"`` (class probabilities: the softmax, one output's sigmoid),
            ``"output"`` (the raw output in its own units, a regressor's; no cf_flip_rate; not with ``layers``, whose
            carriers are measured on class probabilities). The default ``None`` compares probabilities, or the
            outputs where the run reads a regression (above) and no ``layers`` are given, saying so in
            ``meta["compare"]`` and a note; an explicit ``"probability"`` is kept, and warned about on a regression.
        min_group_size: groups of fewer probe rows are left out of the max and min over groups of
            ``demographic_parity_difference`` and ``equalized_odds_difference`` and of the extremes (the lowest and
            highest positive rate, the largest ``cf_gap``: ``meta["extremes"]``), a note naming them (they keep their row of the ``groups`` table and their own
            scalars): with many intersections a group of 2 rows, whose rate is 0, 0.5 or 1 by chance, would set the
            differences. An integer >= 1; the default 1 compares every group.

    ``validate`` (run by the callback on the whole probe before training) warns when the counterfactual
    changes no probe sample (a token swap whose terms no sentence holds): the gap would read 0 with
    nothing measured.

    Raises:
        ValueError: ``sensitive`` not a column; bad ``layers``/``top_k``; at ``validate``/``run``:
            a probe the counterfactual cannot flip (a sensitive column that is not binary, floats
            for a token swap).

    Examples:
        >>> import torch
        >>> from lightning_causal.causal import AttributeFlip
        >>> x = torch.tensor([[0.0, 1.0], [1.0, 2.0], [0.0, 3.0], [1.0, 0.0]])
        >>> r = FairnessAudit(AttributeFlip(0)).run(nn.Linear(2, 2), Probe(x))
        >>> sorted(k for k in r.scalars if k.startswith("cf_"))  # with each group's own gap
        ['cf_changed', 'cf_flip_rate', 'cf_gap', 'cf_gap/group_0', 'cf_gap/group_1', 'cf_gap_max']
    """

    whole_probe_rows_check = True  # its passes run the samples in batches of their own (Audit's attribute)

    def __init__(
        self,
        counterfactual: object,
        sensitive: str | int | Sequence[str | int] | None = None,
        layers: Sequence[str] = (),
        top_k: int = 10,
        *,
        target: int | None = None,
        output: OutputSpec = None,
        feature_names: Sequence[str] | None = None,
        name: str | None = None,
        unit_dim: int | Mapping[str, int] | None = None,
        num_heads: int | Mapping[str, int] | None = None,
        vocabulary: Sequence[str] | None = None,
        worlds: bool = False,
        min_group_size: int = 1,
        compare: Literal["probability", "output"] | None = None,
    ) -> None:
        super().__init__(name, output=output)
        self.feature_names = check_names("feature_names", feature_names)
        self.counterfactual = resolve_counterfactual(counterfactual, self._column_of(counterfactual, sensitive))
        check_distinct_tags("counterfactual", getattr(self.counterfactual, "group_names", None),
                            "positive_rate/<name> and cf_gap/<name>", "group", advice="rename one (Intersections: `level_names=`)")
        self.vocabulary = self._check_vocabulary(vocabulary)
        if not isinstance(worlds, bool):
            raise TypeError(f"Expected argument `worlds` to be a bool but got {worlds!r:.60}")
        if worlds and not isinstance(self.counterfactual, Intersections):
            raise ValueError(f"Expected argument `worlds=True` with an Intersections counterfactual (its worlds are the "
                             f"combinations of its attributes' levels) but got {self.counterfactual!r:.80}")
        self.worlds = worlds
        self.min_group_size = check_int("min_group_size", min_group_size, minimum=1)
        self.column = self.counterfactual.column
        layers = layer_names(layers, allow_empty=True)
        self.top_k = check_int("top_k", top_k, minimum=1)
        self.target = check_target(target)
        self.sensitive = sensitive if sensitive is not None else self.column
        self.layers = list(layers)
        self.unit_dim, self.num_heads = per_layer_layouts(unit_dim, num_heads, self.layers)
        self.compare = None if compare is None else check_compare(compare)
        if self.compare == "output" and self.layers:
            raise ValueError(f"Expected argument `layers` to be empty with compare='output' but got {self.layers[:4]}: the "
                             "carrier units are measured on class probabilities; audit the carriers with "
                             "compare='probability' in an audit of their own")

    def _check_vocabulary(self, vocabulary: Sequence[str] | None) -> list[str] | None:
        """``vocabulary`` as a list, for a ``TokenSwap`` whose every term it names."""
        words = check_names("vocabulary", vocabulary)
        if words is None:
            return None
        if not isinstance(self.counterfactual, TokenSwap):
            raise ValueError(f"Expected argument `vocabulary` to be None for the counterfactual {self.counterfactual!r:.80} "
                             "(it names the terms of a TokenSwap)")
        top = max(t for p in self.counterfactual.pairs for t in p)
        if top >= len(words):
            raise ValueError(f"Expected argument `vocabulary` to name every token id of {self.counterfactual!r:.80} but it holds "
                             f"{len(words)} words and the pairs reach id {top}")
        return words

    def _terms(self, group: int) -> list[int] | list[str]:
        """A token swap's terms on side ``group`` (0: first, 1: second), as words or ids."""
        ids = [p[group] for p in self.counterfactual.pairs]  # type: ignore[attr-defined]
        return ids if self.vocabulary is None else [self.vocabulary[t] for t in ids]

    def _group_name(self, group: int) -> str:
        """The name of a token swap's group in the table and the summary: its first three terms (a
        summary line holds both groups' names, so a long list of pairs is not written out there;
        ``meta["pairs"]`` has them all)."""
        terms = self._terms(group)
        more = f", … {len(terms)} in all" if len(terms) > 3 else ""
        return f"{('first', 'second')[group]} terms [{', '.join(repr(t) for t in terms[:3])}{more}]"

    def _column_of(self, counterfactual: object, sensitive: str | int | Sequence[str | int] | None) -> str | int | list[int] | None:
        """A callable counterfactual's ``sensitive`` column given by name: its index in
        ``feature_names`` (the other counterfactuals resolve names themselves); a one-hot block's
        columns (a list) each so."""
        if isinstance(counterfactual, (Counterfactual, AdditiveNoiseSCM)) or not callable(counterfactual):
            return sensitive  # type: ignore[return-value]
        if isinstance(sensitive, Sequence) and not isinstance(sensitive, str):
            return [self._column_of(counterfactual, c) for c in sensitive]  # type: ignore[misc]
        if not isinstance(sensitive, str):
            return sensitive
        if self.feature_names is None:
            raise ValueError(f"Expected argument `sensitive` to be a column index (int) for a callable counterfactual but got "
                             f"{sensitive!r}; a column name needs `feature_names=` to find it")
        if sensitive not in self.feature_names:
            raise ValueError(f"Expected argument `sensitive` to be one of `feature_names` {list(self.feature_names)[:12]}"
                             f"{' ...' if len(self.feature_names) > 12 else ''} or a column index but got {sensitive!r}")
        return list(self.feature_names).index(sensitive)

    def _inputs(self, probe: Probe) -> Tensor:
        x = probe.inputs
        if not isinstance(x, Tensor):
            raise single_input_error("FairnessAudit", x)
        if x.dim() == 1:  # one id per sample: no column to flip or to group by
            raise ValueError(one_value_per_sample(x, "inputs"))
        top = max(self._block) if self._block is not None else self.column
        if top is not None and (x.dim() != 2 or x.shape[1] <= top):
            hint = POSITION_ATTRIBUTE_FIX if x.dim() == 3 else ""
            raise ValueError(f"Expected a tabular probe [N, D] with D > {top} (the sensitive column) but got {list(x.shape)}{hint}")
        return x

    @property
    def _block(self) -> list[int] | None:
        """A one-hot encoded attribute's columns (``sensitive=`` a list, with a callable), or ``None``."""
        return getattr(self.counterfactual, "block", None)

    def validate(self, model: nn.Module, probe: Probe) -> None:
        for layer in self.layers:
            check_site(model, layer)
        check_name_count("feature_names", self.feature_names, self._inputs(probe).shape[1], "column")
        x = self._inputs(probe)
        pad = self._padding(model, probe)
        x_cf = counterfactual_inputs(self.counterfactual, x, pad)  # token ids outside the vocabulary fail here, at setup
        check_counterfactual_ids(self.counterfactual, x_cf, token_readers(Forward(model, num_samples=len(probe), **self.model_options(probe)), x))
        if not bool((x_cf != x).any()):
            self._warn_nothing_changed(x.shape[0])
        self._check_reading(model, probe, x)
        _READ_CHECKED.setdefault(model, weakref.WeakSet()).add(self)  # run checks this model no second time

    def _check_reading(self, model: nn.Module, probe: Probe, x: Tensor, first: Callable[[], Tensor] | None = None) -> None:
        """What makes the audit's measures no class probabilities or no groups, checked by :meth:`validate` and by
        :meth:`run` where ``validate`` did not check this model (called by hand, ``audit.run(model, probe)``, without the
        callback's set-up; once checked, the callback's and ``audit_model``'s runs say it no second time): per-level
        logits and a continuous distribution's moments warned about, an embedding and group ids that are not whole
        numbers refused (:meth:`_check_groups`, which ``run`` checks whatever ``validate`` checked: the probe it is given
        need not be validate's)."""
        first = first_row_outputs(model, probe, self.output) if first is None else first
        out = first()
        levels = level_outputs(probe.labels, out, task_model(model, self.output), self.output)
        if levels is not None:  # a guess (a one-vs-rest classifier's labels look alike): warned, not refused
            warnings.warn(
                f"FairnessAudit compares class probabilities (the softmax of the outputs) but {levels}: their softmax "
                f"is no probability of a rank, and their largest no predicted rank; {LEVEL_WAYS_OUT}", UserWarning,
                stacklevel=outside_package())
        # a multi-output regression (a heading (cos, sin) of unit norm) is warned about as one (_labels_read), not refused
        regressing = regression_labels(probe.labels, model=task_model(model, self.output))
        embedding = None if regressing else embedding_output(out, model, self.output)
        if embedding is not None and len(probe) > 1:  # a row of two logits may lie on the unit circle: 8 rows say
            embedding = embedding_output(first_row_outputs(model, probe, self.output, rows=8)(), model, self.output)
        if embedding is not None:
            raise ValueError(
                f"FairnessAudit compares class probabilities (the softmax of the outputs) but the model's outputs are an "
                f"embedding {list(out.shape)} ({embedding}): the softmax of its coordinates is no class probability; pass "
                "`output=` class scores, e.g. temperature-scaled similarities to class centroids (`output=lambda out: "
                "out @ centroids.T / 0.1`, `centroids` [C, D] of unit rows), or compare model(x) with "
                "model(counterfactual(x)) directly (their cosine similarity)")
        read = None if regressing else continuous_distribution_read(model, probe, self.output, first)
        if read is not None:  # a Gaussian policy's action means: their softmax is no probability of an action
            warnings.warn(
                f"FairnessAudit compares class probabilities (the softmax of the outputs) but they are {read}, a continuous "
                f"distribution ({continuous_guess(probe.labels, task_model(model, self.output))}): the softmax of its coordinates is no probability, so cf_gap and "
                "cf_flip_rate are no change of the action; measure the flipped column's effect on each coordinate k with "
                "InputEffectAudit(target=k) or compare model(x) with model(counterfactual(x)) directly", UserWarning,
                stacklevel=outside_package())
        self._check_groups(x)

    def _check_groups(self, x: Tensor) -> None:
        """Refuse a sensitive column of the probe ``x`` whose group ids are not whole numbers, naming ``sensitive``."""
        groups = self.counterfactual.groups(x)
        if groups is not None and groups.is_floating_point() and not bool((groups == groups.round()).all()):
            odd = groups[groups != groups.round()].unique()[:3].tolist()
            raise ValueError(
                f"Expected the sensitive column `sensitive={self.sensitive!r}` of the probe to hold integral group ids "
                f"(for the group metrics) but got values such as {[round(v, 4) for v in odd]}; pass `sensitive=None` "
                "(no group metrics), bin the column, or use AttributeFlip(column, values=(v0, v1)) for a binary "
                "attribute coded otherwise (standardised)"
            )

    def _warn_nothing_changed(self, n: int) -> None:
        """Warn (at set-up) that the counterfactual changes no probe sample: the gap is a mean over
        the changed samples, so it would read 0 with nothing measured."""
        why = (" (no sentence holds a term of its pairs among its real tokens: check the ids against the tokenizer's "
               "vocabulary, e.g. 'He' and 'he' are different tokens of a cased one)") if isinstance(self.counterfactual, TokenSwap) else ""
        warnings.warn(
            f"FairnessAudit {self.name!r}: the counterfactual {self.counterfactual!r:.100} changes none of the {n} probe "
            f"samples{why}, so cf_gap, cf_gap_max and cf_flip_rate read 0 with nothing measured (cf_changed 0). Give a "
            "probe with samples the counterfactual changes", UserWarning, stacklevel=outside_package())

    def _padding(self, model: nn.Module, probe: Probe) -> Tensor | None:
        """The probe's padded positions (attention mask 0), or ``None``."""
        return padding_positions(probe.first, probe.additional_forward_args, model=model)

    def _warn_one_hot(self, x: Tensor) -> None:
        """Warn when the flipped column is one column of a one-hot block (``warn_one_hot_flip``)."""
        warn_one_hot_flip(f"FairnessAudit {self.name!r}", self.counterfactual, x,
                          "cf_gap and cf_flip_rate compare the model's outputs on those rows")

    def _rows_of_first_pass(self, model: nn.Module, probe: Probe) -> int:
        x = self._inputs(probe)  # the factual pass's chunk: rows_per_pass, as _counterfactual_probabilities measures it
        forward = Forward(model, num_samples=x.shape[0], **self.model_options(probe))
        return min(x.shape[0], rows_per_pass(forward.model, (x,), forward=forward))

    def run(self, model: nn.Module, probe: Probe, *, max_batch_size: int | None = None) -> AuditResult:
        # one block for the whole run, as the callback opens around each audit: a warning of what the model is (an
        # evidential head's concentrations) is given once, not again by the carrier layers' passes (`layers=`)
        # outputs of one side of 0.5 told as probabilities by the layers the passes call (check_one_logit)
        with remembered_fit(), layer_calls():
            return self._run(model, probe, max_batch_size=max_batch_size)

    def _run(self, model: nn.Module, probe: Probe, *, max_batch_size: int | None = None) -> AuditResult:
        x = self._inputs(probe)
        first = first_row_outputs(model, probe, self.output)  # one pass of the first row, for the checks and the compare
        if self not in _READ_CHECKED.get(model, ()):  # by hand too: an embedding's softmax is refused, a Normal's means
            self._check_reading(model, probe, x, first)  # warned of; once only after the set-up's validate checked the model
        else:  # the probe's group ids at every run: validate's probe need not be this one
            self._check_groups(x)
        self._warn_one_hot(x)
        options = self.model_options(probe)
        check_name_count("feature_names", self.feature_names, x.shape[1], "column")
        sensitive = (self.feature_names[self.column] if self.feature_names is not None and self.column is not None
                     else None if self.sensitive is None else str(self.sensitive))  # a TokenSwap has none: null, not "None"
        result = AuditResult(self.name, meta={"sensitive": sensitive, "counterfactual": repr(self.counterfactual),
                                              "n": x.shape[0]})
        if self.feature_names is not None:
            result.meta["feature_names"] = list(self.feature_names)
        if isinstance(self.counterfactual, TokenSwap):
            result.meta["pairs"] = [list(p) for p in zip(self._terms(0), self._terms(1))]
        # the factual pass runs once: the gap, the worlds (their changed rows batched with the flip's), the groups'
        # decisions and the carrier layers (their activations recorded in it and in the flip's pass) share it
        worlds = self.counterfactual.worlds() if self.worlds else {}  # type: ignore[attr-defined]
        recorded: dict[str, tuple[Tensor, Tensor] | None] = dict.fromkeys(self.layers)
        task = label_task(task_model(model, self.output))  # walks every module: once
        why_output = None if self.compare is not None else self._regression_read(model, probe, task, first)
        compare = self.compare or ("output" if why_output is not None else "probability")
        result.meta["compare"] = compare
        factual: list[Tensor] = []  # the raw outputs the probabilities hide: independent probabilities (DUQ's kernels)
        p, p_cf, changed, classes = _counterfactual_probabilities(
            model, x, [self.counterfactual, *(CallableCounterfactual(w) for w in worlds.values())],
            max_batch_size=max_batch_size, record=recorded if self.layers else None, raw=compare == "output",
            factual_outputs=factual, what=f"FairnessAudit {self.name!r}", **options)
        gap = _fairness_gap(p, p_cf[0], changed[0], self.target, classes, compare)
        result.scalars.update(cf_gap=gap["mean_abs"], cf_gap_max=gap["max_abs"], cf_changed=gap["changed"])
        if compare == "probability":  # a regression's output makes no decision to flip
            result.scalars["cf_flip_rate"] = gap["flip_rate"]
        result.vectors["cf_delta"] = gap["delta"]
        result.meta["compared"] = gap["compared"]
        outputs = p
        # the columns of the class probabilities (one output's sigmoid gives 2), read before any: a regression's raw
        # outputs are no logits to check (a Dirichlet's concentrations, probabilities already: a false warning or refusal)
        labels, why = self._labels_read(probe, model, 2 if compare == "output" and p.shape[1] == 1 else int(p.shape[1]), task)
        if labels is None and task == "multilabel" and outputs.shape[1] > 1 and compare == "probability":
            # with labels, one class per sample is asked for (the hint below); without, the softmax across the tags'
            # logits was read as one decision, in silence (0.00/0.01 positive rates where tag k's are 0.21/0.78)
            raise ValueError(
                f"FairnessAudit {self.name!r} compares class probabilities, the softmax of the model's {outputs.shape[1]} "
                "outputs, but the model says it is multi-label (an nn.BCEWithLogitsLoss held, or `hparams.task`): each "
                "output is its own sigmoid decision, and their softmax is none; for a multi-label classifier audit label "
                "k as a binary classifier, `output=lambda out: out[:, [k]]`, or compare its raw output, compare='output' "
                "with target=k")
        if compare == "output":  # the group rates read the outputs' probabilities (one output: its sigmoid)
            # of a regression of several outputs, or of several outputs with no labels to tell one from classes (and a
            # model that does not say it classifies: an nn.CrossEntropyLoss held keeps its decisions): the column
            # compared (target=), not the argmax over outputs that are no classes
            column = outputs.shape[1] > 1 and (why is not None or labels is None and task != "multiclass")
            p = probabilities(outputs[:, [self.target]] if column else outputs, check=why is None, model=model)  # a regression: none
            if column or outputs.shape[1] == 1:  # the figure's axis says what a positive decision is: no class
                result.meta["positive_decision"] = f"output {self.target} above 0" if column else "the output above 0"
            if why is not None:  # the choice first: the card cuts a long note
                chosen = "compare='output' chosen (`compare` left at its default) as " if why_output is not None else ""
                result.meta.setdefault("notes", []).append(
                    f"{chosen}{why}: cf_gap is the mean absolute change of the output in its own units (compare='output'), with "
                    "no cf_flip_rate; the label metrics (equalized odds, TPR, FPR, accuracy) are left out, and the group "
                    "rates are the shares of outputs above 0 (their sigmoid above 0.5; of column target= of several outputs)")
            elif labels is None and outputs.shape[1] == 1:  # one output, no labels: its sign is the decision read
                self._one_output_rates(outputs, result, _logit_said(model, self.output, task))
            elif column:
                result.meta.setdefault("notes", []).append(
                    ("the model says it is multi-label" if task == "multilabel" else
                     f"the probe holds no labels to tell a regression of {outputs.shape[1]} outputs from classes")
                    + ": under compare='output' the group rates are the shares of column target= above 0 (its sigmoid "
                    "above 0.5), not of the outputs' argmax" + ("" if task == "multilabel" else
                                                                "; give the probe its labels for a classifier's decisions"))
        elif why is not None:  # cf_gap a saturated sigmoid's
            self._warn_regression(why)
        elif task != "multiclass" and classes != ONE_OUTPUT:  # cross-entropy says logits, small as they may be
            self._warn_independent(torch.cat(factual))
        pad = self._padding(model, probe)
        if pad is not None and self.counterfactual.per_position:  # a swap's groups: the terms among the real tokens
            x = x.masked_fill(pad.expand_as(x), -1)
        groups = self.counterfactual.groups(x)
        if groups is not None:
            self._group_metrics(model, probe, p, groups, result, labels, gap["delta"], changed[0],
                                torch.cat(factual) if factual else None)
        if self.worlds:
            self._worlds(list(worlds), outputs, p_cf[1:], classes, result, compare)
        for layer in self.layers:
            acts = recorded[layer]
            self._carriers(model, probe, layer, max_batch_size, result, None if acts is None else (p, *acts, classes))
        return result

    def _worlds(self, names: list[str], p: Tensor, p_w: Tensor, classes: str, result: AuditResult,
                compare: str = "probability") -> None:
        """``world_gap_max`` and the table ``world_gaps``: the ``top_k`` pairs of intersections the model treats most
        differently, each row put into both (:func:`~lightning_causal.causal.scm.intersections.world_gaps`), from the
        probabilities on the probe ``p`` ``[N, C]`` and in each world ``p_w`` ``[W, N, C]`` (``classes``: what the model's
        outputs are, for a refused target)."""
        g = _world_gaps(names, p, p_w, self.target, target_classes(p, classes, compare == "output"))
        names, gaps = g["names"], g["mean_abs"]
        a, b = torch.triu_indices(len(names), len(names), 1)
        order = gaps[a, b].argsort(descending=True, stable=True)[: self.top_k].tolist()
        result.scalars["world_gap_max"] = g["worst_gap"]
        result.tables["world_gaps"] = [{"name": f"{names[int(a[i])]} ↔ {names[int(b[i])]}", "world_a": names[int(a[i])],
                                        "world_b": names[int(b[i])], "gap": float(gaps[a[i], b[i]])} for i in order]

    def _column_name(self) -> str | None:
        """The sensitive column's name (``feature_names``, or the name the counterfactual was given), or
        ``None`` where it has none (an index without ``feature_names``; a token swap; groups of a
        counterfactual's own ``groups()``)."""
        if self.column is None:
            return None
        if self.feature_names is not None and self.column < len(self.feature_names):
            return self.feature_names[self.column]
        name = getattr(self.counterfactual, "name", None)  # AttributeFlip("sex", columns=...), scm.flip("sex")
        return name if isinstance(name, str) else self.sensitive if isinstance(self.sensitive, str) else None

    def _one_output_rates(self, outputs: Tensor, result: AuditResult, said: bool = False) -> None:
        """Say what the group rates of one output compared in its own units read without labels: the share of the
        output above 0 (its sigmoid above 0.5); warn where every output lies on one side of 0, so that the rates are
        1.0 (or 0.0) in both groups and their difference 0 whatever the model decides, naming the ways out (a probe with
        its labels, a decision score centred on its threshold); read on :data:`~lightning_causal.causal.engine.state.\
ONE_LOGIT_ROWS` rows or more (the callback's dry run of 2 rows tells nothing). A probability on both sides of 0.5 has
        its own warning (``check_one_logit``, naming ``out.logit``). ``said``: the model says it is a binary classifier
        (:func:`_logit_said`); where its outputs are no probabilities (some beyond [0, 1]) they are its logits, whose
        threshold is 0: the rates are its decisions, all one way on this probe, said in the note, not warned of."""
        out = outputs.detach().flatten()
        logit = said and not in_unit_interval(out)
        result.meta.setdefault("notes", []).append(
            "the probe holds no labels and the model one output, compared in its own units (compare='output'): the "
            "group rates are the shares of the output above 0 (its sigmoid above 0.5); " + (
                "the model says it is a binary classifier and its output is a logit, so they are its positive decisions "
                "(threshold 0); give the probe its labels for the label metrics" if logit else
                "give the probe its labels for a classifier's decisions, or `output=` a score centred on the decision's "
                "threshold"))
        above = bool((out > 0).all())
        if logit or out.numel() < ONE_LOGIT_ROWS or not above and bool((out > 0).any()) or in_unit_interval(out) and bool((out < 0.5).any() & (out > 0.5).any()):
            return  # rates that can differ, or a logit's decisions; or a probability on both sides of 0.5 (check_one_logit)
        warnings.warn(
            f"FairnessAudit {self.name!r} compares the model's one output in its own units (compare='output') on a probe "
            f"without labels: its group rates are the shares of the output above 0, but every output lies "
            f"{'above' if above else 'at or below'} 0 (from {float(out.min()):.4g} to {float(out.max()):.4g}), so they are "
            f"{'1.0' if above else '0.0'} in both groups and their difference 0 " + (
                "(the model says it is a binary classifier: where this output is its logit, these are its decisions; "
                "where it is a probability, whose threshold is 0.5, they are not)." if said else
                "whatever the model decides.") +
            " Give the probe its labels (Probe(x, labels)), or pass `output=` a score centred on the decision's threshold "
            "(output=lambda out: out - t; a probability: output=lambda out: out.logit(eps=1e-6))", UserWarning,
            stacklevel=outside_package())

    def _labels_read(self, probe: Probe, model: nn.Module, width: int, task: str | None) -> tuple[Tensor | None, str | None]:
        """The probe's labels, or ``None`` and why when they are no classes but a regression
        target (:func:`~lightning_causal.audits.options.regression_labels` with the model's output
        width and task: fractional floats beyond [0, 1], or whole numbers no output of the model can
        be, such as counts 0..40 of a one-output regression): the audit compares class
        probabilities, and the sigmoid of a regression output is no measure of its change. Soft
        labels in [0, 1] (label smoothing) are kept: the group rates threshold them at 0.5 (not :func:`_scaled_targets`, a
        quantile regressor's min-max-scaled targets); soft labels ``[N, C]``
        (rows summing to 1: mixup, label smoothing, a teacher's probabilities) are read by their largest entry
        (:func:`~lightning_causal.audits.label_task.class_indices`). ``width``: the columns of
        the class probabilities (2 for one output, which ``regression_labels`` reads as one: 0/1 classes either way).
        ``task``: what the model says of its task (:func:`~lightning_causal.audits.label_task.label_task`, read once by
        the caller). The caller warns (:meth:`_warn_regression`) or notes the reason."""
        tasked = task_model(model, self.output)
        if unlabelled_regression(probe.labels, tasked):  # no labels to read, but the model says it regresses
            return None, _SAYS_REGRESSION
        labels = class_indices(probe.labels, task=task)
        if labels is None or (not labels.is_floating_point() and task != "regression"):
            return labels, None  # integer labels are class indices unless the model says it regresses (int64 counts)
        if task is None and bool(((labels >= 0) & (labels <= 1)).all()) and not _scaled_targets(labels, width):
            # wider than soft_binary_targets: label smoothing's 0.05/0.95 and any rows in [0, 1] are thresholded at 0.5
            # as classes, or refused as no single class per sample (a survival model's scaled time beside its event)
            # by the caller
            return labels, None
        if not regression_labels(labels, width, task=task):
            return labels, None
        # read from the 2 rows of the callback's dry run (dry_rows), so that its warning and the full run's are one text,
        # said once a fit
        seen = labels[dry_rows(probe)].flatten()
        odd = seen[(seen < 0) | (seen > 1)][:3].tolist() or seen[:3].tolist()  # [N, C] proportions: values
        return None, (f"the probe's labels are a regression target such as {[round(v, 4) for v in odd]} (not classes of "
                      "the model's outputs)")

    def _regression_read(self, model: nn.Module, probe: Probe, task: str | None, first: Callable[[], Tensor]) -> str | None:
        """Why the run reads a regression (:meth:`_labels_read`'s reason, from the labels, the model's task and the width of
        its outputs on the first row, ``first``), where ``compare`` is left at its default and no carrier ``layers`` (measured
        on class probabilities) are asked for: then the outputs are compared; ``None``: the probabilities are. Labels
        -1/+1 (a binary classifier's, a margin's: every |y| = 1) are no regression target to choose the outputs by in
        silence, where the model does not say it regresses: the probabilities are compared, and the run warns naming
        ``compare="output"``."""
        if self.layers:
            return None
        out = first()
        width = 2 if out.dim() == 1 or out.shape[1] == 1 else int(out.shape[1])  # one output's sigmoid: 2 columns
        why = self._labels_read(probe, model, width, task)[1]
        labels = probe.labels
        if why is not None and task != "regression" and isinstance(labels, Tensor) and bool((labels.abs() == 1).all()):
            return None  # -1/+1 classes: the warning names compare='output', the flip rate is kept (two values of any
            # other kind, counted, read every regression as classes on the callback's 2-row dry run)
        return why

    def _warn_independent(self, outputs: Tensor) -> None:
        """Warn where the outputs compared by their softmax, the factual pass's ``outputs``, are a quantile regressor's
        quantiles (:func:`~lightning_causal.audits.label_task.ascending_outputs`) or independent
        probabilities (:func:`~lightning_causal.audits.label_task.independent_probabilities`: a one-vs-rest head's
        sigmoids, DUQ's RBF kernel values): cf_gap is then the change of a compressed softmax (DUQ on 3 classes: 0.0064
        where the kernel of the predicted class moved by 0.021)."""
        probabilities = independent_probabilities(outputs)
        quantiles = ascending_outputs(outputs) if probabilities is None else None
        if probabilities is not None:
            warnings.warn(probabilities_warning(softmax_of_probabilities(
                f"FairnessAudit {self.name!r} compares (cf_gap)", probabilities,
                "pass compare='output' with target=k to compare class k's own output (its change in its own units)",
                " with the probe's labels `(y == k).long()`"), self.output, outputs), stacklevel=outside_package())
        elif quantiles is not None:  # a quantile regressor's, on a probe without labels to say it regresses
            warnings.warn(
                f"FairnessAudit {self.name!r} compares (cf_gap) the softmax over the model's outputs, but {quantiles}, as a "
                "quantile regressor's quantiles do (0.1, 0.5, 0.9: a pinball loss): their softmax is no probability, and "
                "its change no change of a quantile; pass compare='output' with target=k to compare quantile k in its own "
                "units", UserWarning, stacklevel=outside_package())

    def _warn_regression(self, why: str) -> None:
        """Warn that the audit's measures are no change of a regression's output (``why``: what says it regresses)."""
        warnings.warn(
            f"FairnessAudit {self.name!r} compares class probabilities (the softmax of the outputs, the sigmoid of a "
            f"single output), but {why}: the sigmoid of a regression output is no measure of its change (an output "
            "moved from 10 to 13 changes its sigmoid by 4e-5), so cf_gap is not the change of the output, and the label "
            "metrics (equalized odds, TPR, FPR, accuracy) are left out. For a regression model pass compare='output' "
            "(the raw output's change, in its units; with target=k on several outputs, without carrier layers)",
            UserWarning, stacklevel=outside_package())

    def _group_metrics(self, model: nn.Module, probe: Probe, p: Tensor, groups: Tensor, result: AuditResult,
                       labels: Tensor | None, delta: Tensor, changed: Tensor, raw: Tensor | None = None) -> None:
        """The groups table, the group differences and their notes; ``p`` the class probabilities on the probe
        ``[N, C]`` (the gap's factual pass), ``delta`` and ``changed`` the gap's ``[N]``, ``raw`` that pass's outputs
        (whose lying in [0, 1], a head ending in ``nn.Sigmoid``, the ranks' hint of a refused label says)."""
        preds = p.argmax(1)
        if labels is not None:  # the group rates (true/false positive rates, accuracy) compare decisions with them
            check_one_label_per_sample("FairnessAudit", labels, len(probe), "to compare each group's decisions with",
                                       multi_label_output="lambda out: out[:, [k]]", model=task_model(model, self.output))
        check_class_labels("probe.labels", labels, int(p.shape[1]), outputs=raw)
        keep = groups >= 0  # -1: no group (token swaps: sentences of neither side; a binary column's other values)
        outside = int((~keep).sum())
        if outside and not isinstance(self.counterfactual, TokenSwap):  # a swap's sentences without its terms: no group by design
            which = self.counterfactual.unlevelled(probe.first) if isinstance(self.counterfactual, Intersections) else {}
            held = "".join(f"; {a} holds {', '.join(f'{v:g}' for v in vs)}, none of its levels "
                           f"{', '.join(f'{v:g}' for v in self.counterfactual.attributes[a][2])} (Intersections' "
                           f"`levels={{{a!r}: [...]}}` names them all)" for a, vs in which.items())
            result.meta.setdefault("notes", []).append(
                f"{outside} of {len(keep)} probe rows are in no group (a value that is no level of the sensitive attribute(s), "
                f"or a block that is not one-hot{held}): the group metrics leave them out")
        if not bool(keep.any()):
            return
        column = self._column_name() if self._groups_are_column_values(probe.first[keep], groups[keep]) else None
        preds, groups = preds[keep], groups[keep]
        labels = labels[keep] if labels is not None else None
        delta, changed = delta[keep.to(delta.device)].detach().cpu(), changed[keep.to(changed.device)].cpu()
        multiclass = labels is not None and bool((labels > 1).any()) or bool((preds > 1).any())
        if multiclass:  # group metrics are for binary decisions; report positive = class 1
            preds = (preds == 1).long()
            labels = (labels == 1).long() if labels is not None else None
            yours = ("" if self.output is None else OWN_OUTPUT_RATES.format(
                yours="your own `output=` applied" if callable(self.output) else f"the head your `output={self.output!r}` selects"))
            result.meta.setdefault("notes", []).append(MULTICLASS_RATES.format(classes=int(p.shape[1])) + yours)
            result.meta["positive_decision"] = f"class 1 of {int(p.shape[1])}"  # the figure's axis says it
        rates = group_rates(preds, groups, labels)
        kept = rates["count"] >= self.min_group_size  # the groups the differences compare (_group_notes: the rows' counts)
        result.scalars["demographic_parity_difference"] = _spread(rates["positive_rate"][kept])
        if rates["groups"].numel() < 2:  # else a NaN the callback reports without a cause
            only = self._group_name(int(rates["groups"][0])) if isinstance(self.counterfactual, TokenSwap) else f"group {int(rates['groups'][0])}"
            result.meta.setdefault("notes", []).append(
                f"every probe sample with a group is in one group ({only}): the group differences (demographic parity, "
                "equalized odds) compare groups and are undefined (NaN); audit a probe that holds both groups")
        if labels is not None:
            result.scalars["equalized_odds_difference"] = worst_spread(_spread(rates["tpr"][kept]), _spread(rates["fpr"][kept]))
        keys = [k for k in ("positive_rate", "tpr", "fpr", "accuracy") if k in rates]
        rows = []
        values = getattr(self.counterfactual, "values", None)  # a binary attribute's coding: group k holds values[k]
        own = getattr(self.counterfactual, "group_names", None)  # a Counterfactual subclass's names of its groups() ids
        ids = groups.cpu().round().long()
        for i, g in enumerate(rates["groups"].tolist()):
            row = {"group": g, "count": int(rates["count"][i])}
            if isinstance(values, tuple) and len(values) == 2 and g in (0, 1):
                row["value"] = values[g]
            if own is not None and 0 <= g < len(own):
                row["name"] = str(own[g])
            elif isinstance(self.counterfactual, TokenSwap) and g in (0, 1):  # which sentences: the summary shows this name
                row["name"] = self._group_name(g)
            elif self._block is not None and 0 <= g < len(self._block):  # a one-hot attribute: the column of its 1
                row["name"] = self.feature_names[self._block[g]] if self.feature_names is not None else f"column {self._block[g]}"
            elif column is not None:  # the summary names the attribute: 'sex_Male=0', not a bare '0'
                value = row.get("value", g)
                row["name"] = f"{column}={value:g}" if isinstance(value, float) else f"{column}={value}"
            for k in keys:
                row[k] = float(rates[k][i])
            row["positive_rate_ci"] = wilson_interval(round(row["positive_rate"] * row["count"]), row["count"])
            mine = (ids == g) & changed  # the group's rows the counterfactual changes: its own gap
            row["cf_gap"] = float(delta[mine].abs().mean()) if bool(mine.any()) else math.nan
            rows.append(row)
        self._group_scalars(rows, [*keys, "cf_gap"], result)
        result.tables["groups"] = rows
        result.meta["confidence"] = 0.95  # of positive_rate_ci
        self._group_notes(rows, result, own)

    def _group_scalars(self, rows: list[dict], keys: list[str], result: AuditResult) -> None:
        """``<metric>/<group>`` per group, the group by its name where it has one (``positive_rate/female_x_C``;
        :func:`~lightning_causal.audits.group_tags.group_tags`), else ``group_<g>``; ``meta["group_tags"]`` lists them
        (the TensorBoard layout puts each metric's groups in one chart)."""
        tags, clashing = group_tags(rows, token_swap=isinstance(self.counterfactual, TokenSwap))
        for row, tag in zip(rows, tags):
            for k in keys:
                if not math.isnan(row[k]):
                    result.scalars[f"{k}/{tag}"] = row[k]
        result.meta["group_tags"] = tags
        if clashing:
            result.meta.setdefault("notes", []).append(
                f"the groups {', '.join(repr(n) for n in clashing[:4])}{' ...' if len(clashing) > 4 else ''} give one scalar tag by "
                "their names: their scalars are tagged group_<g>")

    def _group_notes(self, rows: list[dict], result: AuditResult, own: Sequence[str] | None) -> None:
        """Notes on the groups a regulator reads first: which groups are small (their rates uncertain),
        which ``min_group_size`` leaves out of the group differences (a row's ``count`` below it, as
        :meth:`_group_metrics` leaves them out), which named groups the probe holds no row of, and, with more
        than two groups, the pair of groups furthest apart in positive rate and the group of the largest
        counterfactual gap (an intersectional bias that one attribute's two groups average away), over the kept
        groups. A group is named once: a small group left out is named by the note that leaves it out, not by both."""
        name = lambda row: row.get("name", f"group {row['group']}")  # noqa: E731
        notes = result.meta.setdefault("notes", [])
        compared = [row for row in rows if row["count"] >= self.min_group_size]
        left = [row for row in rows if row["count"] < self.min_group_size]
        small = [row for row in compared if row["count"] < SMALL_GROUP]
        if small:  # the card cuts a note at 160 characters: names and counts first, the smallest group's interval
            least = min(small, key=lambda row: row["count"])
            low, high = least["positive_rate_ci"]
            shown = ", ".join(f"{name(row)} ({row['count']})" for row in small[:6]) + (" ..." if len(small) > 6 else "")
            notes.append(f"small groups (< {SMALL_GROUP} probe rows, rates uncertain: positive_rate_ci): {shown}; "
                         f"{name(least)} {least['positive_rate']:.2f} in [{low:.2f}, {high:.2f}] (Wilson 95%)")
        if own is not None:
            held = {row["group"] for row in rows}
            empty = [str(n) for k, n in enumerate(own) if k not in held]
            if empty:
                notes.append(f"no probe row in the group(s) {', '.join(empty[:6])}{' ...' if len(empty) > 6 else ''}: they are not "
                             "in the groups table nor the group differences")
        if left:
            shown = ", ".join(f"{name(row)} ({row['count']})" for row in left[:6]) + (" ..." if len(left) > 6 else "")
            few = len(compared) < 2
            notes.append(f"left out of the group differences (fewer than min_group_size={self.min_group_size} probe rows): {shown}"
                         f"{'; fewer than two groups remain: NaN' if few else ''}")
            result.meta["min_group_size"] = self.min_group_size
        rated = [row for row in compared if not math.isnan(row["positive_rate"])]
        if len(rows) > 2 and len(rated) >= 2:
            low = min(rated, key=lambda row: row["positive_rate"])
            high = max(rated, key=lambda row: row["positive_rate"])
            among = f"{len(rows)} groups" if not left else f"{len(compared)} groups of >= {self.min_group_size} rows"
            text = (f"of {among}, positive rate lowest in {name(low)} ({low['positive_rate']:.3g}, {low['count']} rows) "
                    f"and highest in {name(high)} ({high['positive_rate']:.3g}, {high['count']} rows)")
            gaps = [row for row in compared if not math.isnan(row["cf_gap"])]
            if gaps:
                worst = max(gaps, key=lambda row: row["cf_gap"])
                text += f"; cf_gap largest in {name(worst)} ({worst['cf_gap']:.3g})"
            result.meta["extremes"] = {"lowest_positive_rate": name(low), "highest_positive_rate": name(high),
                                       **({"largest_cf_gap": name(worst)} if gaps else {})}
            notes.append(text)
        if not notes:
            del result.meta["notes"]

    def _groups_are_column_values(self, x: Tensor, groups: Tensor) -> bool:
        """Whether group ``g`` is the rows whose sensitive column holds ``g`` (or ``values[g]``), so that a row of the
        groups table is named ``<column>=<value>``: not so for a ``Counterfactual`` subclass whose ``groups(x)``
        numbers other groups (sex × race), which such names would mislabel (``sex=3``)."""
        if self.column is None or x.dim() != 2 or x.shape[1] <= self.column:
            return False
        values = getattr(self.counterfactual, "values", None)
        coded = isinstance(values, tuple) and len(values) == 2
        held = x[:, self.column].detach().double()
        groups = groups.to(held.device)
        expected = groups.double()
        if coded:  # group 0/1 of a coded binary attribute holds values[0]/values[1]
            expected = torch.where(groups == 0, float(values[0]), torch.where(groups == 1, float(values[1]), expected))
        return bool((held == expected).all())

    def _carriers(self, model: nn.Module, probe: Probe, layer: str, mbs: int | None, result: AuditResult,
                  recorded: tuple[Tensor, Tensor, Tensor, str] | None) -> None:
        """``carriers/<layer>`` and its share and table; ``recorded`` = ``(p, h, h_cf, classes)`` from the audit's own factual and
        counterfactual passes (``None``: :func:`~lightning_causal.causal.scm.fairness.carrier_unit_effects` runs them)."""
        eff = _carrier_effects(model, probe.first, self.counterfactual, layer, target=self.target, max_batch_size=mbs,
                               unit_dim=self.unit_dim[layer], num_heads=self.num_heads[layer], recorded=recorded,
                               what=f"FairnessAudit {self.name!r} (the carriers of {layer!r})", **self.model_options(probe))
        imp, mean = eff.abs().mean(0), eff.mean(0)
        total = float(imp.sum())
        top_values, top_units = largest_k(imp, min(self.top_k, imp.numel()))  # equal: lower unit id first
        result.vectors[f"carriers/{layer}"] = imp
        # NaN effects (a diverged model) give NaN shares, not a share of 0 that a monitor would take for a value
        share = lambda v: v / total if total > 0 else (0.0 if total == 0 else math.nan)  # noqa: E731
        result.scalars[f"{layer}/top1_carrier_share"] = share(float(top_values[0]))
        result.tables[f"top_carriers/{layer}"] = [
            {"unit": int(u), "carried": float(imp[u]), "mean_effect": float(mean[u]), "share": share(float(imp[u]))}
            for u in top_units.tolist()
        ]


def _logit_said(model: nn.Module, output: OutputSpec, task: str | None) -> bool:
    """Whether the model says its one output is a binary classifier's: each output its own sigmoid decision
    (:func:`~lightning_causal.audits.label_task.label_task` ``"multilabel"``: an ``nn.BCEWithLogitsLoss`` held, a
    ``Multilabel*`` metric, ``hparams.task``; or an output ``nn.Sigmoid``, whose values lie in [0, 1]), or
    ``hparams.task == "binary"``; not where its last watched pass computed its output with an ``nn.Sigmoid``
    (:func:`~lightning_causal.causal.engine.layer_calls.output_layer`)."""
    tasked = task_model(model, output)
    hparams = getattr(tasked, "hparams", None)
    said = task == "multilabel" or hasattr(hparams, "get") and hparams.get("task") == "binary"
    return said and output_layer(tasked) != ("Sigmoid",)  # a sigmoid's output is a probability, no logit
