"""The scale of the input noise of every stability measure: ``noise`` standard deviations of each input element
over the probe's samples (a column of a table, a pixel), one rule for
:func:`~lightning_causal.causal.structure.graph.graph_stability` (``CausalGraphAudit``'s ``stability_noise``) and
the baseline comparison (:func:`~lightning_causal.baselines.metrics.stability`, ``sensitivity``, ``CaptumBaseline``'s
``stability`` scalars).

The standard deviation of all the probe's values together took in the spread between columns: on a table with
columns of sd 1 and sd 1000 it is 707, so noise 0.1 moved the column of sd 1 by 71 of its own standard deviations and
the stability measured the explanation on noise, not near the probe.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from lightning_causal.causal.engine.state import audit_mode
from lightning_causal.causal.engine.token_ids import (
    EmbeddingReader,
    code_position,
    embedding_readers,
)

__all__ = ["code_elements", "codes_kept_note", "codes_named", "element_sd", "float_code_elements", "input_noise_sd", "varies"]

_CODE_ROWS = 256  # the clean rows a float input's code columns are matched on (as the embeddings' readers match them)


def element_sd(x: Tensor) -> Tensor:
    """The standard deviation of each element of ``x`` ``[N, ...]`` over the samples (dim 0), ``[1, ...]`` in ``x``'s
    dtype: ``sd_e = sqrt(Σ_n (x_ne − mean_e)² / (N_e − 1))`` over the ``N_e`` samples where the element is finite
    (``N_e − 1``: Bessel's correction; 0 for one finite value). An element constant over the samples (an image's
    constant border, a constant column) has sd 0. A NaN or infinite value (a missing value a model reads as such) is
    left out of its element's spread rather than making it NaN: the noise of the other samples stays of their scale.

    Args:
        x: floating-point inputs ``[N, ...]``, ``N >= 1``.

    Examples:
        >>> import torch
        >>> [round(v, 2) for v in element_sd(torch.tensor([[0.0, 1000.0, 5.0], [2.0, 3000.0, 5.0]]))[0].tolist()]
        [1.41, 1414.21, 0.0]
        >>> element_sd(torch.tensor([[0.0, 1.0], [2.0, float("nan")], [4.0, 3.0]]))  # column 1: sd of 1 and 3
        tensor([[2.0000, 1.4142]])
    """
    if not isinstance(x, Tensor) or not x.is_floating_point() or x.dim() < 1 or x.shape[0] < 1:
        raise ValueError(f"Expected argument `x` to be a floating-point tensor [N, ...] with N >= 1 but got "
                         f"{list(x.shape) if isinstance(x, Tensor) else type(x).__name__}"
                         f"{f' of {x.dtype}' if isinstance(x, Tensor) else ''}")
    z, finite = x.detach().double(), x.isfinite()
    if bool(finite.all()):
        return z.std(0, unbiased=x.shape[0] > 1, keepdim=True).to(x.dtype)
    count = finite.sum(0, keepdim=True)
    z = z.where(finite, 0.0)
    centred = (z - z.sum(0, keepdim=True) / count.clamp(min=1)).where(finite, 0.0)
    return (centred.square().sum(0, keepdim=True) / (count - 1).clamp(min=1)).sqrt().to(x.dtype)


def code_elements(readers: Sequence[EmbeddingReader], xs: tuple[Tensor, ...]) -> tuple[Tensor | None, ...]:
    """Per input of ``xs``, a bool ``[1, ...]`` (one sample's shape) of the elements an embedding reads cast to indices:
    category codes kept in a float column (``nn.Embedding(x[:, j].long())``, ``EmbeddingReader.columns``); ``None``
    for an input without one.

    Examples:
        >>> reader = EmbeddingReader("emb", "Embedding", 4, 0, (2,), (1,), 0, (2,))  # reads column 2 of input 0
        >>> code_elements([reader], (torch.zeros(2, 3),))
        (tensor([[False, False,  True]]),)
    """
    out: list[Tensor | None] = [None] * len(xs)
    for r in readers:
        x = xs[r.input_index]
        if r.columns is None or not x.is_floating_point():
            continue
        flat = torch.zeros(x[0].numel(), dtype=torch.bool, device=x.device) if out[r.input_index] is None \
            else out[r.input_index].reshape(-1)  # type: ignore[union-attr]
        flat[list(r.columns)] = True
        out[r.input_index] = flat.reshape(1, *x.shape[1:])
    return tuple(out)


def float_code_elements(forward: Any, xs: tuple[Tensor, ...]) -> tuple[Tensor | None, ...]:
    """:func:`code_elements` found on a clean pass of the first 256 rows of ``xs``: ``forward`` (an engine
    ``Forward``, called ``forward(*xs, rows=...)``) runs them in eval mode without gradient, under
    :func:`~lightning_causal.causal.engine.token_ids.embedding_readers` (which sees ``F.one_hot`` and a table indexed
    directly too, so a model without an embedding runs it as well where a float input holds an element whole in every
    row and not constant, :func:`_whole_and_varying`). No pass for inputs without a float one of two rows or more:
    every entry ``None``.

    Gaussian noise has no meaning for such a code (a nominal category), and ``.long()`` truncates the noisy value to
    another category half the time at a tenth of the column's spread: the stability measures leave these elements as
    they are (:func:`input_noise_sd`'s ``codes``).
    """
    model = forward.model
    k = min(xs[0].shape[0], _CODE_ROWS)
    head = tuple(x[:k] for x in xs)
    embedded = any(isinstance(m, (nn.Embedding, nn.EmbeddingBag)) for m in model.modules())
    if not any(x.is_floating_point() and x.dim() >= 1 and x.shape[0] >= 2 and (embedded or _whole_and_varying(x))
               for x in head):
        return (None,) * len(xs)
    with torch.no_grad(), audit_mode(model), embedding_readers(model, head) as readers:
        forward(*head, rows=torch.arange(k, device=xs[0].device))
    return code_elements(readers, head)


def _whole_and_varying(x: Tensor) -> bool:
    """Whether some element of ``x`` (``[N, ...]``) is a whole number in every row and not constant over them: what a
    code column needs (:func:`~lightning_causal.causal.engine.token_ids._code_columns`), so a model without an embedding
    (``F.one_hot``, a table indexed directly) runs no pass for inputs without one (Gaussian features, a probe of 2 rows)."""
    flat = x.detach().reshape(x.shape[0], -1)
    return bool(((flat == flat.trunc()).all(0) & (flat != flat[:1]).any(0)).any())


def codes_named(xs: tuple[Tensor, ...], codes: tuple[Tensor | None, ...]) -> str:
    """The elements ``codes`` marks (:func:`code_elements`' entries, per input of ``xs``) in words, the first 8:
    ``"column 2, column 3"``; ``""`` for none.

    Examples:
        >>> codes_named((torch.zeros(2, 4),), (torch.tensor([[False, False, True, True]]),))
        'column 2, column 3'
    """
    kept = [code_position(x, j) for x, c in zip(xs, codes) if c is not None for j in c.reshape(-1).nonzero().flatten().tolist()]
    return f"{', '.join(kept[:8])}{' ...' if len(kept) > 8 else ''}"


def codes_kept_note(measure: str, xs: tuple[Tensor, ...], codes: tuple[Tensor | None, ...]) -> str | None:
    """The note of a stability measure (``measure``, its name on the card) that leaves the category codes ``codes``
    marks out of its noise (:func:`input_noise_sd`'s ``codes``), naming them; ``None`` where it marks none.

    Examples:
        >>> codes_kept_note("stability", (torch.zeros(2, 3),), (torch.tensor([[False, False, True]]),))[:39]
        'stability leaves column 2 as it is: cat'
    """
    where = codes_named(xs, codes)
    if not where:
        return None
    one = sum(int(c.sum()) for c in codes if c is not None) == 1
    return (f"{measure} leaves {where} as {'it is' if one else 'they are'}: category codes an embedding reads cast to "
            "indices, which Gaussian noise would turn into other categories")


def input_noise_sd(x: Tensor, noise: float, codes: Tensor | None = None) -> Tensor:
    """The noise standard deviation of each element of ``x`` ``[N, ...]``: ``noise · sd_e``, ``sd_e`` its standard
    deviation over the samples (:func:`element_sd`), ``[1, ...]``: the noisy copy ``x + input_noise_sd(x, noise) · ε``,
    ``ε ~ N(0, I)``, moves each column of a table, each pixel, by ``noise`` of its own spread over the probe.

    An element constant over the probe gets no noise: an image's border that is 0 in every sample, a constant column.
    The noisy copies stay where the data varies, and a model is not asked about values it never sees there (noise on
    an MNIST border would move Saliency's border gradients, not the explanation near the data). A probe of one sample
    (or of identical samples) has no spread at all: :func:`varies` tells it, and the stability measures then give no
    noisy figure rather than one of no noise.

    Args:
        x: floating-point inputs ``[N, ...]``.
        noise: the share of each element's standard deviation, ``>= 0``.
        codes: bool ``[1, ...]``, elements that get no noise: category codes an embedding reads cast to indices
            (:func:`float_code_elements`).

    Examples:
        >>> import torch
        >>> [round(v, 4) for v in input_noise_sd(torch.tensor([[0.0, 1000.0], [2.0, 3000.0]]), 0.1)[0].tolist()]
        [0.1414, 141.4214]
        >>> input_noise_sd(torch.tensor([[0.0, 1.0], [2.0, 3.0]]), 0.1, codes=torch.tensor([[False, True]]))
        tensor([[0.1414, 0.0000]])
    """
    if isinstance(noise, bool) or not isinstance(noise, (int, float)) or not noise >= 0:
        raise ValueError(f"Expected argument `noise` to be a non-negative float (a share of each element's standard "
                         f"deviation) but got {noise!r}")
    sd = element_sd(x) * noise
    return sd if codes is None else sd.masked_fill(codes.to(sd.device), 0.0)


def varies(x: Tensor) -> bool:
    """Whether some element of the floating-point ``x`` ``[N, ...]`` takes different finite values over the samples (its
    :func:`element_sd` is above 0): the per-element noise scale (:func:`input_noise_sd`) is 0 everywhere otherwise (a
    probe of one sample).

    Args:
        x: inputs ``[N, ...]``; integer inputs (token ids) take no Gaussian noise and give ``False``.

    Examples:
        >>> import torch
        >>> varies(torch.tensor([[1.0, 2.0]])), varies(torch.tensor([[1.0, 2.0], [1.0, 3.0]]))
        (False, True)
    """
    return bool(x.is_floating_point() and x.shape[0] > 1 and (element_sd(x) > 0).any())
