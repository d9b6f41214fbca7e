"""Review of 00b28a5b (newuser91's deep-equilibrium trial): the check that Captum's layer methods read a call of the
layer that reaches the output compared each call's ``grad_fn`` with the output's graph, so a last call returning a leaf
(an ``nn.Identity`` tap used on a hidden layer and then on the input itself, whose gradient reaches the output
through the leaf's ``AccumulateGrad``, not a ``grad_fn``) was refused as reaching no gradient, where the parent ran it
and Captum's value is right. A leaf that requires grad counts as reached where its ``AccumulateGrad`` is in the graph;
a call made for the backward pass only is still refused (``test_trial_newuser91_backward_only_call.py``)."""

from __future__ import annotations

import warnings

import torch
from torch import nn

from lightning_causal.baselines import layer_attribute


class _TapTwice(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.l1, self.l2, self.w, self.tap = nn.Linear(4, 4), nn.Linear(4, 2), nn.Linear(4, 2), nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.tap(torch.tanh(self.l1(x)))  # call 1: a hidden layer
        return self.l2(h) + self.w(self.tap(x))  # call 2, the last: the input itself, a leaf the gradient reaches


def test_a_last_call_returning_the_input_leaf_is_read_not_refused() -> None:
    model = _TapTwice().eval()
    x = torch.randn(6, 4, generator=torch.Generator().manual_seed(1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the layer runs twice a pass: warned of as before
        got = layer_attribute(model, x, "tap", "LayerGradientXActivation", target=0)
    # Captum reads the last call: its activation x, the output's gradient on it w.weight[0]
    torch.testing.assert_close(got, x * model.w.weight[0].detach(), rtol=1e-5, atol=1e-6)
