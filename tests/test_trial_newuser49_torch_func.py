"""Models that call torch.func inside forward (newuser49's trial): forces ``-dE/dx`` per sample by
``vmap(jacrev(energy))(x)``, or of the batch by ``torch.func.grad(lambda x: energy(x).sum())(x)``.

- Under ``vmap`` a hook sees one sample at a time (``[6]``, not ``[N, 6]``): ``unit_effects`` stopped with torch's
  bare "Cannot access data pointer of Tensor that doesn't have storage", and ``intervene`` told of a
  ``Linear(d, 1)`` followed by ``squeeze(-1)``. Both now refuse the site, naming it, vmap and the way out.
- Under ``torch.func.grad`` the modules see the batch, and ``intervene`` was right; ``unit_effects`` stopped with the
  same data-pointer error (the site's inspection compared storages of tensors that have none). Its effects now
  equal a hand ``do()``.
"""

import pytest
import torch
from torch import nn
from torch.func import grad, jacrev, vmap

from lightning_causal.causal import Zero, input_effects, intervene, unit_effects


class Forces(nn.Module):
    def __init__(self, per_sample: bool) -> None:
        super().__init__()
        self.energy = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 1))
        self.per_sample = per_sample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.per_sample:
            return -vmap(jacrev(lambda xi: self.energy(xi).squeeze(-1)))(x)
        return -grad(lambda xb: self.energy(xb).sum())(x)


def _model(per_sample: bool) -> Forces:
    torch.manual_seed(0)
    return Forces(per_sample).eval()


def _x() -> torch.Tensor:
    return torch.randn(5, 3, generator=torch.Generator().manual_seed(1))


def test_unit_effects_under_torch_func_grad_equal_a_hand_do():
    model, x = _model(per_sample=False), _x()
    clean = model(x).detach()[:, 0]
    hand = []
    for u in range(6):
        def hook(_m, _i, out, u=u):
            out = out.clone()
            out[:, u] = 0.0
            return out

        handle = model.energy[1].register_forward_hook(hook)
        try:
            hand.append(clean - model(x).detach()[:, 0])
        finally:
            handle.remove()
    hand = torch.stack(hand, 1)
    assert hand.abs().max() > 1e-2
    torch.testing.assert_close(unit_effects(model, x, "energy.1", unit_dim=-1, target=0), hand, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("per_sample", [False, True])
def test_input_effects_of_torch_func_forces_equal_a_hand_do(per_sample):
    model, x = _model(per_sample), _x()
    clean = model(x).detach()[:, 2]
    hand = torch.stack([clean - model(x.index_fill(1, torch.tensor([g]), 0.0)).detach()[:, 2] for g in range(3)], 1)
    torch.testing.assert_close(input_effects(model, x, target=2), hand)


def test_a_site_under_vmap_is_refused_naming_it_and_the_way_out():
    model, x = _model(per_sample=True), _x()
    words = r"'energy.1' to run on the batch of samples, but it runs inside torch.func.vmap.*shape \[6\].*torch.func.grad"
    with pytest.raises(ValueError, match=words):
        unit_effects(model, x, "energy.1", unit_dim=-1, target=0)
    with pytest.raises(ValueError, match=words), intervene(model, {"energy.1": Zero(units=[1], unit_dim=-1)}):
        model(x)
