"""CausalRepairModule(explain=k) built a new ChosenInput wrapper each step, and the terms key their per-model records
(whether the model draws, the buffers its passes write) on the model they are given, so every step of a model that
draws ran as a first step: the joint pass, thrown away, then the two paired passes (final read B F2: 4 head calls a
step where 3 do). One wrapper serves a layout across steps; the values are those of a fresh module's first step."""

import copy
import pickle

import torch
from torch import nn

from lightning_causal import AttributeFlip, CausalRepairModule, CounterfactualFairnessTerm


class _Two(nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.a, self.b, self.drop, self.head = nn.Linear(3, 8), nn.Linear(4, 8), nn.Dropout(0.3), nn.Linear(8, 2)

    def forward(self, img, tab):
        return self.head(self.drop(torch.relu(self.a(img) + self.b(tab))))


def _batch():
    g = torch.Generator().manual_seed(1)
    img, tab = torch.randn(32, 3, generator=g), torch.randn(32, 4, generator=g)
    tab[:, 0] = (tab[:, 0] > 0).float()
    return (img, tab), torch.arange(32) % 2


def _module(net):
    module = CausalRepairModule(net, [CounterfactualFairnessTerm(AttributeFlip(0))], explain=1).train()
    module.log_dict = lambda *a, **k: None
    module.log = lambda *a, **k: None
    return module


def test_a_drawing_model_explained_by_position_runs_three_passes_after_its_first_step():
    net = _Two().train()
    calls = []
    net.head.register_forward_hook(lambda m, a, o: calls.append(a[0].shape[0]))
    module, batch = _module(net), _batch()
    per_step = []
    for i in range(3):
        calls.clear()
        module.training_step(batch, i)
        per_step.append(list(calls))
    assert per_step == [[32, 64, 32, 32], [32, 32, 32], [32, 32, 32]]


def test_the_kept_wrapper_gives_a_fresh_modules_loss_and_copies():
    batch = _batch()
    kept = _module(_Two().train())
    torch.manual_seed(3)
    kept.training_step(batch, 0)
    state = torch.random.get_rng_state()
    second = kept.training_step(batch, 1)
    fresh = _module(copy.deepcopy(kept.model))
    fresh.training_step(batch, 0)  # a first step: the records then say the model draws, as kept's do
    torch.random.set_rng_state(state)
    assert torch.equal(second, fresh.training_step(batch, 1))
    pickle.loads(pickle.dumps(kept.model))  # the module's model pickles (ddp_spawn) beside the wrappers
    assert copy.deepcopy(kept)._wrappers  # and the module deep-copies with them


def test_a_reassigned_model_gets_a_wrapper_of_its_own():
    # final read D F2: the kept wrapper was keyed by the layout only, so after `module.model = new` the terms read
    # the first network, silently
    batch = _batch()
    module = _module(_Two().eval())
    module.training_step(batch, 0)
    torch.manual_seed(7)
    new = _Two().train()
    new.drop.p = 0.0  # nothing drawn: the two modules' losses compare exactly
    for p in new.parameters():
        p.data.normal_()
    calls = []
    new.head.register_forward_hook(lambda m, a, o: calls.append(a[0].shape[0]))
    module.model = new
    loss = module.training_step(batch, 1)
    assert calls == [32, 64]  # the task pass and the term's pass of rows and counterfactuals, both on the new model
    assert torch.equal(loss, _module(new).training_step(batch, 0))
