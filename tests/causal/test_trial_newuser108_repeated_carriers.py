"""newuser108 trial (neural ODEs): the fairness carriers of a layer that runs several times a pass, an ODE function's
hidden layer at each of the 16 stages of 4 RK4 steps, patched every call with the unit's activation on the
counterfactual input at the last stage (capture keeps the last call's), which is no activation of the counterfactual
run at the other 15 stages: ``carrier_unit_effects`` and ``FairnessAudit(layers=...)`` gave such numbers with a bare
'capture keeps its last call's output' warning, where ``unit_effects`` and ``intervene`` refuse ``Patch`` there. They
refuse it now, naming the calls and the way out, a module that runs once (``z(1)``), whose carriers are the hand's."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal import FairnessAudit, Probe
from lightning_causal.causal import AttributeFlip, carrier_unit_effects


class _ODEFunc(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 4))

    def forward(self, t: float, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class _NeuralODE(nn.Module):  # docs/your_model.md's: 4 RK4 steps to t = 1, z(1) named by an nn.Identity
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.enc, self.f, self.z1, self.head = nn.Linear(4, 4), _ODEFunc(), nn.Identity(), nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z, h = self.enc(x), 0.25
        for k in range(4):
            t = k * h
            k1 = self.f(t, z)
            k2 = self.f(t + h / 2, z + h / 2 * k1)
            k3 = self.f(t + h / 2, z + h / 2 * k2)
            k4 = self.f(t + h, z + h * k3)
            z = z + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
        return self.head(self.z1(z))


def _probe() -> torch.Tensor:
    x = torch.randn(12, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    x[:, 0] = (torch.arange(12) % 2).double()  # the sensitive attribute, flipped
    return x


def test_carriers_of_the_ode_function_run_at_every_stage_are_refused() -> None:
    model, x = _NeuralODE().double().eval(), _probe()
    with pytest.raises(ValueError, match=r"'f\.net\.1' to run once per forward pass for its carrier units, but it runs "
                                         r"16 times .*nn\.Identity.*UnitImportanceAudit"):
        carrier_unit_effects(model, x, AttributeFlip(0), "f.net.1", target=1)
    with pytest.raises(ValueError, match=r"runs 16 times"):
        FairnessAudit(AttributeFlip(0), layers=["f.net.1"]).run(model, Probe(x))


def test_carriers_of_z1_which_runs_once_are_the_hand_patch() -> None:
    model, x = _NeuralODE().double().eval(), _probe()
    x_cf = x.clone()
    x_cf[:, 0] = 1 - x_cf[:, 0]
    with torch.no_grad():
        p = model(x).softmax(1)[:, 1]
        seen = {}
        handle = model.z1.register_forward_hook(lambda _m, _i, o: seen.setdefault("z1", o.clone()))
        model(x_cf)
        handle.remove()
        hand = torch.empty(12, 4, dtype=torch.float64)
        for u in range(4):  # p_1(x | do(z1_u := z1_u(x_cf))) - p_1(x), one hooked pass per unit
            handle = model.z1.register_forward_hook(lambda _m, _i, o, u=u: o.index_copy(1, torch.tensor([u]), seen["z1"][:, [u]]))
            hand[:, u] = model(x).softmax(1)[:, 1] - p
            handle.remove()
    carried = carrier_unit_effects(model, x, AttributeFlip(0), "z1", target=1)
    torch.testing.assert_close(carried, hand, rtol=0, atol=1e-12)
    result = FairnessAudit(AttributeFlip(0), layers=["z1"], target=1).run(model, Probe(x))
    torch.testing.assert_close(result.vectors["carriers/z1"], hand.abs().mean(0), rtol=0, atol=1e-12)
