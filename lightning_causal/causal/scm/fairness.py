"""Counterfactual fairness of a classifier, group fairness metrics, and the hidden units that carry
the unfairness (CARE).

``x_cf`` is the counterfactual of ``x`` with the sensitive attribute flipped, given as one
counterfactual object (:func:`~lightning_causal.causal.scm.attribute_flip.resolve_counterfactual`):
``scm.flip(column)`` (Kusner et al. 2017, level 3), the naive
:class:`~lightning_causal.causal.scm.attribute_flip.AttributeFlip`, a
:class:`~lightning_causal.causal.scm.token_swap.TokenSwap` (Garg et al. 2019), or a callable.
The model is called through :class:`~lightning_causal.causal.engine.forward.Forward` (``output=``,
``additional_forward_args=``).
"""

from __future__ import annotations

import contextlib
import functools
import math
import warnings
from collections.abc import Callable, Iterator, MutableMapping
from typing import Any, Literal, TypedDict

import torch
from torch import Tensor, nn

from lightning_causal.causal.effects.unit_rows import moving_units
from lightning_causal.causal.engine.ablation import padding_positions, replace_units
from lightning_causal.causal.engine.batching import map_rows, rows_alone, rows_per_pass
from lightning_causal.causal.engine.checks import check_float, check_int
from lightning_causal.causal.engine.folded_rows import check_site_units_named
from lightning_causal.causal.engine.forward import Forward, OutputSpec
from lightning_causal.causal.engine.input_sites import input_sites
from lightning_causal.causal.engine.interventions import (
    Intervention,
    capture,
    intervene,
    resolve_module,
)
from lightning_causal.causal.engine.layer_calls import layer_calls
from lightning_causal.causal.engine.live_values import close
from lightning_causal.causal.engine.noise import (
    GeneratorWatch,
    common_noise,
    warn_separate_noise,
)
from lightning_causal.causal.engine.sample_independence import check_samples_independent
from lightning_causal.causal.engine.stacked_rows import StackedRowsError, rows_alone_checked
from lightning_causal.causal.engine.state import (
    audit_mode,
    check_logits,
    check_one_logit,
    output_fix,
    resolve_target,
    rng_preserved,
)
from lightning_causal.causal.engine.suffix import suffix_module
from lightning_causal.causal.engine.token_ids import embedding_readers, float_codes_named
from lightning_causal.causal.engine.units import Layout, check_layout_options, resolve_layout
from lightning_causal.causal.engine.unmoved_rows import map_moving
from lightning_causal.causal.engine.user_frame import outside_package
from lightning_causal.causal.scm.attribute_flip import resolve_counterfactual, warn_one_hot_flip
from lightning_causal.causal.scm.counterfactual import Counterfactual
from lightning_causal.causal.scm.counterfactual_checks import (
    check_counterfactual_ids,
    counterfactual_readers,
    keep_padding,
    token_readers,
    warn_padding_from_features,
)
from lightning_causal.causal.structure.layer_activations import (
    SkippedModulesError,
    activations_alone,
)

__all__ = [
    "check_output_columns",
    "probabilities",
    "raw_outputs",
    "counterfactual_inputs",
    "COMPARES",
    "check_compare",
    "counterfactual_fairness_gap",
    "FairnessGap",
    "group_rates",
    "demographic_parity_difference",
    "equalized_odds_difference",
    "carrier_unit_effects",
]


def check_output_columns(outputs: object) -> None:
    """Refuse model outputs other than ``[N]`` or ``[N, C]``, the columns the fairness measures compare; of more
    dimensions (a language model's per-step logits ``[N, T, V]``), naming ``output=`` and what to explain
    (:func:`~lightning_causal.causal.engine.state.output_fix`), as the effect estimators do.

    Args:
        outputs: what the model returned, read through ``output=`` where one is given: any value.

    Examples:
        >>> check_output_columns(torch.zeros(4, 6, 10))  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        ValueError: Expected model outputs [N] or [N, C] but got torch.Size([4, 6, 10]): pass `output=` a callable ...
    """
    if not isinstance(outputs, Tensor) or outputs.dim() not in (1, 2):
        way = f": {output_fix(outputs)}" if isinstance(outputs, Tensor) and outputs.dim() > 2 else ""
        raise ValueError(f"Expected model outputs [N] or [N, C] but got {getattr(outputs, 'shape', type(outputs))}{way}")


def probabilities(outputs: Tensor, check: bool = True, model: nn.Module | None = None) -> Tensor:
    """Class probabilities ``[N, C]`` in float32: softmax of ``[N, C]`` logits, or for a single
    logit (``[N]`` / ``[N, 1]``) the two columns ``(1 − σ, σ)``.

    Args:
        outputs: model outputs: logits ``[N, C]``, or one logit ``[N]`` / ``[N, 1]``.
        check: whether the outputs are checked to be logits (``check_logits``, ``check_one_logit``); ``False`` for a
            regression's outputs, whose sigmoid gives the share above 0 (a regression's outputs in [0, 1] are no
            probability read as a logit).
        model: the model that gave ``outputs``, whose last layer (an ``nn.Sigmoid``) says one output on one side of
            0.5 is a probability (:func:`~lightning_causal.causal.engine.state.check_one_logit`).

    Examples:
        >>> probabilities(torch.tensor([0.0]))
        tensor([[0.5000, 0.5000]])
    """
    check_output_columns(outputs)
    out = outputs.float() if outputs.dtype in (torch.float16, torch.bfloat16) else outputs
    if out.dim() == 1 or out.shape[1] == 1:
        p = torch.sigmoid((check_one_logit(out, "the counterfactual fairness measures", model) if check else out).reshape(-1))
        return torch.stack([1 - p, p], 1)
    return (check_logits(out, "the counterfactual fairness measures") if check else out).softmax(dim=1)


def raw_outputs(outputs: Tensor) -> Tensor:
    """The model's outputs as columns ``[N, C]`` (one output ``[N]`` as ``[N, 1]``; half precision read in float32): what
    ``compare="output"`` compares, in the outputs' own units (a regressor's prediction), where :func:`probabilities`
    gives class probabilities.

    Args:
        outputs: model outputs ``[N]`` or ``[N, C]``.

    Examples:
        >>> raw_outputs(torch.tensor([10.0, 13.0]))
        tensor([[10.],
                [13.]])
    """
    check_output_columns(outputs)
    out = outputs.float() if outputs.dtype in (torch.float16, torch.bfloat16) else outputs
    return out.reshape(-1, 1) if out.dim() == 1 else out


#: what ``compare=`` of :func:`counterfactual_fairness_gap` and ``FairnessAudit`` takes
COMPARES = ("probability", "output")


def check_compare(compare: object) -> str:
    """``compare`` checked against :data:`COMPARES`, naming the parameter, the value and the choices.

    Args:
        compare: ``"probability"`` (class probabilities) or ``"output"`` (the raw output, in its own units).
    """
    if compare not in COMPARES:
        raise ValueError(f"Expected argument `compare` to be one of {COMPARES} (class probabilities, or the raw output of "
                         f"a regressor in its own units) but got {compare!r:.60}")
    return compare  # type: ignore[return-value]


#: what :func:`_classes` says of a model of one output (the gap's ``compared`` reads it)
ONE_OUTPUT = "the model has one output: the classes 0 and 1 of its sigmoid"


def target_classes(p: Tensor, classes: str, raw: bool) -> str:
    """What a refused ``target`` is checked against, for its message: the raw outputs' count with ``compare="output"``
    (``raw``), else ``classes`` (:func:`_classes`).

    Args:
        p: the outputs compared ``[N, C]``.
        classes: what the model's outputs are as classes (:func:`_classes`).
        raw: ``compare="output"``: the raw outputs are compared.
    """
    return f"the model returns {p.shape[1]} output(s)" if raw else classes


def _classes(outputs: Tensor) -> str:
    """What the classes of :func:`probabilities` are, for a message about ``target``, from the model's ``outputs``
    (not their probabilities, whose two columns one output's sigmoid gives too)."""
    if outputs.dim() == 1 or outputs.shape[1] == 1:
        return ONE_OUTPUT
    return f"the model returns {outputs.shape[1]} outputs"


def one_value_per_sample(x: Tensor, name: str) -> str:
    """The refusal of inputs of one dimension: the counterfactuals and group metrics act on columns, ``[N, D, ...]``.
    Such a tensor is one sample without its batch dimension, or one value per sample ``[N]`` (a sensitive id column
    given to the model as an input of its own); the way from each.

    Args:
        x: the refused inputs, of one dimension.
        name: the caller's parameter, for the message.

    Examples:
        >>> one_value_per_sample(torch.tensor([0, 1, 1]), "x").split(", but")[0]
        'Expected argument `x` to hold columns, [N, D, ...]'
    """
    return (f"Expected argument `{name}` to hold columns, [N, D, ...], but got {tuple(x.shape)}, one dimension: one "
            f"sample without its batch dimension is {name}[None]; one value per sample (an id column given as an input "
            f"of its own, a user's gender id [N]) is {name}[:, None], [N, 1], for a model that reads its column "
            f"({name}[:, 0]; a wrapper forward(self, g, *rest): return self.model(g[:, 0], *rest)), where "
            f"`AttributeFlip(0)` flips a 0/1 id and the groups are its values")


def _check_x(x: object) -> None:
    if isinstance(x, Tensor) and x.dim() == 1 and x.shape[0] > 0:
        raise ValueError(one_value_per_sample(x, "x"))
    if not isinstance(x, Tensor) or x.dim() < 2 or x.shape[0] == 0:
        raise ValueError(f"Expected argument `x` to be a tensor [N, ...] with N >= 1 but got {getattr(x, 'shape', type(x))}")


def counterfactual_inputs(counterfactual: Counterfactual, x: Tensor, padding: Tensor | None = None) -> Tensor:
    """``x_cf`` for ``x`` (no gradient), checked to have ``x``'s shape and dtype.

    Args:
        counterfactual: the counterfactual object.
        x: factual inputs ``[N, ...]``.
        padding: positions the model is told to ignore (``True`` where the attention mask is 0;
            :func:`~lightning_causal.causal.engine.ablation.padding_positions`), broadcastable to
            ``x``, or ``None``. ``x_cf`` runs with ``x``'s attention mask, so a counterfactual must
            leave these positions as they are: a per-position one (a
            :class:`~lightning_causal.causal.scm.token_swap.TokenSwap`) keeps them (only the real
            tokens are swapped); any other that changes one is refused. ``None``: a per-position one that
            changes positions of ``[N, T, F]`` whose features are all 0 is warned about (padding read from the
            features is not kept: :func:`~lightning_causal.causal.scm.counterfactual_checks.warn_padding_from_features`).

    Raises:
        ValueError: ``x_cf`` of another shape, or a counterfactual that writes into padded positions
            (e.g. a callable that replaces a term by one of more word pieces and shifts the sentence).
    """
    _check_x(x)
    with torch.no_grad():
        x_cf = counterfactual(x)
    if not isinstance(x_cf, Tensor) or x_cf.shape != x.shape:
        raise ValueError(f"Expected the counterfactual of `x` {list(x.shape)} to have the same shape but got {getattr(x_cf, 'shape', type(x_cf))}")
    x_cf = x_cf if x_cf.dtype == x.dtype else x_cf.to(x.dtype)
    if padding is None:  # a per-position flip's padding kept only from a mask: none known, all-zero positions warned
        warn_padding_from_features(counterfactual, x, x_cf)
        return x_cf
    return keep_padding(counterfactual, x, x_cf, padding)


def _probabilities(forward: Forward, x: Tensor, rows: Tensor, per_pass: int, classes: list[str] | None = None,
                   read: Any = probabilities) -> Tensor:
    """``p(x)`` ``[M, C]`` for inputs whose row ``r`` belongs to sample ``rows[r]``, ``per_pass`` rows a pass;
    ``classes`` (a list) gets what the model's outputs are (:func:`_classes` of each pass's output, before the
    sigmoid's two columns hide a single output); ``read``: what of the outputs is kept (:func:`raw_outputs` for
    ``compare="output"``)."""

    def one_pass(i: Tensor) -> Tensor:
        out = forward(x[i], rows=rows[i])
        p = read(out)
        if classes is not None:
            classes.append(_classes(out))
        return p

    return map_rows(x.shape[0], per_pass, one_pass, x.device)


def _keeping(read: Callable[[Tensor], Tensor], kept: list[Tensor]) -> Callable[[Tensor], Tensor]:
    """``read``, appending the raw outputs (:func:`raw_outputs`) of each pass it reads to ``kept``."""

    def keeping(out: Tensor) -> Tensor:
        if not rows_alone():  # the stacked-rows check's rows run alone are not the pass's: not kept
            kept.append(raw_outputs(out).detach())
        return read(out)
    return keeping


class FairnessGap(TypedDict):
    """What :func:`counterfactual_fairness_gap` returns: a dict whose keys type checkers know."""

    mean_abs: float  #: the gap: mean |Δ| over the samples the counterfactual changes
    max_abs: float  #: max |Δ|
    mean: float  #: mean signed Δ over the changed samples
    flip_rate: float  #: share of the changed samples whose predicted class flips (NaN with ``compare="output"``)
    changed: float  #: share of the samples the counterfactual changes
    delta: Tensor  #: Δ per sample ``[N]``
    compared: str  #: what Δ is the change of, in words (a class probability, one output's sigmoid, the raw output)


class _ProbabilityCall:
    """``forward``'s class probabilities (:func:`probabilities`), called as a :class:`Forward` is, for
    :func:`~lightning_causal.causal.engine.sample_independence.check_samples_independent` against the factual pass's
    ``p``; its ``args``, the Forward's, let a refusal name a forward argument gathered by row (an in-context learner's
    context set of as many rows as the queries, not passed with ``mark_whole``)."""

    def __init__(self, forward: Forward, raw: bool = False, samples: Tensor | None = None) -> None:
        self.forward, self.model, self.raw, self.args = forward, forward.model, raw, forward.args
        self.samples = samples  # row r of the inputs called is probe sample samples[r] (forward arguments follow it)

    def __call__(self, *xs: Tensor, rows: Tensor | None = None) -> Tensor:
        if self.samples is not None and rows is not None:
            rows = self.samples[rows.to(self.samples.device)]
        out = self.forward(*xs, rows=rows)
        if self.raw:
            return raw_outputs(out)
        if out.dim() == 2 and out.shape[1] > 1:  # logits, as the factual pass checked: two rows alone may look like
            return (out.float() if out.dtype in (torch.float16, torch.bfloat16) else out).softmax(dim=1)  # probabilities
        return probabilities(out)


def _counterfactual_probabilities(
    model: nn.Module,
    x: Tensor,
    counterfactuals: list[Counterfactual],
    *,
    max_batch_size: int | None = None,
    output: OutputSpec = None,
    additional_forward_args: Any = None,
    record: MutableMapping[str, tuple[Tensor, Tensor] | None] | None = None,
    raw: bool = False,
    factual_outputs: list[Tensor] | None = None,
    what: str = "counterfactual_fairness_gap",
) -> tuple[Tensor, Tensor, Tensor, str]:
    """The model's class probabilities on ``x`` and on each counterfactual of it, the factual pass run once:
    ``(p [N, C], p_cf [W, N, C], changed [W, N], classes)``, ``changed`` the rows each counterfactual changes (the
    others are not run: their ``p_cf`` is ``p``), ``classes`` what the model's outputs are, for a refused ``target``
    (:func:`_classes` of its output: one output's sigmoid gives ``p`` two columns too). All changed rows of all
    counterfactuals share the passes (``max_batch_size`` rows each, else as many as one trial pass measures;
    forward arguments follow their rows); a model that draws noise draws the same for a sample in every pass (common random numbers). Eval
    mode without gradients, as :func:`counterfactual_fairness_gap` (W = 1),
    :func:`~lightning_causal.causal.scm.intersections.world_gaps` (a world per intersection) and
    :class:`~lightning_causal.audits.fairness.FairnessAudit` (its flip and worlds in one call; ``p`` also
    gives its groups' decisions) use it.

    Args:
        model: classifier; ``output`` selects its logits.
        x: factual inputs ``[N, ...]``.
        counterfactuals: resolved counterfactual objects (one or more).
        max_batch_size: rows per forward pass.
        output: which tensor of the model's return value holds the logits.
        additional_forward_args: extra forward arguments (an attention mask travels with its samples).
        record: layers (keys: module names or ``"<module>:input"``) whose activations these passes record, each
            set to ``(h [N, ...], h_cf [N, ...])``, on ``x`` and on the first counterfactual (``h``'s rows where it
            changes none), for :func:`_carrier_effects`, which then runs no pass of its own; left ``None`` where
            the passes cannot give them (a model that draws noise, a layer whose output is not ``[N, ...]``, a
            module run more than once a pass).
        raw: the raw outputs (:func:`raw_outputs`, ``compare="output"``) in place of the probabilities.
        factual_outputs: a list that gets the factual pass's raw outputs (:func:`raw_outputs`, one tensor a pass), which the
            probabilities hide (``FairnessAudit``'s check that they are logits).
        what: the estimator the user called, as the stacked-rows refusal names it.

    The counterfactual rows stacked in a pass are checked against rows run alone
    (:func:`~lightning_causal.causal.engine.stacked_rows.rows_alone_checked`, as the other estimators' intervened rows:
    a few rows alone a pass), and so are the factual pass's samples (``rows="samples"``: the probe check's pairs of
    samples run together took the batch's branch with it, and the worlds' deltas were that branch's, silently), beside
    :func:`~lightning_causal.causal.engine.sample_independence.check_samples_independent`, whose words come first where
    it sees the cause (a refused factual pass runs once more for it) and whose warning the block's then silences: a model branching on a
    statistic of its batch that the probe's check does not see (its batch's mean of a column the counterfactual leaves
    as it is) is refused naming ``max_batch_size=1``, with which every factual and counterfactual row runs alone and
    gives each sample's own gap; the probe check then runs (``one_row=True``) against a few samples stacked in one pass
    (:func:`_check_alone_stacked`), so that a sample one pass alone erases (``h - h.mean(0)``) is refused there too.
    """
    n = x.shape[0]
    forward = Forward(model, output=output, additional_forward_args=additional_forward_args, num_samples=n)
    read = raw_outputs if raw else functools.partial(probabilities, model=forward.model)
    padding = padding_positions(x, additional_forward_args, model=forward.model)
    x_cf = torch.stack([counterfactual_inputs(cf, x, padding) for cf in counterfactuals])  # [W, N, ...]
    changed = (x_cf != x).reshape(len(counterfactuals), n, -1).any(2)
    world, rows = changed.nonzero(as_tuple=True)
    # the layers each pass calls: a probability of one side of 0.5 told by call order (check_one_logit)
    with audit_mode(forward.model), layer_calls():
        if rows.numel():  # token ids an embedding cannot look up fail here, naming the counterfactual
            readers = token_readers(forward, x)
            for w, cf in enumerate(counterfactuals):
                check_counterfactual_ids(cf, x_cf[w][changed[w]], readers)
        per_pass = rows_per_pass(forward.model, (x,), max_batch_size, forward=forward)  # one trial pass serves all
        try:  # the factual samples stacked are checked against rows alone too; the block's warning, at its end, after
            with rows_alone_checked(what, model=forward.model, rows="samples"):  # the probe check's, which names more
                with GeneratorWatch() as clean_pass:  # whether the model draws from a global generator: no pass of its own
                    with _recording(forward.model, record) as (factual, _):
                        seen: list[str] = []
                        p = _probabilities(forward, x, torch.arange(n, device=x.device), per_pass, seen,
                                           read if factual_outputs is None else _keeping(read, factual_outputs))
                classes = seen[0]  # x holds a row (_check_x, Probe): at least one pass ran
                if not clean_pass.moved and per_pass > 1:  # the counterfactual rows run in passes of their own: two
                    # samples run alone must give their probabilities in the factual pass (one pass of 2 rows)
                    check_samples_independent(_ProbabilityCall(forward, raw), (x,), p, "A counterfactual fairness gap")  # type: ignore[arg-type]
                elif not clean_pass.moved and n > 1:  # every sample ran alone: checked against a few of them stacked
                    _check_alone_stacked(forward, x, "A counterfactual fairness gap")
        except StackedRowsError:  # the probe check's words first, where it sees the cause (on the pass run again)
            if per_pass > 1:
                with rng_preserved():
                    again = _probabilities(forward, x, torch.arange(n, device=x.device), per_pass, [], read)
                    check_samples_independent(_ProbabilityCall(forward, raw), (x,), again, "A counterfactual fairness gap")  # type: ignore[arg-type]
            raise
        noise = common_noise(forward, forward.model, (x,), per_pass, drew=clean_pass.moved)
        if noise is not None:  # a sample and its counterfactuals draw one noise
            p = noise.clean(lambda s: read(forward(x[s], rows=s)), x.device)
            p_cf = noise.rows(len(counterfactuals), lambda b, s: read(forward(x_cf[b][s], rows=s)), x.device)
            return p, torch.where(changed.unsqueeze(2), p_cf, p), changed, classes
        p_cf = p.expand(len(counterfactuals), *p.shape).clone()
        # the flip's changed rows come first; the worlds' rows after them are counted, not copied
        with _recording(forward.model, record if rows.numel() else None, first=int(changed[0].sum())) as flipped:
            if rows.numel():  # a code column cast inside the model set to no code: named, not nn.Embedding's IndexError
                with float_codes_named((x,), "counterfactual", "the counterfactual inputs"), \
                        rows_alone_checked(what, model=forward.model):  # a pass's rows against rows alone
                    p_cf[world, rows] = _probabilities(forward, x_cf[world, rows], rows, per_pass, read=read)
    if record is not None:
        _recorded(record, factual, flipped, changed[0], int(rows.numel()))
    return p, p_cf, changed, classes


def _check_alone_stacked(forward: Forward, x: Tensor, what: str) -> None:
    """The probe check where every sample runs alone (``max_batch_size=1``, its way out):
    :func:`~lightning_causal.causal.engine.sample_independence.check_samples_independent` with ``one_row=True`` of probe
    samples 0, 1, ``n // 2`` and ``n - 1`` against one pass of them stacked (their rows alone against rows alone told
    nothing: a sample that one pass alone erases, ``h - h.mean(0)``, gave a gap of 0.0 in silence). A forward depending
    on its batch passes (each sample's own outputs, run alone); a sample erased alone and the other causes are refused,
    naming the probe's samples. The raw outputs are compared, as ``input_effects``' check does (one rule): an erased
    sample's probabilities may lie within the check's 1% of their scale where its logits do not (3 samples). One pass
    of at most 4 rows, then the check's."""
    n = x.shape[0]
    samples = torch.tensor(sorted({0, 1, n // 2, n - 1}), device=x.device)
    call = _ProbabilityCall(forward, True, samples)
    check_samples_independent(call, (x[samples],), call(x[samples], rows=torch.arange(samples.numel(), device=x.device)),  # type: ignore[arg-type]
                              what, sample_ids=samples, batch=f"one pass of probe samples {samples.tolist()}",
                              one_row=True)


@contextlib.contextmanager
def _recording(model: nn.Module, record: MutableMapping[str, Any] | None, first: int | None = None,
               ) -> Iterator[tuple[dict[str, list[Tensor]], dict[str, int]]]:
    """The outputs of the sites of ``record`` at every call during the block, in order (the chunks of a pass), and how
    many rows each site returned; with ``first``, only the first ``first`` rows over the calls are copied (the flip's
    pass also runs the worlds' rows, which no carrier reads). Every call is kept, so a site run more than once a pass
    gets no warning here (:func:`_recorded` then leaves it to the carrier's own passes). The hooks are removed on
    leaving the block, also on an exception."""
    chunks: dict[str, list[Tensor]] = {name: [] for name in record or ()}
    seen = dict.fromkeys(chunks, 0)
    if not chunks:
        yield chunks, seen
        return

    def keep(name: str, value: Tensor) -> Tensor:
        if rows_alone():  # the stacked-rows check's rows run apart from their pass: not the pass's rows
            return value
        start, seen[name] = seen[name], seen[name] + (value.shape[0] if value.dim() else 1)
        chunks[name].append((value[:max(0, first - start)] if first is not None and value.dim() else value).clone())
        return chunks[name][-1]

    with capture(model, list(chunks), keep=keep, warn_repeats=False):  # every call kept: _recorded falls back on repeats
        yield chunks, seen


def _recorded(record: MutableMapping[str, tuple[Tensor, Tensor] | None], factual: dict[str, list[Tensor]],
              flipped: tuple[dict[str, list[Tensor]], dict[str, int]], changed: Tensor, total: int) -> None:
    """``record[name]`` = ``(h, h_cf)`` from the chunks of the factual pass and of the flip's pass (``flipped``: its
    chunks, the first counterfactual's changed rows only, and the rows each site returned, ``total`` where every
    chunk ran once), ``None`` where they do not make ``[N, ...]`` and ``total`` rows (a module run more than once a
    pass, a chunk run again after running out of memory)."""
    (chunks, seen), n, k = flipped, changed.shape[0], int(changed.sum())
    for name in record:
        h = torch.cat(factual[name]) if factual.get(name) else None
        if h is None or h.dim() < 2 or h.shape[0] != n or seen.get(name, 0) != total:
            record[name] = None
            continue
        moved = torch.cat(chunks[name]) if chunks.get(name) else h[:0]
        if moved.shape != (k, *h.shape[1:]):
            record[name] = None
            continue
        h_cf = h.clone()
        h_cf[changed.to(h.device)] = moved
        record[name] = (h, h_cf)


def counterfactual_fairness_gap(
    model: nn.Module,
    x: Tensor,
    counterfactual: object,
    sensitive: str | int | None = None,
    *,
    target: int | Tensor | None = None,
    max_batch_size: int | None = None,
    output: OutputSpec = None,
    additional_forward_args: Any = None,
    warn_one_hot: bool = True,
    compare: Literal["probability", "output"] = "probability",
) -> FairnessGap:
    r"""How much the model's decision would change had the sensitive attribute been different.

    .. math:: Δ(x) = p_t(x_{cf}) − p_t(x), \quad \text{gap} = E_{x: x_{cf} ≠ x}|Δ(x)|, \; \max|Δ|, \;
              \text{flip rate} = P_{x: x_{cf} ≠ x}[\arg\max f(x) ≠ \arg\max f(x_{cf})]

    ``p_t`` is the softmax probability of class ``t`` of logits ``[N, C]``, and for one output (``[N]``, ``[N, 1]``)
    the sigmoid of that output, read as a binary classifier's logit: for a regressor, whose output is no logit, that
    is no measure of its change (an output moved from 10 to 13 moves its sigmoid by 4e-5). ``compare="output"``
    compares the raw output instead, in its own units:

    .. math:: Δ(x) = f_t(x_{cf}) − f_t(x), \quad \text{gap} = E_{x: x_{cf} ≠ x}|f_t(x_{cf}) − f_t(x)|

    (a linear regressor ``f(x) = w·x + b`` whose attribute moves from ``a`` to ``a'``: gap ``= |w_a| · |a − a'|``), with
    ``t`` the output column (``target``; ``None`` for a model of one output) and no flip rate (NaN: a regression
    makes no decision). The result's ``compared`` says in words which of these ``Δ`` is.

    A predictor is counterfactually fair (Kusner et al. 2017) when Δ = 0 for every x. Means are
    over the samples that the counterfactual changes (every row for a flipped column; for a
    :class:`~lightning_causal.causal.scm.token_swap.TokenSwap`, the sentences with identity terms:
    Garg et al. 2019's counterfactual token fairness gap); unchanged samples have Δ = 0 exactly and
    are not run. With an attention mask among the forward arguments, the counterfactual runs with
    ``x``'s mask: a token swap changes the real tokens only (a sentence whose identity terms lie only
    in padding is unchanged), and a counterfactual that writes into padded positions is refused
    (:func:`counterfactual_inputs`). Eval mode without gradients; training flags are restored. The changed rows run in
    passes of their own, so a model whose output for a sample depends on the other samples of its batch (scores centred
    over the batch, attention across its rows) is refused (``ValueError``): flipping every sample's attribute would move
    the batch with it, and the gap would not be that of one sample's counterfactual.

    Args:
        model: classifier; ``output`` selects its logits ``[N, C]`` (or a single logit ``[N]``/``[N, 1]``).
        x: factual inputs ``[N, ...]`` (tabular rows, token ids).
        counterfactual: ``scm.flip(column)``, an ``AttributeFlip``, a ``TokenSwap``, a callable
            ``x -> x_cf``, or an ``AdditiveNoiseSCM`` with ``sensitive``
            (:func:`~lightning_causal.causal.scm.attribute_flip.resolve_counterfactual`).
        sensitive: the column to flip for an SCM; optional otherwise.
        target: class whose probability is compared; ``None`` = the class predicted on ``x``.
        max_batch_size: rows per forward pass.
        output: which tensor of the model's return value holds the logits (see
            :class:`~lightning_causal.causal.engine.forward.Forward`).
        additional_forward_args: extra forward arguments (see
            :class:`~lightning_causal.causal.engine.forward.Forward`; an attention mask travels
            with its samples to both ``x`` and ``x_cf``).
        warn_one_hot: warn (``UserWarning``) when the counterfactual flips one column of a one-hot
            block alone (:func:`~lightning_causal.causal.scm.attribute_flip.warn_one_hot_flip`):
            the gap is then measured on rows no encoder produces. ``False`` where the caller has
            checked (``FairnessAudit`` warns in its own name).
        compare: ``"probability"`` (the default: class probabilities, a classifier's) or ``"output"`` (the raw
            output, a regressor's, in its own units; a model of several outputs needs ``target=``, the column).

    Returns:
        a :class:`FairnessGap` (a dict): ``{"mean_abs", "max_abs", "mean", "flip_rate", "changed"}`` (floats;
        ``changed`` = share of samples the counterfactual changes), ``"delta"`` (Tensor ``[N]``) and ``"compared"``
        (what ``Δ`` is the change of, in words).

    Examples:
        >>> from lightning_causal.causal.scm.attribute_flip import AttributeFlip
        >>> model = nn.Linear(2, 2, bias=False)
        >>> _ = model.weight.data.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0]]))
        >>> x = torch.tensor([[0.0, 3.0], [1.0, 3.0]])
        >>> g = counterfactual_fairness_gap(model, x, AttributeFlip(0), target=1)
        >>> round(g["mean_abs"], 4), g["flip_rate"]
        (0.2311, 1.0)
        >>> reg = nn.Linear(2, 1, bias=False)  # a regressor: f(x) = 3 x_0 + x_1
        >>> _ = reg.weight.data.copy_(torch.tensor([[3.0, 1.0]]))
        >>> g = counterfactual_fairness_gap(reg, x, AttributeFlip(0), compare="output")
        >>> g["mean_abs"], g["compared"]
        (3.0, "the model's output, in its own units")
    """
    compare = check_compare(compare)
    cf = resolve_counterfactual(counterfactual, sensitive)
    _check_x(x)
    if warn_one_hot:
        warn_one_hot_flip("counterfactual_fairness_gap", cf, x, "the gap compares the model's outputs on those rows")
    p, p_cfs, changes, classes = _counterfactual_probabilities(model, x, [cf], max_batch_size=max_batch_size, output=output,
                                                               additional_forward_args=additional_forward_args,
                                                               raw=compare == "output")
    return _fairness_gap(p, p_cfs[0], changes[0], target, classes, compare)


def _fairness_gap(p: Tensor, p_cf: Tensor, changed: Tensor, target: int | Tensor | None, classes: str,
                  compare: str = "probability") -> FairnessGap:
    """:func:`counterfactual_fairness_gap` from the probabilities on ``x`` and ``x_cf`` ``[N, C]`` (the raw outputs with
    ``compare="output"``), the rows the counterfactual changes ``[N]`` and what the model's outputs are (as
    :func:`_counterfactual_probabilities` gives them: ``p`` alone cannot tell one output's sigmoid from two outputs)."""
    idx = changed.nonzero().squeeze(1)
    raw = compare == "output"
    if raw and target is None and p.shape[1] > 1:
        raise ValueError(f"Expected argument `target` to name the output column compared (compare='output' on a model of "
                         f"{p.shape[1]} outputs) but got None: the largest of a regressor's outputs is no decision")
    t = resolve_target(p, target, classes=target_classes(p, classes, raw))
    delta = p_cf.gather(1, t.view(-1, 1)).squeeze(1) - p.gather(1, t.view(-1, 1)).squeeze(1)
    flips = (p.argmax(1) != p_cf.argmax(1)).double()  # shares as exact as a float holds them: 21/50 is 0.42, not 0.41999998
    some = idx.numel() > 0
    compared = ("the model's output, in its own units" if raw else
                "the sigmoid of the model's one output, read as a binary classifier's logit" if classes == ONE_OUTPUT
                else "the softmax probability of the target class")
    return {
        "mean_abs": float(delta[idx].abs().mean()) if some else 0.0,
        "max_abs": float(delta.abs().max()),
        "mean": float(delta[idx].mean()) if some else 0.0,
        "flip_rate": math.nan if raw else float(flips[idx].mean()) if some else 0.0,
        "changed": float(changed.double().mean()),
        "delta": delta,
        "compared": compared,
    }


def _as_decisions(preds: Tensor, threshold: float, name: str = "preds") -> Tensor:
    """0/1 decisions from 0/1 integers (or booleans) or probabilities in ``[0, 1]`` (``labels``:
    0/1 or smoothed, read at 0.5)."""
    if not isinstance(preds, Tensor) or preds.dim() != 1:
        raise ValueError(f"Expected argument `{name}` to be a 1-d tensor but got {getattr(preds, 'shape', type(preds))}")
    if preds.is_floating_point():
        if not bool(preds.isfinite().all()):
            raise ValueError(f"Expected argument `{name}` to be finite probabilities in [0, 1] but it holds "
                             f"{int((~preds.isfinite()).sum())} NaN or infinite values (a NaN compares as a negative)")
        if ((preds < 0) | (preds > 1)).any():
            raise ValueError(f"Expected float `{name}` to be probabilities in [0, 1] but got values from {float(preds.min()):.4g} "
                             f"to {float(preds.max()):.4g}; pass {'decisions' if name == 'preds' else 'labels'} (0/1) or probabilities"
                             f"{' (e.g. logits.sigmoid())' if name == 'preds' else ''}")
        return (preds >= threshold).long()
    if ((preds != 0) & (preds != 1)).any():
        raise ValueError(f"Expected integer `{name}` to be 0/1 {'decisions' if name == 'preds' else 'labels'} but got values "
                         f"{preds.unique().tolist()[:6]}")
    return preds.long()


def _as_groups(groups: Tensor, n: int) -> tuple[Tensor, Tensor]:
    if not isinstance(groups, Tensor) or groups.shape != (n,):
        raise ValueError(f"Expected argument `groups` to be a tensor [{n}] but got {getattr(groups, 'shape', type(groups))}")
    groups = groups.cpu()
    if groups.is_floating_point() and not bool((groups == groups.round()).all()):
        raise ValueError("Expected argument `groups` to hold integral group ids (e.g. the 0/1 sensitive column)")
    ids, inverse = groups.round().long().unique(return_inverse=True)
    return ids, inverse


def _rate(hits: Tensor, inverse: Tensor, mask: Tensor, k: int) -> Tensor:
    num = torch.zeros(k, dtype=torch.float64).index_add_(0, inverse, (hits & mask).double())
    den = torch.zeros(k, dtype=torch.float64).index_add_(0, inverse, mask.double())
    return torch.where(den > 0, num / den.clamp_min(1), torch.full_like(num, float("nan")))


def group_rates(preds: Tensor, groups: Tensor, labels: Tensor | None = None, threshold: float = 0.5) -> dict[str, Tensor]:
    """Per-group rates of positive decisions: ``positive_rate`` P(ŷ=1|g), and with ``labels``
    ``tpr`` P(ŷ=1|y=1,g), ``fpr`` P(ŷ=1|y=0,g), ``accuracy``; NaN where a group has no such rows.

    Args:
        preds: ``[N]`` decisions: 0/1 integers, or probabilities in ``[0, 1]`` thresholded at
            ``threshold``.
        groups: ``[N]`` integral group ids (e.g. the 0/1 sensitive column).
        labels: ``[N]`` 0/1 labels (integers or booleans; floats in ``[0, 1]``, e.g. smoothed,
            are positive from 0.5) for ``tpr``, ``fpr`` and ``accuracy``; ``None``: ``positive_rate`` only.
        threshold: probabilities ``>= threshold`` are positive decisions (float ``preds`` only; a
            number in ``[0, 1]``).

    Returns:
        ``{"groups": ids [G], "count": [G], "positive_rate": [G], ...}`` (float64 rates).

    Examples:
        >>> r = group_rates(torch.tensor([1, 0, 1, 1]), torch.tensor([0, 0, 1, 1]))
        >>> r["positive_rate"].tolist()
        [0.5, 1.0]
    """
    check_float("threshold", threshold, minimum=0.0, maximum=1.0)
    d = _as_decisions(preds, threshold).cpu().bool()
    ids, inv = _as_groups(groups, d.shape[0])
    k, every = ids.numel(), torch.ones_like(d)
    out = {"groups": ids, "count": torch.bincount(inv, minlength=k), "positive_rate": _rate(d, inv, every, k)}
    if labels is not None:
        y = _as_decisions(labels, 0.5, "labels").cpu().bool()
        if y.shape != d.shape:
            raise ValueError(f"Expected argument `labels` to have shape {list(d.shape)} but got {list(y.shape)}")
        out.update(tpr=_rate(d, inv, y, k), fpr=_rate(d, inv, ~y, k), accuracy=_rate(d == y, inv, every, k))
    return out


def _spread(rates: Tensor) -> float:
    ok = rates[~rates.isnan()]
    return float(ok.max() - ok.min()) if ok.numel() >= 2 else float("nan")


def _small_groups(what: str, rates: dict[str, Tensor], min_group_size: int) -> Tensor:
    """Which groups of :func:`group_rates`' ``rates`` hold fewer than ``min_group_size`` rows (``[G]`` bool), which
    ``what`` leaves out of its max and min over groups: warned of, naming them by id with their rows."""
    small = rates["count"] < min_group_size
    if not bool(small.any()):
        return small
    left = [f"{int(g)} ({int(c)} row{'s' if int(c) != 1 else ''})" for g, c in zip(rates["groups"][small], rates["count"][small])]
    kept = int((~small).sum())
    warnings.warn(
        f"{what} leaves out the group(s) {', '.join(left[:6])}{' ...' if len(left) > 6 else ''}: fewer than min_group_size="
        f"{min_group_size} rows; the max and min are over the other {kept} group(s)"
        f"{' (fewer than two: NaN)' if kept < 2 else ''}", UserWarning, stacklevel=outside_package())
    return small


def demographic_parity_difference(preds: Tensor, groups: Tensor, threshold: float = 0.5, *, min_group_size: int = 1) -> float:
    """``max_g P(ŷ=1|g) − min_g P(ŷ=1|g)`` (0 = demographic parity; fairlearn's definition), over the groups of at
    least ``min_group_size`` rows.

    Args:
        preds: ``[N]`` decisions: 0/1 integers, or probabilities in ``[0, 1]`` thresholded at
            ``threshold``.
        groups: ``[N]`` integral group ids (e.g. the 0/1 sensitive column).
        threshold: probabilities ``>= threshold`` are positive decisions (float ``preds`` only).
        min_group_size: groups of fewer rows are left out of the max and min, with a warning naming them (an
            integer >= 1; the default 1 compares every group): with many intersections a group of 2 rows, whose
            rate is 0, 0.5 or 1 by chance, would otherwise set the difference. NaN when fewer than two groups remain.

    Examples:
        >>> demographic_parity_difference(torch.tensor([1, 0, 1, 1]), torch.tensor([0, 0, 1, 1]))
        0.5
    """
    check_int("min_group_size", min_group_size, minimum=1)
    r = group_rates(preds, groups, threshold=threshold)
    small = _small_groups("demographic_parity_difference", r, min_group_size)
    return _spread(r["positive_rate"][~small])


def equalized_odds_difference(preds: Tensor, labels: Tensor, groups: Tensor, threshold: float = 0.5, *,
                              min_group_size: int = 1) -> float:
    """``max(spread of TPR, spread of FPR)`` over groups (Hardt et al. 2016; fairlearn's definition), the groups of at
    least ``min_group_size`` rows.

    A spread needs two groups with such rows: where fewer than two groups hold a positive label
    (a rare class), the TPR spread is undefined and the FPR spread is returned (and vice versa);
    NaN only when both are undefined.

    Args:
        preds: ``[N]`` decisions: 0/1 integers, or probabilities in ``[0, 1]`` thresholded at
            ``threshold``.
        labels: ``[N]`` 0/1 labels.
        groups: ``[N]`` integral group ids (e.g. the 0/1 sensitive column).
        threshold: probabilities ``>= threshold`` are positive decisions (float ``preds`` only).
        min_group_size: groups of fewer rows (all their rows, positives and negatives) are left out of both
            spreads, with a warning naming them (an integer >= 1; the default 1 compares every group).

    Examples:
        >>> y = torch.tensor([1, 0, 1, 0]); g = torch.tensor([0, 0, 1, 1])
        >>> equalized_odds_difference(torch.tensor([1, 0, 1, 1]), y, g)
        1.0
    """
    check_int("min_group_size", min_group_size, minimum=1)
    r = group_rates(preds, groups, labels, threshold)
    small = _small_groups("equalized_odds_difference", r, min_group_size)
    return worst_spread(_spread(r["tpr"][~small]), _spread(r["fpr"][~small]))


def worst_spread(*spreads: float) -> float:
    """The largest of the defined ``spreads`` (NaN: fewer than two groups had such rows), NaN if none
    is defined. ``max`` alone is not: ``max(nan, 0.5)`` is NaN but ``max(0.5, nan)`` is 0.5.

    Args:
        *spreads: the spreads (floats, NaN where undefined).

    Examples:
        >>> worst_spread(float("nan"), 0.5), worst_spread(0.5, float("nan"))
        (0.5, 0.5)
    """
    return max((s for s in spreads if not math.isnan(s)), default=float("nan"))


def repeated_carrier_error(layer: str, calls: int, inputs: str = "") -> ValueError:
    """The refusal of the carrier units of module ``layer``, which runs ``calls`` (> 1) times per forward pass: a
    carrier unit is set to its activation on the counterfactual input, one value per sample (the last call's, as
    :func:`~lightning_causal.causal.engine.intervention_hooks.capture` keeps), so every call (each stage of an ODE
    solver, each iteration of a weight-tied block) would be set to that one value, not each call to its own value of
    the counterfactual run: the rule :func:`~lightning_causal.causal.engine.unit_interventions.repeated_patch_error`
    gives ``Patch``.

    Where the counterfactual pass does not call it at all (``calls`` 0, a branch on the batch skipping it there), its
    counterfactual activation would be the factual one, every carrier exactly 0 while the output moves: refused too,
    in words of its own.

    Args:
        layer: the module's name.
        calls: its calls in the factual pass over the probe, or in the counterfactual one, or in the pass of one sample
            run alone (``max_batch_size=1``).
        inputs: where the factual pass called it once, ``" on the counterfactual inputs"`` or the sample run alone:
            its calls depend on the batch (a branch or a solver's step count read from it), and the counterfactual
            run's activation at the one factual call is none of its own.

    Examples:
        >>> print(repeated_carrier_error("f.net.1", 16))  # doctest: +ELLIPSIS
        Expected layer 'f.net.1' to run once per forward pass for its carrier units, but it runs 16 times (...
        >>> print(repeated_carrier_error("mid", 0, " on the counterfactual inputs"))  # doctest: +ELLIPSIS
        Expected layer 'mid' to run once per forward pass for its carrier units, but it does not run on the counterfactual inputs...
    """
    if calls == 0:
        return ValueError(
            f"Expected layer {layer!r} to run once per forward pass for its carrier units, but it does not run{inputs}, "
            "where it runs once on the factual ones (a branch on the batch, or on the attribute, that skips it): its "
            "counterfactual activation would be its factual one and every carrier exactly 0 while the output moves. Take "
            "the carriers of a layer every pass runs (one after the branches join), or measure the gap alone with "
            "counterfactual_fairness_gap")
    return ValueError(
        f"Expected layer {layer!r} to run once per forward pass for its carrier units, but it runs {calls} times"
        f"{inputs} (a shared layer, a weight-tied block, an RNN cell looped in forward, an ODE function at every solver "
        "stage): a carrier unit is set to its activation on the counterfactual input, one value per sample (the last "
        "call's), so every call would be set to that one value, not each call to its own value of the counterfactual "
        "run. Name one call with an nn.Identity applied to its output and take that module's carriers (a neural ODE's z(1); "
        "docs/your_model.md, 'Layers in functional code'), or rank the layer's units with unit_effects or "
        "UnitImportanceAudit, which set a unit at every call")


def _carriers_alone(forward: Forward, x: Tensor, layer: str, kinds: list[type], which: str) -> tuple[Tensor, Tensor]:
    """The output and ``layer``'s activations of ``x`` with each sample run alone (``max_batch_size=1``), its calls
    counted in each sample's pass (``kinds``: a hook appends at each call): a sample alone that runs it more than once
    (a branch on a batch statistic, whose probe passes ran it once) is refused, :func:`repeated_carrier_error`, as the
    probe's passes are (its last call's activation would be set at every call), and so is one that does not run it
    (a branch skipping it on that sample alone: its counterfactual activation would be its factual one)."""
    starts: list[int] = []
    try:
        out, acts = activations_alone(forward, (x,), [layer], before=lambda _k: starts.append(len(kinds)))
    except SkippedModulesError as err:  # in the carriers' words, not those of `layers=` (none here); random depth named
        branch = repeated_carrier_error(layer, 0, f" on {which}sample {int(err.rows.min())} run alone (max_batch_size=1)")
        raise ValueError(f"{branch}. Or the model draws random numbers in eval mode and skips {layer!r} at random "
                         "(stochastic depth that ignores self.training?): make its forward deterministic in eval "
                         "mode") from err
    calls = [end - start for start, end in zip(starts, [*starts[1:], len(kinds)])]
    if max(calls) > 1:
        row = max(range(len(calls)), key=calls.__getitem__)
        raise repeated_carrier_error(layer, calls[row], f" on {which}sample {row} run alone (max_batch_size=1), where the "
                                                        "probe's passes run it once")
    return out, acts[layer]


class _PatchRows(Intervention):
    """Row r of the module output gets unit ``units[r]`` from ``source[r]`` (set per chunk)."""

    def __init__(self, layout: Layout) -> None:
        super().__init__(None)
        self.rows: tuple[Tensor, Tensor] | None = None
        self.where = layout

    def __call__(self, output: Tensor) -> Tensor:
        units, source = self.rows  # type: ignore[misc]
        return replace_units(output, units, source.to(output.dtype), self.where.dim, unit_size=self.where.unit_size)


def carrier_unit_effects(
    model: nn.Module,
    x: Tensor,
    counterfactual: object,
    layer: str,
    *,
    sensitive: str | int | None = None,
    target: int | Tensor | None = None,
    max_batch_size: int | None = None,
    use_suffix: bool = True,
    output: OutputSpec = None,
    additional_forward_args: Any = None,
    unit_dim: int | None = None,
    num_heads: int | None = None,
) -> Tensor:
    r"""How much of the counterfactual change of the decision each unit of ``layer`` carries (CARE).

    .. math:: c_u(x) = p_t(x \mid do(h_u := h_u(x_{cf}))) − p_t(x)

    Unit u's activation from the counterfactual run is patched into the factual run; ``c_u``
    is the part of ``Δ(x) = p_t(x_cf) − p_t(x)`` that flows through u (for a layer every path
    crosses, patching all units gives Δ exactly). CARE (Sun et al. 2022) ranks such units as the
    carriers of the unfairness to repair. The ``N·U`` patched rows run batched through the network
    suffix (or full forward passes where the model cannot be split, or takes forward arguments), but
    for the rows of a unit whose counterfactual activation is its factual one, bit for bit (a ReLU unit
    at 0 on both, every unit of a sample the counterfactual leaves as it is), whose ``c_u`` is exactly
    0 (:func:`~lightning_causal.causal.effects.unit_rows.moving_units`; every row runs where the model draws
    noise). A layer that runs more than once a pass (an ODE function at every solver stage) is refused
    (:func:`repeated_carrier_error`): one counterfactual activation a sample cannot stand for each call's own.
    The patched rows stacked in one pass are checked against rows run alone
    (:func:`~lightning_causal.causal.engine.stacked_rows.rows_alone_checked`: a model whose output for a sample depends
    on its batch, a branch on the batch's mean, is refused naming ``max_batch_size=1``); with ``max_batch_size=1`` the
    factual and counterfactual samples run alone too, as the patched rows do, so that each sample's ``c_u`` is its own.
    Where it runs its own factual pass over the probe and the model draws no noise, two samples run alone must give
    their probabilities there (:func:`~lightning_causal.causal.engine.sample_independence.check_samples_independent`,
    as the gap's factual pass: a forward depending on its batch refused; with ``max_batch_size=1`` ``one_row=True`` on
    the raw outputs, as ``input_effects``', where a sample erased alone is still refused).

    Args:
        model: classifier.
        x: factual inputs ``[N, ...]``.
        counterfactual: as in :func:`counterfactual_fairness_gap` (``sensitive`` for an SCM).
        layer: module name whose output ``[N, U, ...]`` holds the units (dimension 1), or
            ``"<module>:input"`` (the module's first positional input).
        sensitive: the column to flip for an SCM, as in :func:`counterfactual_fairness_gap`.
        unit_dim: the dimension that indexes the units, as in
            :func:`~lightning_causal.causal.effects.unit_effects.unit_effects` (``unit_dim=-1``
            for the neurons of ``[N, T, D]`` layers; the default is refused there).
        num_heads: split the unit dimension into this many heads (a unit is a head), as in
            :func:`~lightning_causal.causal.effects.unit_effects.unit_effects`.
        target: class whose probability is compared; ``None`` = the class predicted on ``x``.
        max_batch_size: rows per forward pass.
        use_suffix: ``False`` forces full forward passes (same numbers).
        output: which tensor of the model's return value holds the logits (see
            :class:`~lightning_causal.causal.engine.forward.Forward`).
        additional_forward_args: extra forward arguments (see
            :class:`~lightning_causal.causal.engine.forward.Forward`).

    Returns:
        Tensor ``[N, U]``.

    Examples:
        >>> model = nn.Sequential(nn.Linear(2, 2), nn.ReLU(), nn.Linear(2, 1))
        >>> with torch.no_grad():
        ...     _ = model[0].weight.copy_(torch.eye(2)); _ = model[0].bias.zero_()
        ...     _ = model[2].weight.copy_(torch.tensor([[2.0, 0.0]])); _ = model[2].bias.zero_()
        >>> x = torch.tensor([[0.0, 1.0]])
        >>> carrier_unit_effects(model, x, lambda x: x.flip(1), "1", target=1)
        tensor([[0.3808, 0.0000]])
    """
    check_layout_options(unit_dim, num_heads)
    cf = resolve_counterfactual(counterfactual, sensitive)
    _check_x(x)
    with layer_calls():  # its probabilities checked by the layers its passes call
        return _carrier_effects(model, x, cf, layer, target=target, max_batch_size=max_batch_size, use_suffix=use_suffix,
                                output=output, additional_forward_args=additional_forward_args, unit_dim=unit_dim,
                                num_heads=num_heads)


def _carrier_effects(
    model: nn.Module,
    x: Tensor,
    cf: Counterfactual,
    layer: str,
    *,
    target: int | Tensor | None = None,
    max_batch_size: int | None = None,
    use_suffix: bool = True,
    output: OutputSpec = None,
    additional_forward_args: Any = None,
    unit_dim: int | None = None,
    num_heads: int | None = None,
    recorded: tuple[Tensor, Tensor, Tensor, str] | None = None,
    what: str = "carrier_unit_effects",
) -> Tensor:
    """:func:`carrier_unit_effects` of a resolved counterfactual ``cf``; ``recorded`` = ``(p, h, h_cf, classes)``, the
    class probabilities on ``x``, the layer's activations on ``x`` and ``x_cf`` and what the model's outputs are
    (:func:`_classes`, for a refused ``target``) from passes already run
    (:func:`_counterfactual_probabilities`' ``record``, as :class:`~lightning_causal.audits.fairness.FairnessAudit` runs
    them): then no factual or counterfactual pass of its own, only the one-sample pass that checks the site's units.
    The patched rows are checked against rows run alone from either entry point
    (:func:`~lightning_causal.causal.engine.stacked_rows.rows_alone_checked`, the refusal naming ``what``)."""
    n = x.shape[0]
    forward = Forward(model, output=output, additional_forward_args=additional_forward_args, num_samples=n)
    model = forward.model
    with input_sites(model, [layer]), audit_mode(model), rows_alone_checked(what, model=model):  # patched rows checked
        noisy, calls = False, 1  # recorded passes: no noise drawn, the layer run once a pass (_recorded's conditions)
        if recorded is None:  # recorded passes were run by _counterfactual_probabilities, which found no noise drawn
            noisy = warn_separate_noise(forward, (x,), "carrier_unit_effects")
        module = resolve_module(model, layer)
        kinds: list[type] = []
        probe = module.register_forward_hook(lambda _m, _i, o: kinds.append(type(o)))
        try:
            check_site_units_named(model, layer, lambda xi, r: forward(*xi, rows=r), (x,), unit_dim, num_heads,
                                   "Pass `unit_dim=-1` for its features (neurons), or `unit_dim=1` to patch positions.")
            if recorded is None:
                x_cf = counterfactual_inputs(cf, x, padding_positions(x, additional_forward_args, model=model))
                with capture(model, [layer], warn_repeats=False) as acts:  # a layer run again is refused below
                    with embedding_readers(model, (x,)) as readers:
                        before = len(kinds)
                        out = forward(x)
                        calls = len(kinds) - before  # the layer's calls in the factual pass over the probe
                        if calls > 1:  # one counterfactual activation a sample would be set at every call
                            raise repeated_carrier_error(layer, calls)
                    p0, classes = probabilities(out, model=model), _classes(out)
                    h = acts.get(layer)
                    check_counterfactual_ids(cf, x_cf, counterfactual_readers(readers, x))
                    before = len(kinds)
                    forward(x_cf)
                    if calls == 1 and len(kinds) - before != 1:  # once on x, again on x_cf (a branch on the batch): no one
                        # activation; not at all on x_cf: h_cf would be x's (capture keeps its last call), every c_u 0
                        raise repeated_carrier_error(layer, len(kinds) - before, " on the counterfactual inputs")
                    h_cf = acts.get(layer)
                if not noisy and n > 1:  # the probe check, as the gap's factual pass (the passes above mix the samples'
                    # batch); with max_batch_size=1 (each sample then alone) a sample erased alone is still refused
                    alone = max_batch_size == 1  # the raw outputs there, as _check_alone_stacked
                    check_samples_independent(_ProbabilityCall(forward, alone), (x,), raw_outputs(out) if alone else p0,  # type: ignore[arg-type]
                                              "Patching carrier units", one_row=alone)
                if max_batch_size == 1 and n > 1 and h is not None:  # the patched rows run alone: the factual and
                    # counterfactual samples too, so that a model branching on its batch's statistic gives each sample's own
                    out, alone = _carriers_alone(forward, x, layer, kinds, "")
                    p0, h, h_cf = probabilities(out, model=model), alone, _carriers_alone(forward, x_cf, layer, kinds, "counterfactual ")[1]
            else:
                p0, h, h_cf, classes = recorded  # classes: from the model's output (p0's two columns may be a sigmoid's)
        finally:
            probe.remove()
        if h is None or h.dim() < 2:
            raise ValueError(f"Expected module {layer!r} ({type(module).__name__}) to output a tensor [N, U, ...]")
        t = resolve_target(p0, target, classes=classes)
        f0 = p0.gather(1, t.view(-1, 1)).squeeze(1)
        layout = resolve_layout(h.shape, unit_dim, num_heads)
        nu = layout.num_units
        plain = use_suffix and not forward.args and kinds and issubclass(kinds[0], Tensor)
        suffix = suffix_module(model, layer, ((x,), {})) if plain else None  # traced through the call: defaults specialised
        if suffix is not None:  # traced from the class's forward: a forward replaced on the instance, or a hook on the
            with torch.no_grad():  # model itself, is not in it (checked on one row of the factual pass)
                suffix = suffix if close(probabilities(forward.select(suffix(h[:1].clone()))), p0[:1]) else None  # an in-place head: not h[0]
        # a unit whose counterfactual activation is its factual one, bit for bit (every unit of a sample that the
        # counterfactual leaves as it is, a ReLU unit at 0 in both), patches nothing: its row runs the factual sample
        # and c_u is 0, so it is not run (moving_units), where the row's passes edit h alone (the layer run once a
        # pass, no noise drawn)
        moving = None if noisy or calls != 1 else moving_units(h, lambda _k, _part, s: h_cf[s], 1, torch.arange(nu, device=h.device), layout)
        unmoved = f0.expand(nu, n).reshape(-1)
        if suffix is not None:
            rows = rows_per_pass(suffix, (h,), max_batch_size)

            def evaluate(idx: Tensor) -> Tensor:
                u, s = idx // n, idx % n
                p = probabilities(forward.select(suffix(replace_units(h[s], u, h_cf[s], layout.dim, unit_size=layout.unit_size))))
                return p.gather(1, t[s].view(-1, 1)).squeeze(1)

            patched = map_moving(moving, rows, evaluate, unmoved, h.device)
        else:
            rows, patch = rows_per_pass(model, (x,), max_batch_size, forward=forward), _PatchRows(layout)

            def evaluate(idx: Tensor) -> Tensor:
                u, s = idx // n, idx % n
                patch.rows = (u, h_cf[s])
                return probabilities(forward(x[s], rows=s)).gather(1, t[s].view(-1, 1)).squeeze(1)

            with intervene(model, {layer: patch}):
                patched = map_moving(moving, rows, evaluate, unmoved, h.device)
    return (patched.view(nu, n) - f0.unsqueeze(0)).T.contiguous()
