"""Trial "edge": CaptumBaseline of one feature group. The rank metrics (Spearman, Kendall, top-k,
stability) are undefined there, and the note blamed "constant explanations or curves"; it now names
the one group. Two groups keep their ranks (a mean of per-sample Spearman +-1)."""

import math

import torch
from torch import nn

from lightning_causal.audits import CaptumBaseline, Probe


def _model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)).eval()


def test_one_group_is_named_as_the_cause_of_nan_ranks():
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(0))
    result = CaptumBaseline(feature_mask=torch.zeros(1, 4, dtype=torch.long)).run(_model(), Probe(x))
    assert math.isnan(result.scalars["compare/Saliency/spearman"])
    assert any("one feature group" in note for note in result.meta["notes"])


def test_two_groups_rank():
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(0))
    result = CaptumBaseline(feature_mask=torch.tensor([[0, 0, 1, 1]])).run(_model(), Probe(x))
    assert -1.0 <= result.scalars["compare/Saliency/spearman"] <= 1.0  # a mean of per-sample +-1
    assert not any("one feature group" in note for note in result.meta.get("notes", []))
