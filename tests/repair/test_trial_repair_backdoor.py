"""Trial (repair): BackdoorSuppressionTerm with a known patch trigger on a user's image model,
against a hand-written float64 reference of its three parts."""

from __future__ import annotations

import copy

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from lightning_causal.causal import Trigger
from lightning_causal.repair import BackdoorSuppressionTerm


@pytest.mark.parametrize("shape", [(1, 28, 28), (3, 32, 32)])
def test_known_trigger_term_equals_its_float64_hand_value(shape):
    c = shape[0]
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(c, 4, 3, stride=2), nn.ReLU(), nn.Flatten(), nn.Linear(4 * ((shape[1] - 3) // 2 + 1) ** 2, 3)).double()
    x, y = torch.rand(12, *shape, dtype=torch.float64), torch.arange(12) % 3
    mask = torch.zeros(1, *shape[1:], dtype=torch.float64)
    mask[:, -4:, -4:] = 1
    term = BackdoorSuppressionTerm(Trigger(mask, torch.ones(c, *shape[1:], dtype=torch.float64), target=2), augment=None)
    term.setup(model)
    reference = copy.deepcopy(model)
    with torch.no_grad():
        model[3].weight[0].mul_(1.5)  # the model has moved away from its state at setup
    value = term.loss(model, x, y)
    with torch.no_grad():
        clean, stamped, ref = model(x), model((1 - mask) * x + mask), reference(x)
    ce = F.cross_entropy(stamped, y, reduction="none")
    unlearn = ce.mean() + ce[y == 2].mean()
    path = ((stamped.softmax(1)[:, 2] - clean.softmax(1)[:, 2]).clamp_min(0) * (y != 2)).sum() / 12
    distill = (ref.softmax(1) * (ref.log_softmax(1) - clean.log_softmax(1))).sum(1).mean()
    assert path > 0 and distill > 0
    assert value.dtype == torch.float64  # a float64 model's term is not rounded to float32
    torch.testing.assert_close(value.detach(), 0.1 * unlearn + 3.0 * path + 3.0 * distill, rtol=1e-12, atol=1e-14)
    assert term.last_parts == pytest.approx({"unlearn": float(unlearn), "path": float(path), "distill": float(distill)}, rel=1e-10)
