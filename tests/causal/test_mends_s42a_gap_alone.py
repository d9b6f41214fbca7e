"""``counterfactual_fairness_gap`` and ``world_gaps`` ran the factual and counterfactual rows in passes of many samples
and checked only two samples run alone against the factual pass: a model branching on its batch's mean of x0 (which
the flip of another column leaves as it is) was answered in silence with the batch's branch for every sample (samples
0 and 7's deltas a third of their own). The counterfactual rows stacked in a pass are now checked against rows run
alone (the stacked-rows refusal, naming ``max_batch_size=1``), with which each row runs alone and gives each sample's
own gap (leftovers_s42b's test, landed by mends_s42a)."""

import pytest
import torch

from lightning_causal.causal import AttributeFlip, counterfactual_fairness_gap, world_gaps
from lightning_causal.causal.engine.stacked_rows import StackedRowsError
from tests.causal.test_leftovers_s42b_carrier_alone import _probe
from tests.causal.test_mends_s41a_clean_alone import Branch


def _alone(model: Branch, x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return torch.cat([model(x[i:i + 1]) for i in range(x.shape[0])])


def _with_column(x: torch.Tensor, value: float) -> torch.Tensor:
    out = x.clone()
    out[:, 3] = value
    return out


def test_the_gap_is_refused_in_batches_and_each_samples_own_alone() -> None:
    model, x = Branch().eval(), _probe()
    with pytest.raises(StackedRowsError, match=r"counterfactual_fairness_gap .*max_batch_size=1"):
        counterfactual_fairness_gap(model, x, AttributeFlip(3), target=1, compare="output")
    gap = counterfactual_fairness_gap(model, x, AttributeFlip(3), target=1, compare="output", max_batch_size=1)
    flipped = x.clone()
    flipped[:, 3] = 1 - flipped[:, 3]
    torch.testing.assert_close(gap["delta"], _alone(model, flipped)[:, 1] - _alone(model, x)[:, 1], rtol=0, atol=1e-6)


def test_world_gaps_are_refused_in_batches_and_each_samples_own_alone() -> None:
    model, x = Branch().eval(), _probe()
    worlds = {"a0": lambda z: _with_column(z, 0.0), "a1": lambda z: _with_column(z, 1.0)}
    with pytest.raises(StackedRowsError, match=r"world_gaps .*max_batch_size=1"):
        world_gaps(model, x, worlds, target=1)
    got = world_gaps(model, x, worlds, target=1, max_batch_size=1)
    p = torch.softmax(_alone(model, x), 1)[:, 1]
    for k, value in enumerate((0.0, 1.0)):
        own = torch.softmax(_alone(model, _with_column(x, value)), 1)[:, 1]
        torch.testing.assert_close(got["delta"][k].float(), own - p, rtol=0, atol=1e-6)
