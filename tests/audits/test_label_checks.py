"""Probe labels outside the model's classes (e.g. numbered from 1) are refused, naming the labels:
before, ASR counted them, BackdoorAudit reported a clean accuracy of 0, FairnessAudit switched to
its multi-class branch on wrong labels, and CounterfactualAudit blamed an argument `target`."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn

from lightning_causal import CausalAuditCallback, InputEffectAudit
from lightning_causal.audits import BackdoorAudit, CounterfactualAudit, FairnessAudit, Probe
from lightning_causal.causal import AttributeFlip
from lightning_causal.causal.backdoor.triggers import Trigger, attack_success_rate
from tests.helpers.lightning import digits_like, quick_trainer, small_module, synthetic_loaders

G = torch.Generator().manual_seed(0)
X_IMG, X_TAB = torch.rand(12, 1, 4, 4, generator=G), torch.randn(12, 3, generator=G)
X_TAB[:, 0] = (X_TAB[:, 0] > 0).float()
IMG = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
TAB = nn.Linear(3, 2)
TRIGGER = Trigger(torch.zeros(1, 4, 4).index_fill(1, torch.tensor([0]), 1.0), 1.0, target=0)
ONE_BASED_3 = torch.arange(12) % 3 + 1  # 1..3 for a 3-class model
ONE_BASED_2 = torch.arange(12) % 2 + 1  # 1..2 for a 2-class model


@pytest.mark.parametrize("run", [
    lambda: attack_success_rate(IMG, X_IMG, ONE_BASED_3, TRIGGER),
    lambda: BackdoorAudit(TRIGGER, steps=1).run(IMG, Probe(X_IMG, ONE_BASED_3)),
    lambda: FairnessAudit(AttributeFlip(0)).run(TAB, Probe(X_TAB, ONE_BASED_2)),
    lambda: CounterfactualAudit(max_samples=2).run(TAB, Probe(X_TAB, ONE_BASED_2)),
], ids=["attack_success_rate", "BackdoorAudit", "FairnessAudit", "CounterfactualAudit"])
def test_labels_outside_the_classes_are_refused_naming_the_labels(run):
    with pytest.raises(ValueError, match=r"(`y`|`probe.labels`) to hold classes 0 to \d .* but got \[\d\]"):
        run()


def test_the_callback_refuses_probe_labels_outside_the_classes():
    x, y = digits_like(12, seed=5)
    cb = CausalAuditCallback([InputEffectAudit(patch_size=4)], probe=(x, y + 1), probe_size=12)  # 4 classes: 1..4
    with pytest.raises(MisconfigurationException, match=r"labels of `probe` to hold classes 0 to 3 .* but got \[4\]"):
        quick_trainer(callbacks=[cb], max_epochs=1).fit(small_module(), *synthetic_loaders())


def test_labels_inside_the_classes_and_float_targets_pass():
    assert 0.0 <= attack_success_rate(IMG, X_IMG, ONE_BASED_3 - 1, TRIGGER) <= 1.0
    FairnessAudit(AttributeFlip(0)).run(TAB, Probe(X_TAB, ONE_BASED_2 - 1))
    one_logit = nn.Linear(3, 1)  # a one-logit binary model: classes 0 and 1
    FairnessAudit(AttributeFlip(0)).run(one_logit, Probe(X_TAB, ONE_BASED_2 - 1))
