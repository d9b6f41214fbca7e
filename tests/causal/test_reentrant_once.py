"""The reentrant-checkpoint decision of ``engine.leaf_gradients`` taken once per search, and the gradient-path check
through a reentrant checkpoint.

``leaf_grads`` walks the output's whole graph at every call to learn whether a reentrant ``torch.utils.checkpoint``
is in it (torch refuses ``torch.autograd.grad`` there, and a refused attempt frees part of the graph). The searches
that take a gradient at every step (BackdoorSuppressionTerm's region search, the counterfactual search and its polish)
take them through one ``LeafGradients``, which walks at its first call only; a new search decides again, so a
checkpoint switched on between calls, or taken in train mode only, is still seen. ``gradient_check.probe_gaps`` told
the checkpoint's refusal by the text of torch's error and skipped the check; it takes the gradient through
``leaf_grads`` now, so the check runs through a reentrant checkpoint too."""

import warnings

import pytest
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from lightning_causal.causal import counterfactual_explanation, input_effects
from lightning_causal.causal.effects import gradient_check
from lightning_causal.causal.engine import leaf_gradients
from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.leaf_gradients import LeafGradients
from lightning_causal.causal.structure.counterfactuals import CounterfactualSettings
from lightning_causal.repair.backdoor_triggers import search_regions
from tests.causal.test_trial_newuser41_reentrant_gradients import _Net, _pair

_REGION = torch.tensor([[[0.0, 0.0], [0.0, 1.0]]])
_TARGETS = torch.tensor([0, 1, 2, 0, 1])


def _search(model: nn.Module, steps: int = 4) -> torch.Tensor:
    x = torch.rand(5, 1, 2, 2, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    return search_regions(Forward(model), x, [_REGION], _TARGETS, (0.0, 1.0), steps, torch.Generator().manual_seed(0))


@pytest.fixture
def walks(monkeypatch):
    """The number of graph walks ``leaf_gradients`` makes."""
    count, walk = [0], leaf_gradients.has_reentrant_checkpoint

    def counted(output):
        count[0] += 1
        return walk(output)

    monkeypatch.setattr(leaf_gradients, "has_reentrant_checkpoint", counted)
    return count


@pytest.mark.parametrize("checkpointed", [False, True])
def test_a_search_walks_the_graph_once_whatever_its_steps(walks, checkpointed):
    model = _Net(checkpointed=checkpointed).double().eval()
    for steps in (2, 9):
        walks[0] = 0
        _search(model, steps)
        assert walks[0] == 1  # was one a step
    x = torch.randn(3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    walks[0] = 0
    counterfactual_explanation(model, x, torch.tensor([0, 1, 2]), CounterfactualSettings(steps=40, polish=3))
    assert walks[0] == 2  # the search's and the polish's; was 47 (the first step's check, 40 steps, 3 x 2 in the polish)


def test_a_checkpoint_switched_on_between_searches_is_seen():
    model, plain = _pair()
    model.checkpointed = False
    torch.testing.assert_close(_search(model), _search(plain), rtol=0, atol=0)
    model.checkpointed = True  # between two training steps of the repair, two calls of the search
    torch.testing.assert_close(_search(model), _search(plain), rtol=0, atol=0)
    x = torch.randn(3, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    target = torch.tensor([2, 0, 1])
    model.checkpointed = False
    settings = CounterfactualSettings(steps=30, polish=2)
    ref = counterfactual_explanation(plain, x, target, settings)
    assert bool(ref.success.any())
    got = counterfactual_explanation(model, x, target, settings)
    model.checkpointed = True
    again = counterfactual_explanation(model, x, target, settings)
    for a, b in ((got, ref), (again, ref)):
        torch.testing.assert_close(a.counterfactuals, b.counterfactuals, rtol=0, atol=0)
    assert all(p.grad is None for p in model.parameters())


class _TrainOnly(_Net):
    """Checkpoints while training only, as Hugging Face's ``gradient_checkpointing`` does."""

    def forward(self, x):
        h = torch.tanh(self.a(x.flatten(1)))
        return self.c(checkpoint(self.b, h, use_reentrant=True) if self.training else self.b(h))


def _gradient(model: nn.Module, grads: LeafGradients, retain_graph: bool = False) -> torch.Tensor:
    x = torch.linspace(-1, 1, 12, dtype=torch.float64).view(3, 4).requires_grad_(True)
    return grads.grad(model(x)[:, 1].sum(), x, retain_graph=retain_graph)


def test_train_and_eval_mode_are_decided_apart():
    model, plain = _pair()
    trained = _TrainOnly().double()
    trained.load_state_dict(plain.state_dict())
    ref = _gradient(plain, LeafGradients(plain))
    for training, reentrant in ((False, False), (True, True), (False, False)):
        trained.train(training)
        grads = LeafGradients(trained)
        torch.testing.assert_close(_gradient(trained, grads), ref, rtol=0, atol=0)
        assert grads.reentrant is reentrant
    assert all(p.grad is None for p in trained.parameters())


def test_a_checkpoint_taken_at_a_later_pass_of_one_search_is_caught():
    model, plain = _pair()
    trained = _TrainOnly().double().eval()
    trained.load_state_dict(plain.state_dict())
    ref = _gradient(plain, LeafGradients(plain))
    grads = LeafGradients(trained)
    torch.testing.assert_close(_gradient(trained, grads), ref, rtol=0, atol=0)
    assert grads.reentrant is False
    trained.train()  # the forward takes a checkpoint the first pass did not (no search of the package does this)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning of torch's refusal either
        torch.testing.assert_close(_gradient(trained, grads, retain_graph=True), ref, rtol=0, atol=0)  # the graph whole
    assert grads.reentrant is True  # backward() from now on
    torch.testing.assert_close(_gradient(trained, grads), ref, rtol=0, atol=0)
    late = LeafGradients(trained)
    late.reentrant = False  # as if decided on an eval pass: the refused attempt freed part of the graph
    with pytest.raises(RuntimeError, match="The first pass of this search took no reentrant torch.utils.checkpoint"):
        _gradient(trained, late)
    assert all(p.grad is None for p in trained.parameters())


class _Cut(nn.Module):
    """A reentrant checkpoint beside a branch whose gradient is cut (``.detach()``)."""

    def __init__(self, checkpointed: bool = True) -> None:
        super().__init__()
        self.a, self.b, self.c = nn.Linear(4, 8), nn.Sequential(nn.Linear(8, 8), nn.Tanh()), nn.Linear(8, 3)
        self.checkpointed = checkpointed

    def forward(self, x):
        h = torch.tanh(self.a(x))
        g = checkpoint(self.b, h, use_reentrant=True) if self.checkpointed else self.b(h)
        return self.c(g) + self.c(h).detach()


def _cut_pair() -> tuple[nn.Module, nn.Module]:
    torch.manual_seed(0)
    plain = _Cut(checkpointed=False).double().eval()
    model = _Cut().double().eval()
    model.load_state_dict(plain.state_dict())
    return model, plain


def test_the_gradient_path_check_runs_through_a_reentrant_checkpoint():
    model, plain = _cut_pair()
    x = torch.randn(6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    for m in (model, plain):
        with pytest.warns(UserWarning, match="misses part of how the output depends on it"):  # was silent through it
            input_effects(m, x, method="attribution", target=0)
    assert all(p.grad is None for p in model.parameters())

    def run(m):
        return lambda edit: m(edit(0, x[:2]))[:, 0]

    ref = gradient_check.probe_gaps(run(plain))
    assert float(ref.max()) > 0.05
    torch.testing.assert_close(gradient_check.probe_gaps(run(model), model=model), ref, rtol=0, atol=0)
    assert gradient_check.probe_gaps(run(model)) is None  # no model whose parameters' .grad to keep: not checked
    whole, whole_plain = _pair()
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning where autograd sees every path through the checkpoint
        warnings.filterwarnings("ignore", "None of the inputs have requires_grad")  # torch's, of its no-grad passes
        got = input_effects(whole, x, method="attribution")
    torch.testing.assert_close(got, input_effects(whole_plain, x, method="attribution"), rtol=0, atol=0)


class CheckpointFunction(torch.utils.checkpoint.CheckpointFunction):
    """A library's own reentrant checkpoint (DeepSpeed's, fairscale's and Megatron's bear this name)."""


def test_a_librarys_reentrant_checkpoint_is_decided_by_its_name():
    model, plain = _pair()
    library = _Net().double().eval()
    library.load_state_dict(plain.state_dict())
    library.forward = lambda x: library.c(CheckpointFunction.apply(library.b, True, torch.tanh(library.a(x.flatten(1)))))
    grads = LeafGradients(library)
    torch.testing.assert_close(_gradient(library, grads), _gradient(plain, LeafGradients(plain)), rtol=0, atol=0)
    assert grads.reentrant is True and all(p.grad is None for p in library.parameters())
