"""Dense-output trial: a multi-label classifier (one sigmoid per label, ``BCEWithLogitsLoss`` on
multi-hot labels ``[N, K]``).

``target=None`` means the predicted class, the largest output of each sample; for a multi-label
model that is one label per sample, so the audits silently mixed labels across samples (label 0's
logit for some samples, label 2's for others) with no word, while the same mix for a multi-output
regression was warned about. And one-hot float labels (a softmax classifier trained on one-hot or
mixed-up targets) were called "multi-hot (a multi-label classifier?)" by the audits that explain a
softmax, which is right for them.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits import (
    CaptumBaseline,
    InputEffectAudit,
    SobolAudit,
    UnitImportanceAudit,
)
from lightning_causal.audits.base import Probe


def _multi_label():
    """Three labels from a hand-weighted two-layer net; labels: multi-hot [32, 3]."""
    g = torch.Generator().manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 5), nn.Tanh(), nn.Linear(5, 3)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64))
    x = torch.randn(32, 4, generator=g, dtype=torch.float64)
    labels = (model(x) > 0).double()
    assert bool((labels.sum(1) != 1).any())  # some rows hold several labels or none
    return model.eval(), x, labels


def _messages(fn):
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        result = fn()
    return result, [str(w.message) for w in record]


@pytest.mark.parametrize("make", [
    lambda t: InputEffectAudit(target=t, ace_values=None),
    lambda t: UnitImportanceAudit(["1"], unit_dim=-1, target=t),
    lambda t: CaptumBaseline(methods=("Saliency",), target=t),
])
def test_target_none_on_multi_hot_labels_warns_and_names_target_k(make):
    model, x, labels = _multi_label()
    _, said = _messages(lambda: make(None).run(model, Probe(x, labels)))
    hits = [m for m in said if "multi-hot [N, 3]" in m and "target=None" in m]
    assert hits and "each label is its own decision" in hits[0] and "Pass `target=k` to explain label k's logit" in hits[0]
    _, said = _messages(lambda: make(1).run(model, Probe(x, labels)))
    assert not [m for m in said if "target=None" in m]


def test_label_k_effects_equal_a_float64_loop():
    """What the warning sends the user to: `target=k` explains label k's logit for every sample."""
    model, x, labels = _multi_label()
    result = InputEffectAudit(target=2, ace_values=None).run(model, Probe(x, labels))
    with torch.no_grad():
        clean = model(x)[:, 2]
        ref = torch.stack([clean - model(x.index_fill(1, torch.tensor([g]), 0.0))[:, 2] for g in range(4)], 1)
    assert result.meta["targets"] == [2] * 32
    torch.testing.assert_close(result.maps["effect"].double(), ref, rtol=0, atol=1e-12)


def test_one_hot_float_labels_of_a_softmax_classifier_get_no_multi_label_or_regression_warning():
    model, x, _ = _multi_label()
    one_hot = nn.functional.one_hot(model(x).argmax(1), 3).double()
    for audit in (SobolAudit(n=32, n_bootstrap=0), CaptumBaseline(methods=("Saliency",))):
        _, said = _messages(lambda audit=audit: audit.run(model, Probe(x, one_hot)))
        assert not [m for m in said if "multi-hot" in m or "a regression?" in m], said
