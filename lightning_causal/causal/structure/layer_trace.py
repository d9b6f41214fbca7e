"""The interventions of the layer causal map
(:func:`~lightning_causal.causal.structure.layer_map.layer_causal_map`): the ``G * N`` rows
``do(x_g := b)`` run in passes (:func:`trace_interventions`: each layer's centred Gram matrix of the
kept rows, ``||Δ||`` per row, the target logit's and the inputs' changes; the rows that change no input element
are not run, :func:`moving_input_rows`), the rows that enter them
(:func:`real_rows`, :func:`row_subset`, :func:`distinct_samples`) and the size of an input change
(:func:`input_change`)."""

from __future__ import annotations

from collections.abc import Iterator

import torch
from torch import Tensor

from lightning_causal.causal.engine.ablation import ablate_groups, changed_groups, sample_rows
from lightning_causal.causal.engine.batching import rows_alone, rows_per_pass
from lightning_causal.causal.engine.groups import group_counts
from lightning_causal.causal.engine.interventions import capture
from lightning_causal.causal.engine.noise import CommonNoise
from lightning_causal.causal.engine.state import gather_target
from lightning_causal.causal.engine.token_ids import token_errors_named
from lightning_causal.causal.engine.unmoved_rows import each_moving, spread_moving
from lightning_causal.causal.structure.layer_activations import BATCH_FIRST, real_positions_only

__all__ = [
    "REROUTED", "check_rows", "distinct_samples", "input_change", "moving_input_rows", "real_rows", "row_subset", "rows_minus",
    "trace_interventions",
]


#: why a default layer left the layer map in :func:`trace_interventions` (its ``meta["left_out"]`` entry)
REROUTED = "runs on some rows only once inputs are intervened on: an expert of a mixture, a branch"


def real_rows(xs: tuple[Tensor, ...], masks: tuple[Tensor, ...], g: int) -> Tensor:
    """``[G * N]`` booleans, group-major: does group ``g`` hold an element of sample ``n``? An id no
    element carries (superpixels numbered from 1, ids with gaps, a group lying in padding, whose
    elements carry the id ``G``) has rows that change nothing; they enter neither the CKA nor the
    mean responses."""
    return (group_counts(xs, masks, g + 1)[:, :g] > 0).T.reshape(-1)


def distinct_samples(xs: tuple[Tensor, ...]) -> int:
    """The number of distinct samples (rows equal in every input tensor count once).

    Rows are first told apart by a random projection of the inputs (matrix-vector products in the
    inputs' own precision, at least float32; no float64 copy of the probe): sorted, projections
    further apart than their rounding bound belong to different rows. Only the rows of a run of
    close projections are compared element by element, so the count is exact.

    Examples:
        >>> x = torch.tensor([[1.0, 2.0], [3.0, 4.0], [1.0, 2.0]])
        >>> distinct_samples((x,)), distinct_samples((x, torch.tensor([0, 1, 2])))
        (2, 3)
    """
    n = xs[0].shape[0]
    if n < 2:
        return n
    g = torch.Generator().manual_seed(0)
    key = bound = None
    for x in xs:
        flat = x.detach().reshape(n, -1)
        flat = flat if flat.is_floating_point() and flat.element_size() >= 4 else flat.float()
        r = torch.randn(flat.shape[1], generator=g, dtype=torch.float64).to(flat.device, flat.dtype)
        k, b = (flat @ r).double(), flat.norm(dim=1).double() * float(r.norm())  # sum |x_i r_i| <= |x| |r|
        key, bound = (k, b) if key is None else (key + k, bound + b)
    # equal rows project alike up to the rounding of a dot product (BLAS sums rows in orders of its own)
    tol = 1e-5 * float(bound.max()) + 1e-300
    order = key.argsort()
    run = torch.cat([torch.zeros(1, dtype=torch.long, device=key.device),
                     (key[order].diff() > tol).long().cumsum(0)])  # run id of each sorted row
    distinct = int(run[-1]) + 1
    counts = torch.bincount(run)
    for k in torch.nonzero(counts > 1).flatten().tolist():  # close projections: equal rows, or near ones
        rows = order[run == k]
        same = torch.cat([x.detach()[rows].reshape(rows.numel(), -1).double() for x in xs], 1)
        distinct += int(torch.unique(same, dim=0).shape[0]) - 1
    return distinct


def row_subset(total: int, max_rows: int | None, seed: int, device: torch.device, real: Tensor | None = None) -> Tensor:
    """Boolean mask of the rows that enter the CKA: the ``real`` rows, at most ``max_rows`` of them
    drawn at random."""
    if real is not None and not bool(real.all()):
        rows = real.nonzero().flatten()
        keep = torch.zeros(total, dtype=torch.bool, device=device)
        if max_rows is not None and rows.numel() > max_rows:
            rows = rows[torch.randperm(rows.numel(), generator=torch.Generator().manual_seed(seed))[:max_rows].to(device)]
        keep[rows] = True
        return keep
    keep = torch.ones(total, dtype=torch.bool, device=device)
    if max_rows is not None and total > max_rows:
        keep.zero_()
        keep[torch.randperm(total, generator=torch.Generator().manual_seed(seed))[:max_rows].to(device)] = True
    return keep


def _blocks(g: int, n: int, noise: CommonNoise, device: torch.device) -> Iterator[tuple[Tensor, int]]:
    """``(rows of the flat index, block)`` of each pass of :func:`trace_interventions` of a model that draws noise: one
    block of samples of one group at a time (``block`` is its seed's)."""
    for grp in range(g):
        for k in range(noise.count):
            yield grp * n + noise.samples(k, device), k


def trace_interventions(forward, xs, masks, bases, acts, out, tidx, keep, max_batch_size, real_positions=None, noise=None,
                        dropped=None, dims=None):
    """Run the ``G * N`` interventions; return each layer's centred Gram matrix of the kept rows,
    ``||Δ||`` per row and layer, ``|Δ target logit|`` rows and ``||Δ x||`` rows (at the real
    positions of ``[N, T, ...]`` outputs, of ``[N, C, T, ...]`` ones on dimension 2 where ``dims`` says so:
    :func:`real_positions_only`). With ``noise`` (a model that
    draws noise in eval mode) each pass is a block of samples from its seed, as the clean ``acts``, and every row
    runs (a block of other rows would draw other noise); without, only the rows whose intervention changes the
    input run (:func:`moving_input_rows`; the others' ``Δ``, logit and input changes are exactly 0, as zeros in the
    results: :func:`~lightning_causal.causal.engine.unmoved_rows.each_moving`,
    :func:`~lightning_causal.causal.engine.unmoved_rows.spread_moving`), and a pass that runs the device out of
    memory runs again in halves (:func:`~lightning_causal.causal.engine.batching.each_chunk`).
    With ``dropped`` (a dict; the default layers, which the user did not name) a layer that does not
    return one row per intervened row in some pass (an expert of a mixture that every probe sample was
    routed to, and an intervention routes elsewhere) is left out of every result and noted there with
    why, instead of refused by :func:`check_rows`."""
    n = xs[0].shape[0]
    acts = dict(acts)
    g = keep.numel() // n  # not num_groups(masks): padded elements carry the id G

    def one_pass(idx: Tensor, start: int | None = None) -> tuple[dict[str, tuple[Tensor, Tensor]], Tensor, Tensor]:
        """Each layer's ``(||Δ||, kept Δ rows)``, the ``|Δ target logit|`` and ``||Δ x||`` rows of the pass ``idx``
        (``start``: its first row, where ``idx`` is the range of flat rows from it: the clean rows are then
        subtracted by slices of the samples, :func:`rows_minus`, not gathered; ``None``: the rows ``idx`` are
        gathered, straight into the buffer of ``Δ``)."""
        grp, s = idx // n, idx % n
        xi = tuple(ablate_groups(x, m, s, grp, values=sample_rows(b, s)) for x, m, b in zip(xs, masks, bases))
        if rows_alone():  # a check's rows run apart from their chunk: their logit rows compared, nothing recorded or kept
            with token_errors_named(bases):
                oi = forward(*xi, rows=s)
            return {}, (gather_target(out[s], tidx[s]) - gather_target(oi, tidx[s])).abs(), s.new_zeros(0)
        differences: set[str] = set()  # the layers whose record is Δ already (made by the hook), not a copy of the output

        def difference(a: str, value: Tensor) -> Tensor:
            """Δ of layer ``a`` as its hook sees the pass's output (before the model goes on: no copy of it needed),
            where the output is laid out as its clean rows (a range of flat rows: by slices; else gathered); else a copy."""
            h = acts[a]  # a 0-d output of a one-row pass (squeezed) too: check_rows names it, or the map leaves it out
            if value.shape != (len(s), *h.shape[1:]) or value.dtype != h.dtype or not value.is_contiguous():
                differences.discard(a)  # a module run again in the pass: its last call is read
                return value.clone()
            differences.add(a)
            into = torch.empty_like(value, memory_format=torch.contiguous_format)
            if start is None:  # the rows that move, gathered: h[s] - value, the same numbers
                return torch.index_select(h, 0, s.to(h.device), out=into).sub_(value)
            return rows_minus(h, value, start, out=into)

        fast = real_positions is None  # padded positions: zeroed before the difference, below
        with token_errors_named(bases), capture(forward.model, list(acts), keep=difference if fast else None) as got:
            oi = forward(*xi, rows=s)
        layers, lost = {}, {}
        for a, h in list(acts.items()):
            clean = h[:1].expand(len(s), *h.shape[1:])  # the shape of the pass's clean rows: no copy
            if dropped is not None and (a not in got or got[a].shape != clean.shape):
                lost[a] = _partial_rows(got.get(a), clean)  # noted once the pass has run (below)
                continue
            check_rows(a, got.get(a), clean)
            if a in differences:
                delta = got[a].reshape(len(s), -1)  # [N] too
            else:
                pad = None if real_positions is None else real_positions[s]
                delta = (h[s] - real_positions_only(got[a], pad, (dims or {}).get(a, 1))).reshape(len(s), -1)
            layers[a] = (delta.norm(dim=1), delta[keep[idx]].to(torch.promote_types(delta.dtype, torch.float32)))
        logit = (gather_target(out[s], tidx[s]) - gather_target(oi, tidx[s])).abs()
        moved = torch.stack([input_change(x[s], xa) for x, xa in zip(xs, xi)]).norm(dim=0)
        # a pass that fails (out of memory: run again in halves) leaves nothing behind; a layer left out is noted with
        # the rows of a pass that ran, and its rows of the passes before are left out below
        for a, why in lost.items():
            dropped[a] = why
            del acts[a]
        return layers, logit, moved

    moving = None  # the flat rows that run: None, all of them
    if noise is None:
        rows = rows_per_pass(forward.model, xs, max_batch_size, forward=forward)
        moving = moving_input_rows(xs, masks, bases, g)
        # out of memory: halved, as map_rows does; every row: each chunk is a range of flat rows, the first read on the
        # host; else the rows that change the input only, gathered
        # rows_of: the |Δ target logit| rows, which rows_alone_checked's check compares with the chunk's first and last
        passes = each_moving(moving, g * n, rows, lambda idx: one_pass(idx, None if moving is not None else int(idx[0])),
                             xs[0].device, rows_of=lambda p: p[1])
        if not passes:  # no row moves: a pass of row 0 checks every layer's rows (check_rows) and gives the results'
            # dtypes; its numbers, the clean sample again in a pass of another size (its rounding may differ), are not read
            passes = [_no_rows(one_pass(torch.zeros(1, dtype=torch.long, device=xs[0].device)))]
    else:  # blocks of samples from their seeds: their size is part of the numbers, no retry; every row runs
        passes = []
        for idx, block in _blocks(g, n, noise, xs[0].device):
            noise.seed(block)
            passes.append(one_pass(idx))
    profiles = {a: [p[0][a][1] for p in passes] for a in acts}
    norms = {a: spread_moving([p[0][a][0] for p in passes], moving) for a in acts}
    logit_rows = spread_moving([p[1] for p in passes], moving)
    input_rows = spread_moving([p[2] for p in passes], moving)
    del passes  # the profiles' chunks are held by their lists alone
    kept_moving = None if moving is None else moving[keep]  # which of the kept rows ran (the others' Δ is 0)
    grams = {}
    for a in list(profiles):  # one layer's profiles at a time: each layer's chunks go as its whole is made
        x = spread_moving(profiles.pop(a), kept_moving)  # float32, or float64 for a float64 model; fresh
        x -= x.mean(0)  # centred in place: no second copy
        # complex Δ (a Fourier layer's modes): Re(X X^H), the Gram of its real and imaginary parts side by side; X X^T
        # cast to real gave Re X Re X^T - Im X Im X^T
        grams[a] = (x @ x.mH).real.double()
        del x
    return grams, norms, logit_rows, input_rows


def moving_input_rows(xs: tuple[Tensor, ...], masks: tuple[Tensor, ...], bases: tuple[Tensor, ...], g: int) -> Tensor | None:
    """``[G * N]`` booleans over the flat rows (group-major, ``grp * N + s``): does the row's intervention
    ``do(x_g := b)`` change the input (:func:`~lightning_causal.causal.engine.ablation.changed_groups`)? ``None`` when
    every row does (the passes are then ranges of flat rows, :func:`rows_minus`). The others feed the model the
    clean sample bit for bit: their ``Δ`` at every layer, their output and input changes are exactly 0 (a
    deterministic model that computes each sample from its own values, which the map checks before:
    :func:`~lightning_causal.causal.engine.prefix_cache.check_samples_independent`), so they are not run (a trained
    ReLU net's ReLU-ed inputs, images with black borders, one-hot codes), through
    :mod:`~lightning_causal.causal.engine.unmoved_rows`' loops, which the hidden-unit rows use too.

    Left out, such a row's numbers are the exact 0; run, they are the clean sample's outputs recomputed in a pass of
    another size, which some kernels round otherwise (a 1-row pass of a clean MLP sample: relative responses of
    1e-10 instead of 0), and the rows that do run sit in other passes than when every row runs, so that they too
    can differ by such rounding, as with another ``max_batch_size``. With one group per element and passes of the
    default size, the maps of a ReLU CNN and MLP on CPU float32 are the same bit for bit on one thread and within
    3e-8 on two (``tests/causal/test_layer_map_unmoved_rows.py`` compares them within 1e-6, and the rows left
    unrun exactly).

    Args:
        xs: the inputs ``[N, ...]``.
        masks: their feature masks (padded positions and kept special tokens carry the id ``g``: in no group).
        bases: their baselines (``[1 or N, ...]``).
        g: the number of groups ``G``.

    Examples:
        >>> x = torch.tensor([[0.0, 1.0], [2.0, 0.0]])
        >>> moving_input_rows((x,), (torch.tensor([[0, 1]]),), (torch.zeros(1, 1),), 2)  # rows grp * 2 + s
        tensor([False,  True,  True, False])
    """
    moves = changed_groups(xs, masks, bases, g).T.reshape(-1)
    return None if bool(moves.all()) else moves


def _no_rows(result: tuple) -> tuple:
    """A pass's results (of :func:`trace_interventions`' ``one_pass``) cut to no rows: their dtypes and trailing shapes only."""
    layers, logit, moved = result
    return {a: (norm[:0], kept[:0]) for a, (norm, kept) in layers.items()}, logit[:0], moved[:0]


def rows_minus(h: Tensor, got: Tensor, start: int, *, out: Tensor | None = None) -> Tensor:
    """``h[s] - got`` for the rows ``s = (start + r) % N`` of a pass (``h``: the clean rows ``[N, ...]``, ``got``: the
    pass's ``[R, ...]``, contiguous), written into ``out`` (a contiguous tensor like ``got``; ``None``: ``got`` itself,
    which must then be the caller's own) and returned. The
    flat rows of the layer map run group-major, so a pass holds a run of samples from ``start % N`` on, whole runs
    of all ``N`` and a run from sample 0: each is subtracted from a slice of ``h`` (broadcast over the whole runs),
    the same numbers as gathering ``h[s]``, without a copy of the clean rows per pass.

    Args:
        h: the clean rows ``[N, ...]``.
        got: the pass's rows ``[R, ...]``, the same trailing shape and dtype.
        start: the flat index of the pass's first row.
        out: where the difference is written (``None``: into ``got``).

    Examples:
        >>> h = torch.tensor([[1.0], [2.0], [3.0]])
        >>> rows_minus(h, torch.zeros(5, 1), 2).flatten().tolist()  # samples 2, 0, 1, 2, 0
        [3.0, 1.0, 2.0, 3.0, 1.0]
    """
    n, r = h.shape[0], got.shape[0]
    result = got if out is None else out
    flat, src, out = h.reshape(n, -1), got.view(r, -1), result.view(r, -1)
    first = start % n
    head = min(r, n - first) if first else 0
    if head:
        torch.sub(flat[first:first + head], src[:head], out=out[:head])
    whole = (r - head) // n
    if whole:
        runs = slice(head, head + whole * n)
        torch.sub(flat.unsqueeze(0), src[runs].view(whole, n, -1), out=out[runs].view(whole, n, -1))
    tail = head + whole * n
    if tail < r:
        torch.sub(flat[:r - tail], src[tail:], out=out[tail:])
    return result


def check_rows(layer: str, got: Tensor | None, clean: Tensor) -> None:
    """A layer must return one row per intervened row, as it did on the probe: a module called on
    some rows only (an expert of a mixture to which an intervention routes fewer rows, a branch)
    would be compared with the wrong rows, broadcast silently."""
    if got is None or got.shape != clean.shape:
        shape = "nothing (it did not run)" if got is None else list(got.shape)
        if got is not None and got.dim() >= 2 and got.shape[1] == clean.shape[0] != got.shape[0]:
            raise ValueError(
                f"Expected module {layer!r} to return {list(clean.shape)} for a pass of {clean.shape[0]} intervened rows "
                f"but it returned {shape}: its dimension 1 holds the rows, so its probe output [T, N, ...] was read as "
                f"samples first, as its first dimensions were equal. {BATCH_FIRST}")
        raise ValueError(
            f"Expected module {layer!r} to return {list(clean.shape)} for a pass of {clean.shape[0]} intervened rows, "
            f"as on the probe, but it returned {shape}: it runs on some rows only once inputs are intervened on (an "
            "expert of a mixture, a branch). Name modules that run on every row with `layers=` (e.g. where the "
            "experts' outputs are combined)")


def _partial_rows(got: Tensor | None, clean: Tensor) -> str:
    """Why a default layer left the map: what it returned for a pass of intervened rows."""
    returned = "did not run" if got is None else f"returned {list(got.shape)}"
    return f"{returned} for a pass of {clean.shape[0]} intervened rows"


def input_change(x: Tensor, xa: Tensor | None = None) -> Tensor:
    """``||x − xa||`` per row (``||x||`` without ``xa``); token ids are seen one-hot: a changed
    token moves by √2, a sequence of T tokens has norm √T."""
    if x.is_floating_point() or x.is_complex():  # detached: inputs that require grad made float() of s warn in torch
        return (x if xa is None else x - xa).detach().reshape(x.shape[0], -1).norm(dim=1)  # one value per sample ([N]) too
    if xa is None:
        return torch.full((x.shape[0],), float(x[0].numel()), device=x.device).sqrt()
    return (2.0 * (x != xa).reshape(x.shape[0], -1).sum(1).float()).sqrt()
