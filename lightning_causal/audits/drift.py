"""Causal drift: how an audit's rankings moved since its previous run."""

from __future__ import annotations

import math
import zlib
from collections.abc import Sequence

import torch
from torch import Tensor

from lightning_causal.causal.engine.checks import check_int
from lightning_causal.causal.engine.ranking import spearman as rank_correlation

__all__ = ["spearman", "topk_jaccard", "importance_shift", "vector_drift", "resized_vectors", "resized_note", "ENTRIES", "entry_codes",
           "changed_entries", "changed_note"]


def spearman(a: Tensor, b: Tensor) -> float:
    """Spearman rank correlation of two 1-D tensors (NaN when either is constant or holds a NaN).

    Args:
        a: a 1-D tensor.
        b: a 1-D tensor of the same shape.

    Examples:
        >>> import torch
        >>> round(spearman(torch.tensor([1.0, 2.0, 3.0]), torch.tensor([10.0, 20.0, 30.0])), 6)
        1.0
    """
    if a.shape != b.shape or a.dim() != 1:
        raise ValueError(f"Expected two 1-D tensors of equal shape but got {list(a.shape)} and {list(b.shape)}")
    if bool(a.isnan().any() or b.isnan().any()):  # the ranks would place NaN above every number
        return math.nan
    return float(rank_correlation(a.double().unsqueeze(0), b.double().unsqueeze(0))[0])


def topk_jaccard(a: Tensor, b: Tensor, k: int) -> float:
    """|top_k(a) ∩ top_k(b)| / |top_k(a) ∪ top_k(b)|, the ``k`` entries of largest magnitude (a
    signed vector's strongest effects are its most negative as much as its most positive); NaN
    when either holds a NaN (``topk`` would take it for the largest entry).

    Ties are kept whole: ``top_k(a)`` is every entry at least as large in magnitude as the ``k``-th
    largest, so it may hold more than ``k``, and entries of magnitude 0 (dead units, features
    without effect) are in no top set. ``torch.topk`` alone picks among equal values in an order of
    its own: ``[5, 3, 0, 0, 0, 0]`` against its reverse at ``k = 5`` overlapped on three zeros
    (0.67), although the two units with an effect changed places (0.0). Two vectors without any
    non-zero entry have equal (empty) top sets: 1.0.

    Args:
        a: a 1-D tensor.
        b: a 1-D tensor of the same shape.
        k: the number of entries of largest magnitude compared.

    Examples:
        >>> import torch
        >>> topk_jaccard(torch.tensor([3.0, 2.0, 1.0, 0.0]), torch.tensor([3.0, 0.0, 2.0, 1.0]), 2)
        0.3333333333333333
    """
    if a.shape != b.shape or a.dim() != 1 or a.numel() == 0:
        raise ValueError(f"Expected two non-empty 1-D tensors of equal shape but got {list(a.shape)} and {list(b.shape)}")
    check_int("k", k, minimum=1)
    if bool(a.isnan().any() or b.isnan().any()):
        return math.nan
    k = min(k, a.numel())
    sa, sb = _top_set(a, k), _top_set(b, k)
    return len(sa & sb) / len(sa | sb) if sa | sb else 1.0


def _top_set(v: Tensor, k: int) -> set[int]:
    """The entries of ``v`` whose magnitude is at least its ``k``-th largest and not 0 (ties whole)."""
    m = v.abs()
    kth = m.topk(k).values[-1]
    return set(torch.nonzero((m >= kth) & (m > 0)).flatten().tolist())


def importance_shift(a: Tensor, b: Tensor) -> float:
    """Total-variation distance between the normalised |importance| distributions (0 = same, 1 = disjoint).

    Args:
        a: a 1-D importance vector.
        b: a 1-D importance vector of the same shape.
    """
    if a.shape != b.shape or a.dim() != 1:
        raise ValueError(f"Expected two 1-D tensors of equal shape but got {list(a.shape)} and {list(b.shape)}")
    pa, pb = a.abs().double(), b.abs().double()
    if pa.sum() == 0 or pb.sum() == 0:
        return 0.0 if pa.sum() == pb.sum() else 1.0
    return float(0.5 * (pa / pa.sum() - pb / pb.sum()).abs().sum())


def _constant(v: Tensor) -> bool:
    return bool((v == v[0]).all())


def vector_drift(previous: dict[str, Tensor], current: dict[str, Tensor], k: int = 5) -> dict[str, float]:
    """Drift scalars ``drift/<vector>/{spearman,topk_jaccard,shift}`` for vectors present in both runs.

    ``topk_jaccard`` compares the top ``min(k, U - 1)`` of a vector of ``U`` entries: with ``k >= U``
    both top sets would be the whole vector, 1.0 whatever the change (the 2-4 heads of a tiny
    vision transformer, DeiT-tiny's 3). ``spearman`` is left out when either vector is constant
    (e.g. Neural Cleanse's ``reversed_asr`` when every reversed trigger reaches a rate of 1): it
    has no ranking, and its NaN made the callback warn of non-finite values at every epoch.
    ``topk_jaccard`` is left out when either vector is constant in magnitude (a layer whose units
    all have importance 0): its top ``k`` would be whichever entries ``torch.topk`` returns among
    equal values, and the overlap an artefact of that order (0.67 for a zero vector against
    ``arange(8)``, 0.25 against it reversed). A vector holding a NaN (a diverged model) gives NaN
    drift scalars, not a ranking that places the NaN entries first.

    Args:
        previous: the vectors of the previous audit run, by name.
        current: the vectors of this run, by name.
        k: the top-k size of ``topk_jaccard``, as above.

    Examples:
        >>> import torch
        >>> vector_drift({"heads": torch.tensor([4.0, 3.0, 2.0, 1.0])}, {"heads": torch.tensor([1.0, 2.0, 3.0, 4.0])})["drift/heads/topk_jaccard"]
        0.5
    """
    out: dict[str, float] = {}
    for name, cur in current.items():
        prev = previous.get(name)
        if prev is None or prev.shape != cur.shape or cur.dim() != 1 or cur.numel() < 2:
            continue
        prev, cur = prev.detach().cpu().double(), cur.detach().cpu().double()
        if not (_constant(prev) or _constant(cur)):  # no ranking to compare: NaN would warn at every epoch
            out[f"drift/{name}/spearman"] = spearman(prev, cur)
        if not (_constant(prev.abs()) or _constant(cur.abs())):  # no top k among equal magnitudes
            out[f"drift/{name}/topk_jaccard"] = topk_jaccard(prev, cur, min(k, cur.numel() - 1))
        out[f"drift/{name}/shift"] = importance_shift(prev, cur)
    return out


def resized_vectors(previous: dict[str, Tensor], current: dict[str, Tensor]) -> dict[str, list[int]]:
    """The 1-D vectors of ``current`` whose ``previous`` run had another length, ``name -> [previous length, length]``,
    for which :func:`vector_drift` gives no drift: the model changed between the runs (a classifier head grown from 5
    to 10 classes, a layer widened or replaced, a resume into another head) or which of its layers the audit covers did
    (a layer map's default layers), so entry ``i`` of the two is not one unit, class or layer, and the drift series
    pauses for that run instead of comparing them (:func:`resized_note` says so).

    Args:
        previous: the vectors of the previous audit run, by name.
        current: the vectors of this run, by name.

    Examples:
        >>> import torch
        >>> resized_vectors({"importance/head": torch.ones(5), "a": torch.ones(3)}, {"importance/head": torch.ones(10), "a": torch.ones(3)})
        {'importance/head': [5, 10]}
    """
    return {name: [prev.numel(), cur.numel()] for name, cur in current.items()
            if (prev := previous.get(name)) is not None and prev.dim() == 1 and cur.dim() == 1 and prev.shape != cur.shape}


def resized_note(name: str, lengths: Sequence[int]) -> str:
    """The note of a vector of :func:`resized_vectors`, for the report and the text card.

    Args:
        name: the vector's name.
        lengths: its previous length and its length now.

    Examples:
        >>> resized_note("importance/head", [5, 10])
        'no drift of importance/head at this audit: 5 entries at the previous audit, 10 now, so entry i is not one unit, class or layer in both (the model, or the layers the audit covers, changed between them); it resumes at the next audit'
    """
    return (f"no drift of {name} at this audit: {lengths[0]} entries at the previous audit, {lengths[1]} now, so entry i is "
            "not one unit, class or layer in both (the model, or the layers the audit covers, changed between them); it "
            "resumes at the next audit")


def changed_note(name: str, entries: Sequence[str]) -> str:
    """The note of a vector of :func:`changed_entries` (its entries now), for the report and the text card.

    Args:
        name: the vector's name.
        entries: its entries' names now.

    Examples:
        >>> changed_note("layer_response", ["0", "4"])
        "no drift of layer_response at this audit: its entries are other ones than at the previous audit (now ['0', '4']), so entry i is not one unit, class or layer in both; it resumes at the next audit"
    """
    return (f"no drift of {name} at this audit: its entries are other ones than at the previous audit (now {list(entries)}), "
            "so entry i is not one unit, class or layer in both; it resumes at the next audit")


ENTRIES = "entries:"  # the key prefix under which a drift base keeps the codes of a vector's named entries


def entry_codes(names: Sequence[str]) -> Tensor:
    """The entries of a vector, named (``AuditResult.meta["vector_entries"]``: a layer map's ``layer_response`` is one
    entry per layer), as a tensor of their CRC-32 codes: what a drift base keeps, under ``ENTRIES + <vector>``, to tell
    whether the next run's entries are the same ones (:func:`changed_entries`).

    Args:
        names: the entries' names, in the vector's order.

    Examples:
        >>> entry_codes(["fc1", "fc2"]).tolist() == entry_codes(["fc1", "fc2"]).tolist() != entry_codes(["fc1", "fc3"]).tolist()
        True
    """
    return torch.tensor([zlib.crc32(str(n).encode()) for n in names], dtype=torch.long)


def changed_entries(previous: dict[str, Tensor], entries: dict[str, Sequence[str]]) -> dict[str, list[str]]:
    """The vectors of ``entries`` (a run's ``meta["vector_entries"]``, name -> its entries' names) whose entries are other
    ones than at the previous run (``previous``: that run's drift base, with :func:`entry_codes` under ``ENTRIES``), of
    the same number: a layer map whose layers changed (one left out as dead, another back; a layer replaced under another
    name), where entry ``i`` of the two is not one layer and :func:`vector_drift` would compare them. Returns name ->
    the entries now; a vector of another length is :func:`resized_vectors`' case.

    Args:
        previous: the previous run's drift base.
        entries: this run's named entries, by vector.

    Examples:
        >>> base = {"layer_response": torch.ones(2), ENTRIES + "layer_response": entry_codes(["fc1", "fc2"])}
        >>> changed_entries(base, {"layer_response": ["fc1", "fc3"]}), changed_entries(base, {"layer_response": ["fc1", "fc2"]})
        ({'layer_response': ['fc1', 'fc3']}, {})
    """
    out = {}
    for name, names in entries.items():
        before = previous.get(ENTRIES + name)
        if before is not None and before.numel() == len(names) and not torch.equal(before.cpu(), entry_codes(names)):
            out[name] = [str(n) for n in names]
    return out
