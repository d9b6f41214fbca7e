"""Whether the intervened rows an estimator stacks in one pass give what they give alone (:class:`RowsAlone`,
:func:`rows_alone_checked`).

:func:`~.sample_independence.check_samples_independent` sees the clean probe only. A model that branches on a
statistic of its batch (``if h.abs().mean() > t:``, ``if (p > t).all(): return early``) can pass it and still take
another branch in a pass of intervened rows: an intervention moves the stacked rows' statistic across the threshold,
the whole pass takes the other branch, and every effect of that pass is silently that branch's. Inside
:func:`rows_alone_checked` (opened by the estimators that stack intervened rows: unit effects, input effects and
interventional expectations, the causal graph, the layer map, Sobol' indices and intrinsic causal contributions; and
the Captum baselines' ``attribute``, ``layer_attribute``, ``input_layer_attribute`` and ``attribution_graph``, whose
passes Captum stacks itself, run through :func:`~.batching.checked_pass`: interpolated inputs or layer values, perturbed
copies, sampled points) each
chunk of the row engine (:func:`~.batching.map_rows`, and :func:`~.batching.each_chunk` where the
estimator gives its values per row) of two rows or more runs its first and its last row and, from 3 rows on, one
inner row (:meth:`RowsAlone.picked_rows`: drawn from the check's own generator, seeded at :data:`INNER_SEED`, a new row
at each pass, the same at every run, no global stream moved) alone first, a pass of one row each (:func:`~.batching.rows_alone` is true then: an estimator that writes its rows' results by index keeps
nothing of them), then the chunk; the chunk's values of those rows must match theirs alone (:func:`~.sample_independence.same_outputs`: within 1% of each
row's scale, the rounding of batch-size dependent kernels), else ``ValueError`` naming the estimator, the pass and the
difference; where a leaf module's output for a differing row differs alone from in the pass while its input does not, the refusal names that module as the one that mixes the rows (:func:`mixed_rows_cause`, two passes more: a temporal shift network shifting its flattened ``[N·T, ...]`` frames across clips, attention across the batch). A row whose value in the pass is not finite is not compared: a model that divides by a window's spread
(RevIN's std without an eps) gives 0 / 0 = NaN on a window an intervention sets to one value where its reduction in the
pass is exact, and a finite value of its rounding residue alone; the audit names the non-finite outputs and their way
out instead of a batch dependence the model has not (a statistic over the batch, NaN for a row alone, still is). Refused rather than warned: the effects of such a pass are not the model's effects of any row, and a
warning would let them into the reports (the clean-probe check refuses the same cause). Within that 1% but beyond float
rounding (:func:`~.rounding.rounding_bound`), the pass runs and :func:`rows_alone_checked` warns once at its end, naming the largest
difference on its row's scale and against the spread of the pass's values (:meth:`RowsAlone.warn_differences`): a
solver that stops once its batch's residual is below its tolerance (a deep-equilibrium model under Anderson
acceleration at 1e-2) gave 0.26% in one pass of 768 rows, its effects up to 0.048 off each sample's own where the
features its labels do not read have mean effects of 0.09-0.13, while ordinary float32 models stay below 5e-5%.

The rows alone must not change what the estimator computes: torch's global generators, the model's own ones
(:func:`~.generators.active_generators`) and those the estimator names (a ``Resample``'s donors) are put back where a row alone drew from them, and such a model is taken to
draw noise, not to branch on the batch (no comparison); where the two differ, the rows run alone once more, and rows
that differ from themselves are noise as well (but where forward stepped an optimizer and put the weights back,
:func:`~.sample_independence.optimizer_state_kept`: its momentum, refused), and so is a model whose rows alone set a state it keeps from call to
call (a recurrent ``self.h = h.detach()`` read where the batch size matches, the shape last seen,
:meth:`~.kept_attributes.KeptAttributes.changed`, where the chunk run once more after its own pass gives other values:
it reads the state, :func:`_reads_own_state`): a row alone does not read the state its chunk reads, so the two
cannot be compared (a state only written, ``self.last_out = out.detach()``, leaves the chunk's values as they were: compared) (the package runs such models; :func:`~.sample_independence.check_samples_independent` names the
state, :func:`~.sample_independence.carried_states`, where it changes the clean probe's outputs); a row that fails alone (a function that wants two rows) is not
compared, its chunk runs as before. Passes of one row (the estimators run such passes already: the site
checks, the trial rows), and the first and last rows of a chunk, most apart in it (of other units, samples or input
groups): a row alone holds its own statistic, which a pair of rows would average; and an inner row, whose draw covers
a pass's middle (Captum's DeepLift stacks ``[x; b]``: its ends are sample 0 and baseline N - 1, and a pass whose ends
take its branch alone while its inner rows do not was answered unseen). A chunk whose end rows and drawn inner row alone
take its branch is not seen (its other rows may not): the check samples three rows a pass, it does not prove every
row. Every chunk is checked, none sampled: the rows are group- or unit-major, so the chunk that crosses a
threshold is the one holding the groups that matter, anywhere in the run (the 23rd pass of 24 in
``tests/causal/test_review_s35d_late_chunk_refused.py``). Three passes of one row per chunk (the audits of a digits CNN and MLP run one or two chunks per layer or
estimator): their unit importance, input effect and layer map audits took 0.99-1.12x the CPU time without the check on
a loaded machine, within the noise of the end rows' check alone (1.00-1.12x; 0.8-4.2% on a quieter one), one thread
(``benchmarks/bench_stacked_rows.py``; the numbers are the same as without the check, ``torch.equal``). Over Captum's
passes: 3.5% (3.2-3.7%) of the CPU time of a digits CNN's ``CaptumBaseline`` run (IntegratedGradients, Saliency,
DeepLift, GradientShap, FeatureAblation; 12 passes checked), one thread, spent inside the check, 2.7% (2.5-2.9%) for
the end rows alone in the same run (``benchmarks/bench_captum_stacked.py``, ``benchmarks/RESULTS.md``; the audit's
results ``torch.equal``); a single fast method's ``attribute`` pays more (Saliency's one pass of 7 ms: +16% CPU, +14%
for the end rows alone). Models with more chunks pay more, measured by the review of 889838d8 (one thread, check
on/off, medians of 3 runs, scratch scripts, not a benchmark): a 40x40 U-Net's InputEffectAudit 1.05x (the check 7-13% of
the CPU time of its input effects, unit effects and graph), a two-layer transformer's causal graph 1.25x; the one-row
forwards are most of it (0.83 ms a row alone against 0.48 ms a row in a chunk).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import TypeVar

import torch
from torch import Tensor, nn

from lightning_causal.causal.engine.batching import (
    alone_block,
    checked_chunks,
    first_in_block,
    kinded,
)
from lightning_causal.causal.engine.generators import active_generators
from lightning_causal.causal.engine.inner_steps import BATCH_STEP_CAUSE, BATCH_STEP_FIX, stepped
from lightning_causal.causal.engine.kept_attributes import KeptAttributes, keep_attributes
from lightning_causal.causal.engine.rounding import (
    BEYOND_ROUNDING,
    model_precision,
    rounding_bound,
    row_scales,
)
from lightning_causal.causal.engine.sample_independence import (
    KEPT_OPTIMIZER_STATE,
    one_value_alone,
    optimizer_state_kept,
    same_outputs,
    weights_held,
)
from lightning_causal.causal.engine.user_frame import outside_package

__all__ = ["RowsAlone", "StackedRowsError", "rows_alone_checked"]

T = TypeVar("T")


#: the seed of :class:`RowsAlone`'s draws of a pass's inner row (its own CPU generator; no global stream moves)
INNER_SEED = 0

#: :class:`RowsAlone`'s way out besides a per-row forward, for the estimators that take ``max_batch_size``
WAY_OUT = "pass `max_batch_size=1` where the estimator takes it (one row per pass, slow)"

#: the cause named where rows alone give NaN, or one value whatever their inputs, and the pass numbers that differ: a
#: statistic over the batch, undefined or constant for one row (:func:`~.sample_independence.one_value_alone`)
BATCH_STATISTICS_CAUSE = (
    "rows alone give NaN, or one value whatever their inputs, where the pass gives numbers that differ: the model "
    "computes a statistic over its batch, undefined or constant for one row (a standardisation over the samples, `(x - "
    "x.mean(0)) / x.std(0)`: the std of one row is NaN, and `x - x.mean(0)` is 0 with `+ 1e-5` beside it), so each "
    "row's output depends on the rows it is stacked with and no effect is its own; `max_batch_size=1` gives that NaN "
    "or constant, not a fix (the probe check of one sample cannot tell), unless the constant is a branch's that each "
    "sample alone takes or not by its own values (an early exit's zeros where the batch's mean is below a threshold): "
    "then `max_batch_size=1`, whose estimators run the clean samples alone too, gives each sample's own effects. "
    "Normalise each sample by its own "
    "statistics (over its time steps, `x.mean(-1, keepdim=True)`, `x.std(-1, keepdim=True)`), or by constants computed "
    "on the training data (a buffer)")

#: the cause named otherwise: the forward depends on its batch once the rows are intervened on (its way out follows)
BATCH_CONTROL_CAUSE = (
    "the model's forward depends on its batch once its inputs or units are intervened on (control flow on a batch "
    "statistic, e.g. `if h.abs().mean() > t:` or `if (p > t).all(): return early`, whose threshold the intervened "
    "rows of a pass cross together, or a solver loop that stops once the batch's residual is below its tolerance, "
    "`if (z_new - z).norm() < tol * z_new.norm(): break`, a deep-equilibrium model's or an adaptive ODE solver's, "
    "whose number of steps the intervened rows of a pass set together), which the clean probe's check cannot "
    "see; every effect of such a pass would be that branch's, silently. Make the forward per-sample (e.g. "
    "`torch.where` on a per-row condition; a solver's residual per row, `(z_new - z).norm(dim=1)`, its converged "
    "rows kept as they are)")


class StackedRowsError(ValueError):
    """:class:`RowsAlone`'s refusal (a ``ValueError``): the rows of a stacked pass gave other values alone. An estimator
    whose own check of the clean rows names a more specific cause (the Sobol' analysis' drawn rows,
    :func:`~lightning_causal.causal.sensitivity.pick_freeze.check_func_independent`) runs that check where it meets this
    refusal, so that its words come first.

    Examples:
        >>> issubclass(StackedRowsError, ValueError)
        True
    """


class RowsAlone:
    """The check of :func:`rows_alone_checked`'s block: ``RowsAlone(what)(fn, idx, rows_of)`` returns ``fn(idx)`` after
    running the first and the last row of ``idx`` alone (``fn`` of one row each, before the chunk's pass, under
    :func:`~.batching.alone_block`) and comparing ``rows_of`` of the three results; ``ValueError`` where
    they differ beyond rounding (see the module).

    Args:
        what: the estimator, as the refusal names it (``"unit_effects on 'fc1'"``).
        generators: generators the chunks draw from besides the global ones and the model's (a
            :class:`~lightning_causal.causal.Resample`'s donors): kept as the others are.
        model: the model the chunks run, whose plain attributes (a state its forward sets, ``self.h``) the rows alone
            leave as they found them (:func:`~.kept_attributes.keep_attributes`); ``None``: none.
        rows: what the stacked rows are, as the refusal names them (Captum's: ``"interpolated inputs"``).
        way_out: the refusal's last words, what to do besides a per-row forward (Captum's methods take no
            ``max_batch_size`` of one row).

    Examples:
        >>> check = RowsAlone("An estimator")
        >>> check(lambda idx: idx * 2.0, torch.arange(4), lambda out: out)
        tensor([0., 2., 4., 6.])
        >>> check(lambda idx: idx * len(idx), torch.arange(4), lambda out: out)  # rows that read the batch size
        Traceback (most recent call last):
            ...
        lightning_causal.causal.engine.stacked_rows.StackedRowsError: Expected the intervened rows that An estimator stacks in one pass to give what they give alone, ...
    """

    def __init__(self, what: str, generators: Sequence[torch.Generator] = (), model: nn.Module | None = None,
                 rows: str = "intervened rows", way_out: str = WAY_OUT) -> None:
        for name, value in (("what", what), ("rows", rows), ("way_out", way_out)):
            if not isinstance(value, str):
                raise TypeError(f"Expected argument `{name}` to be a str but got {value!r}")
        self.what, self.generators, self.model = what, tuple(generators), model
        self.rows, self.way_out = rows, way_out
        self._inner = torch.Generator(device="cpu").manual_seed(INNER_SEED)  # the inner rows' draws: private, the same every run
        self.worst: dict | None = None  # the largest difference beyond rounding a pass let through (_remember)
        self._held: tuple[float, bool] | None = None  # model_precision(model), read at the first pass compared

    def __call__(self, fn: Callable[[Tensor], T], idx: Tensor, rows_of: Callable[[T], Tensor]) -> T:
        r = idx.numel()
        if r < 2:
            return fn(idx)
        picked = self.picked_rows(r)
        alone, drew = _alone(fn, idx, picked, rows_of, self.generators, self.model)
        out = fn(idx)
        if drew:
            return out  # the model draws noise: the rows alone drew other numbers than the chunk's
        values = rows_of(out)
        if (not isinstance(values, Tensor) or values.dim() == 0 or values.shape[0] != r
                or alone.shape != (len(picked), *values.shape[1:])):
            return out  # no values per row to compare
        stacked = values[picked]
        finite = stacked.reshape(len(picked), -1).isfinite().all(1).nonzero().flatten().tolist()  # one sync
        if len(finite) < len(picked):  # a row non-finite in the pass is not compared: its NaN is the audit's to name
            # (non-finite outputs), not the batch's (RevIN's 0 / 0 on a window set to one value: exact in the pass,
            # a rounding residue alone, 1.706)
            if not finite:
                return out
            picked, alone, stacked = [picked[i] for i in finite], alone[finite], stacked[finite]
        found = _same_rows(alone, stacked)
        if self._held is None:
            self._held = model_precision(self.model)
        bound = rounding_bound(values, self.model, held=self._held)
        rels = _relative(alone, stacked, found)
        beyond = [i for i, rel in enumerate(rels) if rel > bound]  # within 1%, maybe not rounding
        if all(same for _, same in found) and not beyond:
            return out
        states: list[str] = []
        held = weights_held(self.model)
        again, drew = _alone(fn, idx, picked, rows_of, self.generators, self.model, states)
        twice = _same_rows(again, alone)
        if not drew and not all(same for _, same in twice) and optimizer_state_kept(self.model, held):  # momentum
            raise StackedRowsError(
                f"Expected the {self.rows} that {self.what} stacks in one pass to give the same values at every pass, "
                f"but in a pass of {r} rows (flat rows {int(idx.min())}..{int(idx.max())}) rows {idx[picked].tolist()} "
                f"run alone twice differ by max |difference| {max(d for d, _ in twice):.3g}: {KEPT_OPTIMIZER_STATE}")
        if drew or not all(same for _, same in twice):
            return out  # rows that differ from themselves alone: noise from a generator no watch sees, not the batch
        if states and _reads_own_state(fn, idx, rows_of, values, self.generators, self.model):
            return out  # a state the model carries from call to call (`self.h = h.detach()`), which a row alone does not read
        if all(same for _, same in found):  # within the refusal's 1%, beyond rounding: remembered for one warning
            if max(_relative(again, alone)) <= bound:  # the rows alone give themselves again to rounding: not noise
                self._remember(alone, stacked, values, idx, picked, {i: rels[i] for i in beyond}, bound)
            return out
        # the end rows where one of them differs (both named, as they are compared), else the inner row
        shown = [0, len(picked) - 1] if not (found[0][1] and found[-1][1]) else [1]
        diff = max((d for d, _ in (found[i] for i in shown) if d == d), default=float("nan"))
        flat = idx[[picked[i] for i in shown]].tolist()
        which = (f"rows {flat} run alone give {_short(alone[shown])} and in the pass {_short(stacked[shown])}" if len(shown) > 1
                 else f"row {flat[0]} (drawn among its inner rows; its end rows agree) run alone gives {_short(alone[shown])} and "
                      f"in the pass {_short(stacked[shown])}")
        if stepped():  # a step of the model's own in the pass
            cause = f"{BATCH_STEP_CAUSE}; {BATCH_STEP_FIX}, or {self.way_out}"
        elif bool((alone.isnan() & ~stacked.isnan()).any()) or one_value_alone(alone, stacked):
            cause = BATCH_STATISTICS_CAUSE  # a statistic over the batch, NaN or constant for one row
        else:
            row = picked[shown[0] if len(shown) == 1 or not found[0][1] else shown[-1]]  # a row that differs
            cause = mixed_rows_cause(fn, idx, row, self.model, self.way_out) or f"{BATCH_CONTROL_CAUSE}, or {self.way_out}"
        raise StackedRowsError(
            f"Expected the {self.rows} that {self.what} stacks in one pass to give what they give alone, but in a pass "
            f"of {r} rows (flat rows {int(idx.min())}..{int(idx.max())}), {which} (max |difference| {diff:.3g}): {cause}")

    def _remember(self, alone: Tensor, stacked: Tensor, values: Tensor, idx: Tensor, picked: list[int],
                  beyond: dict[int, float], bound: float) -> None:
        """Keep, for :meth:`warn_differences`, the pass's largest difference beyond rounding (``beyond``: the rows of
        ``picked`` past ``bound``, :func:`~.rounding.rounding_bound`, with their differences on their scale) where it is the
        largest of the block so far."""
        i = max(beyond, key=beyond.__getitem__)
        rel = beyond[i]
        if self.worst is not None and self.worst["rel"] >= rel:
            return
        wide = values.detach().real.double() if values.is_complex() else values.detach().double()
        wide = wide[wide.isfinite()] if wide.numel() else wide
        self.worst = {"rel": rel, "diff": same_outputs(alone[i:i + 1], stacked[i:i + 1])[0], "rows": values.shape[0],
                      "row": int(idx[picked[i]]), "first": int(idx.min()), "last": int(idx.max()),
                      "alone": _short(alone[i:i + 1]), "stacked": _short(stacked[i:i + 1]),
                      "spread": float(wide.max() - wide.min()) if wide.numel() else float("nan"),
                      "bound": bound}

    def warn_differences(self) -> bool:
        """Warn (``UserWarning``, once per :func:`~.batching.remembered_fit` block: one audit) where a pass's rows alone
        differed from the pass beyond float rounding but within the refusal's 1% (a solver stopping on its batch's
        residual, a branch on a statistic of the batch that moves it a little), naming the largest difference on the
        row's scale and against the spread of the pass's values, which the effects are differences of; returns
        whether it warned.

        Examples:
            >>> import warnings
            >>> check = RowsAlone("An estimator")
            >>> with warnings.catch_warnings(record=True) as seen:
            ...     warnings.simplefilter("always")
            ...     _ = check(lambda idx: idx * (1 + 1e-3 * len(idx)), torch.arange(1.0, 5.0), lambda out: out)
            ...     check.warn_differences()
            True
            >>> print(str(seen[0].message)[:100])
            Expected the intervened rows that An estimator stacks in one pass to give what they give alone to fl
        """
        w = self.worst
        if w is None or not first_in_block(BEYOND_ROUNDING):
            return False
        warnings.warn(kinded(
            f"Expected the {self.rows} that {self.what} stacks in one pass to give what they give alone to float "
            f"rounding, but in a pass of {w['rows']} rows (flat rows {w['first']}..{w['last']}) row {w['row']} run alone "
            f"gives {w['alone']} and in the pass {w['stacked']}: max |difference| {w['diff']:.3g}, {100 * w['rel']:.2g}% "
            f"of the row's scale (1 + |value|; the refusal takes 1%, float rounding is taken to stay below {100 * w['bound']:.2g}%), "
            f"where the pass's values spread over {w['spread']:.3g} (max - min), the outputs the effects are differences "
            "of. The check runs three rows a pass, so other rows may differ more, and the results follow how many rows each "
            "pass stacks (`max_batch_size`, Captum's `internal_batch_size`): the model's forward depends a little on its "
            "batch, e.g. a solver loop that "
            "stops once the batch's residual is below its tolerance, `if (z_new - z).norm() < tol * z_new.norm(): "
            "break` (a deep-equilibrium model's, an adaptive ODE solver's), or another statistic of the batch. Make the "
            "forward per-sample (a solver's residual per row, `(z_new - z).norm(dim=1)`, its converged rows kept as they "
            f"are) for each sample's own effects, or {self.way_out}", BEYOND_ROUNDING),
            stacklevel=outside_package())  # its figures move between audit epochs: once per fit (kinded)
        return True

    def picked_rows(self, r: int) -> list[int]:
        """The rows of a pass of ``r`` rows (``r >= 2``) that run alone: its first and last (most apart in it) and, from
        3 rows on, one inner row drawn from the check's own generator (seeded at :data:`INNER_SEED`: the same rows at
        every run, no global stream moved), a new one at each pass: a pass whose ends alone take its branch and whose
        inner rows do not (a pass of samples and their baselines, ``[x; b]``) is seen where the draw falls on one."""
        if r < 3:
            return [0, r - 1]
        return [0, int(torch.randint(1, r - 1, (1,), generator=self._inner, device="cpu")), r - 1]


def _alone(fn: Callable[[Tensor], T], idx: Tensor, picked: list[int], rows_of: Callable[[T], Tensor],
           generators: tuple[torch.Generator, ...], model: nn.Module | None,
           states: list[str] | None = None) -> tuple[Tensor, bool]:
    """The ``rows_of`` values of the rows ``idx[picked]`` run alone, a pass of one row each under
    :func:`~.batching.alone_block` (concatenated), and whether a generator (``generators`` too) moved meanwhile (then
    put back as found); ``model``'s plain attributes put back after each of them, so that every row alone starts from
    the state its chunk's pass starts from, not from the one the rows alone before it left (a log whose length the
    forward reads: the third row alone read two entries more than the pass). ``states``, a list, gets the names of the
    state the passes set or changed (:meth:`~.kept_attributes.KeptAttributes.changes`: ``self.h = h.detach()``, the
    shape last seen), before it is put back."""
    parts: list[Tensor] = []
    with _held_state(model, generators, states) as held:
        try:
            with alone_block():
                for j, e in enumerate(picked):
                    if j and held.kept is not None:
                        _put_back(held.kept, model, states)
                    parts.append(rows_of(fn(idx[e:e + 1])))
        except Exception:  # a row alone that fails (a func that wants two rows): no comparison; the chunk's pass says its own
            parts = []
    drew = held.drew
    if not parts or not all(isinstance(p, Tensor) and p.dim() > 0 and p.shape[0] == 1 for p in parts):
        return torch.empty(0), drew
    return torch.cat(parts), drew


def _blocks(t: object, r: int, row: int) -> tuple[int, Tensor | None]:
    """``(fold, block)``: the rows of pass row ``row`` of ``t`` ``[R·fold, ...]`` (``R = r``), viewed ``[R, fold, ...]``;
    ``(0, None)`` for what is no tensor of a whole multiple of ``R`` rows."""
    if not isinstance(t, Tensor) or t.dim() == 0 or t.shape[0] < r or t.shape[0] % r:
        return 0, None
    fold = t.shape[0] // r
    return fold, t.detach().reshape(r, fold, *t.shape[1:])[row].clone()


def _module_rows(fn: Callable[[Tensor], object], rows: Tensor, row: int,
                 model: nn.Module) -> list[tuple[str, int, Tensor | None, Tensor | None]]:
    """Each leaf module call of ``model`` in ``fn(rows)``'s pass, in call order, as ``(name, fold, output block, first
    input's block)``: the rows of pass row ``row`` (:func:`_blocks`, the fold the output's)."""
    calls: list[tuple[str, int, Tensor | None, Tensor | None]] = []
    r = rows.numel()

    def hook(name: str, _m: nn.Module, args: tuple, out: object) -> None:
        fold, block = _blocks(out, r, row)
        calls.append((name, fold, block, _blocks(args[0], r, row)[1] if args else None))

    handles = []
    try:
        for n, m in model.named_modules():
            if n and next(m.children(), None) is None:
                handles.append(m.register_forward_hook(functools.partial(hook, n)))
        with alone_block():
            fn(rows)
    finally:
        for h in handles:
            h.remove()
    return calls


def mixed_rows_cause(fn: Callable[[Tensor], object], idx: Tensor, row: int, model: nn.Module | None,
                     way_out: str = WAY_OUT) -> str | None:
    """Where a pass's row ``row`` (of ``idx``) gave other values alone than in the pass: the first leaf module of
    ``model``, in call order, whose output for that row differs alone from in the pass while its input does not (to float
    rounding, :func:`~.rounding.rounding_bound`: a per-row module amplifies a difference its input holds within the
    refusal's 1%) (:func:`_module_rows`, two passes more, at a refusal only): it mixes the rows there. Named in :class:`RowsAlone`'s
    refusal, with the cause a module whose output folds rows per sample into the batch meets there (a temporal shift
    network's shift along the flattened ``[N·T, ...]`` frames moves frames from one clip to the next); ``None`` where
    none is found (the module calls differ, a pass fails, the rows mixed in functional code, no model): the general
    cause stands then. ``model``'s plain attributes and the generators are put back as found. ``way_out``: the
    refusal's last words (:class:`RowsAlone`'s, Captum's DeepLift's is no ``max_batch_size``). The cause and the
    advice apart: :func:`mixing_module` (the clean probe's refusal, :func:`~.sample_independence.check_samples_independent`,
    names them in its own words)."""
    found = mixing_module(fn, idx, row, model)
    return None if found is None else f"{found[0]}. {found[1]}, or {way_out}"


def mixing_module(fn: Callable[[Tensor], object], idx: Tensor, row: int,
                  model: nn.Module | None) -> tuple[str, str] | None:
    """:func:`mixed_rows_cause`'s ``(cause, advice)``, the advice without the caller's way out; ``None`` where no
    module is found."""
    if model is None:
        return None
    with _held_state(model) as held:
        try:
            together = _module_rows(fn, idx, row, model)
            held.kept.restore()
            alone = _module_rows(fn, idx[row:row + 1], 0, model)
        except Exception:  # noqa: BLE001 - a pass that fails here tells nothing: the general cause stands
            return None
    if [c[0] for c in together] != [c[0] for c in alone]:
        return None  # the two passes called other modules (a branch taken on the batch): the general cause stands
    for (name, fold, a, a_in), (_, fold_alone, b, b_in) in zip(together, alone):
        if a is None or b is None or fold != fold_alone or a.shape != b.shape or same_outputs(b, a)[1]:
            continue
        if (a_in is None or b_in is None or a_in.shape != b_in.shape or not same_outputs(b_in, a_in)[1]
                or _relative(b_in[None], a_in[None])[0] > rounding_bound(a_in, model)):
            # its input differs already, beyond rounding: mixed before it (the forward's own code), unnamed; within the
            # refusal's 1% is not enough, a per-row module amplifies what it is given (a LayerNorm given x + 0.05 *
            # x.mean(0), inputs near 100: its input 0.39% apart on the row's scale, its output 2.2%; named, wrongly, before)
            return None
        where = f"module {name!r} mixes the rows of the pass: its output for row {int(idx[row])} differs alone from in the pass, its input does not"
        if fold == 1:
            return f"{where} (attention or a statistic across the batch's rows, a shift or roll along dimension 0)", "Make it per-row"
        return (f"{where}; it folds {fold} rows per row of the pass into the batch ([R·{fold}, ...]), and a shift, roll "
                "or convolution along that folded dimension moves rows from one sample to the next (a temporal shift "
                "module that shifts the flattened [N·T, C, H, W] frames by one row gives frame 0 of a clip the last "
                "frame of the clip before it, in training too)",
                "View the rows back per sample and shift there, x.view(-1, T, *x.shape[1:]) along dimension 1")
    return None


def _put_back(kept: KeptAttributes, model: nn.Module | None, states: list[str] | None) -> None:
    """``kept``'s attributes of ``model`` put back, the names of those the passes changed added to ``states`` first
    (where given, each name once)."""
    if states is not None:
        states += [name for name, _ in kept.changed(model) if name not in states]  # type: ignore[arg-type]
    kept.restore()


def _reads_own_state(fn: Callable[[Tensor], T], idx: Tensor, rows_of: Callable[[T], Tensor], values: Tensor,
                     generators: tuple[torch.Generator, ...], model: nn.Module | None) -> bool:
    """Whether the chunk, run once more after its own pass (under :func:`~.batching.alone_block`, the state its pass
    set in place), gives other ``rows_of`` values than ``values`` (its pass's), or draws, or fails: the model reads the
    state it keeps (a recurrent ``self.h`` read where the batch size matches), which a row alone cannot. A state it only
    writes (``self.last_out = out.detach()``, kept for a figure) gives the same values: the rows are compared. The
    generators and ``model``'s attributes are put back as the chunk's pass left them."""
    with _held_state(model, generators) as held:
        try:
            with alone_block():
                again = rows_of(fn(idx))
        except Exception:  # another pass of the chunk fails: taken as reading its state, as before (not compared)
            return True
    return held.drew or not isinstance(again, Tensor) or again.shape != values.shape or not same_outputs(again, values)[1]


def _same_rows(a: Tensor, b: Tensor) -> list[tuple[float, bool]]:
    """:func:`~.sample_independence.same_outputs` of each row of ``a`` and ``b`` (``[k, ...]``) on its own scale
    (``1 + max |b[i]|``): each row's largest difference, and whether it is within. On the scale of both rows a row near
    the baseline took the other branch unseen (Captum's first interpolated input, ``s = 0.0016`` alone and ``0.016`` in
    the pass, beside a last row of 29.8: within 1% of 30.8)."""
    return [same_outputs(a[i:i + 1], b[i:i + 1]) for i in range(a.shape[0])]


def _relative(a: Tensor, b: Tensor, found: list[tuple[float, bool]] | None = None) -> list[float]:
    """Each row's largest difference of ``a`` and ``b`` (``[k, ...]``, floating point or complex) over its scale
    ``1 + max |b[i]|`` of its finite entries, as :func:`_same_rows` weighs it (``found``: its result for them, where
    known, not computed again); 0 for values that are neither (compared exactly), ``inf`` for a NaN difference."""
    if not (a.is_floating_point() or a.is_complex()) or not (b.is_floating_point() or b.is_complex()) or not a.shape[0]:
        return [0.0] * a.shape[0]
    diffs = [d for d, _ in (found if found is not None else _same_rows(a, b))]
    scales = row_scales(b).tolist()
    return [float("inf") if d != d else d / sc for d, sc in zip(diffs, scales)]


@dataclasses.dataclass
class _Held:
    """What :func:`_held_state` keeps: the generators' states, ``model``'s attributes (``None`` without a model), and,
    on leaving, whether a generator moved."""

    saved: list[tuple[torch.Generator, Tensor]]
    kept: KeptAttributes | None
    drew: bool = False


@contextlib.contextmanager
def _held_state(model: nn.Module | None, generators: tuple[torch.Generator, ...] = (),
                states: list[str] | None = None) -> Iterator[_Held]:
    """Passes run inside that leave no state behind: torch's and the model's generators and ``generators``
    (:func:`_generators`) put back where they moved (``drew``, read on leaving), and ``model``'s plain attributes
    (:func:`~.kept_attributes.keep_attributes`: values, numbers, helper objects) put back, the names of those the passes
    changed added to ``states`` first (where given: :func:`_put_back`); also on an exception."""
    held = _Held(_generators(generators),
                 keep_attributes(model, values=True, numbers=True, helpers=True) if model is not None else None)
    try:
        yield held
    finally:
        held.drew = _generators_moved(held.saved)
        if held.kept is not None:
            _put_back(held.kept, model, states)


def _generators(extra: tuple[torch.Generator, ...] = ()) -> list[tuple[torch.Generator, Tensor]]:
    """``(generator, state)`` of torch's global generators (the CPU one, the initialised CUDA ones), those the model holds
    (inside :func:`~.state.audit_mode`) and ``extra``. NumPy's and ``random``'s are left out (reading NumPy's state took
    140 us, a third of the check of a small MLP's chunk): a forward that draws from them is noise to the estimators'
    noise checks (:func:`~.noise.generator_states`), whose common random numbers run chunks of one block, unchecked."""
    saved = [(torch.default_generator, torch.default_generator.get_state())]
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        saved += [(g, g.get_state()) for g in torch.cuda.default_generators]
    return saved + [(g, g.get_state()) for g in (*active_generators(), *extra)]


def _generators_moved(saved: list[tuple[torch.Generator, Tensor]]) -> bool:
    """Whether a generator of ``saved`` moved; every one that did is put back to its saved state."""
    moved = False
    for g, state in saved:
        if not torch.equal(g.get_state(), state):
            g.set_state(state)
            moved = True
    return moved


def _short(values: Tensor) -> str:
    """The first values of ``values`` (4 at most), for the message."""
    flat = values.detach().flatten()
    shown = ", ".join(f"{float(v):.4g}" for v in flat[:4]) if flat.is_floating_point() else ", ".join(str(v.item()) for v in flat[:4])
    return f"[{shown}{', ...' if flat.numel() > 4 else ''}]"


@contextlib.contextmanager
def rows_alone_checked(what: str, generators: Sequence[torch.Generator] = (), model: nn.Module | None = None,
                       rows: str = "intervened rows", way_out: str = WAY_OUT) -> Iterator[None]:
    """Inside the block the row engine's chunks are checked by :class:`RowsAlone` (``what`` names the estimator in the
    refusal); inside another such block, the outer one's check (and name) stays.

    Args:
        what: the estimator, as the refusal names it.
        generators: generators the chunks draw from besides the global ones and the model's, as in :class:`RowsAlone`.
        model: the model the chunks run, as in :class:`RowsAlone`.
        rows: what the stacked rows are, as in :class:`RowsAlone`.
        way_out: the refusal's last words, as in :class:`RowsAlone`.

    Examples:
        >>> from lightning_causal.causal.engine.batching import map_rows
        >>> with rows_alone_checked("The estimator"):
        ...     map_rows(4, 4, lambda idx: idx * 1.0, torch.device("cpu"))
        tensor([0., 1., 2., 3.])
        >>> with rows_alone_checked("The estimator"):  # a pass whose rows depend on each other
        ...     map_rows(4, 4, lambda idx: idx * len(idx), torch.device("cpu"))
        Traceback (most recent call last):
            ...
        lightning_causal.causal.engine.stacked_rows.StackedRowsError: Expected the intervened rows that The estimator stacks in one pass to give what they give alone, ...
    """
    check = RowsAlone(what, generators, model, rows, way_out)
    with checked_chunks(check):
        yield
    check.warn_differences()  # an outer block's check ran the chunks instead: nothing remembered here
