"""6480470f left out of the contrast search the samples on which the model and its feature-shifted copy leave at most one
class, counting finite entries: a copy that diverged (NaN everywhere) then counted as a top-1 gate on every sample, was
left out with the gate's warning and the search ran without a word of the divergence. Only classes ruled out (-inf)
count now: the diverged copy reaches the search's own refusal, as before 6480470f."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

import lightning_causal.repair.backdoor_setup as backdoor_setup
from lightning_causal import BackdoorSuppressionTerm


class _NaNCopy(nn.Module):
    def forward(self, x):
        return torch.full((x.shape[0], 3), float("nan"))


def test_a_diverged_copy_is_not_taken_for_a_gate(monkeypatch):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    monkeypatch.setattr(backdoor_setup, "feature_shifted", lambda *a, **k: _NaNCopy())
    term = BackdoorSuppressionTerm(None, reverse_options={"steps": 3})
    with warnings.catch_warnings(record=True) as seen, pytest.raises(ValueError, match="to be finite, but they hold NaN"):
        warnings.simplefilter("always")
        term.setup(model, torch.rand(32, 1, 4, 4, generator=torch.Generator().manual_seed(1)))
    assert not [w for w in seen if "all but one" in str(w.message)]
