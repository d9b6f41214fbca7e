"""stacked_rows' three save/restore copies (_alone, _reads_own_state, and mixed_rows, now mixing_module: the name
clashed with live_values.mixed_rows, another meaning) are one context manager, _held_state: the model's attributes and
torch's and the given generators put back as found, also where the passes inside fail, the names of what they set given
to ``states``, and whether a generator moved."""

import pytest
import torch
from torch import nn

from lightning_causal.causal.engine.stacked_rows import _held_state, mixing_module


class _Mixer(nn.Module):
    def forward(self, x):
        return x + x.mean(0, keepdim=True)  # a statistic across the batch's rows


class _Model(nn.Module):
    def __init__(self, fail_alone: bool = False):
        super().__init__()
        torch.manual_seed(0)
        self.fc, self.mix, self.head = nn.Linear(4, 4), _Mixer(), nn.Linear(4, 2)
        self.calls, self.last, self.fail_alone = 0, None, fail_alone

    def forward(self, x):
        self.calls += 1
        self.last = x.detach()
        torch.rand(1)  # a draw from the global generator
        if self.fail_alone and x.shape[0] == 1:
            raise RuntimeError("wants two rows")
        return self.head(self.mix(self.fc(x)))


def _as_found(model, rng):
    assert model.calls == 0 and model.last is None
    assert torch.equal(torch.get_rng_state(), rng)
    assert all(not m._forward_hooks for m in model.modules())


def test_mixing_module_names_the_module_and_puts_everything_back():
    model, x = _Model(), torch.randn(5, 4)
    rng = torch.get_rng_state()
    found = mixing_module(lambda idx: model(x[idx]), torch.arange(5), 2, model)
    assert found is not None
    assert found[0].startswith("module 'mix' mixes the rows of the pass: its output for row 2 differs alone")
    assert found[1] == "Make it per-row"
    _as_found(model, rng)


def test_mixing_module_of_a_pass_that_fails_is_none_and_puts_everything_back():
    model, x = _Model(fail_alone=True), torch.randn(5, 4)
    rng = torch.get_rng_state()
    assert mixing_module(lambda idx: model(x[idx]), torch.arange(5), 2, model) is None
    _as_found(model, rng)


def test_held_state_puts_back_on_an_exception_and_says_what_was_set_and_drawn():
    model, x, g = _Model(), torch.randn(3, 4), torch.Generator().manual_seed(0)
    rng, g_state, states = torch.get_rng_state(), g.get_state(), []
    with pytest.raises(RuntimeError, match="inside"):
        with _held_state(model, (g,), states) as held:
            model(x)
            torch.randn(2, generator=g)
            raise RuntimeError("inside")
    assert held.drew and torch.equal(g.get_state(), g_state)
    assert "last" in states
    _as_found(model, rng)
    with _held_state(None) as quiet:
        pass
    assert quiet.kept is None and not quiet.drew
