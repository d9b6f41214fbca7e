"""A two-tower model returning one similarity per pair (newuser42 trial): docs/your_model.md said Captum's curves
take a one-output model for a binary logit, to be avoided with ``CompareSettings(score="raw")``; they record the
output as it is already (``score="auto"`` is ``"raw"`` for one output). This pins what the docs now say, on a
similarity whose deletion curve goes below 0 (no sigmoid would)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal import CaptumBaseline, audit_model
from lightning_causal.audits import CompareSettings


class TwoTower(nn.Module):
    def __init__(self):
        super().__init__()
        self.a, self.b = nn.Linear(6, 4), nn.Linear(6, 4)

    def forward(self, a, b):
        return F.cosine_similarity(self.a(a), self.b(b))  # [N]


def _auc(model, a, b, score):
    audit = CaptumBaseline(("Saliency",), settings=CompareSettings(score=score))
    (result,) = audit_model(model, [audit], ((a, b),), explain="a")
    return result.scalars["deletion_auc"], result.meta["curve_score"]


def test_the_curves_of_one_similarity_record_it_as_it_is():
    torch.manual_seed(0)
    model = TwoTower().eval()
    a = torch.randn(16, 6)
    b = (-model.a(a) - model.b.bias).detach() @ torch.linalg.pinv(model.b.weight.detach()).T  # b's tower: -(a's)
    auto, raw = _auc(model, a, b, "auto"), _auc(model, a, b, "raw")
    assert auto == raw and auto[1].startswith("raw output")
    with torch.no_grad():
        assert model(a, b).max() < -0.99  # opposite pairs: similarities of -1
    assert auto[0] < 0  # a curve of similarities in [-1, 0]: a sigmoid of them, in [0, 1], could not give it
