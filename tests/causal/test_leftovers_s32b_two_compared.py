"""Three classes, one predicted for every input (``unattacked``): Neural Cleanse compares the 2 others, where the
median-based anomaly index is ±0.67 whatever the triggers' sizes and a natural imbalance is flagged too, but the
two-class warning and the audit's note counted only the classes ruled out with -inf and said nothing
(leftovers_s32b). Both now count every class left out and name why each is."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits import Probe
from lightning_causal.audits.backdoor import BackdoorAudit
from lightning_causal.causal.backdoor.neural_cleanse import neural_cleanse
from lightning_causal.causal.engine.probe_warnings import ProbeContentsWarning

SIGMA = 1 / 1.4826  # the index of either of two norms: |n - mean| / (1.4826 · |n1 - n2| / 2)


def _model() -> nn.Linear:
    """Class 0 for every input in [0, 0.8]^4 (bias 50 against 60·x_0 ≤ 48); class 1 reached by x_0 > 5/6 (one
    feature), class 2 by Σ x > 50/13 (all four): a small trigger beside a large one."""
    lin = nn.Linear(4, 3)
    with torch.no_grad():
        lin.weight.zero_(), lin.bias.zero_()
        lin.bias[0], lin.weight[1, 0] = 50.0, 60.0
        lin.weight[2] = 13.0
    return lin


def _x() -> torch.Tensor:
    return torch.rand(64, 4, generator=torch.Generator().manual_seed(0)) * 0.8


def test_the_warning_counts_the_unattacked_class_and_says_what_the_index_means() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = neural_cleanse(_model(), _x(), 3, steps=200, input_range=(0.0, 1.0))
    assert res.unattacked == [0] and res.ruled_out == [] and res.flagged == [1]
    assert res.anomaly_index[1:].tolist() == pytest.approx([SIGMA, -SIGMA])
    said = [str(w.message) for w in caught if issubclass(w.category, ProbeContentsWarning)]
    assert any("flagged class 1 among the 2 classes it compares (the other 1 of the model's 3 left out: class 0 "
               "predicted for every input): with two classes the median-based anomaly index means little" in m
               for m in said)


def test_the_audit_notes_it() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        result = BackdoorAudit(steps=200, reverse_options={"input_range": (0.0, 1.0)}).run(_model(), Probe(_x()))
    assert result.meta["flagged"] == [1]
    assert ("class 1 flagged among 2 classes (others left out; index ±0.67 at any sizes): a natural imbalance is flagged "
            "too, confirm with BackdoorAudit(trigger)") in result.meta["notes"]
    assert any(n.startswith("every one of the 64 inputs is already predicted as class 0") for n in result.meta["notes"])
