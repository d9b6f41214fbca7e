"""check_logits' refusal of probabilities named `output=lambda out: out.log()` only, which fails where `output=` had
picked the probabilities out of what the model returns (an actor-critic's `(Categorical, value)`: `out[0].probs`, a
tuple with no `.log`; a `Categorical` itself with `output="probs"`). It now names the log of the pick and a
distribution's `.logits`, and those ways give the same cf_gap as the logits."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.distributions import Categorical

from lightning_causal import FairnessAudit
from lightning_causal.audits import Probe
from lightning_causal.causal import AttributeFlip


class _ActorCritic(nn.Module):
    def __init__(self, tuple_out: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.pi, self.v, self.tuple_out = nn.Linear(3, 3), nn.Linear(3, 1), tuple_out

    def forward(self, obs: torch.Tensor):
        dist = Categorical(logits=self.pi(obs))
        return (dist, self.v(obs)) if self.tuple_out else dist


def _states() -> torch.Tensor:
    x = torch.randn(32, 3, generator=torch.Generator().manual_seed(0))
    x[:, 2] = (torch.arange(32) % 2).float()
    return x


@pytest.mark.parametrize(("tuple_out", "picked", "ways"), [
    (True, lambda out: out[0].probs, [lambda out: out[0].probs.log(), lambda out: out[0].logits]),
    (False, "probs", ["logits"]),
])
def test_the_refusal_names_ways_that_run_and_agree(tuple_out, picked, ways) -> None:
    model, x = _ActorCritic(tuple_out).eval(), _states()
    with pytest.raises(ValueError, match="sums to 1") as err:
        FairnessAudit(AttributeFlip(2), sensitive=2, output=picked).run(model, Probe(x))
    assert "out[0].probs.log()" in str(err.value) and "output='logits'" in str(err.value)
    assert "out[0].logits" in str(err.value)
    with torch.no_grad():
        flipped = x.clone()
        flipped[:, 2] = 1 - flipped[:, 2]
        dist = model(x)[0] if tuple_out else model(x)
        dist_cf = model(flipped)[0] if tuple_out else model(flipped)
        by_hand = (dist.probs[:, 1] - dist_cf.probs[:, 1]).abs().mean()  # target=1 of the default, P(class 1)
    for way in ways:
        gap = FairnessAudit(AttributeFlip(2), sensitive=2, output=way, target=1).run(model, Probe(x)).scalars["cf_gap"]
        assert gap == pytest.approx(float(by_hand), abs=1e-6)
