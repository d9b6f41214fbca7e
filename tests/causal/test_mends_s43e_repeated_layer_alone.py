"""``unit_effects`` at ``max_batch_size=1`` runs every row alone from the whole probe's value of the layer, and
``_value_alone`` refuses a layer whose value there is not each sample's own (a branch on the batch's mean before it).
A layer called twice a pass (``act(act(h))``) was not compared: each row alone started from the batch's branch, and the
effects differed from the per-sample model's by up to 0.13, silently. Its first call (the one the cache holds) and the
rows' outputs alone are now compared; one sample per call, ``x[i:i + 1]``, the way out named, gives the hand loop's
effects, as a per-sample model at ``max_batch_size=1`` does. A branch between the two calls runs in the rows alone:
answered, the hand loop's effects."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import unit_effects
from tests.causal.test_leftovers_s43a_one_row_loop import _alone


class Twice(nn.Module):
    """``head(act(act(h)))``, ``h`` tripled where the batch's mean of feature 0 is not positive (``per_sample``: where
    the sample's own is not)."""

    def __init__(self, per_sample: bool = False, twice: bool = True, between: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc, self.act, self.head = nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2)
        self.per_sample, self.twice, self.between = per_sample, twice, between

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(self.fc(x)) if self.between else self.fc(x)  # between: the branch after the first call
        if self.per_sample:
            h = torch.where(x[:, :1] > 0, h, 3 * h)
        else:
            h = h if bool(x[:, 0].mean() > 0) else 3 * h
        if self.between:
            return self.head(self.act(h))
        return self.head(self.act(self.act(h) if self.twice else torch.tanh(h)))


def _probe() -> torch.Tensor:
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(1))
    x[:, 0] = x[:, 0].abs() + 0.5
    x[[0, 1], 0] = -0.3  # the probe's mean positive, rows 0 and 1 alone not: the probe check sees them
    return x


def _hand(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """``[8, 3]``: class 1's output of each sample run alone, minus the same with unit ``u`` of ``act`` zeroed at every
    call (the hook fires at each)."""
    return torch.stack([_alone(model, x) - _alone(model, x, model.act, u) for u in range(3)], 1)


def test_a_layer_called_twice_after_the_batch_branch_is_refused_alone_naming_one_sample_per_call() -> None:
    model, x = Twice().eval(), _probe()
    hand = _hand(model, x)
    assert (hand - _hand(Twice(per_sample=True).eval(), x)).abs().max() == 0  # alone, the two models agree
    with pytest.raises(ValueError, match=r"output of 'act' for each sample run alone .*x\[i:i \+ 1\]"):
        unit_effects(model, x, "act", target=1, max_batch_size=1)
    one = torch.cat([unit_effects(model, x[i:i + 1], "act", target=1) for i in range(8)])
    torch.testing.assert_close(one, hand, rtol=0, atol=1e-6)
    per_sample = Twice(per_sample=True).eval()  # every call alone its own: answered, the hand loop's effects
    effects, info = unit_effects(per_sample, x, "act", target=1, max_batch_size=1, return_info=True)
    assert info.calls == 2
    torch.testing.assert_close(effects, hand, rtol=0, atol=1e-6)


def test_a_layer_called_once_is_refused_or_answered_as_before() -> None:
    x = _probe()
    with pytest.raises(ValueError, match=r"'act' for each sample run alone .*x\[i:i \+ 1\]"):
        unit_effects(Twice(twice=False).eval(), x, "act", target=1, max_batch_size=1)
    model = Twice(per_sample=True, twice=False).eval()
    torch.testing.assert_close(unit_effects(model, x, "act", target=1, max_batch_size=1), _hand(model, x),
                               rtol=0, atol=1e-6)


def test_a_branch_between_the_two_calls_runs_in_the_rows_alone_and_is_answered() -> None:
    model, x = Twice(between=True).eval(), _probe()
    hand = _hand(model, x)
    assert (hand - _hand(Twice(per_sample=True, between=True).eval(), x)).abs().max() == 0
    with pytest.raises(ValueError, match="one sample at a time"):  # the batch's branch: the probe check sees it
        unit_effects(model, x, "act", target=1)
    effects, info = unit_effects(model, x, "act", target=1, max_batch_size=1, return_info=True)
    assert info.calls == 2
    torch.testing.assert_close(effects, hand, rtol=0, atol=1e-6)
