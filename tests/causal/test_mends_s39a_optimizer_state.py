"""Per-sample test-time training that reloads its trained weights after predicting, but steps an optimizer built once
in ``__init__`` with momentum: the momentum buffer carries from one call to the next, so the same samples run alone twice
differ. Both checks took that for noise and passed, and ``input_effects`` ran silently with effects up to 0.18 off a
largest effect of 0.49. Both now refuse naming the optimizer's state; the way out (clearing it with the weights) runs as
a hand ``do()``."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal.causal import input_effects
from lightning_causal.causal.engine.inner_steps import inner_steps_kept
from lightning_causal.causal.engine.stacked_rows import RowsAlone, StackedRowsError


class _MomentumTTT(nn.Module):
    """Test-time training per sample, the trained weights reloaded after each; one SGD with momentum built once."""

    def __init__(self, clear_state: bool = False) -> None:
        super().__init__()
        torch.manual_seed(1)
        self.trunk = nn.Sequential(nn.Linear(6, 16), nn.Tanh())
        self.head, self.aux = nn.Linear(16, 2), nn.Linear(16, 3)
        self.opt = torch.optim.SGD(self.trunk.parameters(), lr=0.2, momentum=0.9)
        self.clear_state = clear_state

    def _adapted(self, x: torch.Tensor) -> torch.Tensor:
        saved = copy.deepcopy(self.trunk.state_dict())
        views = torch.cat([torch.roll(x, 2 * k, dims=1) for k in range(3)])
        with torch.enable_grad():
            for _ in range(2):
                self.opt.zero_grad()
                F.cross_entropy(self.aux(self.trunk(views)), torch.arange(3).repeat_interleave(len(x))).backward()
                self.opt.step()
        out = self.head(self.trunk(x))
        self.trunk.load_state_dict(saved)
        if self.clear_state:  # the way out: the optimizer's state put back with the weights
            self.opt.state.clear()
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self._adapted(x[i:i + 1]) for i in range(len(x))])


def _x() -> torch.Tensor:
    return torch.randn(8, 6, generator=torch.Generator().manual_seed(4)) + 1


def test_momentum_kept_across_calls_is_refused_by_the_clean_probe_check_and_put_back():
    model, x = _MomentumTTT(), _x()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    with pytest.raises(ValueError, match=r"run alone twice differ.*keeps its state from call to call \(momentum "
                                         r"buffers.*self.opt.state.clear\(\).*adapt first and audit"):
        input_effects(model, x, torch.arange(6).expand(8, 6).clone(), 0.0, target=0)
    assert len(model.opt.state) == 0  # the optimizer's state as the audit found it
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())


def test_momentum_kept_across_calls_is_refused_by_the_stacked_rows_check():
    model, x = _MomentumTTT(), _x()
    check = RowsAlone("An estimator", model=model)
    with inner_steps_kept(model), torch.no_grad(), pytest.raises(
            StackedRowsError, match=r"rows \[0, \d, 7\] run alone twice differ.*keeps its state from call to call"):
        check(lambda idx: model(x[idx]), torch.arange(8), lambda out: out)


def test_the_way_out_clearing_the_state_runs_as_a_hand_do():
    model, x = _MomentumTTT(clear_state=True), _x()
    mask = torch.arange(6).expand(8, 6).clone()
    effects = input_effects(model, x, mask, 0.0, target=0)
    with torch.no_grad():
        hand = torch.stack([model(x)[:, 0] - model(x.masked_fill(mask == g, 0))[:, 0] for g in range(6)], 1)
    torch.testing.assert_close(effects, hand, rtol=0, atol=1e-6)
