"""The counterfactual passes of the fairness gap and the worlds were checked against rows run alone, but the factual
pass, in passes of many samples, was checked only by two pairs of samples run together (the probe check): a model
branching on its batch's mean of x0, whose samples 0 and 3 alone take the x3 branch, was answered in silence with the
batch's branch (world_gaps off by 0.0045 and 0.0103 per world where the worlds' pass's checked rows agree). The factual
pass is now under the stacked-rows check too: refused naming ``max_batch_size=1``, which gives each sample's own."""

import pytest
import torch

from lightning_causal.causal import world_gaps
from lightning_causal.causal.engine.stacked_rows import StackedRowsError
from tests.causal.test_mends_s41a_clean_alone import Branch


def _probe() -> torch.Tensor:
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(1))
    x[:, 0] = x[:, 0].abs() + 0.5
    x[[0, 3], 0] = -0.3  # alone these take the x3 branch; the probe check's pairs [0, 1] and [4, 7] take the batch's
    x[:, 3] = (torch.arange(8) % 2).float()
    return x


def _set(value: float):
    def world(z: torch.Tensor) -> torch.Tensor:
        z = z.clone()
        z[:, 3] = value
        return z
    return world


def test_the_factual_pass_is_checked_and_one_row_gives_each_samples_own() -> None:
    model, x = Branch().eval(), _probe()
    worlds = {"a0": _set(0.0), "a1": _set(1.0)}
    with pytest.raises(StackedRowsError, match=r"samples that world_gaps stacks .*max_batch_size=1"):
        world_gaps(model, x, worlds, target=1)
    with torch.no_grad():
        p = torch.cat([model(x[i:i + 1]) for i in range(8)]).softmax(1)[:, 1]
        own = [torch.cat([model(w(x)[i:i + 1]) for i in range(8)]).softmax(1)[:, 1] - p for w in worlds.values()]
    got = world_gaps(model, x, worlds, target=1, max_batch_size=1)
    for k in range(2):
        torch.testing.assert_close(got["delta"][k].float(), own[k], rtol=0, atol=1e-6)
