"""Input gradients through ``torch.utils.checkpoint(..., use_reentrant=True)`` kept in eval mode (a new user's
memory-saving trial). ``input_effects(method="attribution")`` and BackdoorSuppressionTerm's adversarial region search
(``repair.backdoor_triggers.search_regions``, run in the repair's training steps with ``trigger=None``) failed with
torch's "torch.utils.checkpoint is incompatible with .grad()". They take the gradient through
``engine.leaf_gradients.leaf_grads`` now, which falls back to ``backward()`` where torch refuses ``.grad()`` and puts
back every ``.grad`` it touched: the numbers are those of the same weights without checkpointing, to the bit."""

import pytest
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from lightning_causal.causal import input_effects
from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.leaf_gradients import leaf_grads
from lightning_causal.repair.backdoor_triggers import search_regions


class _Net(nn.Module):
    def __init__(self, checkpointed: bool = True, traceable: bool = True) -> None:
        super().__init__()
        self.a, self.c = nn.Linear(4, 8), nn.Linear(8, 3)
        self.b = nn.Sequential(nn.Linear(8, 8), nn.Tanh())
        self.checkpointed, self.traceable = checkpointed, traceable

    def forward(self, x):
        if not self.traceable and float(x.flatten(1).abs().sum()) < 0:  # a value in control flow: torch.fx cannot trace
            return None
        h = torch.tanh(self.a(x.flatten(1)))
        return self.c(checkpoint(self.b, h, use_reentrant=True) if self.checkpointed else self.b(h))


def _pair(traceable: bool = True) -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    plain = _Net(checkpointed=False).double().eval()
    model = _Net(traceable=traceable).double().eval()
    model.load_state_dict(plain.state_dict())
    return model, plain


@pytest.mark.parametrize("traceable", [True, False])
def test_first_order_input_effects_through_a_reentrant_checkpoint_equal_those_without_it(traceable):
    model, plain = _pair(traceable)
    x = torch.randn(6, 4, dtype=torch.float64)
    got = input_effects(model, x, method="attribution")
    torch.testing.assert_close(got, input_effects(plain, x, method="attribution"), rtol=0, atol=0)
    assert all(p.grad is None and p.requires_grad for p in model.parameters())


def test_the_adversarial_region_search_through_a_reentrant_checkpoint_equals_the_one_without_it():
    model, plain = _pair()
    x = torch.rand(5, 1, 2, 2, dtype=torch.float64)
    region = torch.tensor([[[0.0, 0.0], [0.0, 1.0]]])
    targets = torch.tensor([0, 1, 2, 0, 1])
    got, ref = (search_regions(Forward(m), x, [region], targets, (0.0, 1.0), 4, torch.Generator().manual_seed(0))
                for m in (model, plain))
    torch.testing.assert_close(got, ref, rtol=0, atol=0)
    assert not torch.equal(got, x)  # the region moved
    assert all(p.grad is None and p.requires_grad for p in model.parameters())


def test_the_fallback_puts_back_every_grad_it_touched():
    model, plain = _pair()
    before = {name: torch.full_like(p, 7.0) for name, p in model.named_parameters()}
    for name, p in model.named_parameters():
        p.grad = before[name].clone()
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    x.grad = torch.ones_like(x)
    (got,) = leaf_grads(model(x)[:, 1].sum(), (x,), model)
    xp = x.detach().clone().requires_grad_(True)
    (ref,) = torch.autograd.grad(plain(xp)[:, 1].sum(), xp)
    torch.testing.assert_close(got, ref, rtol=0, atol=0)
    assert torch.equal(x.grad, torch.ones_like(x))
    assert all(torch.equal(p.grad, before[name]) for name, p in model.named_parameters())
