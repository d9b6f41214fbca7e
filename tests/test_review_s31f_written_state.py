"""A model that keeps what its forward computed (``self.last_out = out.detach()``, for a figure) and branches on a batch
statistic escaped the stacked-rows check: the rows alone set that attribute, which the check took for a state carried
from call to call (a recurrent ``self.h`` a row alone does not read) and so compared nothing; unit_effects returned the
pass's branch silently. A state is now taken as carried only where the chunk, run again after its own pass, reads it."""

import pytest
import torch

from lightning_causal.causal.effects.input_effects import input_effects
from lightning_causal.causal.effects.unit_effects import unit_effects
from tests.test_leftovers_s31a_stacked_rows import ALONE, PROBE, BatchBranch


class KeepsItsOutput(BatchBranch):
    """:class:`BatchBranch` that keeps its last output (written, never read)."""

    def __init__(self) -> None:
        super().__init__()
        self.last_out: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = super().forward(x)
        self.last_out = out.detach()
        return out


@pytest.mark.parametrize("estimator", [unit_effects, input_effects])
def test_a_state_only_written_does_not_hide_a_branch_on_the_batch(estimator):
    model = KeepsItsOutput()
    args = (model, PROBE, "h") if estimator is unit_effects else (model, PROBE)
    assert torch.equal(estimator(*args, max_batch_size=4), ALONE)  # passes that agree with their rows alone
    # passes of 5 rows: rows 0-4 hold x0 = 0, 0, 0, 0, 2 (the plain branch), row 4 alone the x10 one (s = 20, in the pass 2)
    with pytest.raises(ValueError, match=r"rows \[0, 4\] run alone give \[1, 20\] and in the pass \[1, 2\]"):
        estimator(*args, max_batch_size=5)
