"""Results and targets of one mapping per sample: a detector's per-image dicts.

An object detector (torchvision's, a CenterNet decoded after non-maximum suppression) returns in eval mode a list of
one mapping per image, ``{"boxes": [n_i, 4], "scores": [n_i], "labels": [n_i]}``, each of its own length ``n_i``, and
trains on ``(images, targets)`` batches whose targets are such a list too. Neither is a tensor of one row per sample:
``out[0]`` is the first *image's* result, ``torch.cat`` of the scores has ``sum(n_i)`` rows, and the targets are no
class labels. :func:`per_sample_mappings` tells such a list; :func:`results_way` and :func:`targets_way` name what to
pass instead (an ``output=`` that gives every image the same number of scores; ``unpack_batch=`` without the targets).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import Tensor

__all__ = ["boxes_way", "detection_batch", "levels_way", "per_sample_mappings", "reduction_failed", "results_way",
           "set_columns_read", "set_columns_warning", "set_logits_key", "set_way", "targets_way"]

_PAGE = "docs/your_model.md, 'Object detectors'"

_RESULT_KEYS = frozenset({"boxes", "scores", "labels", "masks", "keypoints"})  # a detector's results and targets


def per_sample_mappings(value: Any) -> bool:
    """Whether ``value`` is a list of mappings that hold tensors, one per sample; a plain tuple of them only where a
    mapping holds a detector's keys (``boxes``, ``scores``, ``labels``, ``masks``, ``keypoints``: targets collated by
    ``tuple(zip(*batch))``, as torchvision's references do), since ``return heads, aux`` is a tuple of mappings of
    the heads of every sample (a two-tower model's outputs), no result per sample.

    Args:
        value: any value (a model's return value, a batch's labels).

    Examples:
        >>> import torch
        >>> per_sample_mappings([{"boxes": torch.zeros(2, 4), "labels": torch.tensor([1, 0])}, {"boxes": torch.zeros(0, 4)}])
        True
        >>> per_sample_mappings({"logits": torch.zeros(2, 3)}), per_sample_mappings([torch.zeros(2)])
        (False, False)
        >>> per_sample_mappings(({"logits": torch.zeros(8, 3)}, {"embedding": torch.zeros(8, 4)}))
        False
    """
    if not isinstance(value, (list, tuple)) or hasattr(value, "_fields") or not value or not all(
            isinstance(v, Mapping) and any(isinstance(t, Tensor) for t in v.values()) for v in value):
        return False
    return isinstance(value, list) or any(_RESULT_KEYS & set(v) for v in value)


def detection_batch(batch: Any) -> bool:
    """Whether ``batch`` is a detector's ``(images, targets, ...)``, its targets one mapping per image.

    Examples:
        >>> import torch
        >>> detection_batch((torch.zeros(1, 3), [{"labels": torch.ones(1)}])), detection_batch((torch.zeros(1, 3), torch.ones(1)))
        (True, False)
    """
    return isinstance(batch, (tuple, list)) and len(batch) >= 2 and per_sample_mappings(batch[1])


def _keys(value: Any) -> list[Any]:
    return list(value[0])[:6]


def results_way(out: Any) -> str:
    """What to pass as ``output=`` for a return value of one mapping per sample (:func:`per_sample_mappings`): a
    callable that reduces each sample's result to the same number of scores; with ``scores`` and ``labels``, each
    class's best score.

    Args:
        out: the model's return value, a list of mappings.

    Examples:
        >>> import torch
        >>> print(results_way([{"scores": torch.ones(1), "labels": torch.ones(1, dtype=torch.long)}])[:80])
        a list of one result per sample (a detector's per-image dicts with keys ['scores
    """
    keys = set(out[0])
    if {"scores", "labels"} <= keys:
        reduce = ("each class's best score, 0 where the image has none (K: the number of label values, torchvision's "
                  "background included), then `target=c`: `output=lambda out: torch.stack([o['scores'].new_zeros(K)"
                  ".scatter_reduce(0, o['labels'], o['scores'], 'amax') for o in out])`")
    else:
        reduce = "`output=lambda out: torch.stack([<a fixed number of scores of o> for o in out])`"
    return (f"a list of one result per sample (a detector's per-image dicts with keys {_keys(out)}, each of its own "
            f"length) holds no tensor of one row per sample (`output=0` takes the first image's result; the images' "
            f"scores concatenated have one row per detection): pass `output=` a callable that gives "
            f"every sample the same number of scores, e.g. {reduce}; or explain the dense heads before the decoding "
            f"({_PAGE})")


def targets_way(labels: Any, stacked: bool = False) -> str:
    """What to pass as ``unpack_batch=`` for a batch whose labels are one mapping per sample (a detector's targets,
    ``{"boxes", "labels"}`` per image): no labels for the audits, or image-level labels made from them.

    Args:
        labels: the batch's labels, a list of mappings.
        stacked: the images are a list of tensors (``torch.stack(batch[0])`` in the fix).

    Examples:
        >>> import torch
        >>> print(targets_way([{"boxes": torch.zeros(1, 4), "labels": torch.ones(1, dtype=torch.long)}])[:67])
        per-image target dicts with keys ['boxes', 'labels'] (a detector's)
    """
    images = "torch.stack(batch[0])" if stacked else "batch[0]"
    present = ("torch.stack([(t['labels'] == c).any() for t in batch[1]]).long()" if "labels" in labels[0]
               else "<one class index per image>")
    return (f"per-image target dicts with keys {_keys(labels)} (a detector's) are no class labels of the samples: pass "
            f"`unpack_batch=lambda batch: ({images}, None, None)` with each audit's `output=` a score per image "
            f"({_PAGE}); the audits that need one class per image (CounterfactualAudit, FairnessAudit, BackdoorAudit) "
            f"take image-level labels made from them, e.g. `unpack_batch=lambda batch: ({images}, {present}, None)` "
            "(whether class c is present)")


def reduction_failed(out: Any, err: Exception) -> str:
    """What to check where a callable ``output=`` fails with ``err`` on a return value of one mapping per sample: a
    scatter by label out of range (``K`` counts the label values, torchvision's background 0 included), else the
    reduction of :func:`results_way` (``torch.stack`` of the images' own numbers of detections).

    Examples:
        >>> import torch
        >>> out = [{"scores": torch.ones(1), "labels": torch.tensor([3])}]
        >>> print(reduction_failed(out, RuntimeError("index 3 is out of bounds for dimension 0 with size 3"))[-61:])
        need K = classes + 1 (docs/your_model.md, 'Object detectors')
    """
    if "out of bounds" not in str(err) and "index" not in str(err).lower():
        return results_way(out)
    top = [int(o["labels"].max()) for o in out if isinstance(o.get("labels"), Tensor) and o["labels"].numel()
           and not o["labels"].is_floating_point()] if isinstance(out[0], Mapping) else []
    largest = f" (the largest here is {max(top)})" if top else ""
    return (f"the callable reads a list of one result per sample (a detector's per-image dicts with keys {_keys(out)}): "
            "where it scatters each image's scores by label into K entries, K must be more than every label "
            f"value{largest}: labels counted from 1 (torchvision's, background 0) need K = classes + 1 ({_PAGE})")


def _entry(out: Any, key: str) -> Any:
    return out.get(key) if isinstance(out, Mapping) else getattr(out, key, None)


def set_logits_key(out: Any) -> str | None:
    """The key of a set predictor's class logits, ``"pred_logits"`` (DETR's) or ``"logits"`` (Hugging Face's
    ``DetrObjectDetectionOutput``), where the return value ``out`` (a mapping or an object) holds them ``[N, Q, C + 1]``
    beside ``pred_boxes`` ``[N, Q, 4]``: one row per object query, the last class "no object"; else ``None``.

    Examples:
        >>> import torch
        >>> set_logits_key({"pred_logits": torch.zeros(2, 5, 3), "pred_boxes": torch.zeros(2, 5, 4)})
        'pred_logits'
        >>> set_logits_key({"logits": torch.zeros(2, 5, 3)}) is None
        True
    """
    boxes = _entry(out, "pred_boxes")
    if not isinstance(boxes, Tensor) or boxes.dim() != 3:
        return None
    for key in ("pred_logits", "logits"):
        logits = _entry(out, key)
        if isinstance(logits, Tensor) and logits.dim() == 3 and logits.shape[:2] == boxes.shape[:2]:
            return key
    return None


def set_way(out: Any, key: str) -> str:
    """What to pass as ``output=`` for a set predictor's class logits (:func:`set_logits_key`): each class's best
    probability over the object queries, the "no object" class left out, as DETR's post-processing scores them.
    A query's row is no object of the image (a query can take another object under an intervention), its argmax is
    "no object" wherever the query finds none, and a mean over the queries averages them with it.

    Examples:
        >>> import torch
        >>> out = {"pred_logits": torch.zeros(2, 5, 3), "pred_boxes": torch.zeros(2, 5, 4)}
        >>> way = set_way(out, "pred_logits")
        >>> print(way[way.index("`output="):way.index("`target=c`") + 10])
        `output=lambda out: out['pred_logits'].softmax(-1)[..., :-1].amax(1)`, then `target=c`
        >>> print(way[way.rindex("`output="):way.rindex("`") + 1])
        `output=lambda out: out['pred_logits'].sigmoid().amax(1)`
    """
    q, k, read = _set_read(out, key)
    return (f"a set predictor's class logits {read} [N, {q}, {k}] (DETR's: one row per object query, the last of the "
            f"{k} classes 'no object') are no class scores of the samples: {_NO_OBJECT}, its argmax is 'no object' "
            "wherever it finds none, and a mean over the queries averages the objects with the empty queries; pass each "
            "class's best probability over the queries, 'no object' left out (as DETR's post-processing scores the "
            f"detections) ({_PAGE}): {_best_way(read)}{_sigmoid_way(read)}")


def boxes_way(out: Any, key: str) -> str:
    """What to pass as ``output=`` for a set predictor's boxes ``pred_boxes`` ``[N, Q, 4]`` beside its class logits
    under ``key`` (:func:`set_logits_key`): one box per object query, a regression set, no regression output of the
    samples. The box of each image's best query for a class, a gather by that query, explained one coordinate at a
    time (``target=``), as DETR's post-processing pairs a detection's score with its query's box.

    Examples:
        >>> import torch
        >>> out = {"pred_logits": torch.zeros(2, 5, 3), "pred_boxes": torch.zeros(2, 5, 4)}
        >>> way = boxes_way(out, "pred_logits")
        >>> print(way[way.index("`output="):way.index("`target=k`") + 10])
        `output=lambda out: out['pred_boxes'].gather(1, out['pred_logits'].softmax(-1)[..., c].argmax(1).view(-1, 1, 1).expand(-1, 1, 4))[:, 0]`, then `target=k`
    """
    q, k, read = _set_read(out, "pred_boxes")
    logits = _set_read(out, key)[2]
    return (f"a set predictor's boxes {read} [N, {q}, {k}] (DETR's: one box (cx, cy, w, h) per object query) are a set "
            f"of regressions, no regression output of the samples: {_NO_OBJECT}, the queries that find none give boxes "
            "too, and a mean "
            "over the queries averages the objects' boxes with theirs. Explain the box of each image's best query for "
            f"class c, a coordinate at a time ({_PAGE}): `output=lambda out: {read}.gather(1, "
            f"{logits}.softmax(-1)[..., c].argmax(1).view(-1, 1, 1).expand(-1, 1, {k}))[:, 0]`, then `target=k` for "
            f"coordinate k (0 cx, 1 cy, 2 w, 3 h; `target=` left out explains each row's largest coordinate); "
            f"`.sigmoid()` for `.softmax(-1)` where the classes are sigmoid scores (Deformable DETR, DINO, RT-DETR); "
            f"or one query's box, `output=lambda out: {read}[:, q]`, where the queries keep their objects")


def set_columns_warning(out: Any, key: str) -> str:
    """The warning of an ``output=`` callable that gives as many columns as a set predictor's class logits
    (:func:`set_logits_key`), the "no object" class among them: a query's row, or a reduction over the queries that
    keeps that class; :func:`set_way` names the reduction that leaves it out.

    Examples:
        >>> import torch
        >>> out = {"pred_logits": torch.zeros(2, 5, 3), "pred_boxes": torch.zeros(2, 5, 4)}
        >>> print(set_columns_warning(out, "pred_logits")[:60])
        `output=` gives 3 columns, the classes of out['pred_logits']
    """
    q, k, read = _set_read(out, key)
    return (f"`output=` gives {k} columns, the classes of {read} [N, {q}, {k}], a set predictor's class logits (DETR's) "
            f"whose last class is 'no object': with `target=` left out, each row's argmax is explained, 'no object' "
            f"wherever it wins (a query that finds no object), and a query's row ({read}[:, q]) is no object of the "
            f"image (the query can describe another object once an input is intervened on). Pass each class's best "
            f"probability over the queries, {_best_way(read)} ({_PAGE}); a selection that leaves the last class out ({read}[:, q, :-1]) is not warned of{_sigmoid_way(read)}")


#: why an object query's row is no sample's (set_way, boxes_way)
_NO_OBJECT = "a query is no object of the image (it can describe another object once an input is intervened on)"


def _set_read(out: Any, key: str) -> tuple[int, int, str]:
    """``(Q, K, read)``: the queries and the classes (or coordinates) of a set predictor's entry ``key`` ``[N, Q, K]``,
    and how an ``output=`` callable reads it, ``out['pred_logits']`` or ``out.pred_logits``."""
    q, k = _entry(out, key).shape[1:]
    return q, k, f"out[{key!r}]" if isinstance(out, Mapping) else f"out.{key}"


def _best_way(read: str) -> str:  # each class's best probability over the queries, 'no object' left out
    return f"`output=lambda out: {read}.softmax(-1)[..., :-1].amax(1)`, then `target=c`"


def _sigmoid_way(read: str) -> str:  # the clause both texts end with
    return (f"; a set predictor trained with sigmoid (focal) class scores and no 'no object' class (Deformable DETR, "
            f"DINO, RT-DETR, Conditional DETR), whose last class is a real one: `output=lambda out: "
            f"{read}.sigmoid().amax(1)`, which is not warned of")


def set_columns_read(out: Any, key: str, picked: Tensor) -> bool:
    """Whether a callable ``output=``'s selection ``picked`` ``[N, K]`` gives as many columns as the set predictor's
    class logits (:func:`set_logits_key`) ``[N, Q, K]``, and is not, to rounding, either of the two reads of ``K``
    columns that hold no "no object" class: each class's best sigmoid score over the queries,
    ``out[key].sigmoid().amax(1)`` (a set predictor trained with sigmoid focal scores, Deformable DETR's, RT-DETR's, whose
    last class is a real one), or one of each sample's query boxes ``out["pred_boxes"][i, q]`` (``K == 4``: three
    classes and "no object" beside four box coordinates). :func:`set_columns_warning` warns of the others.

    Examples:
        >>> import torch
        >>> logits, boxes = torch.randn(2, 5, 4), torch.rand(2, 5, 4)
        >>> out = {"pred_logits": logits, "pred_boxes": boxes}
        >>> [set_columns_read(out, "pred_logits", p) for p in (logits[:, 1], logits.softmax(-1).amax(1),
        ...                                                     logits.sigmoid().amax(1), boxes[:, 2], logits[:, 1, :-1])]
        [True, True, False, False, False]
    """
    logits = _entry(out, key)
    if picked.dim() != 2 or picked.shape != (logits.shape[0], logits.shape[-1]) or not picked.is_floating_point():
        return False
    picked, logits = picked.detach(), logits.detach().to(picked.dtype)
    if torch.allclose(picked, logits.sigmoid().amax(1)):
        return False
    boxes = _entry(out, "pred_boxes").detach()
    return boxes.shape[-1] != picked.shape[1] or not torch.isclose(picked[:, None], boxes.to(picked.dtype)).all(-1).any(1).all()


def levels_way(read: str, picked: Any) -> str:
    """What to pass as ``output=`` where it selected a list of tensors (a feature pyramid's class maps, one
    ``[N, K, H_l, W_l]`` per level, as FCOS, RetinaNet or YOLO heads return them), or ``""`` for another value.

    Args:
        read: how the list is read from the return value (``"out['cls']"``).
        picked: the value ``output=`` selected.

    Examples:
        >>> import torch
        >>> print(levels_way("out['cls']", [torch.zeros(2, 3, 8, 8), torch.zeros(2, 3, 4, 4)])[:60])
        ; a list of 2 tensors (a feature pyramid's levels?) is no te
    """
    if not isinstance(picked, (list, tuple)) or not picked or not all(isinstance(t, Tensor) and t.dim() for t in picked):
        return ""
    way = f"explain one of them (`output=lambda out: {read}[0]`)"
    if all(t.dim() == 4 for t in picked) and len({t.shape[:2] for t in picked}) == 1:  # [N, K, H_l, W_l] per level
        way += (f", or each class's peak over every level, `output=lambda out: torch.cat([level.flatten(2) for level in "
                f"{read}], 2).amax(2)` ({_PAGE})")
    return f"; a list of {len(picked)} tensors (a feature pyramid's levels?) is no tensor to explain: {way}"
