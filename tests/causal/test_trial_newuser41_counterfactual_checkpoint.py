"""The counterfactual search on a model that checkpoints activations with ``torch.utils.checkpoint(...,
use_reentrant=True)`` in every mode, eval included (a new user's memory-saving trial). It takes the gradient of the
logits with respect to the change of the inputs by ``torch.autograd.grad``, which a reentrant checkpoint refuses:
``counterfactual_explanation`` and ``CounterfactualAudit`` failed with torch's "torch.utils.checkpoint is incompatible
with .grad()". ``engine.leaf_gradients.leaf_grad`` falls back to ``backward()`` into the change's ``.grad`` (the
parameters frozen): the counterfactuals are those of the same weights without checkpointing, to the bit, and no
parameter's ``.grad`` or ``requires_grad`` changes."""

import pytest
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from lightning_causal.audits import CounterfactualAudit, Probe
from lightning_causal.causal import CounterfactualSettings, counterfactual_explanation


class _Net(nn.Module):
    def __init__(self, checkpointed: bool = True) -> None:
        super().__init__()
        self.a, self.c = nn.Linear(4, 8), nn.Linear(8, 3)
        self.b = nn.Sequential(nn.Linear(8, 8), nn.Tanh())
        self.checkpointed = checkpointed

    def forward(self, x):
        h = torch.tanh(self.a(x))
        return self.c(checkpoint(self.b, h, use_reentrant=True) if self.checkpointed else self.b(h))


def _pair() -> tuple[nn.Module, nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    plain = _Net(checkpointed=False).double().eval()
    model = _Net().double().eval()
    model.load_state_dict(plain.state_dict())
    return model, plain, torch.randn(8, 4, dtype=torch.float64)


@pytest.mark.parametrize("polish", [0, 5])
def test_counterfactuals_through_a_reentrant_checkpoint_equal_those_without_it(polish):
    model, plain, x = _pair()
    target = (plain(x).argmax(1) + 1) % 3
    settings = CounterfactualSettings(steps=60, polish=polish)
    got = counterfactual_explanation(model, x, target, settings=settings)
    ref = counterfactual_explanation(plain, x, target, settings=settings)
    assert bool(ref.success.any())
    torch.testing.assert_close(got.counterfactuals, ref.counterfactuals, rtol=0, atol=0)
    assert torch.equal(got.success, ref.success)
    assert all(p.grad is None and p.requires_grad for p in model.parameters())


def test_counterfactual_audit_through_a_reentrant_checkpoint_equals_the_model_without_it():
    model, plain, x = _pair()
    probe = Probe(x, (plain(x).argmax(1) + 1) % 3)  # every sample "misclassified": each gets a counterfactual
    got, ref = CounterfactualAudit(max_samples=8).run(model, probe), CounterfactualAudit(max_samples=8).run(plain, probe)
    assert got.scalars == ref.scalars and ref.scalars
