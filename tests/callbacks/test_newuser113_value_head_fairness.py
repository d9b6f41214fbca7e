"""docs/your_model.md, "Policies": a FairnessAudit of an actor-critic's value head V(s) [N] compares, with the page's
compare="output", the change of V itself, |V(s) - V(s_cf)| (without it, on a probe without labels, the sigmoid of V
read as a binary classifier's logit: 0.0037 where V moved by 0.0176); a repair term on the value with
distance="logit" penalises the same mean by hand."""

from __future__ import annotations

import pytest
import torch

from lightning_causal.audits import Probe
from lightning_causal.causal import AttributeFlip
from lightning_causal.repair import CounterfactualFairnessTerm
from tests.callbacks.test_newuser67_policies import snippet  # noqa: F401  (the page's snippet, run once a module)


def _states() -> torch.Tensor:
    x = torch.randn(64, 5, generator=torch.Generator().manual_seed(1))
    x[:, 4] = (torch.arange(64) % 2).float()  # the lamp, on or off
    return x


def test_the_value_audit_compares_the_value_itself(snippet: dict) -> None:  # noqa: F811
    model, x = snippet["ActorCritic"]().eval(), _states()
    audit = {a.name: a for a in snippet["actor_critic_audits"]}["value_lamp"]
    with torch.no_grad():
        flipped = x.clone()
        flipped[:, 4] = 1.0 - flipped[:, 4]
        by_hand = (model(x)[1] - model(flipped)[1]).abs()
    result = audit.run(model, Probe(x))
    assert result.scalars["cf_gap"] == pytest.approx(float(by_hand.mean()), abs=1e-6)
    assert result.scalars["cf_gap_max"] == pytest.approx(float(by_hand.max()), abs=1e-6)
    assert "own units" in result.meta["compared"]
    term = CounterfactualFairnessTerm(AttributeFlip(4), output=1, distance="logit")
    assert float(term.loss(model, x, None)) == pytest.approx(float(by_hand.mean()), abs=1e-6)
