"""A forward that takes a reentrant ``torch.utils.checkpoint`` at some passes of one search only.

Since e27ab53 the searches that take an input gradient at every step (BackdoorSuppressionTerm's region search, the
counterfactual search and its polish) decide at their first pass whether the graph holds a reentrant checkpoint
(``LeafGradients``). A later pass that takes one all the same is refused by ``torch.autograd.grad``, and without
``retain_graph`` the refused attempt has freed part of the graph: the step failed ('Trying to backward through the
graph a second time', with a note) where before (a walk at every step) it ran. A forward that checkpoints once a
memory budget or a call count is reached does that; here one that checkpoints at every second or third call. The searches now
give ``again`` (their pass run again), so such a step is taken by ``backward()`` of a fresh pass: the results are
those of the same model without the checkpoint, bit for bit, and no ``.grad`` is left."""

import pytest
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from lightning_causal.causal import counterfactual_explanation
from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.leaf_gradients import LeafGradients
from lightning_causal.causal.structure.counterfactuals import CounterfactualSettings
from lightning_causal.repair.backdoor_triggers import search_regions


class _EveryNth(nn.Module):
    """Checkpoints its middle block (use_reentrant=True) at every ``period``-th call when ``alternate``."""

    def __init__(self, classes: int, alternate: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b, self.c = nn.Linear(4, 16), nn.Sequential(nn.Linear(16, 16), nn.Tanh()), nn.Linear(16, classes)
        self.alternate, self.calls, self.period = alternate, 0, 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        h = torch.tanh(self.a(x.flatten(1)))
        return self.c(checkpoint(self.b, h, use_reentrant=True) if self.alternate and self.calls % self.period == 0 else self.b(h))


def _pair(classes: int, start: int = 0, period: int = 2) -> tuple[nn.Module, nn.Module]:
    model, plain = _EveryNth(classes, True).double().eval(), _EveryNth(classes, False).double().eval()
    model.calls, model.period = start, period
    return model, plain


@pytest.mark.filterwarnings("ignore:None of the inputs have requires_grad")
def test_leaf_gradients_take_a_later_checkpointed_pass_again():
    model, plain = _pair(3)
    x = torch.linspace(-1, 1, 12, dtype=torch.float64).view(3, 4).requires_grad_(True)

    def out(m: nn.Module) -> torch.Tensor:
        return m(x)[:, 1].sum()

    ref = torch.autograd.grad(out(plain), x)[0]
    grads = LeafGradients(model)
    assert torch.equal(grads.grad(out(model), x, again=lambda: out(model)), ref) and grads.reentrant is False
    assert torch.equal(grads.grad(out(model), x, again=lambda: out(model)), ref)  # refused, the pass again
    assert grads.reentrant is True and all(p.grad is None for p in model.parameters())


@pytest.mark.filterwarnings("ignore:None of the inputs have requires_grad")
def test_the_region_search_runs_through_a_checkpoint_taken_at_its_second_step():
    model, plain = _pair(3)
    x = torch.rand(5, 1, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    region, targets = torch.tensor([[[0.0, 0.0], [0.0, 1.0]]]), torch.tensor([0, 1, 2, 0, 1])

    def search(m: nn.Module) -> torch.Tensor:
        return search_regions(Forward(m), x, [region], targets, (0.0, 1.0), 4, torch.Generator().manual_seed(0))

    assert torch.equal(search(model), search(plain))  # failed before: the second step's graph freed by the refusal
    assert all(p.grad is None for p in model.parameters())


@pytest.mark.filterwarnings("ignore:None of the inputs have requires_grad")
@pytest.mark.parametrize("classes", [2, 3])
def test_the_counterfactual_search_and_polish_run_through_a_checkpoint_taken_at_some_passes(classes):
    x = torch.randn(3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    target = torch.tensor([2, 0, 1]) % classes
    settings = CounterfactualSettings(steps=20, polish=3)
    model, plain = _pair(classes, start=2, period=3)  # refused at a step of the search and at one of the polish
    got, ref = counterfactual_explanation(model, x, target, settings), counterfactual_explanation(plain, x, target, settings)
    assert bool(ref.success.any())
    assert torch.equal(got.counterfactuals, ref.counterfactuals)  # failed before (the search's loss; the polish's one
    # margin of two classes without retain_graph, its first of two margins with it)
    assert all(p.grad is None for p in model.parameters())
