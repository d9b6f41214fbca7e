"""Review of 6a80149c/4270da2a: torch.fx traces ``torch.autograd.grad`` but not ``with torch.enable_grad()`` (a
context manager runs at trace time), so the traced graph of a forward that takes gradients fails under the
prefix's ``no_grad``; the split must then be refused, not stop the estimate."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import unit_effects
from tests.test_review_s28a_keeping_graph import _Forces  # net = Linear(3, 4), Tanh, Linear(4, 1)


class _TracedForces(_Forces):
    """F = -dE/dx, E = w2 . tanh(W1 x + b1) + b2, written without control flow: torch.fx traces it."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            x = x.detach().requires_grad_(True)
            return -torch.autograd.grad(self.net(x).sum(), x, create_graph=True)[0]


class _GradOfHidden(nn.Module):
    """g = dy/dh, y = w2 . tanh(h) + b2, h = W1 x + b1: the gradient with respect to a hidden layer's output."""

    def __init__(self) -> None:
        super().__init__()
        self.l1, self.l2 = nn.Linear(3, 4), nn.Linear(4, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            h = self.l1(x)
            return torch.autograd.grad(self.l2(torch.tanh(h)).sum(), h, create_graph=True)[0]


@pytest.mark.parametrize("use_suffix", [True, False])
def test_exact_effects_of_traceable_forces(use_suffix):
    # before: torch's "element 0 of tensors does not require grad" from the traced graph's trial rows (use_suffix=True)
    torch.manual_seed(0)
    model, x = _TracedForces().eval(), torch.randn(5, 3)
    got, info = unit_effects(model, x, "net.1", unit_dim=-1, target=0, use_suffix=use_suffix, return_info=True)
    w1, w2 = model.net[0].weight.detach(), model.net[2].weight.detach()[0]
    h = torch.tanh(x @ w1.T + model.net[0].bias.detach())
    # F_0 = -sum_u w2_u (1 - h_u^2) W1[u, 0]; do(h_u := 0), a constant, takes unit u's term away
    torch.testing.assert_close(got, -(w2 * (1 - h**2) * w1[:, 0]))
    assert info.path == "full"
    assert not use_suffix or "the traced graph fails where the model runs" in info.reason


def test_exact_effects_of_a_gradient_with_respect_to_a_hidden_output():
    # before: the same RuntimeError; g_0 = w2_0 (1 - tanh(h_0)^2) depends on h_0 alone: do(h_0 := 0) gives w2_0
    torch.manual_seed(0)
    model, x = _GradOfHidden().eval(), torch.randn(5, 3)
    got = unit_effects(model, x, "l1", unit_dim=-1, target=0)
    w2 = model.l2.weight.detach()[0]
    with torch.no_grad():
        h0 = model.l1(x)[:, 0]
    hand = torch.zeros(5, 4)
    hand[:, 0] = w2[0] * (1 - torch.tanh(h0) ** 2) - w2[0]
    torch.testing.assert_close(got, hand)
