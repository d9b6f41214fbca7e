"""Review of 3aaaac71 / 08371ff2 (second look): a heteroscedastic regression, ``Normal(mean, std)`` over 2 targets with
its real-valued labels, read as ``output="mean"``, was warned about (SobolAudit's softmax, CounterfactualFairnessTerm)
and refused (CounterfactualAudit) as 'a continuous distribution (a continuous action?)', a guess its user cannot place.
The words now say what real-valued labels beside the distribution suggest; a policy without labels keeps its guess."""

import warnings

import pytest
import torch
from torch import nn
from torch.distributions import Normal

from lightning_causal.audits import CounterfactualAudit, Probe, SobolAudit
from lightning_causal.causal import AttributeFlip
from lightning_causal.repair import CounterfactualFairnessTerm

REGRESSION = "a regression's predictive distribution"


class Gaussian(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.head = nn.Linear(5, 4)

    def forward(self, x: torch.Tensor) -> Normal:
        mean, spread = self.head(x).chunk(2, 1)
        return Normal(mean, nn.functional.softplus(spread) + 0.1)


def _data(labels: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(16, 5, generator=g)
    x[:, 4] = (x[:, 4] > 0).float()
    return x, (torch.randn(16, 2, generator=g) if labels else None)


def _continuous(run) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run()
    return [str(w.message) for w in caught if "a continuous distribution" in str(w.message)]


@pytest.mark.parametrize("labels", [True, False], ids=["regression", "policy"])
def test_the_words_follow_the_labels(labels: bool) -> None:
    x, y = _data(labels)
    guess = REGRESSION if labels else "(a continuous action?)"
    said = _continuous(lambda: SobolAudit(n=64, output="mean", n_bootstrap=5).run(Gaussian(), Probe(x, y)))
    softmax = [m for m in said if "softmax" in m]
    assert len(softmax) == 1 and guess in softmax[0], said
    said = _continuous(lambda: CounterfactualFairnessTerm(AttributeFlip(4), output="mean").loss(Gaussian(), x, y))
    assert len(said) == 1 and guess in said[0], said
    with pytest.raises(ValueError, match="a continuous distribution") as refused:
        CounterfactualAudit(towards="runner_up", output="mean").validate(Gaussian(), Probe(x, y))
    assert guess in str(refused.value)
