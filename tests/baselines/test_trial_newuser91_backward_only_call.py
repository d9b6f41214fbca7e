"""newuser91 trial (deep-equilibrium models): a DEQ written as the implicit-layers tutorial writes it solves
z* = f(z*, x) under torch.no_grad(), calls f once more with gradients (the one-step z = f(z*)), and, only where z
requires grad, once more again for its implicit backward hook (f0 = f(z*.detach().requires_grad_())). Captum's layer
methods read the last call of their pass with gradients, that hook's call, which reaches the output through no
gradient; the calls were counted without gradients, where it is not made. LayerGradientXActivation and
LayerConductance were refused saying that the forward cuts the gradient after the layer (a .detach() or no_grad, none
on the way from the one-step call to the output), and LayerIntegratedGradients, whose values replace the hook's call
too, ended in torch's 'SystemError: run_backward returned NULL without setting an exception' (the hook recursing).
Each is refused naming the calls with and without gradients, the call that reaches the output and the way out; the
one-step DEQ (no hook call) still runs, and an nn.Identity on z* is the site that works."""

from __future__ import annotations

import pytest
import torch
from torch import autograd, nn

from lightning_causal.baselines import layer_attribute


class _ImplicitDEQ(nn.Module):
    """z* = tanh(W z* + U x) by 20 plain iterations without gradients, then the one-step call; with ``implicit`` the
    tutorial's backward hook solving g = J^T g + grad, which calls f once more where z requires grad."""

    def __init__(self, implicit: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.inj, self.lin, self.act, self.head = nn.Linear(4, 6), nn.Linear(6, 6, bias=False), nn.Tanh(), nn.Linear(6, 2)
        with torch.no_grad():
            self.lin.weight.mul_(0.5 / torch.linalg.matrix_norm(self.lin.weight, 2))
        self.zstar, self.implicit = nn.Identity(), implicit

    def f(self, z: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return self.act(self.lin(z) + u)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        u = self.inj(x)
        with torch.no_grad():
            z = torch.zeros_like(u)
            for _ in range(20):
                z = self.f(z, u)
        z = self.f(z, u)
        if self.implicit and z.requires_grad:
            z0 = z.detach().requires_grad_()
            f0 = self.f(z0, u)

            def backward_hook(grad: torch.Tensor) -> torch.Tensor:
                g = grad
                for _ in range(20):
                    g = autograd.grad(f0, z0, g, retain_graph=True)[0] + grad
                return g
            z.register_hook(backward_hook)
        return self.head(self.zstar(z))


_X = torch.randn(5, 4, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("method", ["LayerGradientXActivation", "LayerConductance", "LayerIntegratedGradients"])
def test_the_backward_hooks_call_is_refused_naming_the_calls(method: str) -> None:
    model = _ImplicitDEQ(implicit=True).eval()
    with pytest.raises(ValueError, match=r"Expected the last call of layer 'act' in a pass with gradients to reach the "
                                         r"output, .* it runs 22 times in such a pass \(21 without gradients\) and the "
                                         r"output's gradient reaches call 21 of them, not call 22, .* implicit-gradient "
                                         r"hook.* nn\.Identity"):
        layer_attribute(model, _X, "act", method, target=0)
    assert not any(m._forward_hooks for m in model.modules())


def test_the_one_step_deq_and_the_fixed_points_site_still_run() -> None:
    one_step = _ImplicitDEQ(implicit=False).eval()
    with pytest.warns(UserWarning, match=r"runs 21 times per forward pass"):
        got = layer_attribute(one_step, _X, "act", "LayerGradientXActivation", target=0)
    assert got.shape == (5, 6) and bool(got.abs().sum() > 0)
    implicit = _ImplicitDEQ(implicit=True).eval()
    at_zstar = layer_attribute(implicit, _X, "zstar", "LayerGradientXActivation", target=0)
    with torch.no_grad():
        zstar = implicit.f(implicit.f(torch.zeros(5, 6), implicit.inj(_X)), implicit.inj(_X))
        for _ in range(19):
            zstar = implicit.f(zstar, implicit.inj(_X))
    torch.testing.assert_close(at_zstar, zstar * implicit.head.weight[0], rtol=1e-5, atol=1e-6)  # gradient x activation
