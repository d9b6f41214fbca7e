"""A max-pooled set model (DeepSets, PointNet) gives most points exactly zero effect: 60 of 64 per sample. The top-k
overlap broke ties by lower group id in both explanations, so the top 5 of a sample with 3 points of effect held points 0
and 1 of zero effect in both, counted as agreement: an explanation with no point of effect in common with the causal one
agreed 0.6 with it, and a method scoring 4 random points 0.29 where chance is 0.08. ``topk_overlap(..., ties="cut")``,
which ``CaptumBaseline``'s agreement uses, takes no group tied across the k-th place (NaN where none is left); the
default keeps the lower-id rule."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lightning_causal import CaptumBaseline
from lightning_causal.audits.base import Probe
from lightning_causal.audits.captum_metrics import agreement
from lightning_causal.baselines import topk_overlap


def _one_point(where: list[int], groups: int = 16) -> torch.Tensor:  # each row: one point of effect, the rest 0
    s = torch.zeros(len(where), groups)
    s[torch.arange(len(where)), torch.tensor(where)] = torch.arange(1.0, len(where) + 1)
    return s


def test_points_of_zero_effect_are_no_agreement():
    causal, other = _one_point([5, 9, 12]), _one_point([9, 12, 5])  # never the same point
    assert topk_overlap(causal, other, 5, ties="first").tolist() == pytest.approx([0.8] * 3)  # the shared zeros 0-3
    assert topk_overlap(causal, other, 5, ties="cut").tolist() == [0.0] * 3  # top 1 of each: different points
    assert topk_overlap(causal, causal, 5, ties="cut").tolist() == [1.0] * 3
    got = agreement(CaptumBaseline(("Saliency",)), causal, other, 5)
    assert got["topk"] == 0.0  # was 0.8


def test_cut_at_the_last_place_neither_explanation_ties_across():
    a = torch.tensor([[9.0, 7.0, 7.0, 3.0, 0.0, 0.0]])  # untied after 1, 3, 4 and 6 groups
    b = torch.tensor([[9.0, 8.0, 6.0, 0.0, 0.0, 0.0]])  # untied after 1, 2, 3 and 6
    assert topk_overlap(a, b, 5, ties="cut").item() == 1.0  # k cut to 3: {0, 1, 2} both
    assert topk_overlap(a, b, 2, ties="cut").item() == 1.0  # k cut to 1: {0}
    valid = torch.tensor([[True, True, True, True, False, False]])  # four real points: untied after 4 in both
    assert topk_overlap(a, b, 4, valid, ties="cut").item() == 1.0
    tied_first = torch.tensor([[3.0, 3.0, 1.0, 0.0]])  # no top 1: a tie across it
    assert math.isnan(topk_overlap(tied_first, torch.tensor([[4.0, 3.0, 2.0, 1.0]]), 1, ties="cut").item())
    with pytest.raises(ValueError, match="`ties`.*'first' or 'cut'.*'random'"):
        topk_overlap(a, b, 2, ties="random")


def test_a_max_pooled_set_model_agrees_with_itself_through_its_zeros():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU())

    class DeepSets(nn.Module):
        def __init__(self):
            super().__init__()
            self.phi, self.rho = model, nn.Linear(4, 2)

        def forward(self, x):  # [N, P, 3]
            return self.rho(self.phi(x).max(1).values)

    x = torch.rand(16, 32, 3, generator=torch.Generator().manual_seed(1)) * 2 - 1
    per_point = torch.arange(32).reshape(1, 32, 1).expand(1, 32, 3)
    result = CaptumBaseline(("Saliency",), feature_mask=per_point, target=1).run(DeepSets().eval(), Probe(x))
    assert result.scalars["compare/Saliency/topk"] == 1.0  # both find the same few points; the zeros tie
