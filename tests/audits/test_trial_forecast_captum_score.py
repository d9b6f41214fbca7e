"""CaptumBaseline on a forecaster of several horizons: its softmax warning told the user to pass
`score='raw'`, which CaptumBaseline does not take (TypeError); the setting is
`settings=CompareSettings(score='raw')`, and following the warning silences it."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from lightning_causal.audits import CaptumBaseline, CompareSettings, Probe


def _run(audit: CaptumBaseline) -> list[str]:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(8 * 2, 3))  # [N, 8 steps, 2 features] -> 3 horizons
    probe = Probe(torch.randn(6, 8, 2), torch.randn(6, 3) * 2.5)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audit.run(model, probe)
    return [str(w.message) for w in caught if "softmax" in str(w.message)]


def test_the_softmax_warning_names_an_argument_that_exists_and_following_it_silences_it() -> None:
    (message,) = _run(CaptumBaseline(("Saliency",), target=0))
    assert "`settings=CompareSettings(score='raw')`" in message, message
    assert _run(CaptumBaseline(("Saliency",), target=0, settings=CompareSettings(score="raw"))) == []
