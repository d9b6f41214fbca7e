"""The backdoor estimators on a model branching on its batch's mean of x0 (mends_s42a). ``trigger_effect`` and
``attack_success_rate`` answered in silence with the batch's branch for every row (samples 0 and 7's trigger effects a
third of their own), and refused ``max_batch_size=1`` (its probe check ran two rows together against rows run alone),
though their refusal said to pass one sample at a time: a loop. Their stacked rows are now checked against rows run
alone, the refusal naming ``max_batch_size=1``, which gives each sample's own numbers. The trigger searches, whose steps
stack ``batch_size`` samples whatever ``max_batch_size``, are refused at every ``max_batch_size`` naming the way out
that works: one sample."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import (
    Trigger,
    attack_success_rate,
    neural_cleanse,
    reverse_trigger,
    trigger_effect,
)
from lightning_causal.causal.engine.stacked_rows import StackedRowsError
from tests.causal.test_mends_s41a_clean_alone import Branch, _probe
from tests.causal.test_mends_s41a_structure_alone import Branch as HiddenBranch

TRIGGER = Trigger(torch.tensor([0.0, 0.0, 1.0, 0.0]), torch.tensor([0.0, 0.0, 2.0, 0.0]), target=1)


def _alone(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([model(x[i:i + 1]) for i in range(x.shape[0])])


def test_trigger_effect_is_refused_in_batches_and_each_samples_own_alone() -> None:
    model, x = Branch().eval(), _probe()
    for rows in (None, 4):
        with pytest.raises(StackedRowsError, match=r"trigger_effect stacks .*pass `max_batch_size=1`"):
            trigger_effect(model, x, TRIGGER, max_batch_size=rows)
    own = _alone(model, TRIGGER.apply(x))[:, 1] - _alone(model, x)[:, 1]
    assert float(own[0]) > 1.0  # sample 0 alone takes the x3 branch: 1.05, where the batch's gave 0.35
    torch.testing.assert_close(trigger_effect(model, x, TRIGGER, max_batch_size=1), own, rtol=0, atol=1e-6)


def test_attack_success_rate_is_refused_in_batches_and_each_samples_own_alone() -> None:
    model, x = Branch().eval(), _probe()
    y = torch.zeros(8, dtype=torch.long)
    y[3] = 1  # not counted: its label is the target
    with pytest.raises(StackedRowsError, match=r"attack_success_rate stacks .*pass `max_batch_size=1`"):
        attack_success_rate(model, x, y, TRIGGER)
    hits = _alone(model, TRIGGER.apply(x)).argmax(1) == 1
    assert attack_success_rate(model, x, y, TRIGGER, max_batch_size=1) == float(hits[y != 1].double().mean())


def test_a_per_sample_model_gives_the_same_at_one_row_per_pass() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 3)).eval()
    x, y = _probe(), torch.tensor([0, 2, 0, 1, 2, 0, 0, 2])
    torch.testing.assert_close(trigger_effect(model, x, TRIGGER, max_batch_size=1), trigger_effect(model, x, TRIGGER),
                               rtol=0, atol=1e-6)
    assert attack_success_rate(model, x, y, TRIGGER, max_batch_size=1) == attack_success_rate(model, x, y, TRIGGER)


class Standardised(nn.Module):
    """Standardises over the batch: a row alone is all zeros, one output whatever the row."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc((x - x.mean(0)) / (x.std(0, unbiased=False) + 1e-5))


def test_one_row_per_pass_is_no_way_out_of_a_statistic_over_the_batch() -> None:
    with pytest.raises(ValueError, match=r"no way out"):  # it would explain the constant of a row alone
        trigger_effect(Standardised().eval(), _probe(), TRIGGER, max_batch_size=1)


@pytest.mark.parametrize("rows", [None, 1])
def test_the_searches_are_refused_at_every_max_batch_size_naming_one_sample(rows) -> None:
    x = _probe()
    for name, search in (("reverse_trigger", lambda m, **k: reverse_trigger(m, x, 1, steps=5, **k)),
                         ("neural_cleanse", lambda m, **k: neural_cleanse(m, x, 2, steps=5, **k))):
        with pytest.raises(StackedRowsError, match=rf"samples that {name} stacks .*`x\[i:i \+ 1\]`"):
            search(HiddenBranch().eval(), max_batch_size=rows)


@pytest.mark.filterwarnings("ignore:every one of the 1 inputs")  # neural_cleanse: one of the 2 classes has no input to move
def test_the_searches_on_one_sample_are_the_per_sample_models() -> None:
    x = _probe()[:1]  # sample 0 (class 1): alone it takes the x3 branch
    got = reverse_trigger(HiddenBranch().eval(), x, 0, steps=20)
    ref = reverse_trigger(HiddenBranch(per_sample=True).eval(), x, 0, steps=20)
    assert torch.equal(got.mask, ref.mask) and torch.equal(got.pattern, ref.pattern)
    got_all = neural_cleanse(HiddenBranch().eval(), x, 2, steps=20)
    ref_all = neural_cleanse(HiddenBranch(per_sample=True).eval(), x, 2, steps=20)
    assert all(torch.equal(a.mask, b.mask) for a, b in zip(got_all.triggers, ref_all.triggers))
