"""Interventions of one's own (subclasses of the public ``Intervention``) in ``unit_effects`` and ``intervene``."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import Intervention, intervene, unit_effects


def _net() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(3, 5), nn.Tanh(), nn.Linear(5, 2)).double().eval()


def _hand(net: nn.Module, x: torch.Tensor, edit, units: list[int]) -> torch.Tensor:
    """``[N, U]``: f_0(x) - f_0(x | do(h_u := edit(h)_u)) at ``net[1]``, one forward hook per unit."""
    with torch.no_grad():
        clean = net(x)[:, 0]
        columns = []
        for u in units:
            def hook(module, inputs, out, u=u):
                out = out.clone()
                out[:, u] = edit(out)[:, u]
                return out

            handle = net[1].register_forward_hook(hook)
            try:
                columns.append(clean - net(x)[:, 0])
            finally:
                handle.remove()
    return torch.stack(columns, 1)


class CapNoSuper(Intervention):
    """Caps the units at 0.2; its __init__ does not call super().__init__()."""

    def __init__(self, bound: float) -> None:
        self.bound = bound

    def values(self, output):
        return output.clamp(max=self.bound)


class Cap(Intervention):
    def __init__(self, bound: float, units=None) -> None:
        super().__init__(units)
        self.bound = bound

    def values(self, output):
        return output.clamp(max=self.bound)


X = torch.tensor([[1.0, -0.5, 2.0], [0.3, 0.8, -1.0], [-2.0, 0.1, 0.4], [0.0, 0.0, 0.0]], dtype=torch.float64)


@pytest.mark.parametrize("use_suffix", [True, False])
def test_an_intervention_whose_init_skips_super_intervenes_on_every_unit(use_suffix):
    # before: AttributeError "'CapNoSuper' object has no attribute 'units'" (unit_effects) / 'unit_dim' (intervene)
    net = _net()
    hand = _hand(net, X, lambda h: h.clamp(max=0.2), list(range(5)))
    got = unit_effects(net, X, "1", CapNoSuper(0.2), target=0, use_suffix=use_suffix)
    assert torch.allclose(got, hand, atol=1e-12, rtol=0)
    with intervene(net, {"1": CapNoSuper(0.2)}), torch.no_grad():
        capped = net(X)
    assert torch.equal(capped, net[2](net[1](net[0](X)).clamp(max=0.2)))


@pytest.mark.parametrize("max_batch_size", [None, 3])
def test_own_intervention_on_some_units_is_a_hand_written_hook_on_every_path(max_batch_size):
    net = _net()
    hand = _hand(net, X, lambda h: h.clamp(max=-0.1), [1, 3])
    for use_suffix in (True, False):
        got = unit_effects(net, X, "1", Cap(-0.1, units=[1, 3]), target=0, use_suffix=use_suffix, max_batch_size=max_batch_size)
        assert torch.allclose(got, hand, atol=1e-12, rtol=0)


def test_an_intervention_without_values_is_refused_when_built():
    class Forgot(Intervention):
        pass

    # before: a bare NotImplementedError() from inside the estimator's first chunk
    with pytest.raises(TypeError, match="abstract method values"):
        Forgot()
