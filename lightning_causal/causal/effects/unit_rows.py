"""Rows of the hidden-unit estimators: row ``r`` of a flat index applies intervention ``k`` to
unit ``u`` of sample ``s`` (``r = (k · U + u) · N + s``), as an edit of the layer's output, and
which of them change the layer's output at all (:func:`moving_rows`; :func:`moving_units`, the test the other
hidden-unit row engines share); the loops that run only those are
:mod:`~lightning_causal.causal.engine.unmoved_rows`' (``map_moving``, ``each_moving``)."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

from lightning_causal.causal.engine.ablation import differs, replace_units, replace_units_
from lightning_causal.causal.engine.batching import (
    current_shard,
    each_chunk,
    rows_per_pass,
)
from lightning_causal.causal.engine.folded_rows import unfold
from lightning_causal.causal.engine.intervention_hooks import (
    FEWER_ROWS_FIX,
    OTHER_ROWS_CAUSE,
    fewer_rows,
    fewer_rows_cause,
)
from lightning_causal.causal.engine.interventions import (
    Intervention,
    MeanOf,
    Patch,
    Resample,
    Scale,
    SetTo,
    Zero,
)
from lightning_causal.causal.engine.prefix_cache import PrefixCache
from lightning_causal.causal.engine.units import Layout, unit_sums

__all__ = ["moving_rows", "moving_units", "row_values", "unit_rows"]

#: the interventions whose value on a row is computed from that row's clean values or from data fixed beforehand, by
#: the same elementwise code on any rows (their exact types: a subclass may compute its values otherwise); a
#: :class:`Patch` takes each sample's own source row. :class:`Resample` draws donors (skipping rows would change
#: the other rows' draws) and an intervention of one's own may compute anything: their rows always run.
COMPARABLE = (Zero, SetTo, MeanOf, Scale, Patch)

Edit = Callable[[Tensor], Tensor]
#: ``values(k, part, samples)``: the values value set ``k`` sets on the rows ``part`` of the samples ``samples``
Values = Callable[[int, Tensor, Tensor], Tensor]


def row_values(ivs: Sequence[Intervention], k: Tensor, h: Tensor, drawn: dict | None = None,
               samples: Tensor | None = None) -> Tensor:
    """Intervened values of each row ``r`` of ``h`` under intervention ``ivs[k[r]]``.

    ``samples`` (the sample index of each row) gives a :class:`Patch` its own sample's source row;
    without it a :class:`Patch` takes ``h``'s rows for the samples in order (and refuses another count).

    ``drawn`` (a dict the caller keeps for one set of rows) holds the values of a
    :class:`Resample` once drawn, so that every call of a layer that runs several times per pass
    gets the same donor per row ("one draw per row", whatever the chunking), not a new draw per call.
    """

    def values(iv: Intervention, part: Tensor, rows: Tensor | None) -> Tensor:
        if isinstance(iv, Patch) and rows is not None:
            return iv.sample_values(part, rows)
        if drawn is None or not isinstance(iv, Resample):
            return iv.values_like(part)
        key = (id(iv), tuple(part.shape), part.dtype, part.device)
        if key not in drawn:
            drawn[key] = iv.values_like(part)
        return drawn[key]

    if len(ivs) == 1:
        return values(ivs[0], h, samples).expand_as(h)
    vals = torch.empty_like(h)
    for kk in k.unique().tolist():
        sel = k == kk
        vals[sel] = values(ivs[kk], h[sel], None if samples is None else samples[sel]).expand_as(h[sel])
    return vals


def _check_patch_sources(ivs: Sequence[Intervention], n: int) -> None:
    """Refuse a :class:`Patch` whose ``source`` does not hold one row per sample explained (``n``): row ``i`` of
    the source is sample ``i``'s."""
    for iv in ivs:
        if isinstance(iv, Patch) and iv.source.shape[0] != n:
            raise ValueError(
                f"Expected argument `source` of {iv!r} to hold one row per sample explained ({n}) but got "
                f"{list(iv.source.shape)}: Patch pairs source row i with sample i (record it on the {n} paired inputs)")


#: a later call of a unit's layer on a forward argument's rows (:func:`unit_rows`' refusal)
SUPPORT_ROWS_CAUSE = ("a prototypical network's embedding of its support set, whose prototypes an intervention there would "
                      "move as well: compute the prototypes once, keep them as a buffer and explain the queries, "
                      "docs/your_model.md")


def unit_rows(ivs: Sequence[Intervention], units: Tensor, layout: Layout, n: int, *, idx: Tensor,
              fold: int = 1) -> tuple[Edit, Tensor]:
    """``(edit, samples)`` of the flat rows ``idx``: ``edit(h)`` replaces unit ``u`` of each row by
    its intervention's value (applied to the layer's output of those rows).

    ``fold > 1``: the layer's output holds ``fold`` rows per row of the pass, one row's after the
    other (``[R·fold, ...]``, :mod:`~lightning_causal.causal.engine.folded_rows`); the edit works on
    its view ``[R, fold, ...]``, on which ``ivs`` and ``layout`` name the units
    (:func:`~lightning_causal.causal.engine.folded_rows.unfolded_intervention`).

    A layer called again in the forward pass gets the edit at every call, as :func:`intervene`
    applies it: the units are found in each call's own output (a shared linear applied to
    ``[N, D]`` and then to ``[N, T, D]`` with ``unit_dim=-1``: the last dimension both times). A
    call whose output does not hold one row per row, or another number of units, is refused. A
    :class:`Resample` draws its donors once for these rows, used at every call and every run of them;
    a :class:`Patch` gives each row its own sample's source row.
    """
    _check_patch_sources(ivs, n)
    ku, s = idx // n, idx % n
    kk, u = ku // units.numel(), units[ku % units.numel()]

    def checked_layout(h: Tensor) -> Layout:
        lay = ivs[0].layout(h) if h.dim() > 1 else layout
        if h.shape[0] != u.shape[0] or fold > 1 and h.shape[1] != fold or lay.num_units != layout.num_units:
            fewer = fewer_rows(h.shape[0], u.shape[0]) and lay.num_units == layout.num_units and fold == 1  # 0: all halted
            cause = fewer_rows_cause(h.shape[0], u.shape[0]) if fewer else OTHER_ROWS_CAUSE
            raise ValueError(
                f"Expected every call of the layer in a forward pass to return one row per row of the pass "
                f"({u.shape[0]}) with {layout.num_units} units, as its first call does, but a later call returned "
                f"{list(h.shape)} ({lay.num_units} units on dimension {lay.dim}): {cause}; or a module run on a forward "
                f"argument's rows too ({SUPPORT_ROWS_CAUSE}). Name a module called once, or one whose calls all keep the "
                "samples on dimension 0" + (f" ({FEWER_ROWS_FIX})" if fewer else ""))
        return lay

    drawn: dict = {}  # Resample's donors of these rows, drawn at the first call

    def view(h: Tensor) -> Tensor:  # [R·fold, ...] as [R, fold, ...]; a wrong row count is left for checked_layout
        return h if fold == 1 or h.shape[0] != u.shape[0] * fold else unfold(h, u.shape[0])

    def edit(h: Tensor) -> Tensor:
        v = view(h)
        lay = checked_layout(v)
        return replace_units(v, u, row_values(ivs, kk, v, drawn, s), lay.dim, unit_size=lay.unit_size).reshape(h.shape)

    def in_place(h: Tensor) -> Tensor:  # the same, written into a fresh copy of the layer's output
        v = view(h)
        lay = checked_layout(v)
        return replace_units_(v, u, row_values(ivs, kk, v, drawn, s), lay.dim, unit_size=lay.unit_size).reshape(h.shape)

    edit.in_place = in_place  # type: ignore[attr-defined]  # what the prefix cache's runners call on their own copy
    edit.changed_units = (u, layout.dim, layout.unit_size)  # type: ignore[attr-defined]  # what the prefix cache's linear update reads
    return edit, s


def moving_rows(cache: PrefixCache, ivs: Sequence[Intervention], units: Tensor, layout: Layout) -> Tensor | None:
    """``[K · U · N]`` booleans in the flat row order of :func:`unit_rows`: does the row change the layer's output?
    ``None``: every row must run.

    A row whose intervention sets unit ``u`` of sample ``s`` to the values it already holds there, bit for bit
    (:func:`~lightning_causal.causal.engine.ablation.differs`: ``-0.0`` and ``0.0`` told apart), e.g. ``Zero()`` on
    a ReLU neuron at 0 on that sample or a conv channel at 0 at every position, runs the clean sample: its output
    is the clean output and, alone (``K = 1``), its effect is exactly 0. The estimators leave such rows unrun. The
    rows are compared where equality is exact by construction only, else ``None``:

    - the cache edits its cached ``value`` and nothing else (:attr:`PrefixCache.edits_value`: the ``"fx"`` or
      ``"hooks"`` path, a layer called once per pass, no folded rows; not the full passes of a model that draws
      noise), so that ``value``'s rows are what the edit replaces;
    - every intervention is one of :data:`COMPARABLE` (exactly that type), its values computed on ``value`` by the
      code the rows run (:func:`row_values`; a :class:`Patch` with each sample's source row);
    - the rows are not shared among processes (:func:`moving_units`).

    Args:
        cache: the layer's :class:`~lightning_causal.causal.engine.prefix_cache.PrefixCache`.
        ivs: the interventions ``K``, as :func:`unit_rows` takes them.
        units: the unit indices ``[U]``.
        layout: the layer's :class:`~lightning_causal.causal.engine.units.Layout`.
    """
    if not cache.edits_value or any(type(iv) not in COMPARABLE for iv in ivs):
        return None
    h = cache.value
    _check_patch_sources(ivs, h.shape[0])  # the refusal unit_rows gives, before the source is indexed by sample
    one = torch.zeros(1, dtype=torch.long, device=h.device)  # each row's intervention: the one alone

    def values(k: int, part: Tensor, samples: Tensor) -> Tensor:
        return row_values([ivs[k]], one.expand(samples.shape[0]), part, samples=samples)

    return moving_units(h, values, len(ivs), units, layout)


def moving_units(h: Tensor, values: Values, count: int, units: Tensor, layout: Layout) -> Tensor | None:
    """``[K · U · N]`` booleans, row ``(k · U + u) · N + s`` (the flat order of :func:`unit_rows`): does setting unit
    ``units[u]`` of sample ``s`` of ``h`` ``[N, ...]`` to ``values(k, h[samples], samples)`` (``[R, ...]`` or
    broadcastable to it: the values the row's run sets) change any of its elements, bit for bit
    (:func:`~lightning_causal.causal.engine.ablation.differs`: ``-0.0`` and ``0.0`` told apart)? ``K = count``.
    ``None`` where the rows are shared among processes (:func:`~lightning_causal.causal.engine.batching.sharded_rows`):
    each process's own ``h`` might differ in a last bit and give another count of rows to gather, so every row runs.

    The one test of "this unit's row runs the clean sample" of the hidden-unit row engines: :func:`moving_rows`
    (``unit_effects``' exact rows and ``method="attribution"``'s per-row frontier runs), ``causal_graph``'s sweeps
    (:func:`~lightning_causal.causal.structure.path_effects.path_effects_from`: a unit at the baseline) and
    :func:`~lightning_causal.causal.scm.fairness.carrier_unit_effects` (a unit whose counterfactual activation is its
    factual one). The caller says where a row that changes no element of ``h`` computes what the clean sample
    computes (``h`` is what its runs edit, once per pass, no noise drawn); its rows then go to
    :func:`~lightning_causal.causal.engine.unmoved_rows.map_moving` /
    :func:`~lightning_causal.causal.engine.unmoved_rows.each_moving`.

    The samples are compared in chunks (:func:`~lightning_causal.causal.engine.batching.each_chunk`, with its
    out-of-memory retry), of as many rows as the engine's passes of ``h`` alone would take
    (:func:`~lightning_causal.causal.engine.batching.rows_per_pass` of its rows; 32 MiB on CPU): the values set and
    the comparison's booleans are a chunk's rows at a time, not ``N`` rows per value; the answer is the same
    whatever the chunks.

    Within a chunk the ``K`` value sets are compared one after the other, a Python loop over ``K``, kept after
    measuring the alternative: each step calls its own intervention's ``values`` (``K`` objects of their own types,
    no batched form) and is elementwise work on the chunk's rows, beside which the loop's own cost is small. The ``K`` value
    sets stacked ``[K, R, ...]`` and compared in one ``differs`` / ``unit_sums`` took 0.9-1.8x the loop's CPU time
    (1.3-1.8x on a ``[256, 128]`` linear output at ``K`` = 4 and 16, 0.9-1.1x on ``[64, 16, 8, 8]`` conv and
    ``[32, 12, 64]`` token rows) and ``K`` times its memory per chunk (``benchmarks/bench_moving_rows.py
    --value-sets``, one CPU thread; the loop took 5.5 ms at ``K`` = 16 on the linear output).

    Args:
        h: the clean values ``[N, ...]`` of the layer the rows edit.
        values: ``values(k, part, samples)``: the values of value set ``k`` for the rows ``part = h[samples]``.
        count: the number of value sets ``K``.
        units: the unit indices ``[U]``.
        layout: where ``h``'s units are (:class:`~lightning_causal.causal.engine.units.Layout`).

    Examples:
        >>> from lightning_causal.causal.engine.units import resolve_layout
        >>> h = torch.tensor([[0.0, 2.0], [1.0, 0.0]])  # rows (u, s): u * 2 + s
        >>> moving_units(h, lambda k, part, samples: torch.zeros(()), 1, torch.arange(2), resolve_layout(h.shape))
        tensor([False,  True,  True, False])
    """
    shard = current_shard()
    if shard is not None and shard.world_size > 1:
        return None
    moved = torch.empty(count, units.numel(), h.shape[0], dtype=torch.bool, device=h.device)  # [K, U, N]

    def compare(samples: Tensor) -> None:  # a chunk of samples, its answers written by index
        part = h[samples]
        for k in range(count):
            moved[k, :, samples] = (unit_sums(differs(part, values(k, part, samples)), layout)[:, units] > 0).T

    each_chunk(h.shape[0], rows_per_pass(nn.Identity(), (h,)), compare, h.device)
    return moved.reshape(-1)
