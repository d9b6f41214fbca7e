"""Models that return a ``torch.distributions`` object (``return Normal(mu, sigma)``, trained with
``-dist.log_prob(y).mean()``): without ``output=`` the refusal names the tensors that explain the
prediction and the uncertainty apart (``"mean"``, ``"variance"``, ``"stddev"``, the entropy);
``output="entropy"`` (a method) names the callable that calls it; and the effects on the mean and on
the variance are the planted ones (mean on features 0 and 1, variance on feature 2)."""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.distributions import (
    Categorical,
    Independent,
    MixtureSameFamily,
    Normal,
    TanhTransform,
    TransformedDistribution,
)

from lightning_causal.causal import input_effects
from lightning_causal.causal.engine.output_selection import select_output

W_MEAN = torch.tensor([2.0, -1.0, 0.0, 0.0])   # the mean depends on features 0 and 1
W_LOGSTD = torch.tensor([0.0, 0.0, 0.75, 0.0])  # the spread on feature 2; feature 3 on nothing


class Heteroscedastic(nn.Module):
    def __init__(self, independent: bool = False) -> None:
        super().__init__()
        self.independent = independent
        self.lin = nn.Linear(4, 2)
        with torch.no_grad():
            self.lin.weight.copy_(torch.stack([W_MEAN, W_LOGSTD]))
            self.lin.bias.zero_()

    def forward(self, x):
        h = self.lin(x)
        dist = Normal(h[:, :1], h[:, 1:].exp())
        return Independent(dist, 1) if self.independent else dist


X = torch.randn(8, 4, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("independent", [False, True])
def test_a_distribution_without_output_names_the_mean_and_the_uncertainty(independent):
    with pytest.raises(TypeError, match=r"got (Normal|Independent); .*`output='mean'` \(the predictive mean\); its "
                                        r"uncertainty: `output='variance'`, `output='stddev'` or `output=lambda out: out.entropy\(\)`"):
        input_effects(Heteroscedastic(independent), X)


def test_a_method_named_as_output_is_told_to_be_called():
    with pytest.raises(TypeError, match=r"`entropy` is a method: call it, `output=lambda out: out.entropy\(\)`"):
        input_effects(Heteroscedastic(), X, output="entropy")


def test_effects_on_the_mean_and_on_the_variance_are_the_planted_ones():
    model = Heteroscedastic()
    mean = input_effects(model, X, output="mean")  # f(x) - f(x | do(x_j := 0)) = w_j x_j for a linear mean
    torch.testing.assert_close(mean, W_MEAN * X)
    var = input_effects(model, X, output="variance")  # exp(2 v.x) - exp(2 (v.x - v_j x_j))
    s = X @ W_LOGSTD
    expected = (2 * s).exp()[:, None] - (2 * (s[:, None] - W_LOGSTD * X)).exp()
    torch.testing.assert_close(var, expected)
    assert var[:, [0, 1, 3]].abs().max() == 0 and mean[:, [2, 3]].abs().max() == 0


def test_a_categorical_is_explained_through_its_logits_without_output():
    lin = nn.Linear(4, 3)
    model = nn.Sequential(lin)
    model.forward = lambda x: Categorical(logits=lin(x))  # noqa: E731 - a model returning a Categorical
    effects = input_effects(model, X)
    logp = lin(X).log_softmax(1)
    t = logp.argmax(1, keepdim=True)
    expected = torch.stack([(logp - lin(X * (torch.arange(4) != j)).log_softmax(1)).gather(1, t)[:, 0] for j in range(4)], 1)
    torch.testing.assert_close(effects, expected.detach())


class _Squashed(nn.Module):
    """A tanh-squashed Normal (a TransformedDistribution, as policies return): torch computes no mean of it."""

    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(4, 2)

    def forward(self, x):
        h = self.lin(x)
        return TransformedDistribution(Normal(h[:, :1], h[:, 1:].exp()), [TanhTransform()])


def test_a_distribution_without_a_mean_is_not_told_to_pass_output_mean():
    """The refusal named `output='mean'` for every distribution, and that choice then raised a bare
    NotImplementedError from torch: it names the transformed distribution's mean, which works."""
    with pytest.raises(TypeError, match=r"torch computes no mean of a TransformedDistribution: .*"
                                        r"`output=lambda out: out.base_dist.mean`") as refused:
        input_effects(_Squashed(), X)
    assert "output='mean'" not in str(refused.value)
    with pytest.raises(TypeError, match=r"`output='mean'` to select a tensor from TransformedDistribution but it failed: "
                                        r"NotImplementedError.*out.base_dist.mean"):
        input_effects(_Squashed(), X, output="mean")
    model = _Squashed()
    torch.testing.assert_close(input_effects(model, X, output=lambda out: out.base_dist.mean),
                               (model.lin.weight[0] * X).detach())  # the linear mean's w_j x_j


def test_a_mixture_is_not_told_to_take_the_entropy_torch_leaves_out():
    mix = MixtureSameFamily(Categorical(logits=torch.zeros(8, 2)), Normal(torch.zeros(8, 2), torch.ones(8, 2)))
    with pytest.raises(TypeError, match=r"`output='mean'` \(the predictive mean\); its uncertainty: `output='variance'` or "
                                        r"`output='stddev'`; a torch") as refused:
        select_output(mix)
    assert "entropy" not in str(refused.value)
