"""Neural Cleanse's trigger search minimises the cross-entropy of the model's outputs, a softmax of them, as the
repair's ``BackdoorSuppressionTerm(trigger=None)`` does; that term refused a model that returns class probabilities
(naming ``output=lambda out: out.log()``) and warned of an evidential classifier's Dirichlet concentrations, but
``neural_cleanse``, ``reverse_trigger`` and so ``BackdoorAudit`` searched on the softmax of probabilities in silence
(on a backdoored digits MLP ending in a softmax, a clean class's anomaly index came out -33.6 where the same model's
log-probabilities gave -0.78). They now check the clean outputs as the term does, before the search."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from lightning_causal.audits import BackdoorAudit, Probe
from lightning_causal.causal import neural_cleanse, reverse_trigger

G = torch.Generator().manual_seed(0)
X = torch.rand(32, 1, 4, 4, generator=G)


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 3))


class Softmax(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = _net()

    def forward(self, x):
        return self.net(x).softmax(1)


class Evidential(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = _net()

    def forward(self, x):
        return F.softplus(self.net(x)) + 1


def test_probabilities_are_refused_by_the_trigger_searches_naming_the_log():
    with pytest.raises(ValueError, match=r"non-negative and sums to 1.*neural_cleanse.*`output=lambda out: out.log\(\)`"):
        neural_cleanse(Softmax(), X, 3, steps=2)
    with pytest.raises(ValueError, match=r"non-negative and sums to 1.*reverse_trigger.*`output=lambda out: out.log\(\)`"):
        reverse_trigger(Softmax(), X, 1, steps=2)
    with pytest.raises(ValueError, match=r"non-negative and sums to 1.*`output=lambda out: out.log\(\)`"):
        BackdoorAudit(reverse_options={"steps": 2}).run(Softmax(), Probe(X))


def test_the_log_of_the_probabilities_searches_as_the_logits_do():
    a = neural_cleanse(Softmax(), X, 3, steps=5, output=lambda out: out.log(), generator=torch.Generator().manual_seed(1))
    b = neural_cleanse(_net(), X, 3, steps=5, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(a.mask_norms, b.mask_norms, atol=1e-4, rtol=1e-4)


def test_concentrations_are_warned_of_by_the_search():
    with pytest.warns(UserWarning, match=r"concentrations alpha.*neural_cleanse.*`output=lambda out: out.log\(\)`"):
        neural_cleanse(Evidential(), X, 3, steps=2)
