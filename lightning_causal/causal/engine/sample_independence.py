"""Whether a model treats its samples independently, the premise of every estimator that runs rows of
many samples in one batch (:func:`check_samples_independent`), and the comparison of two passes' outputs
that allows for the rounding of batch-size dependent kernels (:func:`same_outputs`)."""

from __future__ import annotations

import math
import warnings

import torch
from torch import Tensor, nn

from lightning_causal.causal.engine.batching import first_in_block, kinded
from lightning_causal.causal.engine.forward import BatchCoupledOutput, Forward
from lightning_causal.causal.engine.forward_args import ForwardArgs
from lightning_causal.causal.engine.generators import module_generators
from lightning_causal.causal.engine.in_batch_scores import IN_BATCH_FIX, in_batch_cause
from lightning_causal.causal.engine.inner_steps import (
    BATCH_STEP_CAUSE,
    BATCH_STEP_FIX,
    INNER_STEP_FIX,
    stepped,
)
from lightning_causal.causal.engine.kept_attributes import (
    _MODULE_DICTS,
    BATCH_STATISTICS_FIX,
    TRACED_TRAINING_FIX,
    KeptAttributes,
    _is_dict,
    _trained_statistics,
    batch_statistic_norms,
    helper_tensors,
    instance_of,
    is_norm_layer,
    keep_attributes,
    traced_training_norms,
)
from lightning_causal.causal.engine.linked_samples import refuse_flat_bags
from lightning_causal.causal.engine.live_values import close, trial_rows
from lightning_causal.causal.engine.noise import GeneratorWatch
from lightning_causal.causal.engine.output_selection import (
    reads_across_samples,
    time_major,
    time_major_fix,
)
from lightning_causal.causal.engine.param_writes import fingerprints, written_since
from lightning_causal.causal.engine.rounding import BEYOND_ROUNDING, rounding_bound, row_scales
from lightning_causal.causal.engine.user_frame import outside_package

__all__ = ["check_samples_independent", "checked_rows", "one_value_alone", "refuse_traced_training", "same_outputs"]


#: the way out of a forward that depends on its batch
PER_SAMPLE_FIX = "make the forward per-sample (e.g. `torch.where` per row) or pass one sample at a time"

#: the way out of a forward that depends on its batch, for an estimator that runs no sample alone (``alone_route=False``)
PER_SAMPLE_ONLY_FIX = "make the forward per-sample (e.g. `torch.where` per row): {what} runs no sample alone"

#: the cause named where the whole probe run once more in the reverse order gives other outputs (its rows alone agreed)
PLACE_CAUSE = (
    "its output for a sample depends on the sample's place among the other samples of its batch: the rows compete "
    "for an expert's capacity (a mixture of experts that drops the tokens beyond `capacity = ceil(capacity_factor * "
    "tokens / num_experts)` in an expert's queue, through the residual), so a sample at the end of a full expert's "
    "queue runs through the residual in one order of the batch and through the expert in another")

#: its way out
PLACE_FIX = (
    "drop no token in eval mode (every expert's capacity the whole batch, `capacity_factor=None` when not "
    "`self.training`), or pass `max_batch_size=1` (each sample alone, slow: a token of top-k routing alone fills no "
    "expert; a sequence's tokens alone may still overflow one, and expert-choice routing, where each expert takes its "
    "top tokens of the batch, is another model one sample alone: explain it with the routing it uses at inference); "
    "docs/your_model.md#mixtures-of-experts-capacity-and-routing")

#: its way out for an estimator that runs no sample alone (``alone_route=False``)
PLACE_ONLY_FIX = (
    "drop no token in eval mode (every expert's capacity the whole batch, `capacity_factor=None` when not "
    "`self.training`): {what} runs no sample alone; docs/your_model.md#mixtures-of-experts-capacity-and-routing")

#: the cause named where a batch of one sample erases what tells the samples apart (:func:`one_value_alone`)
ERASED_ALONE_CAUSE = (
    "its forward depends on the batch: it computes a statistic over its batch (a standardisation over the samples, `(x - x.mean(0)) / "
    "(x.std(0, unbiased=False) + 1e-5)`), which a batch of one sample makes a constant (or NaN): probe samples run each "
    "in a batch of its own give one output where the batch gives them several")

#: its way out: one sample a pass would explain that constant, not the model
OWN_STATISTICS_FIX = (
    "passing one sample at a time (`max_batch_size=1`, a probe of one sample) is no way out, it explains that constant "
    "(or gives NaN): "
    "normalise each sample by its own statistics (over its features or time steps, `x.mean(-1, keepdim=True)`, "
    "`x.std(-1, keepdim=True)`), or by constants computed on the training data (a buffer)")

#: the cause and the way out named where a forward that steps an optimizer gives other outputs for the same rows run
#: twice alone (both checks' noise branches): the optimizer's state, not noise
KEPT_OPTIMIZER_STATE = (
    "its forward steps an optimizer that keeps its state from call to call (momentum buffers, Adam's moments: an "
    "optimizer built once in __init__), so that every pass adapts from where the pass before left it, even where "
    "forward puts the trained weights back, and no effect would be one model's (the optimizer's state is put back "
    "after the audit); put the optimizer's state back with the weights (build the optimizer inside forward, or "
    f"`self.opt.state.clear()` where forward reloads the weights), or {INNER_STEP_FIX}")


def check_samples_independent(forward: Forward, xs: tuple[Tensor, ...], output: Tensor, what: str, *,
                              sample_ids: Tensor | None = None, batch: str | None = None, one_row: bool = False,
                              alone_route: bool = True) -> None:
    """Refuse a model whose output for a sample depends on the other samples of its batch.

    Every estimator runs intervened rows of many samples (and units) in one batch, so probe rows run as a batch of
    their own (:func:`checked_rows`: rows 0 and 1, then, where they agree, rows ``n // 2`` and ``n - 1``, a pass each;
    row 0 twice for a probe of 2, whose rows 0 and 1 are its own pass), then, where those passes show a model that
    routes (:func:`routes`: a module's input of no rows, or of other shapes in the two passes of two rows: an expert
    given a number of tokens that follows the data), for 3 rows or more, the whole probe in the reverse order, one
    pass (an expert's capacity drops the tokens last in its queue, which the four rows alone may all escape; reversed,
    the last token of every overflowing queue comes first and runs: :data:`PLACE_CAUSE`, :data:`PLACE_FIX`; beside a
    state sized by the batch, named only where the forward does not read it, :func:`_states_read`),
    must give the probe's (selected) ``output`` for them (the refusal names those that differ); else (control flow on a
    batch statistic such as ``if (confidence > t).all(): return early``, statistics over the batch)
    ``ValueError``: each effect would mix the branches of whichever rows share its batch, silently.
    ``what`` names the estimator's action in the message. Differences within 1% of the output's
    scale (``1 + max |output|``; 16 ulps for half precision) are not refused: batch-size dependent kernels round
    (TF32 convolutions, split-K matrix products on accelerators); those beyond float rounding
    (:func:`~.rounding.rounding_bound`) are warned of (a solver stopping on its batch's residual), once per
    :func:`~.batching.remembered_fit` block with the stacked rows' warning and once per fit by the callback. A
    model that draws from a global generator while the two samples run alone (MC dropout kept on in
    eval; :class:`~.noise.GeneratorWatch`), or that differs from itself when they run alone twice,
    draws noise: that is not the batch's doing, and it passes (noise with few draws per sample made
    the two runs alone agree by chance, and such models were refused); but not a forward that steps an optimizer and
    puts its weights back (:func:`optimizer_state_kept`: momentum carried from call to call, refused), nor one that
    writes floating tensors of its own (buffers and plain attributes, in a dict or a list too) between the two runs, in
    place or reassigned, and reads them (:func:`_user_buffers`, :func:`_buffers_read`: the rows run twice more from one
    snapshot, as they are and with those tensors changed, give other outputs; an observation normalizer updated in eval
    mode too, also one gated by its own count, a cache filled and read across calls, :data:`WRITTEN_BUFFERS`, refused,
    also where the model holds a generator of its own; a tensor only written, an activation monitor beside noise, and a
    step counter seeding noise pass as before). A model traced (``torch.jit.trace``) with a
    BatchNorm in training mode is refused before any pass, naming the layers (:func:`~.kept_attributes.traced_training_norms`):
    its graph normalises by the batch in every mode, whatever the probe's samples show. The check sees the clean probe
    only: the passes of intervened rows, whose batch statistic an intervention can move across a branch's threshold, are
    checked as they run (:func:`~lightning_causal.causal.engine.stacked_rows.rows_alone_checked`). Where forward
    arguments travel with their rows, the refusal names them first: a set every sample reads whole (a few-shot
    episode's support set) whose first dimension equals the number of samples by chance is gathered by row, and the
    samples alone read some of its rows (NaN prototypes of the classes they miss); :func:`~.forward_args.mark_whole`.
    Where ``output=`` reads an in-batch score matrix across its columns (a CLIP-like model's similarities ``[B, B]``
    under a retrieval softmax or an InfoNCE term), the refusal names that first (:mod:`~.in_batch_scores`).

    Args:
        forward: the model's prepared :class:`~lightning_causal.causal.engine.forward.Forward`.
        xs: the probe inputs ``[N, ...]``.
        output: the (selected) output of the whole probe's pass ``[N, ...]``.
        what: the estimator's action, as above.
        sample_ids: where ``xs`` are some of the user's samples (``attack_success_rate``'s, not of the target class),
            the user's index of each row: the message names those, not the rows' places in ``xs``.
        batch: with ``sample_ids``, what the batch is, in words (default: ``"the batch of N"``).
        one_row: the estimator runs every row alone, the clean samples too (``max_batch_size=1``, the refusal's way out,
            :data:`PER_SAMPLE_FIX`): a forward that depends on its batch passes, each sample's outputs are its own
            there (else the way out was refused again: a loop); still refused where a sample alone is erased
            (:data:`OWN_STATISTICS_FIX`: a statistic over the batch, a row alone its constant) and for the other
            causes (a state kept, a forward argument gathered by row, a BatchNorm without running statistics), which
            one row a pass does not mend. ``output`` is then the samples' pass stacked, as the erased check compares.
        alone_route: whether the estimator can run every sample alone (``max_batch_size=1``); where it cannot (the
            counterfactual search, the audits' probe checks) the refusal's way out does not say "pass one sample at a
            time" (:data:`PER_SAMPLE_ONLY_FIX`, :data:`PLACE_ONLY_FIX`), which would be refused again.
    """
    refuse_traced_training(forward.model, what)
    refuse_flat_bags(forward, xs, what)  # flat ids of an nn.EmbeddingBag with offsets, as many as the bags
    n = xs[0].shape[0]
    sized = carried_states(forward.model, n)  # before the pass alone, which may set a state of its own size
    held = _kept_tensors(forward.model)  # the tensors as the probe's pass left them (no copy)
    kept = {k: _identity(t) for k, t in held.items()}
    state = keep_attributes(forward.model, reassigned_buffers=True, helpers=True)  # the second run alone starts from it
    bound = rounding_bound(output, forward.model)
    groups = checked_rows(n, xs[0].device)
    checked = list(groups)  # the passes of rows alone; the whole probe reversed may follow them
    shapes: list[list[tuple[str, tuple[int, ...], bool]]] = []  # each pass of rows alone: its modules' input shapes
    watched = forward.model if n > 2 and not one_row else None  # read only where a reversed pass can follow
    for g, rows in enumerate(groups):  # rows 0 and 1; where they agree, rows spread over the rest (one pass more)
        if g:
            state.restore()  # as the first group's pass started
        try:
            with GeneratorWatch() as watch, _InputShapes(watched if g < len(checked) else None) as seen:
                alone = forward(*(x[rows] for x in xs), rows=rows)
        except (IndexError, RuntimeError):
            if not g and n != 2:
                raise  # rows 0 and 1 alone fail where the batch ran: the caller names it
            # (of 2 rows, sample 0 twice: a forward argument of positions may refuse the copy; unchecked, as before)
            # the spread rows' pass fails where rows 0 and 1 ran (a forward argument of positions, an EmbeddingBag's
            # offsets = arange(N), sliced to rows [n // 2, n - 1] no longer starts at 0): checked as before, rows 0 and 1
            state.restore()
            return
        now = _kept_tensors(forward.model)  # one walk for the states carried and the tensors a drawing pass wrote
        states = sized + [s for s in carried_states(forward.model, n, kept, now) if s.split(" [")[0] not in {t.split(" [")[0] for t in sized}]
        if watch.moved:  # the model draws random numbers (MC dropout kept on): its outputs differ by the draw, not by
            # the batch; but not a statistic or a counter it writes at every call and reads beside the draw (the
            # tensors of its modules and of the helper objects they hold, `kept`: _kept_places)
            changed = {k for k, t in now.items() if t.is_floating_point() and kept.get(k, _identity(t)) != _identity(t)}
            written = [k for k in _user_buffers(forward.model) if k in changed] if changed else []
            read = _written_read(forward, xs, rows, written, bound, held) if not g and written else []
            if read:
                ids = (rows if sample_ids is None else sample_ids[rows.to(sample_ids.device)]).tolist()
                state.restore()
                raise ValueError(
                    f"Expected the model to give the same outputs for the same samples at every pass, but its forward "
                    f"wrote floating tensors of its own ({', '.join(read[:5])}) in a pass of probe samples {ids} "
                    f"alone, in eval mode, and reads them beside the random numbers it draws: {WRITTEN_BUFFERS}")
            return
        if n == 2 and not same_outputs(alone[:1], alone[1:])[1] and not (
                sized and _states_read(forward, xs, rows, alone, [s.split(" [")[0] for s in sized])):
            return  # sample 0's two copies differ: their places do (a callable `output=` reading one entry per probe
            # sample, named by the estimators' passes of one row), not the batch; unchecked, as before. Not where it
            # reads a state of the batch's size kept from the probe's pass (a membrane fresh where the shape changes:
            # its two rows are the probe's two samples' states): refused below, naming it
        clean = output[rows]
        diff, same = same_outputs(alone, clean)
        # within the 1%, beyond float rounding (a solver stopping on its batch's residual): warned, after the same noise check
        rel = diff / float(row_scales(clean.reshape(1, -1))[0]) if same and _inexact(alone) and _inexact(clean) else 0.0
        if not (same and not rel > bound):
            break
        shapes.append(seen.shapes)
        if g == len(checked) - 1 and n > 2 and not one_row and routes(shapes, len(rows)):
            groups.append(torch.arange(n - 1, -1, -1, device=xs[0].device))  # the whole probe reversed, one pass more
    else:
        return
    if sized and g == len(checked):  # the whole probe reversed beside a state sized by the batch, which a pass of n rows
        # may read (the probe's pass left it, `self.h` [1, N, H]: its difference would be the state's, passed unchecked
        # as before) or only write (a router's probabilities kept for an auxiliary loss, `self.router_probs = p.detach()`:
        # the difference is the samples' places, named so); the reversed rows run once more from where they began
        state.restore()
        if _states_read(forward, xs, rows, alone, [s.split(" [")[0] for s in sized]):
            return
        states = [s for s in states if s not in sized]
    if _rows_state_set(forward.model, kept, len(rows)):  # the first run alone set a state of its rows' size, read
        state.restore()  # where the size matches (`self.mem` [2, H]): its second run read it, taken for noise, passed
    weights = weights_held(forward.model)
    buffers = _user_buffers(forward.model)
    before = fingerprints(buffers)
    twice, agrees = same_outputs(forward(*(x[rows] for x in xs), rows=rows), alone)
    ids = (rows if sample_ids is None else sample_ids[rows.to(sample_ids.device)]).tolist()
    if not agrees or (same and twice / float(row_scales(alone.reshape(1, -1))[0]) > bound):
        if optimizer_state_kept(forward.model, weights):  # its momentum moved between the two runs, not noise
            raise ValueError(
                f"Expected the model to give the same outputs for the same samples at every pass, but probe samples "
                f"{ids} run alone twice differ by max |difference| {twice:.3g}: {KEPT_OPTIMIZER_STATE}")
        anew = _reassigned(forward.model, buffers)  # `self.mean = self.mean + ...` on a buffer or an attribute
        in_place = written_since(buffers, before)
        read = _written_read(forward, xs, rows, in_place + anew, bound, buffers) if in_place + anew else []
        if read:
            ways = [f"{how} ({', '.join(names[:5])})" for how, names in (("in place", [k for k in in_place if k in read]),
                                                                         ("anew (reassigned)", [k for k in anew if k in read])) if names]
            raise ValueError(
                f"Expected the model to give the same outputs for the same samples at every pass, but probe samples "
                f"{ids} run alone twice differ by max |difference| {twice:.3g}, and its forward wrote floating "
                f"tensors of its own {' and '.join(ways)} in between, in eval mode, and reads them: {WRITTEN_BUFFERS}")
        return  # the model differs from itself run twice alone (noise from a generator of its own), not by the batch
    differing = [j for j in range(len(ids)) if _row_differs(alone[j:j + 1], clean[j:j + 1], bound if same else None)]
    ids = [ids[j] for j in differing] or ids
    ids = list(dict.fromkeys(ids))  # a sample run twice in its batch (2 rows: checked_rows) named once
    if n == 2 and not same:
        _refuse_width_following_rows(forward, xs)
    cause, fix = _cause(forward, xs, rows, _states_read(forward, xs, rows, alone, states))
    if fix == PER_SAMPLE_FIX and not same and _erased_alone(forward, xs, output, state):
        cause, fix = ERASED_ALONE_CAUSE, OWN_STATISTICS_FIX
    if one_row and fix == PER_SAMPLE_FIX:
        state.restore()
        return  # its way out taken: every row runs alone, the samples' own outputs
    reordered = g == len(checked)  # the whole probe reversed (its rows alone agreed): a sample's place in its batch
    if reordered and fix == PER_SAMPLE_FIX:
        cause, fix = PLACE_CAUSE, PLACE_FIX
    elif fix == PER_SAMPLE_FIX and not same:  # a module that mixes the rows (a temporal shift along the folded frames)
        first = int(rows[differing[0]]) if differing and alone.shape == clean.shape else None
        cause, fix = _mixed_rows_named(forward, xs, first) or (cause, fix)
    if not alone_route:  # no way to pass one sample at a time: advise only what works there
        fix = fix.replace(PER_SAMPLE_FIX, PER_SAMPLE_ONLY_FIX.format(what=what)).replace(
            PLACE_FIX, PLACE_ONLY_FIX.format(what=what))
    ran = "run in one pass of the whole probe in the reverse order" if reordered else "run alone"
    ids = sorted(ids) if reordered else ids
    ids = ids if len(ids) <= 8 else f"{ids[:8]} (and {len(ids) - 8} more)"
    batch = batch or f"the batch of {n}"
    if same:
        if first_in_block(BEYOND_ROUNDING):
            warnings.warn(kinded(
                f"Expected the model to treat samples independently, to float rounding, but the outputs of probe samples "
                f"{ids} {ran} differ from their outputs in {batch} by max |difference| {diff:.3g}, {100 * rel:.2g}% of "
                f"the output's scale (1 + max |output|; the refusal takes 1%, float rounding is taken to stay below "
                f"{100 * bound:.2g}%): {cause}. {what} runs rows of many samples in one batch, so its results follow the "
                f"batch a little ({'all' if reordered else ('two', 'four')[g]} samples are compared: others may differ more); {fix}",
                BEYOND_ROUNDING), stacklevel=outside_package())  # its figures move between audit epochs: once per fit
        return
    raise ValueError(
        f"Expected the model to treat samples independently, but the outputs of probe samples {ids} "
        f"{ran} differ from their outputs in {batch} ("
        # of other shapes (a [B, B] matrix's first 10 columns read as classes: [2, 2] alone, [2, 10] in the batch)
        + (f"{list(alone.shape)} alone where the batch gave {list(clean.shape)}" if alone.shape != clean.shape else
           ((("NaN where the batch gave numbers" if bool((alone.isnan() & ~clean.isnan()).any()) else
             "numbers where the batch gave NaN")) if math.isnan(diff) and _inexact(alone) else
           f"max |difference| {diff:.3g}")) + f"): {cause}. {what} runs rows of many samples in one batch, which would mix their branches "
        f"silently; {fix}")


def _mixed_rows_named(forward: Forward, xs: tuple[Tensor, ...], row: int | None) -> tuple[str, str] | None:
    """``(cause, fix)`` naming the leaf module that mixes the probe's samples, where the general cause would be given:
    ``row``, the first probe sample whose output alone differs from the batch's (``None``: none, or outputs of
    other shapes), run in the whole probe's pass and alone (:func:`~.stacked_rows.mixing_module`, as :class:`~.stacked_rows.RowsAlone`'s refusal: two
    passes more with forward hooks, at a refusal only; hooks removed, the model's attributes and the generators put
    back): a temporal shift network shifting its flattened ``[N·T, C, H, W]`` frames across clips is named with the view
    back, not as a branch on a batch statistic. ``None`` where no module is found (the rows mixed in the forward's own
    code, a branch, a pass that fails): the general cause stands."""
    # stacked_rows imports this module
    from lightning_causal.causal.engine.stacked_rows import mixing_module

    if row is None:
        return None
    found = mixing_module(lambda idx: forward(*(x[idx] for x in xs), rows=idx), torch.arange(xs[0].shape[0], device=xs[0].device),
                          row, forward.model)
    return None if found is None else (found[0], f"{found[1][:1].lower()}{found[1][1:]}, or {PER_SAMPLE_FIX}")


def _states_read(forward: Forward, xs: tuple[Tensor, ...], rows: Tensor, alone: Tensor, states: list[str]) -> list[str]:
    """``states`` (:func:`carried_states`) less the tensors a pass set or changed (named without a shape) that the
    forward does not read: rows ``rows`` run once more with each such tensor (a module's attribute or buffer, a dict's
    or a list's entry: :func:`_kept_places`) another value at every entry (NaN, or another integer or bool:
    :func:`_other_value`) give ``alone`` again where the forward only writes it (a mixture's auxiliary loss,
    ``self.aux_loss = ...``, its experts' token counts, ``self.exp_counts``, or a dict of its statistics were named as a
    state carried across batches). One pass (:class:`_HeldTrial`, :func:`_buffers_read`'s too), at a refusal only,
    where there is such a tensor; a pass that fails, or gives other outputs, keeps them all. Those named with a shape (a
    size of the batch's, :func:`carried_states`) are left out where a batch of one row more (the whole probe and sample 0
    once more) reads them too: it gives other outputs with the tensor another value (two passes, at a refusal only). A
    state of the batch's rows fails beside such a batch or is made afresh there (a membrane ``fresh where the shape
    changes``); a tensor whose size is the batch's by chance is read at every size (a coordinate field's fixed Fourier
    matrix ``B`` ``[2, m]`` beside 2 probe rows, named as a recurrent state before)."""
    places = _kept_places(forward.model) if forward.model is not None else {}
    states = [s for s in states if " [" not in s or not _read_at_other_sizes(forward, xs, rows, places, s.split(" [")[0])]
    filled = {}
    for name in states:  # a name with a shape (a state sized by the batch, read where the size matches) is not found
        holder, key, held = places.get(name, (None, None, None))
        if holder is not None and held is not None and (other := _other_value(held)) is not None:
            filled[name] = (holder, key, held), other
    if not filled:
        return states
    with _HeldTrial(forward, xs, rows, {name: place for name, (place, _) in filled.items()}) as trial:
        try:
            again = trial.run({name: other for name, (_, other) in filled.items()})
            unread = isinstance(again, Tensor) and not _row_differs(again, alone, None)
        except Exception:  # noqa: BLE001 - a forward that fails on the other value reads it
            unread = False
    return [s for s in states if s not in filled] if unread else states


def _read_at_other_sizes(forward: Forward, xs: tuple[Tensor, ...], rows: Tensor,
                         places: dict[str, tuple[object, object, Tensor]], name: str) -> bool:
    """Whether the kept tensor ``name`` (:func:`_kept_places`) is read by a pass of one row more than the probe (its
    rows and ``rows[0]`` again), and not written by it: that pass, run as it is and with the tensor another value
    (:func:`_other_value`), gives outputs of its rows that differ, and run as it is leaves the tensor as it found it
    (:func:`_states_read`'s rule for a tensor of the batch's size by chance, a fixed matrix). A tensor that pass sets
    anew or changes is a state carried from call to call, read at every size as well (a memory bank of the last batch's
    rows that every row attends over, a state padded or summarised for a batch of another size): ``False``, it stays
    named."""
    holder, key, held = places.get(name, (None, None, None))
    other = _other_value(held) if holder is not None and held is not None else None
    if other is None:
        return False
    more = torch.cat([torch.arange(xs[0].shape[0], device=rows.device), rows[:1]])
    with _HeldTrial(forward, xs, more, {name: (holder, key, held)}) as trial:
        try:
            plain = trial.run({})
            now = _kept_places(forward.model).get(name, (None, None, None))[2]  # as the pass left it
            written = now is None or now.shape != held.shape or not torch.equal(now, trial.saved[name])
            changed = trial.run({name: other})
        except Exception:  # noqa: BLE001 - a pass of another size that fails beside it: a state of the batch, kept
            return False
    return (not written and isinstance(plain, Tensor) and isinstance(changed, Tensor) and plain.dim() > 0
            and plain.shape[0] == more.shape[0] and plain.shape == changed.shape and _row_differs(changed, plain, None))


class _HeldTrial:
    """``with _HeldTrial(forward, xs, rows, places) as trial:``: ``trial.run(values)`` runs rows ``rows`` of ``xs``
    from one snapshot (the model's tensors and numbers, its helper objects' too, :func:`~.kept_attributes.keep_attributes`, the global
    generators, :func:`~.state.rng_preserved`, and those its modules hold, :func:`~.generators.module_generators`) with
    the held tensors ``places`` (``{name: (holder, key, tensor)}``, :func:`_kept_places`) as they were when it began, but
    those ``values`` names, set to those values (:func:`_put`: a buffer stays a buffer); on leaving, the very tensors
    and their values are put back, and the snapshot. The one mechanism of :func:`_states_read` and
    :func:`_buffers_read`: is a held tensor read where its values change?"""

    def __init__(self, forward: Forward, xs: tuple[Tensor, ...], rows: Tensor,
                 places: dict[str, tuple[object, object, Tensor]]) -> None:
        self.forward, self.xs, self.rows, self.places = forward, xs, rows, places

    def __enter__(self) -> _HeldTrial:
        self.saved = {name: t.detach().clone() for name, (_, _, t) in self.places.items()}
        self.gens = [(g, g.get_state()) for g in module_generators(self.forward.model)]
        self.state = keep_attributes(self.forward.model, reassigned_buffers=True, values=True, helpers=True)
        return self

    def _reset(self) -> None:
        self.state.restore()
        for g, gen_state in self.gens:
            g.set_state(gen_state)
        with torch.no_grad():
            for name, (holder, key, t) in self.places.items():
                _set_values(t, self.saved[name])  # a write in place by the pass before, as keep_attributes does
                _put(holder, key, t)

    def run(self, values: dict[str, Tensor]) -> object:
        # state imports the engine's modules
        from lightning_causal.causal.engine.state import rng_preserved

        self._reset()
        for name, value in values.items():
            holder, key, _ = self.places[name]
            _put(holder, key, value)
        with warnings.catch_warnings(), rng_preserved():
            warnings.simplefilter("ignore")
            return self.forward(*(x[self.rows] for x in self.xs), rows=self.rows)

    def __exit__(self, *exc: object) -> None:
        self._reset()


class _InputShapes:
    """``with _InputShapes(model) as seen:`` around a pass: ``seen.shapes``, the shape of the first tensor each of
    ``model``'s modules was called with, in call order, as ``(module name, shape, floating)`` (forward pre-hooks, removed on
    leaving, also on an exception); nothing for ``model`` ``None``, or for a module that takes no hook (scripted)."""

    def __init__(self, model: nn.Module | None) -> None:
        self.model, self.shapes, self._handles = model, [], []

    def __enter__(self) -> _InputShapes:
        for name, module in self.model.named_modules() if self.model is not None else ():
            try:
                self._handles.append(module.register_forward_pre_hook(self._recorder(name), with_kwargs=True))
            except (RuntimeError, AttributeError, TypeError):  # a scripted module takes no hook
                continue
        return self

    def _recorder(self, name: str):  # noqa: ANN202 - a forward pre-hook
        def record(module: nn.Module, args: tuple, kwargs: dict) -> None:
            first = next((a for a in (*args, *kwargs.values()) if isinstance(a, Tensor)), None)
            if first is not None:  # a nested tensor (nn.TransformerEncoder's fast path, eval mode, a padding mask) has no
                # .shape: its rows only, each row's length its own
                shape = (first.size(0),) if first.is_nested else tuple(first.shape)
                self.shapes.append((name, shape, first.is_floating_point()))
        return record

    def __exit__(self, *exc: object) -> None:
        for handle in self._handles:
            handle.remove()
        self._handles.clear()


def routes(shapes: list[list[tuple[str, tuple[int, ...], bool]]], k: int) -> bool:
    """Whether passes of ``k`` rows of the same shapes (:func:`check_samples_independent`'s passes of two probe rows
    alone; each a list of ``(module name, input shape, floating)`` in call order, :class:`_InputShapes`) show a model
    that routes its rows, a number of them that follows the data: a module called with an input of no rows (an expert
    no token of the pass chose), a floating input of fewer rows than the pass (an expert given one of its two tokens;
    an integer one, ``arange(T)[None]`` into a position embedding, is no row of the pass), or modules called with
    inputs of other shapes, or other modules, from one pass to the other (an expert given one token of one pass and two
    of the other). A mixture of experts with a capacity makes a token's
    output depend on the tokens before it in its expert's queue; a model whose every module sees a fixed multiple of
    the pass's rows does not route, and pays no pass more.

    Examples:
        >>> routes([[("fc", (2, 4), True)], [("fc", (2, 4), True)]], 2), routes([[("expert", (0, 4), True)]], 2)
        (False, True)
        >>> routes([[("e0", (1, 4), True), ("e1", (1, 4), True)]], 2), routes([[("pos", (1, 5), False)]], 2)
        (True, False)
        >>> routes([[("e0", (2, 4), True)], [("e1", (2, 4), True)]], 2)  # both tokens to one expert, another in each pass
        True
    """
    few = any(len(shape) and shape[0] < k and (shape[0] == 0 or floating) for seen in shapes for _, shape, floating in seen)
    return few or any(seen != shapes[0] for seen in shapes[1:])


def _refuse_width_following_rows(forward: Forward, xs: tuple[Tensor, ...]) -> None:
    """Refuse, in its own words, a 2-sample probe's output whose width follows the batch (an in-batch score matrix
    ``u @ v.T``, ``[2, 2]``): sample 0 run twice, ``[0, 0]``, differs from the probe's pass because its second column
    scores another item, not because of a batch statistic. Every pass so far had as many columns as rows, so one pass
    of sample 0 alone tells (:class:`~.forward.BatchCoupledOutput`, naming ``output=``); a pass that fails otherwise,
    or a head of fixed width, leaves the probe check's refusal."""
    inner = forward if isinstance(forward, Forward) else getattr(forward, "forward", None)  # a caller's rows wrapper
    if not isinstance(inner, Forward) or inner.first_width is None or not inner.width_follows_rows:
        return
    try:
        forward(*(x[:1] for x in xs), rows=torch.zeros(1, dtype=torch.long, device=xs[0].device))
    except BatchCoupledOutput:
        raise
    except Exception:  # a model refusing a batch of one its own way (an assert): the probe check's refusal stands
        return


def checked_rows(n: int, device: torch.device | str) -> list[Tensor]:
    """The groups of probe rows :func:`check_samples_independent` runs as batches of their own, one pass each, the
    second only where the first agrees with the probe's pass: rows 0 and 1 (``[0, 0]`` for one row), then, for 4 rows
    or more, rows ``n // 2`` and ``n - 1``; for 2 rows, whose rows 0 and 1 are the probe's own pass, row 0 twice,
    ``[0, 0]``, a batch that holds no other sample (a standardisation over the samples,
    ``x.std(0, unbiased=False) + 1e-5``, gives each row alone a constant: refused as the larger probes are, not left to
    the intervened rows' check, whose way out, one row per pass, would give those constants' effects). A model whose
    dependence on its batch shows only on later rows (a recurrent
    layer reading the batch as time, ``batch_first`` forgotten: row ``i`` reads rows 0 to ``i``) gives rows 0 and 1 alone
    as in the batch, and was passed. Two rows a group, as the first: a solver stopping on its batch's residual
    converges otherwise in a larger batch, and a model may refuse a batch of one.

    Examples:
        >>> checked_rows(64, "cpu"), checked_rows(4, "cpu"), checked_rows(3, "cpu")
        ([tensor([0, 1]), tensor([32, 63])], [tensor([0, 1]), tensor([2, 3])], [tensor([0, 1])])
        >>> checked_rows(2, "cpu")
        [tensor([0, 0])]
    """
    if n == 2:
        return [torch.zeros(2, dtype=torch.long, device=device)]
    first = trial_rows(n, torch.device(device))[1]
    return [first] if n < 4 else [first, torch.tensor([n // 2, n - 1], device=device)]


def one_value_alone(alone: Tensor, stacked: Tensor) -> bool:
    """Whether rows run each in a batch of its own (``alone``) give one output, to the refusal's 1%
    (:func:`same_outputs`), where the same rows in one batch (``stacked``) give several: a batch of one erases what tells
    samples apart, a statistic over the batch (``x - x.mean(0)`` is 0 for one row, ``x.std(0, unbiased=False) + 1e-5``
    keeps it so), and one row per pass would explain that constant, not the model.

    Examples:
        >>> one_value_alone(torch.tensor([[0.5], [0.5]]), torch.tensor([[-1.0], [1.0]]))
        True
        >>> one_value_alone(torch.tensor([[0.1], [0.9]]), torch.tensor([[-1.0], [1.0]]))
        False
    """
    if alone.dim() == 0 or alone.shape[0] < 2 or alone.shape != stacked.shape:
        return False

    def one(t: Tensor) -> bool:  # a few rows (those compared): no loop over the samples
        return all(same_outputs(t[i:i + 1], t[:1])[1] for i in range(1, t.shape[0]))

    return one(alone) and not one(stacked)


def _erased_alone(forward: Forward, xs: tuple[Tensor, ...], output: Tensor, state: KeptAttributes) -> bool:
    """Whether probe samples 0, ``n // 2`` and ``n - 1``, each run in a batch of its own (twice: a model may refuse a
    batch of one row), give one output where the probe's pass gives them several (:func:`one_value_alone`); ``state``
    put back before each pass. Three passes (two for 2 samples), at a refusal only; a pass that fails tells nothing.
    Three samples, not two: a branch on a batch statistic whose branch alone returns a constant (an early exit's zeros)
    gives two samples on that side of its threshold one output too, and one sample at a time is its way out."""
    n = xs[0].shape[0]
    if n < 2:
        return False
    samples = list(dict.fromkeys((0, n // 2, n - 1)))
    parts = []
    try:
        for i in samples:
            state.restore()
            rows = torch.full((2,), i, dtype=torch.long, device=xs[0].device)
            parts.append(forward(*(x[rows] for x in xs), rows=rows)[:1])
    except Exception:  # noqa: BLE001 - the refusal stands in its general words
        return False
    finally:
        state.restore()
    alone = torch.cat(parts) if all(isinstance(p, Tensor) for p in parts) else None
    return alone is not None and one_value_alone(alone, output[samples])


def _row_differs(a: Tensor, b: Tensor, bound: float | None) -> bool:
    """Whether one row's outputs ``a`` differ from ``b`` beyond the refusal's 1% (:func:`same_outputs`: NaN against a
    number too) or, given ``bound``, beyond float rounding (that share of the row's scale): the rows the refusal or the
    warning names."""
    diff, same = same_outputs(a, b)
    if bound is None or not same:
        return not same
    return _inexact(a) and _inexact(b) and diff / float(row_scales(b.reshape(1, -1))[0]) > bound


def weights_held(model: nn.Module | None) -> dict[str, tuple] | None:
    """The fingerprints of ``model``'s parameters (:func:`~.param_writes.fingerprints`: no copy) where an optimizer
    stepped some inside the audit's passes (:func:`~.inner_steps.stepped`), before a run that
    :func:`optimizer_state_kept` judges; ``None`` otherwise (a model whose forward steps no optimizer pays nothing)."""
    if model is None or not stepped():
        return None
    return fingerprints(dict(model.named_parameters()))


#: the cause and way out of a forward that updates buffers of its own at every call (:func:`_user_buffers`)
WRITTEN_BUFFERS = (
    "a statistic it updates at every call, not only in training mode (an observation normalizer's running mean and "
    "variance, updated without `if self.training:`; a call counter read as a number, `h * clamp(self.count / 100, "
    "max=1)`), or a cache it fills and reads across calls (a KV cache whose "
    "position moves on at every call), so each pass reads what the passes before it left and a sample's "
    "outputs follow the rows run with it and before it, which the estimators' passes of many rows would mix silently "
    "(read before as a generator's noise); update them in training mode only (`if self.training:`), or freeze them "
    "while the model is explained; a cache, empty it at the start of every call (or explain the model without it). "
    "Statistics held as NumPy arrays (a `RunningMeanStd` helper of them) are not seen by this check, nor put back after "
    "the audit: register them as buffers, or update them in training mode only")


def _user_buffers(model: nn.Module | None) -> dict[str, Tensor]:
    """The floating tensors ``model``'s modules keep of their own by name (:func:`_kept_places`: buffers, plain
    attributes, in a dict or a list too), but for the statistics training updates (normalisation layers' running
    statistics, fake-quant observers: :func:`~.kept_attributes._trained_statistics`), for
    :func:`check_samples_independent` to tell a forward that writes them at every call (an observation normalizer
    updated in eval mode too) from noise; an integer tensor, a step counter, may seed a generator of the forward's own
    (noise, as before). A tuple's entry, which cannot be set, is left out.

    Examples:
        >>> m = nn.Linear(2, 2)
        >>> m.register_buffer("mean", torch.zeros(2)); m.var, m.count, m.step = torch.ones(2), torch.tensor(4.0), 3
        >>> sorted(_user_buffers(m))
        ['count', 'mean', 'var']
    """
    if model is None:
        return {}
    return {name: t for name, (holder, _, t) in _own_places(model).items() if holder is not None and t.is_floating_point()}


def _own_places(model: nn.Module) -> dict[str, tuple[object, object, Tensor]]:
    """:func:`_kept_places` of ``model`` but for the statistics training updates, helper objects' too: the
    tensors :func:`_user_buffers` watches and :func:`_buffers_read` changes, each as ``(holder, key, tensor)``."""
    return _kept_places(model, skip=_trained_statistics)


def _written_read(forward: Forward, xs: tuple[Tensor, ...], rows: Tensor, written: list[str], bound: float,
                  before: dict[str, Tensor]) -> list[str]:
    """``written`` (:func:`_user_buffers`' names) where the forward reads them across calls (:func:`_buffers_read`), for
    :func:`check_samples_independent`'s refusal to name (all of them: one read only through another's update, a count
    weighing a running mean, is read too; trying each alone would miss it), else ``[]``. Those reassigned to another shape than they had in ``before`` (the tensors before the pass of rows ``rows``) that the forward
    rebuilds from its batch (a table made again where the batch size changes, ``if self.scale.shape[0] != len(x):``)
    are left out: the rows run from one snapshot with them set back to the shape of ``before``, another value at every
    entry (``t + 1 + |t|``, as :func:`_buffers_read`), give their outputs again (beyond float rounding ``bound``:
    :func:`_row_differs`), so a pass reads only what it builds itself (a cache that grows at every call,
    ``torch.cat([self.k, k])``, set back to a shorter one, gives other outputs: kept). Not the very tensors of ``before``:
    a forward that reads the last batch's first row, ``self.prev[0]``, reads the same row 0 after the probe's pass and
    after the pass of rows ``rows`` from 0, and would pass. One pass more where there is such a tensor, and one for
    each."""
    places = _own_places(forward.model)
    rebuilt = [k for k in written if k in before and k in places and places[k][2].shape != before[k].shape]
    if rebuilt:
        with _HeldTrial(forward, xs, rows, {k: places[k] for k in rebuilt}) as trial, torch.no_grad():
            try:
                plain = trial.run({})
            except Exception:  # noqa: BLE001 - named, as before
                plain = None
            for k in rebuilt if isinstance(plain, Tensor) else ():  # each alone: a table rebuilt beside a cache grown
                try:
                    back = trial.run({k: before[k] + 1 + before[k].abs()})  # values not read: rebuilt
                except Exception:  # noqa: BLE001 - a forward that fails on the tensor before reads it: named
                    continue
                if isinstance(back, Tensor) and plain.shape == back.shape and not _row_differs(back, plain, bound):
                    written = [name for name in written if name != k]
    return written if written and _buffers_read(forward, xs, rows, written, bound) else []


def _whole_number(t: Tensor) -> bool:
    """Whether ``t`` is one number, and a whole one (a step or a count kept as a float, ``torch.tensor(0.)``)."""
    return t.dim() == 0 and not t.is_meta and bool(torch.isfinite(t)) and float(t) == round(float(t))


def _reassigned(model: nn.Module | None, buffers: dict[str, Tensor]) -> list[str]:
    """The names of ``buffers`` (:func:`_user_buffers`) that ``model``'s modules hold no longer, reassigned since
    (``self.mean = self.mean + ...`` on a registered buffer or a plain attribute), to a floating tensor."""
    if model is None or not buffers:
        return []
    now = _user_buffers(model)
    return [name for name, b in buffers.items() if name in now and now[name] is not b]


def _buffers_read(forward: Forward, xs: tuple[Tensor, ...], rows: Tensor, written: list[str], bound: float) -> bool:
    """Whether the forward reads the floating tensors ``written`` (:func:`_user_buffers`' names) that it wrote between
    two runs of ``rows`` alone, for :func:`check_samples_independent` to tell a state updated at every call (an
    observation normalizer) from a tensor only written (an activation monitor) beside noise: rows ``rows`` run twice
    more from one snapshot (the model's tensors and numbers, the global generators and those its modules hold,
    :func:`~.generators.module_generators`), as they are and with each of those tensors another value at every entry
    (``t + 1 + |t|``), fail, or give outputs that differ (:func:`_row_differs`, beyond float rounding ``bound``; not only
    NaN: a normalizer gated by its own count, ``if self.count > warmup``, read NaN as its warm-up). Noise drawn alike in
    both differs by nothing; noise that the snapshot does not reset (a generator held outside the model: the rows run
    as they are twice differ) leaves the rule before, the rows run with those tensors NaN fail or give NaN where they
    gave numbers (one pass more). One number that is whole (a step or a count kept as a float, ``torch.tensor(0.)``) is
    moved by a quarter away from zero, which ``int()``, ``round()`` and ``.long()`` read as it was: a step counter
    seeding noise stays noise, a count read as a number (``h * clamp(self.count / 100, max=1)``) is read (where the
    quarter fails, a seed refusing a float, it is put back, as an integer one is). Three passes (:class:`_HeldTrial`),
    at such a refusal only, that leave no state (the tensors set back, the very tensors, their values, and the
    generators)."""
    places = {name: p for name, p in _own_places(forward.model).items() if name in written}
    if not places:
        return False

    def values(change: str, whole: bool = True) -> dict[str, Tensor]:  # "other": t + 1 + |t|; "nan": NaN
        out = {}
        for name, t in trial.saved.items():  # the values as the trial began, not as its last pass left them
            if _whole_number(t) and (change == "nan" or not whole):
                continue  # a whole number put back: a count read as a number (a seed) at the rule before
            if _whole_number(t):  # a quarter away from zero: `int()`, `round()`, `.long()` read it as it was
                out[name] = t + (0.25 if float(t) >= 0 else -0.25)
            else:
                out[name] = t + 1 + t.abs() if change == "other" else torch.full_like(t, math.nan)
        return out

    with _HeldTrial(forward, xs, rows, places) as trial, torch.no_grad():
        try:
            plain, again = trial.run({}), trial.run({})
            if isinstance(plain, Tensor) and isinstance(again, Tensor) and (
                    plain.shape != again.shape or _row_differs(again, plain, bound)):
                # noise the snapshot does not reset (a generator held outside the model): NaN read back, as before
                nan = trial.run(values("nan"))
                return not isinstance(nan, Tensor) or nan.shape != plain.shape or bool((nan.isnan() & ~plain.isnan()).any())
            try:
                other = trial.run(values("other"))
            except Exception:  # noqa: BLE001 - a count read as a whole number only (a seed) may refuse a quarter
                if not any(_whole_number(t) for t in trial.saved.values()):
                    raise
                rest = values("other", whole=False)
                other = trial.run(rest) if rest else plain
        except Exception:  # noqa: BLE001 - a forward that fails on the other values reads them
            return True
    if not isinstance(plain, Tensor) or not isinstance(other, Tensor) or plain.shape != other.shape:
        return True
    return _row_differs(other, plain, bound)


def optimizer_state_kept(model: nn.Module | None, held: dict[str, tuple] | None) -> bool:
    """Whether rows that differ from themselves run twice alone are an optimizer's state kept from call to call
    (momentum buffers): an optimizer stepped by forward (``held``, :func:`weights_held`, before the second run) and the
    weights put back by forward (test-time training that reloads them), so the runs differ by the state the optimizer
    carried, not by noise (both checks refuse, :data:`KEPT_OPTIMIZER_STATE`). A forward that keeps its steps (TENT) moves
    the weights: not this, the :func:`~.inner_steps.inner_steps_kept` block's end refuses it naming them.

    Examples:
        >>> lin = nn.Linear(2, 1)
        >>> optimizer_state_kept(lin, weights_held(lin))  # no optimizer stepped: no copy, noise
        False
    """
    return model is not None and held is not None and not written_since(dict(model.named_parameters()), held)


def _set_values(t: Tensor, values: Tensor) -> None:
    """``t.copy_(values)``, inside inference mode where ``t`` is an inference tensor (a buffer made or updated under
    ``torch.inference_mode``: a write in place outside it fails)."""
    with torch.inference_mode(t.is_inference()):
        t.copy_(values)


def _cause(forward: Forward, xs: tuple[Tensor, ...], rows: Tensor, states: list[str]) -> tuple[str, str]:
    """``(cause, fix)`` of probe samples ``rows`` that gave other outputs alone than in the batch ``xs``, in
    :func:`check_samples_independent`'s words, for its refusal and its warning alike: a BatchNorm without running
    statistics, an in-batch score matrix read across its columns, an ``output=`` reading a time-major output across
    its samples, a state kept from earlier calls (``states``, :func:`carried_states`), a forward argument gathered by
    row, else a forward that depends on its batch."""
    n = xs[0].shape[0]
    if stepped():  # an optimizer stepped by forward on the batch, its weights put back (test-time training)
        return BATCH_STEP_CAUSE, BATCH_STEP_FIX
    batch_norms = batch_statistic_norms(forward.model)  # also scripted
    if batch_norms:
        return (f"its normalisation layer(s) {batch_norms[:3]} have track_running_stats=False, so even in eval mode "
                "they normalise by the batch's statistics"), BATCH_STATISTICS_FIX
    if (in_batch := in_batch_cause(forward, xs, rows)) is not None:  # output= across a [B, B] matrix
        return in_batch, IN_BATCH_FIX
    if (callable(getattr(forward, "output", None))
            and (laid := time_major(raw := forward.raw(*(x[rows] for x in xs), rows=rows), len(rows))) is not None
            and reads_across_samples(forward.output, raw)):  # out.view(-1, T, C) of [T, N, C]; not out[t]
        return "`output=` reshapes or reduces its output across the samples", time_major_fix(laid)
    if states:
        return ((f"its forward reads a state it keeps from earlier calls: {', '.join(states[:3])} (a recurrent "
                 "state carried across batches, `self.h = h.detach()`)"),
                ("the audits explain the output of an input alone: read the state in training only (`h0 = self.h "
                 "if self.training else None`), or reset it at the start of `forward` (a spiking neuron's membrane kept "
                 "on the module and reset by `training_step`, as snntorch's `utils.reset`), so that evaluation and "
                 "the audits start every sequence from a fresh state; a model run chunk by chunk (streaming), whose state "
                 "carries from chunk to chunk, is audited through a module that resets the state and runs the whole "
                 "sequence, a LightningModule's `audited_module` "
                 "(docs/your_model.md#streaming-models-a-state-carried-across-calls)"))
    if isinstance(getattr(forward, "args", None), ForwardArgs) and forward.args.tensors():  # a Forward's: gathered by row
        return (("a forward argument of one row per sample is gathered by row with each sample, so that the samples "
                 f"alone read {len(rows)} of its {n} rows: a tensor that every sample reads whole (a few-shot "
                 "episode's support set and its labels, weights) whose first dimension equals the probe's "
                 f"{n} samples by chance; or its forward depends on the batch (control flow on a batch statistic)"),
                ("pass such a tensor whole with `additional_forward_args=mark_whole((support, support_y), [0, 1])` "
                 "(its places among the arguments' tensors; `from lightning_causal.causal import mark_whole`); a probe "
                 "read from a loader of episodes, return it so from `unpack_batch`, `lambda b: (b[0], b[1], "
                 "mark_whole((b[2], b[3]), [0, 1]))`, and the probe is then the first episode's queries beside its support "
                 f"whole; or probe another number of samples; if its forward depends on the batch, {PER_SAMPLE_FIX}"))
    return ("its forward depends on the batch (control flow on a batch statistic, e.g. "
            "`if (p > t).all(): return early` or a solver loop stopping on the batch's residual, normalisation "
            "over the batch, attention across its rows, or a mixture of experts' capacity limit, which drops tokens "
            "by their place in the batch)"), PER_SAMPLE_FIX


def refuse_traced_training(model: nn.Module, what: str) -> None:
    """Refuse ``model`` where a BatchNorm of it was traced (``torch.jit.trace``) in training mode
    (:func:`~.kept_attributes.traced_training_norms`): its graph normalises by the batch's statistics in every mode,
    whatever a pass shows (of one row too: the traced graph skips torch's check), so the refusal comes before any
    pass (``ValueError``, naming the layers and ``TRACED_TRAINING_FIX``); :func:`check_samples_independent`'s first step.

    Args:
        model: the model.
        what: the estimator's action, as in :func:`check_samples_independent`.

    Examples:
        >>> refuse_traced_training(nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2)), "The analysis")  # eager: passes
    """
    traced = traced_training_norms(model)
    if traced:
        raise ValueError(
            f"Expected the model to treat samples independently, but its BatchNorm layer(s) {traced[:3]} were traced "
            "(torch.jit.trace) in training mode, so their graph normalises by the batch's statistics (and updates the "
            f"running ones) in eval mode too: the trace fixes the mode it ran in. {what} runs rows of many samples in one "
            f"batch, whose statistics would mix them silently; {TRACED_TRAINING_FIX}")


def _kept_tensors(model: nn.Module) -> dict[str, Tensor]:
    """The tensors ``model``'s modules keep besides their parameters, by name: plain attributes (a tensor, or a
    tuple or list of them, or a dict's values, ``self.state["mem"]``, named ``state['mem']``) and buffers,
    normalisation statistics left out (:func:`_kept_places`, where each is held)."""
    return {name: t for name, (_, _, t) in _kept_places(model).items()}


def _kept_places(model: nn.Module, skip=is_norm_layer) -> dict[str, tuple[object, object, Tensor]]:  # noqa: ANN001
    """:func:`_kept_tensors`' tensors by the same names, each as ``(holder, key, tensor)``: a module and the name of its
    attribute or buffer, a dict and the key, a list and the index (a tuple's entry: holder ``None``, not set back), for
    :func:`_states_read` and :func:`_buffers_read` to put another value in its place (:func:`_put`); the modules
    ``skip`` takes left out (normalisation layers; their fake-quant observers too for :func:`_user_buffers`); and the
    tensors of the helper objects the modules hold (:func:`~.kept_attributes.helper_tensors`, ``store.keys``)."""
    kept: dict[str, tuple[object, object, Tensor]] = {}
    for prefix, m in model.named_modules():
        if skip(m):
            continue
        at = f"{prefix}." if prefix else ""
        held, todo, seen = [], [(k, v) for k, v in vars(m).items() if k not in _MODULE_DICTS and _is_dict(v)], set()
        while todo:  # a membrane in a dict, `self.state["mem"] = mem`, at any depth, `self.state["l1"]["mem"]`
            name, d = todo.pop()
            if id(d) not in seen:
                seen.add(id(d))
                for key, x in list(d.items()):
                    if _is_dict(x):
                        todo.append((f"{name}[{key!r}]", x))
                    else:
                        held.append((f"{name}[{key!r}]", x, d, key))
        for k, v, holder, key in [*((k, v, m, k) for k, v in [*vars(m).items(), *m._buffers.items()]), *held]:
            places = ([(holder, key, v)] if instance_of(v, Tensor) else  # not a weak proxy: another's object
                      [(v if isinstance(v, list) else None, i, t) for i, t in enumerate(v) if instance_of(t, Tensor)]
                      if instance_of(v, (tuple, list)) else [])
            places = [p for p in places if not isinstance(p[2], nn.Parameter)]  # an RNN's list of its weights, _flat_weights
            kept.update({f"{at}{k}" + (f"[{i}]" if len(places) > 1 else ""): p for i, p in enumerate(places)})
    return {**kept, **helper_tensors(model)}  # and a datastore object's, `store.keys` (read by the output, eval mode too)


def _put(holder: object, key: object, value: Tensor) -> None:
    """Set ``value`` where :func:`_kept_places` found a tensor: a module's attribute or buffer (a buffer stays a buffer,
    ``nn.Module.__setattr__``), a dict's key or a list's index."""
    if isinstance(holder, (dict, list)):
        holder[key] = value
    else:  # a module (a buffer stays a buffer, ``nn.Module.__setattr__``) or a helper object (:func:`~.kept_attributes.helper_tensors`)
        setattr(holder, str(key), value)


def _other_value(t: Tensor) -> Tensor | None:
    """A tensor like ``t`` with another value at every entry, for :func:`_states_read`: NaN where ``t`` is floating
    (or complex), ``~t`` where it is bool, and where it is an integer the next of its own values (sorted, the largest
    to the smallest: an expert's token counts, a class read back: every entry another value, each one that ``t`` holds,
    so an index of whatever table ``t``'s own values index, a table of one row too, where 1 for 0 was out of range);
    ``None`` for an integer ``t`` of one value (no other value is known to be in range: the state stays named) and for
    other tensors (quantized).

    Examples:
        >>> _other_value(torch.tensor([3, 0, 3, 7])), _other_value(torch.zeros(2, dtype=torch.long))
        (tensor([7, 3, 7, 0]), None)
    """
    if t.is_quantized:
        return None
    if t.is_floating_point() or t.is_complex():
        return torch.full_like(t, math.nan)
    if t.dtype == torch.bool:
        return ~t
    values = torch.unique(t)  # sorted
    if values.numel() < 2:
        return None
    return values[(torch.searchsorted(values, t.contiguous()) + 1) % values.numel()]


def _rows_state_set(model: nn.Module, before: dict[str, tuple[int, int]], k: int) -> bool:
    """Whether a pass of ``k`` rows set or changed a kept tensor (:func:`_kept_tensors`; ``before``: their identities
    before it) with a dimension of ``k``: a state of those rows that the next pass of ``k`` rows may read (a membrane
    ``self.mem`` ``[k, H]``, one neuron's ``[k]``, ``self.h`` ``[layers, k, H]``). A call counter (``self.step += 1``, the seed
    of noise drawn afresh at every call) or a running mean over the rows is no such state: its model differs from itself
    run twice alone by its noise, and passes.

    Examples:
        >>> m = nn.Linear(2, 2)
        >>> m.step, m.mem = torch.zeros(()), torch.zeros(8, 2)
        >>> before = {k: _identity(t) for k, t in _kept_tensors(m).items()}
        >>> m.step += 1
        >>> _rows_state_set(m, before, 2)
        False
        >>> m.mem = torch.zeros(2, 2)
        >>> _rows_state_set(m, before, 2)
        True
    """
    return any(t.dim() > 0 and k in t.shape and before.get(name) != _identity(t)
               for name, t in _kept_tensors(model).items())


def _identity(t: Tensor) -> tuple[int, int]:
    """``(id, version)`` of a tensor, to tell whether a pass set or changed it (an inference tensor has no version)."""
    return id(t), -1 if t.is_inference() else t._version


def carried_states(model: nn.Module, n: int, before: dict[str, tuple[int, int]] | None = None,
                   kept: dict[str, Tensor] | None = None) -> list[str]:
    """The tensors ``model`` keeps from call to call that may be a state carried across batches (at most 3):
    plain attributes and buffers (normalisation statistics left out) of two or more dimensions, one of them
    ``n`` (a recurrent state ``self.h`` ``[layers, N, hidden]``), as ``"name [shape]"``, and with ``before``
    (``{name: (id, version)}`` of :func:`_kept_tensors` before a pass) those the pass set or changed, as
    ``"name"``: their shape now is that of the pass (the trial pass's two rows), not the one the batch of ``n``
    read.

    Args:
        model: the model.
        n: the batch size of the pass that disagreed with the samples run alone.
        before: the kept tensors' identities and versions before a pass, or ``None``.
        kept: :func:`_kept_tensors` of ``model`` as the caller read them after that pass (one walk of the modules
            serves both), or ``None``: read here.

    Examples:
        >>> m = nn.GRU(3, 4)
        >>> m.h = torch.zeros(1, 64, 4)
        >>> carried_states(m, 64), carried_states(m, 8), carried_states(m, 64, {"h": (0, 0)}), carried_states(m, 8, {"h": (0, 0)})
        (['h [1, 64, 4]'], [], ['h [1, 64, 4]'], ['h'])
    """
    kept = _kept_tensors(model) if kept is None else kept
    sized = [k for k, t in kept.items() if t.dim() > 1 and n in t.shape]
    changed = [k for k, t in kept.items() if before is not None and before.get(k) != _identity(t) and k not in sized]
    return ([f"{k} {list(kept[k].shape)}" for k in sized] + changed)[:3]


def same_outputs(a: Tensor, b: Tensor) -> tuple[float, bool]:
    """``(max |a - b|, whether that is within 1% of the scale 1 + max |b|)`` (16 ulps for half
    precision), over the entries that are finite in both; an entry NaN in one and a number in the other differs
    (``max |a - b|`` NaN then: a support set gathered by row gives NaN prototypes alone, which passed as the same
    before, as did any difference beside a NaN), and so does an infinity against a number or the other infinity
    (``inf``); NaN or the same infinity in both (a class masked with ``-inf``) is the same, and leaves the scale
    (an infinite scale took any difference beside it for rounding); :func:`close` for outputs that are neither
    floating point nor complex.

    Examples:
        >>> same_outputs(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.015625]))  # 1% of 1 + 2.015625: 0.0302
        (0.015625, True)
        >>> same_outputs(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.5]))
        (0.5, False)
        >>> same_outputs(torch.tensor([3 + 4j]), torch.tensor([3 + 4.5j]))  # complex: |a - b| against 1% of 1 + |b|
        (0.5, False)
        >>> nan = float("nan")
        >>> same_outputs(torch.tensor([1.0, nan]), torch.tensor([1.0, nan])), same_outputs(torch.tensor([nan, 2.0]), torch.tensor([1.0, 2.0]))
        ((0.0, True), (nan, False))
        >>> inf = float("inf")
        >>> same_outputs(torch.tensor([-inf, 1.0]), torch.tensor([-inf, 5.0])), same_outputs(torch.tensor([2.0]), torch.tensor([inf]))
        ((4.0, False), (inf, False))
    """
    if a.shape == b.shape and _inexact(a) and _inexact(b):  # complex values too (the modes of an rfft): |a - b| is real
        tol = max(1e-2, 16 * torch.finfo(b.real.dtype).eps)  # of b's own dtype, before widening it
        wide = torch.complex128 if a.is_complex() or b.is_complex() else torch.float64
        a, b = a.detach().to(wide), b.detach().to(wide)
        if bool((a.isnan() != b.isnan()).any()):
            return float("nan"), False
        infinite = (a.isinf() | b.isinf()) & ~a.isnan()
        if bool((infinite & (a != b)).any()):  # an infinity against a number or the other infinity
            return float("inf"), False
        finite = ~a.isnan() & ~infinite  # the same infinity (a class masked with -inf in both) is the same
        d, m = (a - b).abs()[finite], b.abs()[finite]  # the scale of the finite entries: an infinity accepted any
        diff = float(d.max()) if d.numel() else 0.0
        scale = 1.0 + (float(m.max()) if m.numel() else 0.0)
        return diff, not diff > tol * scale
    return float("nan"), close(a, b)


def _inexact(t: Tensor) -> bool:
    """Whether ``t`` holds rounded numbers, real or complex (compared within a tolerance, not exactly)."""
    return t.is_floating_point() or t.is_complex()
