"""Trial (repair): the attack success rate and clean accuracy that a repair is judged by are exact
fractions (5 of 19 is 0.2631578947368421, not float32's 0.2631579041481018), as a brute-force count."""

from __future__ import annotations

import torch
from torch import nn

from lightning_causal.audits import BackdoorAudit
from lightning_causal.audits.base import Probe
from lightning_causal.causal import Trigger, attack_success_rate


def _case():
    x = torch.zeros(21, 2)
    x[:, 0] = 1.0  # class 0 by the identity "model" (logits = x) ...
    x[:5, 0] = 0.2  # ... these 5 rows of class 0 are flipped to 1 by the stamp (0.5 in column 1)
    y = torch.zeros(21, dtype=torch.long)
    y[19:] = 1  # two rows of the target class: 19 rows count for the ASR
    x[19:, 1] = 2.0
    x[:3, 1] = 3.0  # 3 clean rows of class 0 predicted as 1: clean accuracy 18 / 21
    trigger = Trigger(torch.tensor([0.0, 1.0]), torch.tensor([0.0, 0.5]), target=1)
    return nn.Identity(), x, y, trigger


def test_attack_success_rate_and_clean_accuracy_are_exact_fractions():
    model, x, y, trigger = _case()
    stamped = model(trigger.apply(x)).argmax(1)
    assert int(((stamped == 1) & (y != 1)).sum()) == 5  # the brute-force count
    assert attack_success_rate(model, x, y, trigger) == 5 / 19
    result = BackdoorAudit(trigger).run(model, Probe(x, y))
    assert result.scalars["asr"] == 5 / 19
    assert result.scalars["clean_accuracy"] == 18 / 21
