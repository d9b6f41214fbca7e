"""The I-BAU min-max's inner step (``benchmarks/backdoor_peers.py``): a bounded perturbation that raises the loss."""

import torch
from torch import nn
from torch.nn import functional as F

from benchmarks import backdoor_peers as peers


def _linear_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(16, 3))


def test_universal_perturbation_stays_in_the_ball_and_raises_the_loss():
    model = _linear_model()
    g = torch.Generator().manual_seed(1)
    x = torch.rand(32, 1, 4, 4, generator=g) * 0.5 + 0.25  # away from the clip bounds: the model is linear there
    y = torch.randint(0, 3, (32,), generator=g)
    delta = peers.universal_perturbation(model, x, y, eps=0.5, steps=5, generator=torch.Generator().manual_seed(2))
    assert delta.shape == x.shape[1:]
    assert float(delta.norm()) <= 0.5 + 1e-6
    with torch.no_grad():
        assert F.cross_entropy(model(x + delta), y) > F.cross_entropy(model(x), y) + 0.05


def test_universal_perturbation_finds_the_loss_raising_direction_of_a_linear_score():
    # one output direction w: the loss of class 0 rises fastest along -w, so delta lies along -w at the bound
    w = torch.zeros(16)
    w[5] = 1.0
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2, bias=False))
    with torch.no_grad():
        model[1].weight.copy_(torch.stack([w, -w]))
    x = torch.full((8, 1, 4, 4), 0.5)
    y = torch.zeros(8, dtype=torch.long)
    delta = peers.universal_perturbation(model, x, y, eps=0.3, steps=10, generator=torch.Generator().manual_seed(0))
    cos = float(torch.dot(delta.flatten(), -w) / delta.norm())
    assert cos > 0.99
    assert abs(float(delta.norm()) - 0.3) < 1e-5
