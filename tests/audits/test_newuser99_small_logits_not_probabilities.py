"""A two-class classifier trained with cross-entropy (`LightningClassifier`) whose logits all lie in [0, 1] on the probe
(a ViT or BiT net early in training, a head near its initialisation) was warned by CaptumBaseline and SobolAudit that its
outputs were independent probabilities, a sigmoid per class, and told to pass `probability=False` / `score='raw'`,
which would explain the raw logits instead of the class probability. A model whose loss says its outputs are one class's
logits is not warned; the same net without a stated task still is."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from lightning_causal import CaptumBaseline, SobolAudit
from lightning_causal.audits import Probe
from lightning_causal.models import LightningClassifier


def _net() -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Flatten(), nn.Linear(16, 2))
    with torch.no_grad():  # logits in [0.3, 0.7]: a head near its initialisation, before it has learned much
        net[1].weight.mul_(0.02)
        net[1].bias.copy_(torch.tensor([0.4, 0.5]))
    return net.eval()


def _said(model, audit) -> list[str]:
    x = torch.rand(16, 1, 4, 4)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audit.run(model, Probe(x, torch.randint(0, 2, (16,))))
    return [str(w.message) for w in caught if "rows do not sum to 1" in str(w.message)]


def test_small_logits_of_a_cross_entropy_classifier_are_not_called_probabilities():
    net = _net()
    x = torch.rand(16, 1, 4, 4)
    assert bool(((net(x) >= 0) & (net(x) <= 1)).all())
    for audit in (lambda: SobolAudit(n=64, n_bootstrap=0, patch_size=2), lambda: CaptumBaseline(("Saliency",), patch_size=2)):
        assert not _said(LightningClassifier(net).eval(), audit())
        assert len(_said(net, audit())) == 1  # nothing says what the outputs are: still warned
