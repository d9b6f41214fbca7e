"""An in-batch score matrix that ``output=`` reads across its columns: the cause named where such a model's
explained outputs depend on the batch.

A CLIP-like two-tower model returns the batch's similarity matrix ``[B, B]`` (row ``i`` scores image ``i`` against
every caption of its batch). Explained as it is, its width follows the batch, which :class:`~.forward.Forward`
refuses by name. Through an ``output=`` that reads across the columns (a retrieval softmax ``s.softmax(1)``, an
InfoNCE term ``s.diagonal() - s.logsumexp(1)``, a mean over the batch's items) the explained output has one column,
but a sample's value depends on the captions of whichever samples share its pass: the checks of sample independence
refuse it, and without this module named a support set gathered by row (``mark_whole``) or a graph as the cause.
:func:`in_batch_cause` names the matrix and the two ways out, each row's own score (``s.diagonal()``) or one fixed
set of candidates passed whole; :func:`place_paired_hint` names the slip of reading a matrix against candidates
passed whole by the row's place in the pass (``s.diagonal()`` after ``mark_whole``).

Examples:
    >>> import torch
    >>> square_tensors({"logits_per_image": torch.zeros(3, 3), "logits_per_text": torch.zeros(3, 3)}, 3)
    ["'logits_per_image'", "'logits_per_text'"]
    >>> square_tensors(torch.zeros(3, 10), 3)
    []
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

from lightning_causal.causal.engine.output_selection import select_output

__all__ = ["square_tensors", "in_batch_cause", "place_paired_hint", "IN_BATCH_FIX"]

#: the ways out of an ``output=`` that reads an in-batch score matrix across its columns
IN_BATCH_FIX = (
    "explain each row's own score, `output=lambda s: s.diagonal()[:, None]` (its own item; a sample's value then reads "
    "its own image and caption only), or score every sample against one fixed set of candidates: pass the other "
    "tower's inputs whole (`additional_forward_args=mark_whole((input_ids, attention_mask), [0, 1])`, `from "
    "lightning_causal.causal import mark_whole`) with `output=lambda s: s.log_softmax(1)` and each "
    "row's own candidate as `target=` (e.g. `target=torch.arange(N)`), or wrap the model around the candidates' "
    "embeddings kept as a buffer (a zero-shot classifier over class prompts, `logits = scale * image @ prompts.T`); "
    "docs/your_model.md, 'Models without class outputs', and for a CLIP-like model's per-sample outputs (its zero-shot "
    "classifier, its image embedding) docs/recipes.md, 'Auditing a CLIP-like dual encoder'")


def square_tensors(out: Any, rows: int) -> list[str]:
    """The tensors of a return value ``out`` of a pass of ``rows`` rows that hold as many columns as rows
    (``[rows, rows, ...]``), named as a message names them: ``'the output'`` for a tensor, the key of a mapping
    (a Hugging Face ``ModelOutput``'s ``'logits_per_image'``), ``'element i'`` of a tuple or list.

    Args:
        out: the model's return value.
        rows: the rows of the pass.
    """
    return [name for name, _ in _score_items(out, rows, rows)]


def _score_items(out: Any, rows: int, columns: int) -> list[tuple[str, Tensor]]:
    """The tensors ``[rows, columns, ...]`` of a return value ``out`` with their names (as :func:`square_tensors` names them)."""
    if isinstance(out, Tensor):
        items: list[tuple[str, Any]] = [("the output", out)]
    elif isinstance(out, Mapping):
        items = [(repr(k), v) for k, v in out.items()]
    elif isinstance(out, (tuple, list)):
        items = [(f"element {i}", v) for i, v in enumerate(out)]
    else:
        items = []
    return [(name, v) for name, v in items if isinstance(v, Tensor) and v.dim() >= 2 and v.shape[0] == rows
            and v.shape[1] == columns]


def _raw(forward: Any, xs: tuple[Tensor, ...], rows: Tensor | None) -> Any:
    """``forward``'s return value for the probe's ``rows`` (``None``: every row), or ``None`` where it fails."""
    try:
        with torch.no_grad():
            return forward.raw(*(xs if rows is None else tuple(x[rows] for x in xs)), rows=rows)
    except Exception:  # noqa: BLE001 - only a message is at stake: the refusal that called this goes on without it
        return None


def in_batch_cause(forward: Any, xs: tuple[Tensor, ...], rows: Tensor) -> str | None:
    """Where ``forward`` selects its explained output with ``output=`` from a return value that holds an in-batch
    score matrix (a tensor ``[R, R]`` in a pass of ``R`` rows, for the probe's ``N`` rows and for the ``rows`` alone,
    two numbers of rows), the cause of a refusal of sample independence, in words; else ``None``.

    Args:
        forward: the model's :class:`~.forward.Forward`.
        xs: the probe inputs ``[N, ...]``.
        rows: the probe samples that ran alone (fewer than ``N``).
    """
    n, k = xs[0].shape[0], len(rows)
    if getattr(forward, "output", None) is None or k == n:
        return None
    whole = square_tensors(_raw(forward, xs, None), n)  # one pass of the probe, whatever the names found alone
    names = [name for name in square_tensors(_raw(forward, xs, rows), k) if name in whole]
    if not names:
        return None
    return (f"the model returns an in-batch score matrix ({names[0]} is [{n}, {n}] for the batch of {n} and [{k}, {k}] "
            f"for {k} samples alone: row i scores every item of its batch, as a CLIP-like two-tower model's image-text "
            "similarities) and `output=` reads across its columns (a softmax, logsumexp or mean over the batch's items, "
            "an InfoNCE term, or another row's item), so a sample's value depends on the items of whichever samples "
            "share its pass")


def _reads_diagonal(picked: Any, scores: Tensor) -> bool:
    """Whether the explained tensor ``picked`` is the diagonal of ``scores`` ``[N, C, ...]`` (row i against candidate
    i, ``min(N, C)`` rows, in any shape): what reading a candidate by the row's place gives."""
    diagonal = scores.diagonal(0, 0, 1).movedim(-1, 0)
    return (isinstance(picked, Tensor) and picked.numel() == diagonal.numel() > 0
            and torch.equal(picked.detach().reshape(-1), diagonal.detach().reshape(-1)))


def place_paired_hint(forward: Any, xs: tuple[Tensor, ...], raw: Any = None) -> str:
    """Where ``forward`` selects its explained output with ``output=`` from a return value that holds a score matrix
    ``[N, C]`` on the ``N`` rows of ``xs`` (``raw``, where given; else one pass) and ``C`` is the first dimension of a
    forward argument passed whole (``mark_whole``: every row against ``C`` candidates), and the explained output is
    its diagonal, a sentence that names reading it by the row's place in the pass (``s.diagonal()``: row i against
    candidate i); else ``""`` (a node classifier's logits ``[N, 2]`` read whole beside an ``edge_index`` of 2 rows). ``C`` may differ from
    ``N`` (10 class prompts, a probe of 64): the diagonal then has ``min(N, C)`` rows.

    Args:
        forward: the model's :class:`~.forward.Forward`.
        xs: the inputs ``[N, ...]`` of the pass.
        raw: ``forward``'s return value on ``xs``, where the caller has it.
    """
    n = xs[0].shape[0]
    args = getattr(forward, "args", None)
    sizes = sorted({int(t.shape[0]) for t in getattr(args, "whole", ()) if isinstance(t, Tensor) and t.dim()})
    if getattr(forward, "output", None) is None or n < 2 or not sizes:
        return ""  # no forward argument passed whole: no candidates
    out = _raw(forward, xs, None) if raw is None else raw
    try:
        picked = select_output(out, forward.output)
    except Exception:  # noqa: BLE001 - only a message is at stake: the refusal that called this goes on without it
        return ""
    found = [(name, c) for c in sizes for name, s in _score_items(out, n, c) if _reads_diagonal(picked, s)]
    if not found:
        return ""  # no score matrix read by the row's place (a node classifier's logits [N, 2] beside an edge_index)
    name, c = found[0]
    return (f"If the model scores each row against {c} candidates passed whole ({name} is [{n}, {c}]: the other "
            "tower's inputs of a CLIP-like model, `mark_whole`), `output=` must not pick a row's candidate by the row's "
            "place in the pass: `s.diagonal()` pairs row i with candidate i whichever sample row i holds, another "
            f"sample's once the rows move{'' if c == n else f', and has min(rows, {c}) rows'}. Pick each row's own "
            "candidate with `target=` instead (`output=lambda s: s.log_softmax(1)`, `target=torch.arange(N)` for each "
            "sample's own caption among N passed whole, its class for class prompts). ")
