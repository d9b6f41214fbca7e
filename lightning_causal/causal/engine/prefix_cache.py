"""Run a model's prefix once and its suffix on intervened rows: the cache every hidden-unit
estimator runs on (unit effects, their attribution screen, path interventions, carrier units).

:func:`cache_prefix` runs the probe once and returns a :class:`PrefixCache`: the layer's output
``h`` (``cache.value``), the model's output (``cache.output``), and a callable
``cache(value, rows)`` that returns the model's output for rows whose layer output is ``value``
and whose every other input comes from the samples ``rows`` (cached skip tensors and per-sample
forward arguments are taken by row). Three paths, tried in this order (``cache.path`` says which
ran, ``cache.reason`` why the faster ones did not):

- ``"fx"``: a ``torch.fx`` split (:mod:`~.suffix`); only the graph after the cut runs, with every
  value live at the cut (skip connections, attention masks) cached;
- ``"hooks"``: a module-hook split (:mod:`~.hook_split`) for models that do not trace (Hugging
  Face); module calls completed before the cut are answered from the cache. A run that reads a
  cached value the trial rows did not read (a branch taken by some rows only) switches the cache
  to full passes (``path`` becomes ``"full"``, ``reason`` says why);
- ``"full"``: full forward passes with the layer's output replaced by a hook.

On the ``"hooks"`` path, the modules after the layer that can run at the positions the model's
output reads (a sequence classifier's last layer after its attention: :mod:`~.read_positions`;
found on a few probe samples, checked on every sample during the probe run) run there only
(``cache.reads``). Every path gives the numbers of the full path (tested in float64); each fast
path is checked against the model on two trial rows before it is used. The paths' runners are in
:mod:`~.suffix_runners`; the check that the model treats its samples independently, run on every
cache, is in :mod:`~.sample_independence` (:func:`check_samples_independent`, importable from here too).

Examples:
    >>> import torch
    >>> from torch import nn
    >>> class Block(nn.Module):  # a skip connection crosses `body`
    ...     def __init__(self):
    ...         super().__init__()
    ...         self.body, self.head = nn.Linear(2, 2), nn.Linear(2, 1)
    ...     def forward(self, x):
    ...         return self.head(self.body(x) + x)
    >>> model, x = Block().eval(), torch.randn(3, 2)
    >>> with torch.no_grad():
    ...     cache = cache_prefix(model, x, "body")
    ...     rows = torch.tensor([0, 0, 2])
    ...     out = cache(torch.zeros(3, 2), rows)  # h := 0 for samples 0, 0 and 2
    >>> cache.path, torch.allclose(out, model.head(x[rows]))
    ('fx', True)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import torch
from torch import Tensor, nn

from lightning_causal.causal.engine.batching import rows_per_pass
from lightning_causal.causal.engine.checks import check_choice, check_int
from lightning_causal.causal.engine.folded_rows import unfold
from lightning_causal.causal.engine.forward import Forward, OutputSpec
from lightning_causal.causal.engine.hook_split import StubRead, hook_split, record_calls
from lightning_causal.causal.engine.interventions import (
    module_output,
    resolve_module,
)
from lightning_causal.causal.engine.layer_constants import constants_verdict
from lightning_causal.causal.engine.linear_update import LinearReaders
from lightning_causal.causal.engine.live_values import (
    check_rows,
    close,
    follows_samples,
    mixed_rows,
    trial_rows,
    value_plan,
)
from lightning_causal.causal.engine.live_values import (
    moved as moved_value,
)
from lightning_causal.causal.engine.read_positions import ProbeCheck, ReadSlices, find_read_slices
from lightning_causal.causal.engine.sample_independence import check_samples_independent
from lightning_causal.causal.engine.state import as_tuple
from lightning_causal.causal.engine.suffix import SplitRefused, fx_split
from lightning_causal.causal.engine.suffix_runners import Edit, FullRunner, FxRunner
from lightning_causal.causal.engine.unit_sites import (
    cached_output_hint,
    check_samples_first,
    is_model_output,
    tuple_reader,
    unread_element_refusal,
)

__all__ = ["PATHS", "PrefixCache", "cache_prefix", "check_samples_independent"]

PATHS = ("auto", "fx", "hooks", "full")
#: Suffix rows per probe sample from which the read-position cut is looked for: finding it costs a
#: few small forward passes (about 0.05 s on bench_prefix's 4-layer BERT, as much as the cut saves
#: on 4 head rows per sample there), and it saves a share of every row.
READ_CUT_MIN_ROWS = 8


class PrefixCache:
    """A model's prefix up to ``layer``, run once on the probe (see :func:`cache_prefix`).

    Args:
        forward: the prepared :class:`~lightning_causal.causal.engine.forward.Forward` of the model.
        layer: the layer's name.
        runner: runs the suffix: ``runner(value, rows)`` -> the model's return value for the layer
            output ``value`` of the probe samples ``rows``.
        value: the layer's output on the probe, as above.
        output: the model's (selected) output on the probe.
        path: ``"fx"``, ``"hooks"`` or ``"full"``, as above.
        reason: why the faster paths were not taken, as above.
        fallback: the runner of full passes that a run the path cannot answer falls back to; ``None``:
            none.

    Attributes:
        value: the layer's output ``h`` on the probe (element 0 of a tuple; its first call's).
        output: the model's (selected) output on the probe.
        path: ``"fx"``, ``"hooks"`` or ``"full"``: how suffixes run.
        reads: the modules after the layer that suffixes run at the positions the output reads
            only (:mod:`~.read_positions`; on the ``"hooks"`` path only: ``"full"`` is the reference,
            and a traced graph inlines the modules).
        reason: why the faster paths were not taken (``""`` when ``path == "fx"``).
        layer: the layer's name.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).eval()
        >>> x = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
        >>> with torch.no_grad():
        ...     cache = cache_prefix(model, x, "1")
        >>> isinstance(cache, PrefixCache), cache.layer, cache.path, cache.reason, cache.output.shape
        (True, '1', 'fx', '', torch.Size([5, 2]))
        >>> torch.equal(cache.value, torch.relu(model[0](x)))
        True
    """

    def __init__(self, forward: Forward, layer: str, runner: Callable[[Any, Tensor], Any], *,
                 value: Tensor, output: Tensor, path: str, reason: str,
                 fallback: Callable[[Any, Tensor], Any] | None = None) -> None:
        self.forward, self.layer, self._runner, self._fallback = forward, layer, runner, fallback
        self.value, self.output, self.path, self.reason = value, output, path, reason
        self.reads = ReadSlices([])
        self.linear = LinearReaders(nn.Identity())
        self.fold = 1  # rows per sample of the layer's output ([N·fold, ...]; ``value`` is then its [N, fold, ...] view)
        # the layer's calls in one forward pass: the most of the trial pass and (hooks path) the probe pass, as a layer
        # called again on a branch some samples take (`if mask.any(): h = layer(h2)`) runs more often there; 0: not counted
        self.calls = 0
        #: whether the model's forward differentiates through the layer itself (forces ``-dE/dx`` by
        #: ``torch.autograd.grad``): its output on the probe records autograd although the prefix ran under ``no_grad``,
        #: and the layer's output given as constants changes it (:func:`prefix_cache` checks that on every probe sample;
        #: a forward that only switches autograd on gives it back as it was, and only such a forward takes the fast paths)
        self.records_gradients = bool(output.requires_grad)
        #: with :attr:`records_gradients`: the forward differentiates with respect to the layer's own output or a value
        #: computed from it (it returns a derivative such as ``dy/dh``, ``torch.autograd.grad(y, h)``, or ``dy/dz`` with
        #: ``z = tanh(h)``), not an input before it: given as constants, that output failed torch's "One of the
        #: differentiated Tensors does not require grad" (:func:`prefix_cache`)
        self.differentiates_layer = False

    @property
    def edits_value(self) -> bool:
        """Whether an edit (a callable ``value`` of :meth:`__call__`) is applied to the rows of :attr:`value` and to
        nothing else: on the ``"fx"`` and ``"hooks"`` paths, which give the layer's first call the edit of the cached
        ``value``'s rows, for a layer called once per forward pass (a layer called again is edited in its later
        outputs too, which ``value`` does not hold; counted in the trial pass of two samples and, on the hooks path, in
        the pass over the probe, where a branch that some samples take calls it again) whose rows are not folded into
        the batch. The full path edits the
        layer's output recomputed in each pass. Where it holds, an edit that leaves the rows of ``value`` as they are,
        bit for bit, runs the clean samples: the hidden-unit estimators leave such rows unrun
        (:func:`~lightning_causal.causal.effects.unit_rows.moving_rows`)."""
        return self.path in ("fx", "hooks") and self.calls == 1 and self.fold == 1

    def __call__(self, value: Tensor | Edit, rows: Tensor) -> Tensor:
        """The model's (selected) output for ``R`` rows of samples ``rows`` ``[R]``.

        Args:
            value: the layer's output for the rows ``[R, ...]``, or a callable that maps the layer's
                clean output of the rows to it; a callable is applied to later calls of the layer
                too (a layer used twice), as the full-forward intervention hook does.
            rows: the probe sample of each row (cached values and forward arguments follow it).
        """
        self.prepare(value)
        with self.reads.applied(rows), self.linear.applied(rows, value):
            try:
                return self.forward.select(self._runner(value, rows), rows=rows.numel())
            except StubRead as err:  # the hook split cannot answer these rows: full passes from now on
                if self._fallback is None:
                    raise
                self._runner, self._fallback, self.path = self._fallback, None, "full"
                self.linear.clear()
                self.reason = "; ".join(r for r in (self.reason, f"hooks: {err} (a branch taken by some rows only)") if r)
                return self.forward.select(self._runner(value, rows), rows=rows.numel())

    def prepare(self, value: Tensor | Edit) -> None:
        """Run the one-time check that a run of ``value`` needs first: the linear update is tried on
        two trial rows before the first run that would use it, once per kind of unit (``(unit_dim, unit_size)``: the
        last dimension's neurons of a linear reader, a convolution's channels; heads wider than an eighth of the inputs
        never use it: no check run).
        :meth:`__call__` calls it; a caller that wraps its calls in hooks that count or stop module
        calls (the attribution frontier stops at its module) calls it before entering them, so that
        the trial runs neither stop there nor advance the hooks' counts.

        Args:
            value: the layer output (or edit) of the coming run.
        """
        key = self.linear.unchecked(value)
        if key is not None:
            self.linear.checked.add(key)
            _check_linear_update(self, *key)

    def rows_per_pass(self, max_batch_size: int | None = None) -> int:
        """Rows per suffix call within the engine's memory budget (or ``max_batch_size``).

        Args:
            max_batch_size: rows per suffix call when given; ``None``: from the memory budget.
        """
        return rows_per_pass(self.forward.model, (self.value,), max_batch_size, forward=self)


def _fx_cache(forward: Forward, xs: tuple[Tensor, ...], layer: str, module: nn.Module, _cut: bool) -> tuple[PrefixCache, ReadSlices]:
    """The torch.fx split (no read-position cut: a traced graph inlines the modules it would hook); the linear layers
    that read the layer's output in the probe's recorded pass are answered by the update (:mod:`~.linear_update`)."""
    args, kwargs = forward.args.take(None)
    split = fx_split(forward.model, layer, (*xs, *args), kwargs)
    n = xs[0].shape[0]

    def record(rows: Tensor | None) -> tuple[Any, ...]:
        a, kw = forward.args.take(rows)
        inputs = xs if rows is None else tuple(x[rows] for x in xs)
        return split.recorder(*split.binding.values((*inputs, *a), kw))

    rows_one, rows_two = trial_rows(n, xs[0].device)
    try:
        one, two = record(rows_one), record(rows_two)
    except Exception as err:  # noqa: BLE001 - the model's own errors come back from the real model's passes
        # torch.fx records torch.autograd.grad but not `with torch.enable_grad()` (run at trace time): a forward
        # taking gradients fails in the traced graph under the prefix's no_grad, where the model runs
        raise SplitRefused(f"the traced graph fails where the model runs ({type(err).__name__}: {str(err)[:120]}; "
                           "torch.fx does not record `with torch.enable_grad()`)") from err
    plans = [value_plan(a, b) for a, b in zip(one[2:], two[2:])]
    bad = [name for name, p in zip(split.live_names, plans) if p is None]
    if bad or value_plan(one[1], two[1]) != "rows":
        raise SplitRefused(f"values crossing the cut depend on the batch size: {bad or [layer]}")
    if not close(forward.select(two[0]), forward(*(x[rows_two] for x in xs), rows=rows_two)):
        raise SplitRefused("the traced graph does not reproduce the model's output")
    readers = LinearReaders(module, entry=split.suffix)  # the traced suffix is given the rows' layer output
    with readers.recording(forward.model):
        out, h, *live = record(None)
    if not all(check_rows(p, v, n) for p, v in zip(plans, live)):
        raise SplitRefused("values crossing the cut do not have one row per sample")
    rows_mixed = mixed_rows(n, xs[0].device)
    if not follows_samples(plans, live, record(rows_mixed)[2:], rows_mixed):
        raise SplitRefused("values crossing the cut depend on the rows' places in the batch, not on their samples")
    runner = FxRunner(split, module, h, live, plans)
    if not close(forward.select(runner(h[rows_two], rows_two)), forward.select(out)[rows_two]):
        raise SplitRefused("the suffix does not reproduce the model's output")
    cache = PrefixCache(forward, layer, runner, value=h, output=forward.select(out), path="fx", reason="")
    readers.value, cache.linear = h, readers
    return cache, ReadSlices([])


def cache_prefix(
    model: nn.Module,
    inputs: Tensor | tuple[Tensor, ...],
    layer: str,
    *,
    output: OutputSpec = None,
    additional_forward_args: Any = None,
    path: str = "auto",
    rows_per_sample: int = 0,
) -> PrefixCache:
    """Run ``model`` once on ``inputs`` and cache everything its suffix after ``layer`` needs.

    Call it inside :func:`~lightning_causal.causal.engine.state.audit_mode` (evaluation mode; the
    prefix itself runs without autograd, suffix calls follow the caller's grad mode).

    Args:
        model: any ``nn.Module``.
        inputs: a tensor or a tuple of tensors ``[N, ...]``.
        layer: module name; a module returning a tuple is cut at element 0.
        output: which tensor of the return value to explain, as in
            :class:`~lightning_causal.causal.engine.forward.Forward`.
        additional_forward_args: extra forward arguments, as in
            :class:`~lightning_causal.causal.engine.forward.Forward` (per-sample forward arguments
            follow their rows in every path).
        path: ``"auto"`` (fx, else hooks, else full), or one path forced (``"fx"`` and ``"hooks"``
            raise ``ValueError`` when impossible).
        rows_per_sample: the suffix rows each probe sample will run; from
            :data:`READ_CUT_MIN_ROWS` on, the ``"hooks"`` path looks for modules to run at the
            positions the output reads only (``cache.reads``; :mod:`~.read_positions`).

    Returns:
        :class:`PrefixCache`.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).eval()
        >>> x = torch.randn(5, 3, generator=torch.Generator().manual_seed(0))
        >>> with torch.no_grad():
        ...     cache = cache_prefix(model, x, "0")
        ...     out = cache(torch.zeros(2, 4), torch.tensor([0, 3]))  # h := 0 in samples 0 and 3
        >>> cache.path, cache.value.shape, torch.allclose(out, model[2].bias.expand(2, 2))  # ReLU(0) = 0: the bias
        ('fx', torch.Size([5, 4]), True)
    """
    xs = as_tuple(inputs)
    forward = Forward(model, output=output, additional_forward_args=additional_forward_args, num_samples=xs[0].shape[0])
    return prefix_cache(forward, xs, layer, path=path, rows_per_sample=check_int("rows_per_sample", rows_per_sample, minimum=0))


def prefix_cache(forward: Forward, xs: tuple[Tensor, ...], layer: str, *, path: str = "auto",
                 rows_per_sample: int = 0, fold: int = 1, one_row: bool = False) -> PrefixCache:
    """:func:`cache_prefix` for a prepared :class:`Forward` (what the estimators call).

    ``fold > 1``: the layer's output folds ``fold`` rows per sample into the batch
    (:mod:`~.folded_rows`); full passes only, and the cache's ``value`` is its ``[N, fold, ...]`` view.

    Args:
        forward: the model's prepared :class:`Forward`.
        xs: the probe inputs ``[N, ...]``.
        layer: module name, as in :func:`cache_prefix`.
        path: as in :func:`cache_prefix`.
        rows_per_sample: as in :func:`cache_prefix`.
        fold: rows per sample the layer's output folds into the batch (an integer >= 1), as above.
        one_row: the estimator runs every row alone, its clean rows too (``max_batch_size=1``): the probe's check of
            :func:`~.sample_independence.check_samples_independent` passes a forward that depends on its batch.
    """
    check_choice("path", path, PATHS)
    module = resolve_module(forward.model, layer)
    reasons = [f"the layer folds {fold} rows per sample into the batch: full passes"] if fold > 1 else []
    with torch.no_grad():
        for name, build in (("fx", _fx_cache), ("hooks", _hooks_cache)):
            if path not in ("auto", name) or fold > 1:
                continue
            try:
                cache, reads = build(forward, xs, layer, module, rows_per_sample >= READ_CUT_MIN_ROWS)
                _check_trial_pass(cache, xs, module, compare=True)
                if cache.records_gradients and _differentiates_through(cache, xs, module):
                    raise SplitRefused("the forward differentiates through the layer itself (torch.autograd.grad: forces "
                                       "-dE/dx), and only full passes keep the graph of the layer's inputs")
            except SplitRefused as err:
                if path == name:
                    raise ValueError(f"Cannot split the model at {layer!r} with path={name!r}: {err}") from err
                reasons.append(f"{name}: {err}")
                continue
            cache.reason = "; ".join(reasons)
            _check_samples_independent(cache, xs, one_row)
            _use_read_slices(cache, xs, module, reads)
            cache.records_gradients = False  # a forward differentiating through the layer was refused above
            return cache
        cache = _full_cache(forward, xs, layer, module, "; ".join(reasons) or "forced", fold)
        _check_trial_pass(cache, xs, module, compare=False)
        _check_samples_independent(cache, xs, one_row)
        cache.records_gradients = cache.records_gradients and _differentiates_through(cache, xs, module)
        return cache


def _differentiates_through(cache: PrefixCache, xs: tuple[Tensor, ...], module: nn.Module) -> bool:
    """Whether a model whose output records autograd under ``no_grad`` differentiates through the layer in its
    forward (``torch.autograd.grad(E.sum(), x)`` with ``x`` before the layer): the probe's full pass with the layer's
    output given back as a constant fails or gives another output than without
    (:func:`~.layer_constants.constants_verdict`, the causal graph's check too: every probe sample, from the same RNG
    state). A forward that only switches autograd on (``with torch.enable_grad(): return self.net(x)``) gives the
    output back as it was: a function of the layer's values, which the first-order estimates linearise; the fast
    paths, which answer the prefix as constants, serve it. A constants pass that fails counts only where the plain
    pass runs; where that fails too (out of memory), the constants pass's error is raised. One that fails with torch's
    "One of the differentiated Tensors does not require grad" differentiates with respect to the layer's own output or
    a value computed from it (``dy/dh``): ``cache.differentiates_layer`` says so, for the estimators' words. Outputs
    that differ between two plain passes too (noise no watch restores) count as differentiating, as the safe side."""
    verdict = constants_verdict(cache.forward, xs, [module])
    cache.differentiates_layer = verdict.of_layer_itself
    return verdict.kind != "same"


def _use_read_slices(cache: PrefixCache, xs: tuple[Tensor, ...], module: nn.Module, reads: ReadSlices) -> None:
    """Run the suffix's last modules at the read positions only, if that passes the trial pass too."""
    if not reads:
        return
    cache.reads = reads
    try:
        _check_trial_pass(cache, xs, module, compare=True)
    except SplitRefused:
        cache.reads = ReadSlices([])


def _check_linear_update(cache: PrefixCache, unit_dim: int, unit_size: int) -> None:
    """Keep the update of the layers reading the cached output (:mod:`~.linear_update`) only if two trial rows with
    their unit 0 (``unit_size`` wide, of dimension ``unit_dim``: a linear layer's input, a convolution's channel) moved
    give the output the layers' own products give."""
    _, rows = trial_rows(cache.value.shape[0], cache.value.device)

    def one_moved(h: Tensor) -> Tensor:
        moved = h.clone()
        unit = moved.narrow(unit_dim, 0, unit_size)
        unit.copy_(1.0 - 0.5 * unit)
        return moved

    one_moved.changed_units = (torch.zeros_like(rows), unit_dim, unit_size)  # type: ignore[attr-defined]

    linear = cache.linear
    with torch.no_grad():  # as the suffix runs that use it (under autograd the layers run as usual)
        updated = cache(one_moved, rows)
        cache.linear = LinearReaders(nn.Identity())
        try:
            plain = cache(one_moved, rows)
        finally:
            cache.linear = linear
    if not close(updated, plain):
        cache.linear.clear()


def _check_samples_independent(cache: PrefixCache, xs: tuple[Tensor, ...], one_row: bool = False) -> None:
    check_samples_independent(cache.forward, xs, cache.output, f"Intervening on {cache.layer!r}", one_row=one_row)


def _check_trial_pass(cache: PrefixCache, xs: tuple[Tensor, ...], module: nn.Module, *, compare: bool) -> None:
    """One full forward pass of two trial rows with the layer's output moved by a hook.

    - ``compare``: the suffix given the moved output must equal it (a model that skips the
      layer's module on some code path, e.g. a fused fast path, is caught here).
    - A module that returns a tuple is cut at element 0; if the model's output does not move when
      element 0 does (an LSTM whose model reads ``h_n`` from element 1), every effect would be 0:
      ``ValueError`` instead of answering that silently. The same for a Hugging Face
      ``ModelOutput`` whose first field the model does not read (``bert``'s ``last_hidden_state``
      under a classifier that reads ``pooler_output``).
    """
    _, rows = trial_rows(cache.value.shape[0], cache.value.device)
    moved = moved_value(cache.value[rows], cache.value)  # integer sites (ids, codes) stay integers
    returned: list[object] = []
    handle = module.register_forward_hook(lambda _m, _i, out: returned.append(out))
    try:
        # every element moved, its graph kept where the forward records gradients through the layer (forces -dE/dx)
        full = cache.forward.select(FullRunner(cache.forward, xs, module, cache.fold, clean=lambda _rows: moved)(moved, rows))
    finally:
        handle.remove()
    cache.calls = max(cache.calls, len(returned))  # the probe pass's count where taken (_hooks_cache)
    out = returned[0] if returned else None
    if is_model_output(out) and len(out) > 1 and close(full, cache.output[rows]):
        fields = list(out.keys())
        raise ValueError(
            f"Expected the model's output to depend on field {fields[0]!r} of module {cache.layer!r}'s output (a "
            f"Hugging Face {type(out).__name__} with fields {fields}; the intervention sets its first field), but it "
            f"did not change when {fields[0]!r} did: the model reads another field (a sequence classifier reads "
            "`pooler_output`). Intervene on the module that computes the field the model uses (e.g. `bert.pooler` "
            "or `bert.encoder`'s last layer)")
    if (isinstance(out, (tuple, list)) and len(out) > 1 and close(full, cache.output[rows])
            and (len(returned) == 1 or close(_every_call_moved(cache, xs, module, rows), cache.output[rows]))):
        one = torch.zeros(1, dtype=torch.long, device=xs[0].device)
        reader = tuple_reader(cache.forward.model, module, lambda: cache.forward(*(x[:1] for x in xs), rows=one))
        raise ValueError(unread_element_refusal(cache.layer, reader))
    if compare and not close(cache(moved, rows), full):
        raise SplitRefused("the suffix does not follow a changed layer output as the full forward pass does")


def _every_call_moved(cache: PrefixCache, xs: tuple[Tensor, ...], module: nn.Module, rows: Tensor) -> Tensor:
    """The model's selected output for trial ``rows`` with element 0 of every call of ``module`` moved, for
    :func:`_check_trial_pass`: a module called several times whose first call's element 0 the model does not read (a
    GRU run chunk by chunk, each chunk from the state the one before returned, the output read at the last chunk)."""
    with torch.no_grad():
        return cache.forward.select(FullRunner(cache.forward, xs, module, cache.fold)(moved_value, rows))


@contextlib.contextmanager
def _together(*contexts: contextlib.AbstractContextManager) -> Iterator[None]:
    with contextlib.ExitStack() as stack:
        for context in contexts:
            stack.enter_context(context)
        yield


def _hooks_cache(forward: Forward, xs: tuple[Tensor, ...], layer: str, module: nn.Module, cut: bool) -> tuple[PrefixCache, ReadSlices]:
    """The hook split, and (``cut``) the modules after the layer that can run at the read positions
    only (found on a few probe samples, checked on every sample during the probe run)."""
    check = ProbeCheck(find_read_slices(forward, xs, module) if cut else ReadSlices([]))
    readers = LinearReaders(module)
    split, rec = hook_split(forward, xs, module, around=_together(check.context(), readers.recording(forward.model)))
    with torch.enable_grad():  # the check backpropagates through the output's selection (`output=` a callable) too
        output = forward.select(rec.output)
    reads = check.finish(output)
    value = _without_graph(module_output(rec.cut_output, layer))
    cache = PrefixCache(forward, layer, split.run, value=value, output=output.detach(), path="hooks", reason="",
                        fallback=FullRunner(forward, xs, module, clean=value))
    cache.records_gradients = bool(output.requires_grad)
    readers.value, cache.linear = cache.value, readers
    # the layer's calls in the pass over the probe, whose record names every module call (a branch the trial rows do not take)
    cache.calls = sum(split.modules.get(name) is module for name in rec.names)
    return cache, reads


def _full_cache(forward: Forward, xs: tuple[Tensor, ...], layer: str, module: nn.Module, reason: str,
                fold: int = 1) -> PrefixCache:
    try:
        rec = record_calls(forward, xs, module, None, keep=lambda _seq: False)
    except SplitRefused as err:
        raise ValueError(
            f"Expected module {layer!r} to be called by the model's forward, but it did not run in the pass over the probe "
            "(it ran in an earlier pass): a module on some branches only, or one the model skips at random (stochastic "
            "depth drawing random numbers in eval mode) runs in some passes only and cannot be intervened on. Name a "
            "module the model calls in every pass, or make the skip deterministic in eval mode (`if self.training and ...`)"
            + cached_output_hint(forward.model)
        ) from err
    h = _without_graph(module_output(rec.cut_output, layer))
    n = xs[0].shape[0]
    if fold > 1 and h.shape[0] == n * fold:
        h = unfold(h, n)
    check_samples_first(layer, h.shape, n)
    output = forward.select(rec.output)
    cache = PrefixCache(forward, layer, FullRunner(forward, xs, module, fold, clean=h), value=h,
                        output=output.detach(), path="full", reason=reason)
    cache.records_gradients = bool(output.requires_grad)
    cache.fold = fold
    return cache


def _without_graph(value: Tensor) -> Tensor:
    """``value`` without the autograd graph that a forward taking gradients itself (forces ``-dE/dx``) records even
    under ``no_grad``: the cache would hold the probe pass's whole graph for its lifetime (at 8192 samples of a
    width-1024 energy MLP, 190 MiB beside a value of 32 MiB). Other values are returned as they are (the same
    tensor: the linear update matches the layers that read it by identity)."""
    return value.detach() if value.requires_grad else value
