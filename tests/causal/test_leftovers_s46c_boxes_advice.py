"""``output="pred_boxes"`` of a DETR-like return value ``{"pred_logits", "pred_boxes"}`` is refused with advice for a
regression set ``[N, Q, 4]`` (each image's box of its best query for a class, a coordinate per ``target=``), not the
generic per-position advice (``out.mean(1)``, ``out[:, 0]``); the advice followed literally equals a hand loop."""

import re
import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal.effects.input_effects import input_effects


class TinyDetr(nn.Module):
    def __init__(self, classes: int = 3) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.queries = nn.Embedding(5, 8)
        self.cls = nn.Linear(8, classes + 1)
        self.box = nn.Linear(8, 4)

    def forward(self, x):
        f = self.conv(x).flatten(2).transpose(1, 2)
        a = torch.softmax(self.queries.weight @ f.transpose(1, 2), -1) @ f
        return {"pred_logits": self.cls(a), "pred_boxes": self.box(a).sigmoid()}


def _setup():
    torch.manual_seed(0)
    model, x = TinyDetr().eval(), torch.rand(6, 1, 8, 8)
    return model, x, torch.arange(64).view(1, 8, 8) // 16


def test_pred_boxes_is_refused_with_the_box_advice():
    model, x, groups = _setup()
    with pytest.raises(ValueError, match=r"output='pred_boxes'.*\(6, 5, 4\)") as err:
        input_effects(model, x, groups, output="pred_boxes")
    msg = str(err.value)
    assert "best query for class c" in msg and "`target=k` for coordinate k" in msg
    assert "out.mean(1)" not in msg and "per-position scores" not in msg


def test_the_advice_followed_literally_equals_a_hand_loop_without_warning():
    model, x, groups = _setup()
    with pytest.raises(ValueError) as err:
        input_effects(model, x, groups, output="pred_boxes")
    code = re.search(r"`output=(lambda out: out\['pred_boxes'\]\.gather[^`]*)`", str(err.value)).group(1)
    c = 1
    select = eval(code, {"c": c})  # the page's words as the user copies them, class c = 1
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        effects = input_effects(model, x, groups, output=select, target=2)
    assert not [w for w in seen if "no object" in str(w.message)]
    with torch.no_grad():
        def box(v):
            out = model(v)
            q = out["pred_logits"].softmax(-1)[..., c].argmax(1)
            return out["pred_boxes"][torch.arange(len(v)), q]
        hand = torch.stack([box(x)[:, 2] - box(x * (groups != g))[:, 2] for g in range(4)], 1)
    torch.testing.assert_close(effects, hand)


def test_pred_logits_and_ordinary_3d_outputs_keep_their_own_words():
    model, x, groups = _setup()
    with pytest.raises(ValueError, match=r"softmax\(-1\)\[\.\.\., :-1\]\.amax\(1\)"):
        input_effects(model, x, groups, output="pred_logits")
    tagger = nn.Sequential(nn.Flatten(1), nn.Linear(64, 12), nn.Unflatten(1, (4, 3)))
    with pytest.raises(ValueError, match=r"out\.mean\(1\)"):  # [N, T, C] without boxes: the generic advice
        input_effects(tagger, x, groups)

