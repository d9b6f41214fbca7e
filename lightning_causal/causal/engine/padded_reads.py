"""An explained output read at a padded position: ``output=lambda out: out[:, -1]`` on right padding.

A causal language model explained at its last position (``output=lambda out: out.logits[:, -1]``)
reads each sentence's last real token only under left padding. Under right padding the last
position of a shorter sentence is padding: its prediction is the one after the pad tokens, and
every effect on it explains a position the model was told to ignore. Nothing fails, so
:func:`warn_padded_read` looks for it before the intervened passes: on up to 4 probe samples that
hold padding (the ``attention_mask`` or ``lengths`` forward argument,
:func:`~lightning_causal.causal.engine.ablation.input_padding`), the explained output of a callable
``output=`` is compared with the model's own per-position outputs ``[N, T, ...]``; a row whose
explained output equals the output at a position (bit for bit: an index such as ``out[:, -1]`` or
``out[:, t]``) that is padding, and at no real position, is warned about, naming the two ways out:
left padding (``tokenizer.padding_side = "left"``) or a wrapper module that gathers each row at its
last real token, ``attention_mask.sum(1) - 1`` (``LastRealToken`` in ``docs/text.md``). Before it
warns, one more pass of those samples cut by one position tells a per-position output from a
classifier's logits of as many classes as positions (``out[:, -1]``, its last class): only the
first follows the cut. An output computed from every position, a mean or a sum over them (``out.mean(1)`` of
node-level logits ``[B, N, C]`` of padded graphs), is told by the same pass: the model's output moved at the padded
positions only, the explained output moves too (:func:`_mixes_padding`), warned about naming a wrapper that averages
over the real positions. A softmax of the last position is not recognised.

Examples:
    >>> import warnings
    >>> import torch
    >>> from torch import nn
    >>> from lightning_causal.causal.engine.forward import Forward
    >>> class PerPosition(nn.Module):  # [N, T] -> [N, T, 1]: one output per position
    ...     def forward(self, x, attention_mask):
    ...         return (2 * x).unsqueeze(-1)
    >>> x, mask = torch.tensor([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]]), torch.tensor([[1, 1, 1], [1, 1, 0]])
    >>> forward = Forward(PerPosition(), output=lambda out: out[:, -1], additional_forward_args={"attention_mask": mask},
    ...                   num_samples=2)
    >>> with warnings.catch_warnings(record=True) as caught:
    ...     warnings.simplefilter("always")
    ...     warn_padded_read(forward, (x,), "input_effects")
    >>> print(str(caught[0].message)[:111])
    input_effects: the explained output (`output=`) of probe sample(s) [1] is the model's output at position(s) [2]
"""

from __future__ import annotations

import itertools
import math
import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

from lightning_causal.causal.engine.ablation import (
    named_padding,
    padding_arguments,
    step_positions,
    unnamed_padding,
    unnamed_padding_way,
)
from lightning_causal.causal.engine.batching import say_once_in_block
from lightning_causal.causal.engine.finite import check_finite_samples
from lightning_causal.causal.engine.forward_args import SHARED_POSITIONS
from lightning_causal.causal.engine.generators import model_rngs_kept
from lightning_causal.causal.engine.log_probabilities import warn_saturated_log_probs
from lightning_causal.causal.engine.state import (
    gather_target,
    model_devices,
    resolve_target,
    rng_preserved,
)
from lightning_causal.causal.engine.user_frame import outside_package

if TYPE_CHECKING:
    from lightning_causal.causal.engine.forward import Forward

__all__ = ["LENGTHS_MIXED_FIX", "MIXED_FIX", "OTHER_POSITION_FIX", "PADDED_READ_FIX", "PADDED_TARGET_FIX", "explained_target", "padded_reads", "warn_padded_read",
           "warn_padded_target"]

#: the ways out, named in the warning
PADDED_READ_FIX = (
    "Pad on the left (`tokenizer.padding_side = 'left'`), so that the last position is each row's last real token, "
    "or read each row's last real token inside a wrapper module given the mask as a forward argument: "
    "`logits[torch.arange(len(ids)), attention_mask.sum(1) - 1]` (`LastRealToken` in docs/text.md); a callable "
    "`output=` cannot gather per sample, it is called on batches of rows of the estimators' choosing")

#: the ways out for a padded position other than the last one (a first token read under left padding)
OTHER_POSITION_FIX = (
    "Pad on the other side, so that the position read is real in every row, or read each row's own position inside "
    "a wrapper module given the mask as a forward argument (the first real token under left padding: "
    "`logits[torch.arange(len(ids)), attention_mask.argmax(1)]`); a callable `output=` cannot gather per sample, it is "
    "called on batches of rows of the estimators' choosing")

#: the ways out where the explained column is a padded position (a listwise ranker's score of a padded item)
PADDED_TARGET_FIX = (
    "Have forward give the padded positions a score below every real one (`scores.masked_fill(attention_mask == 0, "
    "-1e4)` at its end, in eval mode too), so that `target=None` picks a real position, or pass a `target=` real in "
    "every sample (per sample: the top real item, `target=scores.masked_fill(attention_mask == 0, "
    "float('-inf')).argmax(1)` computed once on the probe); with an additive mask (0 at the real positions, -1e9 or "
    "-inf at the padding) the padding is `attention_mask < 0`, in place of `attention_mask == 0`")

#: the ways out where the explained output mixes in the padded positions (a mean over every node of padded graphs)
MIXED_FIX = (
    "Average over the real positions only, inside a wrapper module given the mask as a forward argument: "
    "`m = attention_mask[..., None].to(out.dtype); (out * m).sum(1) / m.sum(1)` (with an additive mask, 0 at the real "
    "positions and -1e9 or -inf at the padding: `m = (attention_mask == 0)[..., None].to(out.dtype)`), or read one "
    "position real in every row "
    "(`out[:, j]`); a callable `output=` cannot read the mask, it is called on batches of rows of the estimators' choosing")

#: added to MIXED_FIX where the padding is counted by `lengths` (frames of a speech model, time first for F.ctc_loss)
LENGTHS_MIXED_FIX = (
    ". With `lengths` in place of a mask, T the padded frame count: `real = torch.arange(T, device=lengths.device) < "
    "lengths[:, None]` ([N, T]); a mean `(out * real[..., None]).sum(1) / real.sum(1, keepdim=True)`, a token's presence "
    "`out.masked_fill(~real[..., None], float('-inf')).logsumexp(1)`; of log-probabilities laid out time first "
    "(`[T, N, C]`, for `F.ctc_loss`): `(out * real.T[..., None]).sum(0) / real.sum(1, keepdim=True)`, "
    "`out.masked_fill(~real.T[..., None], float('-inf')).logsumexp(0)`")

_CHECKED_ROWS = 4  # probe samples with padding run in the check's one pass


def _sequence_outputs(out: Any) -> list[Tensor]:
    """The tensors of the model's return value: itself, a mapping's values (a Hugging Face
    ``ModelOutput`` is one), a tuple's or list's items, or a ``.logits`` attribute."""
    if isinstance(out, Tensor):
        return [out]
    if isinstance(out, Mapping):
        return [v for v in out.values() if isinstance(v, Tensor)]
    if isinstance(out, (tuple, list)):
        return [v for v in out if isinstance(v, Tensor)]
    logits = getattr(out, "logits", None)
    return [logits] if isinstance(logits, Tensor) else []


def _positions_second(out: Any, n: int, steps: int) -> list[Tensor]:
    """The per-position tensors of ``out`` laid out ``[n, steps, ...]``: those of :func:`_sequence_outputs` so laid
    out, and those laid out time first, ``[steps, n, ...]`` (log-probabilities for ``F.ctc_loss``, a layer built with
    ``batch_first=False``), transposed; one reading of each, batch first where ``n == steps``.

    Examples:
        >>> import torch
        >>> [tuple(t.shape) for t in _positions_second(torch.zeros(7, 2, 5), 2, 7)]
        [(2, 7, 5)]
        >>> out = torch.zeros(3, 3, 5)
        >>> [t is out for t in _positions_second(out, 3, 3)]  # 3 samples of 3 steps: not its transpose too
        [True]
    """
    found = []
    for seq in _sequence_outputs(out):
        if seq.dim() >= 2 and tuple(seq.shape[:2]) == (n, steps):
            found.append(seq)
        elif seq.dim() >= 3 and tuple(seq.shape[:2]) == (steps, n):
            found.append(seq.transpose(0, 1))
    return found


def _batch_first_view(out: Any, pad: Tensor) -> Tensor | None:
    """The model's return value ``out``, a floating tensor of one output per position, as ``[n, T, ...]`` (``pad``:
    ``[n, T]``): ``out`` itself, or, laid out time first (``[T, n, ...]``), its transposed view, whose writes land in
    ``out``; ``None`` for another return value (:func:`_positions_second`'s first reading).

    Examples:
        >>> import torch
        >>> out = torch.zeros(7, 2, 5)
        >>> _batch_first_view(out, torch.zeros(2, 7, dtype=torch.bool)).shape, _batch_first_view(out[0], out[0, :, :1])
        (torch.Size([2, 7, 5]), None)
    """
    if not isinstance(out, Tensor) or not out.is_floating_point():
        return None
    views = _positions_second(out, *pad.shape)
    return views[0] if views else None


def padded_reads(out: Any, picked: Tensor, pad: Tensor) -> dict[int, list[int]]:
    """The rows whose explained output ``picked`` ``[n, ...]`` equals the model's output at padded
    positions only: ``{row: [positions]}`` over the per-position tensors ``[n, T, ...]`` of ``out``
    (``pad``: ``[n, T]`` booleans, ``True`` at padding): a position's output whole, also reshaped
    (``out[:, -1].flatten(1)`` of ``[n, T, 2, 3]``), or one index of some of its dimensions, the others kept in order
    (``out[:, -1, 0]``, ``out[:, -1, :, 0]``). A row
    whose explained output equals a real position's output too, or none, is no padded read.

    Examples:
        >>> import torch
        >>> seq = torch.tensor([[[1.0], [2.0], [3.0]], [[4.0], [5.0], [6.0]]])
        >>> pad = torch.tensor([[False, False, True], [False, False, False]])
        >>> padded_reads(seq, seq[:, -1], pad)
        {0: [2]}
        >>> padded_reads(seq, seq[:, 1], pad)
        {}
    """
    n, steps = pad.shape
    found: dict[int, list[int]] = {}
    width = picked[0].numel() if picked.dim() and picked.shape[0] == n else 0  # the explained entries of a row
    for seq in _positions_second(out, n, steps):  # [n, T, ...], also of a time-first output [T, n, ...]
        block = math.prod(seq.shape[2:])  # a position's entries
        # a position whole (`out[:, -1]`, flattened too: `out[:, -1].flatten(1)` of [n, T, 2, 3]), or the entries of one
        # index of some of its dimensions, the others kept in order (`out[:, -1, 0]`, `out[:, -1, :, 0]`)
        for kept in _kept_dims(seq, picked, width, block):
            indexed = [d for d in range(2, seq.dim()) if d not in kept]
            entries = seq.permute(0, 1, *kept, *indexed).reshape(n, steps, width, -1)
            equal = (entries == picked.reshape(n, 1, width, 1).to(seq.dtype)).all(2).any(-1)  # [n, T]
            for r in range(n):
                at = equal[r].nonzero().flatten()
                if at.numel() and bool(pad[r, at].all()):
                    found[r] = at.tolist()
    return found


def _kept_dims(seq: Tensor, picked: Tensor, width: int, block: int) -> list[tuple[int, ...]]:
    """The dimensions of ``seq`` ``[n, T, ...]`` past the position that a row of ``picked`` ``[n, ...]`` may keep, in
    order, the others taken at one index (:func:`padded_reads`): all of them where the row holds a position's ``block``
    entries (also reshaped); else every choice of them whose sizes are ``picked``'s trailing shape, for a row of 2 or
    more entries (one number is not compared: a chance match); none where ``width`` divides no ``block``."""
    if not width or block % width:
        return []
    dims = tuple(range(2, seq.dim()))
    if block == width:
        return [dims]
    shape = tuple(picked.shape[1:])
    if width < 2 or not 0 < len(shape) < len(dims):
        return []
    return [kept for kept in itertools.combinations(dims, len(shape)) if tuple(seq.shape[d] for d in kept) == shape]


def _follows_positions(forward: Forward, xs: tuple[Tensor, ...], rows: Tensor, steps: int, *, explained: bool = False,
                       axis: int = 1) -> bool:
    """Whether the model's return value has a position axis: run on ``rows`` cut to ``steps - 1``
    positions (the inputs and the forward arguments ``[n, steps, ...]``, a shared 1-D
    ``position_ids``), one of its tensors has ``steps - 1`` entries on dimension 1. A classifier of
    as many classes as positions (``out[:, -1]``, its last class) has none; a model that refuses
    the shorter rows (a fixed length) is taken to have one. ``explained``: the explained output itself
    (``forward.select`` of the cut pass) must have ``steps - 1`` columns, a per-position score ``[N, T]``; a model
    that refuses the shorter rows is then taken to have none. ``axis``: the first input's time axis, the last of frames
    laid out channels first (``[N, F, T]`` as ``Conv1d`` takes them), cut there."""
    n = int(rows.shape[0])

    def cut(value: Any, key: str | None = None) -> Any:
        if not isinstance(value, Tensor):
            return value
        if value.dim() >= 2 and tuple(value.shape[:2]) == (n, steps):
            return value[:, : steps - 1]
        if key in SHARED_POSITIONS and value.dim() == 1 and value.shape[0] == steps:
            return value[: steps - 1]
        return value

    args, kwargs = forward.args.take(rows)
    try:  # the caller's random streams and the model's own generators left as they were (an MC-dropout model)
        with torch.no_grad(), rng_preserved(model_devices(forward.model)), model_rngs_kept(forward.model):
            first = xs[0][rows].narrow(axis, 0, steps - 1) if axis != 1 else cut(xs[0][rows])
            out = forward.model(first, *(cut(x[rows]) for x in xs[1:]), *(cut(a) for a in args),
                                **{k: cut(v, k) for k, v in kwargs.items()})
        if explained:
            picked = forward.select(out)
            return picked.dim() == 2 and tuple(picked.shape) == (n, steps - 1)
    except Exception:  # noqa: BLE001 - the model takes one length only: its outputs are read as positions, its
        return not explained  # explained columns not (a flattening classifier of as many classes as positions)
    return bool(_positions_second(out, n, steps - 1))


def warn_padded_read(forward: Forward, xs: tuple[Tensor, ...], what: str) -> None:
    """Warn when a callable ``output=`` reads probe samples at padded positions (module docstring):
    one pass of up to 4 samples that hold padding, without gradients; nothing runs without a
    callable ``output=`` or a padding argument, or when no sample holds padding. Said once per
    :func:`~lightning_causal.causal.engine.batching.remembered_fit` block (an audit's set-up check and its estimators'
    clean passes: :func:`~lightning_causal.causal.engine.batching.say_once_in_block`), the check skipped once said."""
    if callable(forward.output):
        say_once_in_block("padded_read", lambda: _padded_read_said(forward, xs, what))


def _padded_read_said(forward: Forward, xs: tuple[Tensor, ...], what: str) -> bool:
    """:func:`warn_padded_read`'s check; whether it warned."""
    pad, unnamed, axis, lengths = _step_padding(forward, xs)  # [N, T]: the padding is the same along a position's features
    if pad is None:  # none, or along a channels-first input's frames: no per-position outputs [N, T, ...] to read
        return False
    rows = (pad.any(1) & ~pad.all(1)).nonzero().flatten()[:_CHECKED_ROWS]
    if not rows.numel():
        return False
    try:
        with torch.no_grad(), rng_preserved(model_devices(forward.model)), model_rngs_kept(forward.model):
            out = forward.raw(*(x[rows] for x in xs), rows=rows)
            picked = forward.select(out)
    except Exception:  # noqa: BLE001 - a check only: the estimator's own passes report the model's errors
        return False
    found = _untied(forward, out, padded_reads(out, picked, pad[rows.to(pad.device)]), pad[rows.to(pad.device)])
    if not found:
        mixed = _mixes_padding(forward, out, picked, pad[rows.to(pad.device)])
        scaled = [] if mixed else _scaled_by_padding(forward, out, pad[rows.to(pad.device)])
        if (mixed or scaled) and _follows_positions(forward, xs, rows, int(pad.shape[1]), axis=axis):
            why = ("moves with the model's outputs at the positions the forward arguments mark as padding (a mean over "
                   "every position, `out.mean(1)`, counts the padded nodes' or tokens' outputs, which move when a real one "
                   "does: a padded query still attends to the real keys), so every effect mixes in positions the model "
                   "ignores" if mixed else
                   "answers a change of the real positions' outputs otherwise than over those positions alone: the "
                   "positions the forward arguments mark as padding hold one output (a packed recurrent layer's, a model "
                   "that zeroes them), which a sum over every position leaves out of every difference but a mean "
                   "(`out.mean(1)`) or a `logsumexp` over them does not, so each sample's effects shrink with the padding "
                   "it is given (the longest sequence of its batch)")
            warnings.warn(
                f"{what}: the explained output (`output=`) of probe sample(s) {[int(rows[r]) for r in mixed or scaled]} "
                f"{why}. {MIXED_FIX}{lengths}{unnamed}", UserWarning, stacklevel=outside_package())
            return True
        return False
    if not _follows_positions(forward, xs, rows, int(pad.shape[1]), axis=axis):
        return False
    samples = [int(rows[r]) for r in found]
    positions = sorted({t for ts in found.values() for t in ts})
    last = int(pad.shape[1]) - 1 in positions  # out[:, -1] (padded positions of one output told apart, _untied)
    why = ("right padding read at the last position: `out[:, -1]` is then a pad position's prediction, not the last "
           "real token's" if last else "e.g. `out[:, 0]` under left padding, where the first real token comes later, "
           "or a step past a shorter sample's length")
    warnings.warn(
        f"{what}: the explained output (`output=`) of probe sample(s) {samples} is the model's output at position(s) "
        f"{positions}, which the forward arguments mark as padding ({why}), so every effect explains a position the "
        f"model ignores. {PADDED_READ_FIX if last else OTHER_POSITION_FIX}{unnamed}", UserWarning, stacklevel=outside_package())
    return True


def _untied(forward: Forward, out: Any, found: dict[int, list[int]], pad: Tensor) -> dict[int, list[int]]:
    """``found`` (:func:`padded_reads`) with each row's positions told apart where its padded positions share one output
    (a packed recurrent layer's bias: ``out[t]`` equals every padded frame's output, the last among them, and was named a
    read of the last position): the explained output of the model's output (a tensor ``[n, T, ...]`` or time first) with
    position ``t`` moved by ``t + 1`` is the moved output at the position read alone. No model pass; ``found`` as it is
    where the moved output gives no padded read."""
    if not found or _batch_first_view(out, pad) is None:
        return found
    moved = out.to(torch.float64, copy=True)  # exact offsets of any dtype; a copy of a float64 output too
    steps = torch.arange(1, pad.shape[1] + 1, device=out.device, dtype=moved.dtype)
    _batch_first_view(moved, pad).add_(steps.view(1, -1, *[1] * (out.dim() - 2)))
    try:
        with torch.no_grad():
            again = padded_reads(moved, forward.select(moved), pad)
    except Exception:  # noqa: BLE001 - a check only: the positions as first found
        return found
    return {r: again[r] for r in found if r in again} if again else found


def _mixes_padding(forward: Forward, out: Any, picked: Tensor, pad: Tensor) -> list[int]:
    """The rows (of ``pad`` ``[n, T]``) whose explained output ``picked`` changes where the model's per-position output
    (the return value itself, ``[n, T, ...]``) changes at padded positions only: an ``output=`` that averages or sums
    over every position (``out.mean(1)`` of node-level logits ``[B, N, C]`` of padded graphs) reads the padding. None
    where the padded positions' outputs are one value across two rows or more (a model that zeroes them,
    ``o * mask[..., None]``): nothing there moves with a real node, and a sum over every position is the sum over the
    real ones (one padded row is checked unless its outputs are 0: its padded nodes may share one output by symmetry and
    still move)."""
    positions = _batch_first_view(out, pad)  # [n, T, ...]; of a time-first output [T, n, ...], transposed
    if positions is None:
        return []
    padded = positions[pad.to(out.device)]  # [P, ...]: the padded positions' outputs
    # one value across two rows or more: zeroed by the model; within one row it may be symmetry (a graph model without
    # positional encodings gives its padded nodes one output, which still moves with the real nodes)
    if bool((padded == padded[:1]).all()) and (int(pad.any(1).sum()) >= 2 or not bool(padded.any())):
        return []
    moved = out.clone()
    _batch_first_view(moved, pad)[pad.to(out.device)] += 1.0
    try:
        other = forward.select(moved)
    except Exception:  # noqa: BLE001 - a check only
        return []
    if not isinstance(other, Tensor) or other.shape != picked.shape or other.shape[:1] != pad.shape[:1]:
        return []
    return (other != picked).reshape(len(picked), -1).any(1).nonzero().flatten().tolist()


def _scaled_by_padding(forward: Forward, out: Any, pad: Tensor) -> list[int]:
    """The rows (of ``pad`` ``[n, T]``) whose explained output answers a shift of the real positions' outputs (the model's
    return value itself, ``[n, T, ...]`` or time first ``[T, n, ...]``) otherwise than the same output computed on the
    real positions alone: a mean or a ``logsumexp`` over every position of padded positions that hold one output (a
    packed recurrent layer's bias, a model that zeroes them), which :func:`_mixes_padding` passes, each sample's effects
    scaled by its padding. A sum over every position, a real position read (``out[:, t]``) answer alike; an output the
    cut row fails on is no such read. No model pass: the explained output of the rows' outputs as they are.

    Examples:
        >>> import torch
        >>> from lightning_causal.causal.engine.forward import Forward
        >>> out, pad = torch.zeros(1, 4, 2), torch.tensor([[False, False, True, True]])
        >>> _scaled_by_padding(Forward(torch.nn.Identity(), output=lambda o: o.mean(1)), out, pad)
        [0]
        >>> _scaled_by_padding(Forward(torch.nn.Identity(), output=lambda o: o.sum(1)), out, pad)
        []
    """
    view = _batch_first_view(out, pad)
    if view is None:
        return []
    time_first = view is not out
    found = []
    for r in range(int(pad.shape[0])):
        real = ~pad[r].to(out.device)
        if bool(real.all()) or not bool(real.any()):
            continue
        row = out[:, r: r + 1] if time_first else out[r: r + 1]  # [T, 1, ...] or [1, T, ...]
        shift = torch.zeros_like(row, dtype=torch.float64)
        (shift if time_first else shift.transpose(0, 1))[real] = 1.0
        # in float64 (a float16/bfloat16 sum over every frame rounds otherwise than over the real frames alone: it read
        # as a mean); in the model's dtype only where that holds float32's precision (an output= of a head of its own)
        for exact in (row.double(), *((row,) if torch.finfo(row.dtype).bits >= 32 else ())):
            cut = exact[real] if time_first else exact[:, real]
            try:
                with torch.no_grad():
                    whole = forward.select(exact + shift.to(exact.dtype)) - forward.select(exact)
                    alone = forward.select(cut + 1.0) - forward.select(cut)
            except Exception:  # noqa: BLE001 - a check only: an output of the cut row that fails reads no mean over it
                continue
            if (isinstance(whole, Tensor) and isinstance(alone, Tensor) and whole.shape == alone.shape
                    and not torch.allclose(whole.double(), alone.double(), rtol=1e-3, atol=1e-5, equal_nan=True)):
                found.append(r)
            break
    return found


def _step_padding(forward: Forward, xs: tuple[Tensor, ...]) -> tuple[Tensor | None, str, int, str]:
    """The ``[N, T]`` padding of the inputs along dimension 1 that the forward arguments describe
    (``attention_mask``, ``lengths``), or along the first input's one other time axis (frames laid out channels first,
    ``[N, F, T]`` as ``Conv1d`` takes them, whose model returns per-frame outputs ``[N, T, C]`` or ``[T, N, C]``), or
    ``None``; ``""``, or, where none of them describes it but a forward
    argument under another name looks like a padding mask of the first input (``forward(self, x, mask)``, a
    ``key_padding_mask``: :func:`~lightning_causal.causal.engine.ablation.unnamed_padding`), its padding and a
    sentence for the warnings that says it was read from that argument, which the estimators do not read; and the
    first input's time axis (1, or that other axis); and :data:`LENGTHS_MIXED_FIX` where the padding arguments hold
    ``lengths`` (or an alias), not a mask, else ``""``."""
    if not xs or not isinstance(xs[0], Tensor) or xs[0].dim() < 2:
        return None, "", 1, ""
    source = forward.args.kwargs if forward.args.kwargs else forward.args.args or None
    try:  # one read of the padding (a long probe's scan costs tens of ms): its steps along dimension 1, else the frames'
        named = padding_arguments(forward.model, source, len(xs))
        pads = named_padding(xs, source, named)  # input_padding
        steps = step_positions(next((p for p in pads or () if p is not None), None))  # padded_steps
        frames = None if steps is not None else _frames_padding(pads)
    except ValueError:  # a mask whose padding cannot be told (a bias): refused by the estimators that read padding, not here
        return None, "", 1, ""
    lengths = LENGTHS_MIXED_FIX if isinstance(named, Mapping) and "lengths" in named else ""
    if frames is not None:
        return (*frames[:1], "", frames[1], lengths)
    if steps is not None or xs[0].dim() < 3:
        return steps, "", 1, lengths
    args = dict((*enumerate(forward.args.args), *forward.args.kwargs.items()))  # positions as int keys, words alike
    found = unnamed_padding(xs[0], args)
    if found is None:
        return None, "", 1, ""
    where, value, key = found
    return (args[key] == value).to(xs[0].device), (
        f"; the padding was read from {where} ({value} where the inputs are all zero, as a padding mask is); the "
        f"estimators read only `attention_mask` (0 = padding) or `lengths` as padding: {unnamed_padding_way(value)}"), 1, lengths


def _frames_padding(pads: tuple[Tensor | None, ...] | None) -> tuple[Tensor, int] | None:
    """The first input's padding (:func:`~lightning_causal.causal.engine.ablation.input_padding`) along its one time axis
    after dimension 1 (``[N, 1, T]`` of frames laid out channels first), as ``[N, T]``, and that axis; else ``None``.

    Examples:
        >>> import torch
        >>> pad = torch.arange(5).reshape(1, 1, 5) >= torch.tensor([5, 3]).reshape(2, 1, 1)
        >>> _frames_padding((pad,))
        (tensor([[False, False, False, False, False],
                [False, False, False,  True,  True]]), 2)
    """
    pad = pads[0] if pads else None
    if pad is None or pad.dim() < 3 or pad.shape[1] != 1:
        return None
    axes = [d for d in range(2, pad.dim()) if pad.shape[d] > 1]
    return (pad.flatten(1), axes[0]) if len(axes) == 1 else None


def warn_padded_target(forward: Forward, xs: tuple[Tensor, ...], out: Tensor, idx: Tensor, what: str, *, name: str = "target",
                       why: str | None = None) -> bool:
    """Warn when the explained column of a sample is a padded position: a listwise ranker's scores
    ``[N, L]`` of lists padded to ``L`` items, one column per item, explained at ``target=None`` (each
    sample's largest score, a padded item's where the model leaves padded scores unmasked) or at a
    ``target=`` that is padding in some samples (its effects explain an item the model ignores, and
    are NaN where the model scores padding ``-inf``). ``out``: the clean explained output ``[N, C]``,
    ``idx``: the resolved target ``[N]`` (read as ``target=None``'s where it is each such sample's largest output, as an
    audit that resolved ``None`` itself passes it); ``name``: the caller's parameter of the target, in the message
    (``target_class`` for the counterfactual search); ``why``: how the caller chose the explained columns, in the
    message (``towards="runner_up"``'s second-largest output), where the words above would guess wrong. Nothing runs without padding of ``C`` positions, or where
    every explained column is real; else one pass of up to 4 such samples cut by one position tells
    scores per position (``C - 1`` columns then) from a classifier of as many classes as positions. Returns whether
    it warned (the caller marks a warning said once a block only then).

    Examples:
        >>> import warnings
        >>> import torch
        >>> from torch import nn
        >>> from lightning_causal.causal.engine.forward import Forward
        >>> class Scores(nn.Module):  # [N, L, F] -> [N, L]: one score per item, padding left unmasked
        ...     def forward(self, x, attention_mask):
        ...         return x.sum(-1)
        >>> x = torch.tensor([[[1.0], [2.0], [3.0]], [[4.0], [5.0], [0.0]]])
        >>> mask = torch.tensor([[1, 1, 1], [1, 1, 0]])
        >>> forward = Forward(Scores(), additional_forward_args={"attention_mask": mask}, num_samples=2)
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     said = warn_padded_target(forward, (x,), forward(x), torch.tensor([2, 2]), "input_effects")
        >>> said
        True
        >>> print(str(caught[0].message)[:96])
        input_effects: the explained column of probe sample(s) [1] is position(s) [2] of the model's one
    """
    if out.dim() != 2 or out.shape[1] < 2 or idx.dim() != 1 or idx.shape[0] != out.shape[0]:
        return False
    pad, unnamed, axis, _ = _step_padding(forward, xs)
    if pad is None or tuple(pad.shape) != tuple(out.shape):
        return False
    pad = pad.to(idx.device)
    hit = pad.gather(1, idx.view(-1, 1).clamp(0, pad.shape[1] - 1)).squeeze(1) & ~pad.all(1)
    rows = hit.nonzero().flatten()
    if not rows.numel() or not _follows_positions(forward, xs, rows[:_CHECKED_ROWS], int(pad.shape[1]), explained=True, axis=axis):
        return False
    samples = rows.tolist()
    shown = f"{samples[:8]}{f' and {len(samples) - 8} more' if len(samples) > 8 else ''}"
    positions = sorted({int(t) for t in idx[rows].tolist()})
    largest = bool((idx[rows] == out.argmax(1).to(idx.device)[rows]).all())  # target=None, resolved here or by an audit
    why = why if why is not None else (
        "`target=None` explains each sample's largest output, and in these samples a padded position's output is "
        "larger than every real one's: the model leaves its padded positions' scores unmasked" if largest
        else f"`{name}=` names them")
    warnings.warn(
        f"{what}: the explained column of probe sample(s) {shown} is position(s) {positions} of the model's one "
        f"output per position ([N, {pad.shape[1]}], its columns following the input's positions), which the forward "
        f"arguments mark as padding ({why}), so every effect of those samples explains an item the model ignores (NaN "
        f"where it scores padding -inf). {PADDED_TARGET_FIX}{unnamed}", UserWarning, stacklevel=outside_package())
    return True


def explained_target(forward: Forward, xs: tuple[Tensor, ...], out: Tensor, target: Any, what: str, *,
                     name: str = "target", why: str | None = None, gathered: Tensor | None = None,
                     warn: bool = True, once: str | None = None, differences: bool = True) -> tuple[Tensor, Tensor]:
    """The explained column of each sample and its clean value, ``(idx [N], f0 [N])``, as every estimator starts:
    ``target`` resolved against the clean output ``out`` ``[N, C]``
    (:func:`~lightning_causal.causal.engine.state.resolve_target`, ``name`` the caller's parameter in its messages),
    a padded position explained warned about (:func:`warn_padded_target` with ``what``, ``name`` and ``why``; not
    where ``warn`` is false: a pass of common random numbers, or a check said once per block), and samples of
    non-finite inputs whose explained output is not finite refused
    (:func:`~lightning_causal.causal.engine.finite.check_finite_samples`). ``gathered``: the output ``f0`` is read
    from, where it is not ``out`` (the plain pass beside a noisy model's clean mean). ``once``: a key said once per
    :func:`~lightning_causal.causal.engine.batching.remembered_fit` block (an audit's layers, an audit's check and its
    search): the check is skipped where a warning of that key was given in the block, and the key is marked only where
    this check gives its warning (a first call with nothing padded leaves a later call's padded target warned about).
    ``differences``: the estimator explains differences of the class's score (effects), which a model's own
    log-probabilities squash at confident samples: warned of once a block
    (:func:`~lightning_causal.causal.engine.log_probabilities.warn_saturated_log_probs`; not where ``warn`` is false).

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> from lightning_causal.causal.engine.forward import Forward
        >>> x = torch.tensor([[1.0, 3.0], [4.0, 2.0]])
        >>> explained_target(Forward(nn.Identity(), num_samples=2), (x,), x, None, "it")
        (tensor([1, 0]), tensor([3., 4.]))
    """
    idx = resolve_target(out, target, name=name)
    if warn:
        say_once_in_block(once, lambda: warn_padded_target(forward, xs, out, idx, what, name=name, why=why))
        if differences:
            say_once_in_block("log_probabilities", lambda: warn_saturated_log_probs(forward.output, out, idx, what))
    f0 = gather_target(out if gathered is None else gathered, idx)
    check_finite_samples(xs, f0)
    return idx, f0
