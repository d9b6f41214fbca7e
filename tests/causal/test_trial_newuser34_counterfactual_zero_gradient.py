"""counterfactual_explanation on a model whose gradient is 0 at every sample (torch.round of its activations):
the gradient search never left the inputs and every sample ended "no counterfactual found", silently, while
interventions flip the decision. It now warns, naming the cause; a model whose logits' sum has no gradient
([z, -z]) but whose logits have one is not warned about."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal import counterfactual_explanation

X = torch.randn(6, 3, generator=torch.Generator().manual_seed(0), dtype=torch.float64)


class Rounded(nn.Module):
    def forward(self, x):
        h = torch.round(2 * x)
        return torch.stack([h.sum(1), -h.sum(1) + 0.5], 1)


class Opposite(nn.Module):
    def forward(self, x):
        z = x.sum(1)
        return torch.stack([z, -z], 1)


def test_a_zero_gradient_everywhere_is_warned_about():
    model = Rounded()
    flip = 1 - model(X).argmax(1)
    assert bool((Rounded()(-X).argmax(1) != model(X).argmax(1)).any())  # an intervention flips some decisions
    with pytest.warns(UserWarning, match=r"gradient .* is 0 at every one of the 6 samples .* torch\.round.* cannot leave"):
        cf = counterfactual_explanation(model, X, flip)
    assert not bool(cf.success.any()) and torch.equal(cf.counterfactuals, X)


def test_logits_whose_sum_has_no_gradient_are_not_warned_about():
    model = Opposite()
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        cf = counterfactual_explanation(model, X, 1 - model(X).argmax(1))
    assert bool(cf.success.all())


def test_a_nearest_prototype_head_is_refused_naming_such_steps():
    class Prototype(nn.Module):  # the one-hot of the nearest of two prototypes: no gradient reaches the inputs
        def forward(self, x):
            protos = torch.tensor([[1.0, 0, 0], [-1.0, 0, 0]], dtype=x.dtype)
            return 3 * nn.functional.one_hot(torch.cdist(x, protos).argmin(1), 2).to(x.dtype)

    with pytest.raises(ValueError, match=r"has none: the forward cuts it .*argmax or argmin.*one_hot.*input_effects"):
        counterfactual_explanation(Prototype(), X, 1 - Prototype()(X).argmax(1))
