"""Layers that fold something into the batch dimension: ``[N·k, ...]`` for ``N`` samples.

Some models reshape inside a layer so that its output holds ``k`` rows per sample, sample after
sample: OPT's decoder layer runs its MLP on ``hidden.reshape(-1, D)`` (``fc1`` returns
``[N·T, ffn]``, one row per position), Swin's window attention on ``[N·windows, T, D]``. A unit of
such a layer (an MLP neuron) is a column of every one of a sample's ``k`` rows. The row engine
intervenes on it by viewing the output as ``[R, k, ...]``, one block per row of the pass, once it
has checked that the rows are indeed laid out sample after sample (:func:`check_sample_major`): a
layer that interleaves them (``[k·N, ...]``, positions first) is refused, as its blocks are not the
samples' rows.

Examples:
    >>> import torch
    >>> fold_of((6, 48), 1), fold_of((1, 48), 1)
    (6, 1)
    >>> unfold(torch.arange(12.0).view(6, 2), 2).shape
    torch.Size([2, 3, 2])
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from lightning_causal._compat import OutOfMemoryError
from lightning_causal.causal.engine.interventions import (
    Intervention,
    MeanOf,
    Patch,
    Resample,
    capture,
)
from lightning_causal.causal.engine.unit_sites import (
    SiteFacts,
    check_samples_first,
    check_site_units,
)

__all__ = ["fold_of", "unfold", "unfolded_intervention", "check_sample_major", "check_shared_rows", "shared_rows", "same_rows",
           "check_site_units_named", "check_folded_interventions"]


def fold_of(shape: Sequence[int], samples: int) -> int:
    """Rows per sample, ``shape[0] / samples``, of an output of ``shape`` on a pass of ``samples``
    samples (1 for a layer that keeps the samples on dimension 0; 0 when it is no whole multiple)."""
    if not len(shape) or shape[0] % samples:
        return 0
    return int(shape[0]) // samples


def unfold(h: Tensor, rows: int) -> Tensor:
    """``h`` ``[rows·k, ...]`` viewed as ``[rows, k, ...]`` (a view when ``h`` allows one)."""
    return h.reshape(rows, h.shape[0] // rows, *h.shape[1:])


def unfolded_intervention(iv: Intervention) -> Intervention:
    """``iv`` with its unit dimension moved to the unfolded view ``[R, k, ...]`` of a folded
    output ``[R·k, ...]``: dimension ``d > 0`` of the output is dimension ``d + 1`` of the view (the
    default ``unit_dim`` 1 is 2, the features of ``[N·T, D]``); a negative one names the same."""
    dim = iv.unit_dim if iv.unit_dim is not None else (-1 if iv.num_heads is not None else 1)
    new = copy.copy(iv)
    new.unit_dim = dim + 1 if dim > 0 else dim
    return new


def check_folded_interventions(layer: str, ivs: Sequence[Intervention], fold: int, method: str, screen: int | None) -> None:
    """Refuse what a folded layer (``fold`` rows per sample) cannot answer: the first-order
    estimates (their gradients are taken per sample row) and interventions whose values come from
    other rows of the layer (:class:`MeanOf`, :class:`Resample`, :class:`Patch`: references hold folded rows)."""
    if method != "exact" or screen is not None:
        raise ValueError(
            f"Expected method='exact' without `screen` for layer {layer!r}, whose output folds {fold} rows per sample into "
            f"the batch ([N·{fold}, ...]), but got method={method!r}, screen={screen!r}: the first-order estimates need "
            "one row per sample there. Run the exact effects, or name a module with one row per sample")
    bad = [type(iv).__name__ for iv in ivs if isinstance(iv, (MeanOf, Resample, Patch))]
    if bad:
        raise ValueError(
            f"Expected Zero, SetTo or Scale interventions for layer {layer!r}, whose output folds {fold} rows per sample "
            f"into the batch ([N·{fold}, ...]), but got {bad[0]}: its reference values are rows of that folded output, "
            "not samples. Pass SetTo(values) with the values you want, or name a module with one row per sample")


def _pair_outputs(layer: str, run: Callable[[tuple[Tensor, ...], Tensor], object], model: torch.nn.Module,
                  xs: tuple[Tensor, ...], what: str) -> tuple[Tensor, Tensor, Tensor]:
    """``layer``'s outputs on two distinct samples alone and together (``first``, ``second``, ``both``): probe sample
    0 and the first probe sample that differs from it, or, where none does, sample 0 and a copy of it whose every
    element is moved (``1 - x / 2``), run with sample 0's forward arguments; ``ValueError`` for integer inputs without
    a second distinct sample (``what`` says why two are needed)."""
    n = xs[0].shape[0]
    flat = torch.cat([x.detach().reshape(n, -1).double() for x in xs], 1)
    other = torch.nonzero((flat != flat[:1]).any(1)).flatten()
    distinct = f"Expected at least two distinct probe samples for layer {layer!r}, {what}. Pass a probe of two or more different samples"
    moved = not other.numel()
    if not moved:
        pair = torch.stack([torch.zeros_like(other[0]), other[0]]).to(xs[0].device)
        inputs = [tuple(x[r] for x in xs) for r in (pair[:1], pair[1:], pair)]
    elif all(x.is_floating_point() for x in xs):
        pair = torch.zeros(2, dtype=torch.long, device=xs[0].device)
        first, second = tuple(x[:1] for x in xs), tuple(1 - x[:1] / 2 for x in xs)
        inputs = [first, second, tuple(torch.cat([a, b]) for a, b in zip(first, second))]
    else:
        raise ValueError(distinct)
    alone = []
    with torch.no_grad():
        for rows, xi in zip((pair[:1], pair[1:], pair), inputs):
            with capture(model, [layer], warn_repeats=False) as seen:  # the last call is compared: no user capture
                try:
                    run(xi, rows)
                except (IndexError, RuntimeError) as err:  # the moved copy is no input the model takes (codes as floats)
                    if not moved or isinstance(err, OutOfMemoryError):
                        raise
                    raise ValueError(f"{distinct} (the one sample's moved copy 1 - x / 2 stood for a second one, and the "
                                     f"model refused it: {type(err).__name__}: {err})") from err
            if layer not in seen:  # not called on these rows (an expert no row is routed to, a branch)
                raise ValueError(f"Expected module {layer!r} to run on probe samples {rows.tolist()}, {what}, but the "
                                 "forward pass did not call it. Name a module that the model calls for every sample")
            alone.append(seen[layer])
    return alone[0], alone[1], alone[2]


def _shared(first: Tensor, second: Tensor, both: Tensor) -> bool:
    """Whether two samples alone and together gave the same rows: rows of its own that every sample shares (not an
    empty output, which an expert no row of the two is routed to returns)."""
    return (first.shape == second.shape == both.shape and first.numel() > 0 and torch.equal(first, both)
            and torch.equal(second, both))


def shared_rows(layer: str, run: Callable[[tuple[Tensor, ...], Tensor], object], model: torch.nn.Module,
                xs: tuple[Tensor, ...]) -> Tensor | None:
    """``layer``'s output where it is the same rows for two samples alone and together (:func:`check_sample_major`'s
    passes: rows every sample shares, a zero-shot classifier's text tower over its class prompts); ``None`` otherwise,
    also where no second sample, a layer not called or a failed pass leaves it unknown (the caller's own refusal stands
    then: its words name the cause). Two samples only: the passes of the probe are compared with these rows where the
    layer is measured (:func:`same_rows`)."""
    try:
        first, second, both = _pair_outputs(layer, run, model, xs, "to tell rows of its own from rows of the samples")
        return both if _shared(first, second, both) else None
    except OutOfMemoryError:
        raise
    except (ValueError, IndexError, RuntimeError):  # also a site run under torch.func.vmap: no aten::equal of its rows
        return None


def same_rows(got: Tensor, expected: Tensor) -> bool:
    """Whether ``got`` holds ``expected``'s rows, to ``1e-5 (1 + max |expected|)`` for floats (exactly otherwise)."""
    if got.shape != expected.shape:
        return False
    scale = 1e-5 * (1.0 + float(expected.abs().max())) if expected.is_floating_point() and expected.numel() else 0.0
    return bool(((got - expected).abs() <= scale).all()) if expected.is_floating_point() else torch.equal(got, expected)


def check_shared_rows(layer: str, run: Callable[[tuple[Tensor, ...], Tensor], object], model: torch.nn.Module,
                      xs: tuple[Tensor, ...]) -> None:
    """Refuse, with :func:`~.unit_sites.check_samples_first`'s words for rows every sample shares (a zero-shot
    classifier's text tower over its class prompts), a ``layer`` whose output is the same rows for two samples alone
    and together (:func:`shared_rows`); else return (the caller's own refusal stands). Called where a
    layer's output on one sample has several rows, before a refusal that would name a fold or ``batch_first=False``."""
    rows = shared_rows(layer, run, model, xs)
    if rows is not None:
        check_samples_first(layer, tuple(rows.shape), 2, shared=True)


def check_site_units_named(model: torch.nn.Module, layer: str, run: Callable[[tuple[Tensor, ...], Tensor], object],
                           xs: tuple[Tensor, ...], unit_dim: int | None, num_heads: int | None, fix: str) -> SiteFacts:
    """:func:`~.unit_sites.check_site_units` on probe sample 0's pass (``run(inputs, rows)`` as
    :func:`check_sample_major` takes it); where it refuses, :func:`check_shared_rows` first, so that rows every
    sample shares are named as such, not as a fold or ``batch_first=False``: the one-sample check of the causal graph,
    Captum's layer methods and the fairness carriers."""
    one = torch.zeros(1, dtype=torch.long, device=xs[0].device)
    try:
        return check_site_units(model, layer, lambda: run(tuple(x[:1] for x in xs), one), unit_dim, num_heads, fix)
    except ValueError:  # rows every sample shares (a zero-shot classifier's text tower) are named as such
        check_shared_rows(layer, run, model, xs)
        raise


def check_sample_major(layer: str, run: Callable[[tuple[Tensor, ...], Tensor], object], model: torch.nn.Module,
                       xs: tuple[Tensor, ...], fold: int, *, shared_ok: bool = False) -> Tensor | None:
    """``ValueError`` unless ``layer``'s output on two distinct samples run together is their
    outputs alone, one after the other (``fold`` rows each): the blocks of ``[R·k, ...]`` are then
    the rows of the pass. ``run(inputs, rows)`` runs the model on ``inputs`` whose rows are those of
    the probe samples ``rows``. The two are probe sample 0 and the first probe sample that differs
    from it; a probe of one sample (a graph as the sample: one graph of ``k`` nodes) or of equal
    samples pairs sample 0 with a copy of it whose every element is moved (``1 - x / 2``), run with
    sample 0's forward arguments; only integer inputs, which no such copy can stand for, are refused
    then.

    Returns those rows, with ``shared_ok``, where the two samples alone and together gave the same rows, rows every
    sample shares (a zero-shot classifier's text tower over its class prompts, which
    :mod:`~lightning_causal.causal.effects.shared_units` measures, comparing the probe's passes with them), refused
    otherwise; ``None`` for a fold laid out sample after sample."""
    first, second, both = _pair_outputs(
        layer, run, model, xs, f"whose output folds {fold} rows per sample into the batch: two samples run together show "
        "whether the rows are laid out sample after sample")
    shared = _shared(first, second, both)  # the same rows whatever the samples
    if shared and shared_ok:
        return both
    if both.shape[0] != 2 * fold:  # not k rows per sample: [T, N, ...] of batch_first=False, or rows routed elsewhere
        check_samples_first(layer, both.shape, 2, shared=shared)
    if not same_rows(both, torch.cat([first, second])):
        expected = f"Expected the output of {layer!r} to hold each sample's {fold} rows one after the other ([N·{fold}, ...], "
        if first.shape == second.shape and same_rows(both, torch.stack([first, second], 1).flatten(0, 1)):  # [k·N, ...]
            cat, stack = (("torch.cat([x_t, x_t])", "torch.stack([x_t, x_t], 1)") if fold == 2 else  # the fold's k copies
                          (f"torch.cat([x_t] * {fold})", f"torch.stack([x_t] * {fold}, 1)"))
            raise ValueError(
                f"{expected}sample after sample) but two samples run together gave {list(both.shape)} with their rows "
                f"interleaved or changed: copy after copy ([{fold}·N, ...], row 0 of every sample, then row 1), as "
                f"classifier-free guidance's {cat} lays out a sample's copies (with and without its condition), or "
                "a [T·N, ...] layout, positions first, as a batch_first=False model flattens: its rows cannot be told apart "
                f"by sample. For copies, stack a sample's {fold} copies together, {stack}.flatten(0, 1), every "
                "input alike (t, and y beside its null label), and split the output with "
                f"out.unflatten(0, (-1, {fold})).unbind(1): the same outputs, and unit_effects and UnitImportanceAudit "
                "then take the layer; for positions first, or otherwise, name a module with one row per sample")
        raise ValueError(
            f"{expected}sample after sample) but two samples run together gave {list(both.shape)} with their rows "
            "interleaved or changed (a [T·N, ...] layout, positions first, as a batch_first=False model flattens, or rows "
            "that depend on the other sample): its rows cannot be told apart by sample. Name a module with one row per "
            "sample")
    return None
