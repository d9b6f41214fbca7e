"""Review of newuser122: set predictors whose last class is a real one, and box reads of as many columns.

48fb1ba7 warned of every callable ``output=`` giving as many columns as ``pred_logits`` ``[N, Q, K]`` beside
``pred_boxes``, advising ``.softmax(-1)[..., :-1].amax(1)``, "no object" left out. A set predictor trained with sigmoid
(focal) class scores and no "no object" class (Deformable DETR, DINO, RT-DETR, Conditional DETR) was warned of its own
right score, ``.sigmoid().amax(1)``, and told to drop its last real class; a DETR of 3 classes and "no object"
(``K == 4``) was warned of a query's box ``out["pred_boxes"][:, q]``. Neither is warned of now, a query's class row still
is, and the refusals name the sigmoid read beside the softmax one.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects


class _SetPredictor(nn.Module):  # {"pred_logits": [N, Q, K], "pred_boxes": [N, Q, 4]} from [N, Q, 5] inputs
    def __init__(self, k: int):
        super().__init__()
        torch.manual_seed(0)
        self.cls, self.box = nn.Linear(5, k), nn.Linear(5, 4)

    def forward(self, x):
        return {"pred_logits": self.cls(x), "pred_boxes": self.box(x).sigmoid()}


X = torch.rand(6, 3, 5)  # 6 samples, 3 queries' features
MASK = torch.arange(3)[:, None].expand(3, 5).contiguous()  # one group per query's features


def _set_warnings(model, output, **kw):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        effects = input_effects(model.eval(), X, MASK, output=output, **kw)
    return effects, [str(w.message) for w in record if "'no object'" in str(w.message)]


def _best_query_box(out):  # each image's box of its most probable class-0 query: [N, 4]
    q = out["pred_logits"].softmax(-1)[..., 0].argmax(1)
    return out["pred_boxes"][torch.arange(len(q)), q]


@pytest.mark.parametrize(("k", "output", "target"), [
    (3, lambda out: out["pred_logits"].sigmoid().amax(1), 2),  # sigmoid classes, the last one real
    (3, lambda out: out["pred_logits"].amax(1).sigmoid(), 0),
    (4, lambda out: out["pred_boxes"][:, 1], 2),  # 3 classes + "no object" beside 4 box coordinates
    (4, _best_query_box, 0),
])
def test_reads_without_no_object_are_not_warned_of(k, output, target):
    effects, said = _set_warnings(_SetPredictor(k), output, target=target)
    assert not said
    with torch.no_grad():  # and the effect is what was asked: do(query g's features := 0), by hand
        model = _SetPredictor(k).eval()
        hand = torch.stack([output(model(X))[:, target] - output(model(X.masked_fill(MASK == g, 0.0)))[:, target]
                            for g in range(3)], 1)
    assert torch.allclose(effects, hand, atol=1e-6)


def test_a_query_row_is_still_warned_of_naming_both_reads():
    _, said = _set_warnings(_SetPredictor(4), lambda out: out["pred_logits"][:, 1])
    assert len(said) == 1
    assert ".softmax(-1)[..., :-1].amax(1)" in said[0] and "out['pred_logits'].sigmoid().amax(1)" in said[0]


@pytest.mark.parametrize("output", [None, "pred_logits"])
def test_the_refusals_name_the_sigmoid_read_too(output):
    with pytest.raises((TypeError, ValueError), match=r"out\['pred_logits'\]\.sigmoid\(\)\.amax\(1\)"):
        input_effects(_SetPredictor(3).eval(), X, MASK, output=output, target=0)
