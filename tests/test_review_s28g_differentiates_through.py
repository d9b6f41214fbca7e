"""Review of 4270da2a: the pass that tells a forward differentiating through the layer from one that only switches
autograd on gives the layer's output as constants, which a forward taking gradients may not survive in any way."""

import contextlib

import pytest
import torch
from torch import nn

from lightning_causal.causal import unit_effects
from tests.test_review_s28a_keeping_graph import _Forces  # net = Linear(3, 4), Tanh, Linear(4, 1)


class _ForcesAllowUnused(_Forces):
    """F = -dE/dx with allow_unused=True: the gradient is None where x does not reach E."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            x = x if x.requires_grad else x.detach().requires_grad_(True)
            (g,) = torch.autograd.grad(self.net(x).sum(), x, create_graph=True, allow_unused=True)
            return -g


def _hand_effects(model: _ForcesAllowUnused, x: torch.Tensor) -> torch.Tensor:
    """e_u = F_0(x) - F_0(x | do(h_u := 0)), h = tanh(W1 x + b1), E = w2 . h: F = -W1^T (w2 * (1 - h^2))."""
    w1, w2 = model.net[0].weight.detach(), model.net[2].weight.detach()[0]
    h = torch.tanh(x @ w1.T + model.net[0].bias.detach())
    per_unit = w2 * (1 - h**2)  # [N, 4]: unit u's share of -dE/dh . dh/dz; do(h_u := 0) removes it (a constant)
    return -(per_unit * w1[:, 0])  # F_0 = -sum_u per_unit_u W1[u, 0]; its effect: -(share of u)


@pytest.mark.parametrize("use_suffix", [True, False])
def test_exact_effects_of_forces_taken_with_allow_unused(use_suffix):
    # before: TypeError "bad operand type for unary -: 'NoneType'" from the constants pass (-None), for method='exact' too
    torch.manual_seed(0)
    model, x = _ForcesAllowUnused().eval(), torch.randn(5, 3)
    got = unit_effects(model, x, "net.1", unit_dim=-1, target=0, use_suffix=use_suffix)
    torch.testing.assert_close(got, _hand_effects(model, x))


def test_atp_of_forces_taken_with_allow_unused_is_refused_in_words():
    torch.manual_seed(0)
    with pytest.raises(ValueError, match=r"takes gradients in its forward pass"):
        unit_effects(_ForcesAllowUnused().eval(), torch.randn(5, 3), "net.1", unit_dim=-1, target=0, method="atp")


class _SwitchesAutogradOnRoundingByBatch(nn.Module):
    """Switches autograd on and takes no gradient; its read-out rounds by the batch size as a half-precision GPU
    kernel does (a tile chosen by the rows: one bfloat16 ulp, 2^-8 relative, apart), within the 1% by which
    check_samples_independent tells such rounding from a batch dependence."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 2, bias=False))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad():
            y = self.net(x)
            return y * (1.0 + 2.0**-8) if x.shape[0] > 2 else y


@pytest.mark.parametrize("use_suffix", [True, False])
def test_atp_of_a_forward_switching_autograd_on_is_not_refused_for_batch_size_rounding(use_suffix):
    # before: the constants pass of 2 rows was compared with the probe pass of 5 rows at close()'s 1e-4, and the
    # rounding apart refused atp as "the model takes gradients in its forward pass"
    torch.manual_seed(0)
    model, x = _SwitchesAutogradOnRoundingByBatch().eval(), torch.randn(5, 3)
    got = unit_effects(model, x, "net.1", unit_dim=-1, target=0, method="atp", use_suffix=use_suffix, max_batch_size=5)
    with torch.no_grad():
        readout = model.net[2].weight[0] * torch.tanh(model.net[0](x))  # d y_0 / d h_u · (h_u - 0)
    torch.testing.assert_close(got, readout, rtol=2**-7, atol=1e-6)  # the batch's rounding, one ulp


class _ForcesOfReLU(nn.Module):
    """F = -d(w2 . relu(W1 x) + |x|^2 / 2)/dx; control flow on a tensor: no fx path. Unit u of the ReLU gives F_0 the
    term -w2_u 1[z_u > 0] W1[u, 0]; do(h_u := 0), a constant, takes it away."""

    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(3, 4, bias=False), nn.ReLU(), nn.Linear(4, 1, bias=False))
        with torch.no_grad():
            self.net[0].weight.copy_(torch.tensor([[1.0, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 1]]))
            self.net[2].weight.copy_(torch.tensor([[0.5, 0.25, -0.75, -1.5]]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > -1e9:
            with torch.enable_grad():
                x = x if x.requires_grad else x.detach().requires_grad_(True)
                return -torch.autograd.grad(self.net(x).sum() + 0.5 * (x**2).sum(), x, create_graph=True)[0]
        return x


def test_forces_whose_two_trial_rows_have_the_layer_off_are_not_answered_as_constants():
    # rows 0 and 1 (the trial rows) have every ReLU unit off: the layer's derivative is 0 there, and the trial passes
    # could not tell the hooks path's constant prefix from the model. Before: the hooks path was taken and every unit
    # of rows 2, 3 got the whole layer's effect, -0.5 + 1.5 = 1.0 (the layer's graph dropped), and atp gave zeros
    model = _ForcesOfReLU().eval()
    x = torch.tensor([[-1.0, -2.0, -0.5], [-0.3, -0.2, -1.0], [1.0, 2.0, 0.5], [0.5, 0.1, 0.2]])
    got, info = unit_effects(model, x, "net.1", unit_dim=-1, target=0, return_info=True)
    on = torch.tensor([[0.0], [0.0], [1.0], [1.0]])  # rows 2, 3: every unit on
    torch.testing.assert_close(got, on * torch.tensor([-0.5, 0.0, 0.0, 1.5]))  # -w2_u W1[u, 0]
    assert info.path == "full"
    with pytest.raises(ValueError, match=r"takes gradients in its forward pass"):
        unit_effects(model, x, "net.1", unit_dim=-1, target=0, method="atp")


class _DropoutKeptOn(nn.Module):
    """MC dropout kept on in eval mode (F.dropout(..., training=True)); ``switch``: inside torch.enable_grad()."""

    def __init__(self, switch: bool) -> None:
        super().__init__()
        self.switch = switch
        self.net = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.enable_grad() if self.switch else contextlib.nullcontext():
            return nn.functional.dropout(self.net(x), 0.5, training=True)


@pytest.mark.filterwarnings("ignore:The model draws random numbers")
def test_atp_of_a_forward_switching_autograd_on_with_dropout_kept_on_is_that_of_its_twin():
    # before (029e03b2): the passes with the layer's output as constants and with its graph kept drew different
    # dropout masks, and atp was refused as "the model takes gradients in its forward pass"
    x = torch.randn(6, 3, generator=torch.Generator().manual_seed(0))
    got = []
    for switch in (True, False):
        torch.manual_seed(0)
        model = _DropoutKeptOn(switch).eval()
        torch.manual_seed(1)
        got.append(unit_effects(model, x, "net.1", unit_dim=-1, target=0, method="atp", use_suffix=False))
    torch.testing.assert_close(got[0], got[1], rtol=0, atol=0)  # the same draws: one RNG state, none taken by the check
    assert bool(got[0].ne(0).any())
