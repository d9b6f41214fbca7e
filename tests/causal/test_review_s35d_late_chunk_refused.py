"""The stacked-rows check (``stacked_rows.RowsAlone``) runs three rows alone before every chunk of intervened rows; its
cost (the module docstring's figures) tempts a schedule that checks the first chunks only, or a geometric sample of them. The rows
are group- (unit-) major, so the chunk that crosses a batch statistic's threshold is the one holding the groups that
matter, anywhere in the run: here the 23rd of 24, and in a second call of the same estimator on the same model. Every
chunk must stay checked for such a model to be refused."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import patch_mask
from lightning_causal.causal.effects.input_effects import input_effects
from lightning_causal.causal.engine.batching import checked_chunks
from lightning_causal.causal.engine.stacked_rows import StackedRowsError


class MarkerExit(nn.Module):
    """Sums the image, doubled unless every image of the batch shows the bright marker in its last 2x2 patch (an early
    exit on a batch statistic): a row alone takes the exit by its own marker, a pass by all of its rows'."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        s = x.sum((1, 2, 3)).unsqueeze(1)
        return s if bool((x[:, :, 6:8, 6:8] > 0.5).all()) else 2 * s


def probe() -> torch.Tensor:
    x = torch.full((6, 1, 8, 8), 0.1)
    x[:, :, 6:8, 6:8] = 1.0  # every image shows the marker: the clean probe and its rows alone take the exit
    return x


def unchecked():
    """An outer chunk check that runs each chunk as it is: the estimator's own check stays off inside."""
    return checked_chunks(lambda fn, idx, rows_of: fn(idx))


def test_a_coupled_pass_late_in_the_run_is_refused_even_after_a_clean_call():
    model, x, mask = MarkerExit(), probe(), patch_mask((1, 8, 8), 2)  # 16 groups x 6 samples = 96 rows, group-major
    # passes of 4 rows: only rows 88-91 (group 14's samples 4, 5 and group 15's 0, 1, the marker's patch zeroed) mix the
    # branches: the pass leaves the exit, rows 88 and 89 alone take it. That is the 23rd pass of 24.
    with unchecked():
        silently = input_effects(model, x, mask, max_batch_size=4)
    alone = input_effects(model, x, mask, max_batch_size=6)  # passes of one group each: every pass agrees with its rows
    assert not torch.equal(silently, alone)  # what an unchecked pass returns: group 14's effects of the other branch
    # the clean sum 10 (the exit); group 14 zeroed alone 9.6 (the exit), in the pass 2 x 9.6
    assert torch.allclose(alone[4:, 14], torch.full((2,), 0.4)) and torch.allclose(silently[4:, 14], torch.full((2,), -9.2))
    with pytest.raises(StackedRowsError, match=r"in a pass of 4 rows \(flat rows 88\.\.91\), rows \[88, 91\] run alone"):
        input_effects(model, x, mask, max_batch_size=4)
    # the same estimator on the same model, its first call clean (every chunk agrees), then the coupled one: refused too
    input_effects(model, x, mask, max_batch_size=6)
    with pytest.raises(StackedRowsError, match=r"flat rows 88\.\.91"):
        input_effects(model, x, mask, max_batch_size=4)
