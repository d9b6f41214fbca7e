"""Dense-output trial: BackdoorAudit on a multi-label classifier (multi-hot labels ``[N, K]``).

Its attack success rate counts a triggered sample as attacked when the largest output is the
target; for a multi-label model that is one label per sample, not a label's own decision. With a
known trigger, multi-hot labels were refused with "convert them with `.long()`", which fails again
(``[N, K]`` long labels); Neural Cleanse ran on them and searched for triggers of the argmax, silently.
The audit now refuses multi-hot labels naming the per-label binary classifier, which is checked
against a hand-computed ASR.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.audits import BackdoorAudit
from lightning_causal.audits.base import Probe
from lightning_causal.causal import Trigger


def _model_and_probe():
    """Label k's logit is 4 x_k - 2 (k = 0, 1, 2), plus 6 x_3 for label 1: x_3 = 1 is a trigger that turns label 1 on."""
    model = nn.Linear(4, 3).double()
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[4.0, 0, 0, 0], [0, 4.0, 0, 6.0], [0, 0, 4.0, 0]], dtype=torch.float64))
        model.bias.fill_(-2.0)
    g = torch.Generator().manual_seed(0)
    x = torch.rand(40, 4, generator=g, dtype=torch.float64)
    x[:, 3] = 0.0
    return model.eval(), x, (model(x) > 0).double().detach()


@pytest.mark.parametrize("known", [True, False])
def test_multi_hot_labels_are_refused_naming_the_binary_way(known):
    model, x, labels = _model_and_probe()
    trigger = Trigger(torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float64), 1.0, target=1)
    audit = BackdoorAudit(trigger=trigger) if known else BackdoorAudit(steps=5)
    with pytest.raises(ValueError, match=r"multi-hot \[40, 3\].*out\[:, \[k\]\].*y\[:, k\]\.long\(\)"):
        audit.run(model, Probe(x, labels))


def test_label_k_as_a_binary_classifier_gives_the_hand_computed_asr():
    model, x, labels = _model_and_probe()
    k = 1
    trigger = Trigger(torch.tensor([0.0, 0.0, 0.0, 1.0], dtype=torch.float64), 0.2, target=1)  # +1.2 on label 1's logit
    audit = BackdoorAudit(trigger=trigger, output=lambda out: torch.cat([-out[:, [k]], out[:, [k]]], 1))
    result = audit.run(model, Probe(x, labels[:, k].long()))
    with torch.no_grad():
        stamped = x.clone()
        stamped[:, 3] = 0.2
        on = model(stamped)[:, k] > 0
    off = labels[:, k] == 0  # the ASR counts the samples whose true class is not the target
    assert 0 < int(off.sum()) < 40 and 0.2 < float(on[off].double().mean()) < 0.9
    assert result.scalars["asr"] == pytest.approx(float(on[off].double().mean()))
    assert result.scalars["clean_accuracy"] == 1.0
