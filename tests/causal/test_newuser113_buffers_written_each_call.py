"""An actor-critic whose observation normalizer updates its running mean and variance at every call, in eval mode too
(no `if self.training:`), was explained in silence: check_samples_independent saw rows alone differ from the batch, ran
them alone again, saw them differ from themselves and took the buffers' update for a generator's noise. Each
estimator pass then read the statistics the passes before it left (input effects off by 0.71 where the largest
effect, the normalizer frozen, is 0.58). It is refused now, naming the buffers and the way out; the same normalizer
updated in training mode only gives the frozen rerun's effects."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects


class _ObsNorm(nn.Module):
    def __init__(self, d: int, training_only: bool) -> None:
        super().__init__()
        self.training_only = training_only
        self.register_buffer("mean", torch.zeros(d))
        self.register_buffer("count", torch.tensor(10.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.training or not self.training_only:
            with torch.no_grad():
                n = x.shape[0]
                self.mean += (x.mean(0) - self.mean) * n / (self.count + n)
                self.count += n
        return x - self.mean


class _Policy(nn.Module):
    def __init__(self, training_only: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.norm, self.pi = _ObsNorm(4, training_only), nn.Linear(4, 3)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.pi(self.norm(obs))


def _states() -> torch.Tensor:
    return torch.randn(16, 4, generator=torch.Generator().manual_seed(0)) * 3 + 1


def test_a_normalizer_updated_at_every_call_is_refused_naming_its_buffers() -> None:
    model = _Policy(training_only=False).eval()
    with pytest.raises(ValueError, match=r"wrote floating tensors of its own in place \(norm\.mean, norm\.count\) in between") as err:
        input_effects(model, _states())
    assert "if self.training:" in str(err.value)
    assert float(model.norm.count) == 10.0  # the check's passes left no update behind


def test_updated_in_training_only_it_gives_the_frozen_reruns_effects() -> None:
    model, x = _Policy(training_only=True).eval(), _states()
    with torch.no_grad():
        base = model(x)
        t = base.argmax(1)
        by_hand = torch.stack([base.gather(1, t[:, None])[:, 0]
                               - model(x.index_fill(1, torch.tensor([j]), 0.0)).gather(1, t[:, None])[:, 0]
                               for j in range(4)], 1)
    torch.testing.assert_close(input_effects(model, x), by_hand, atol=1e-5, rtol=0)
