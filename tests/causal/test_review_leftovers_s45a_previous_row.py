"""1ed7ea81 left out of the batch-dependence check's refusal (beside random draws) a tensor reassigned to another shape
whose rows, run from one snapshot with the tensor set back to the one the probe's pass left, gave their outputs again:
taken for a table the forward rebuilds from its batch. A forward that reads the last batch's first row
(``h + self.prev[0]``; ``self.prev = h``) reads the same row 0 after the probe's pass and after the pass of probe rows
[0, 1], so it passed, and the effects followed whatever batch ran before each pass (refused before 1ed7ea81). The set-back
tensor now has the old shape and other values at every entry: such a read is refused, naming ``prev``; a table rebuilt
where the batch size changes still passes (review of leftovers_s45a)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal.causal import input_effects


class _Net(nn.Module):
    """MC dropout on; ``kind`` "first": reads the first row of the previous call's activations; "keyed": a scale table
    made again where the batch size changes (read only as rebuilt)."""

    def __init__(self, kind: str) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.kind, self.l1, self.l2 = kind, nn.Linear(3, 16), nn.Linear(16, 2)
        self.prev, self.scale = torch.zeros(1, 16), torch.ones(1, 16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.l1(x).relu()
        if self.kind == "first":
            last, self.prev = self.prev[0], h.detach()
            h = h + last
        elif self.scale.shape[0] != x.shape[0]:
            self.scale = torch.linspace(1.0, 2.0, 16).expand(x.shape[0], 16).clone()
        if self.kind == "keyed":
            h = h * self.scale
        return self.l2(F.dropout(h, 0.1, training=True))


def _x() -> torch.Tensor:
    return torch.randn(24, 3, generator=torch.Generator().manual_seed(1))


@pytest.mark.filterwarnings("ignore:The model draws random numbers")
def test_the_previous_batchs_first_row_read_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match=r"wrote floating tensors of its own \(prev\) in a pass of probe samples \[0, 1\] "
                                         r"alone, in eval mode, and reads them beside the random numbers"):
        input_effects(_Net("first").eval(), _x(), target=0)


@pytest.mark.filterwarnings("ignore:The model draws random numbers")
def test_a_table_rebuilt_on_the_batch_size_still_passes() -> None:
    torch.manual_seed(5)
    got = input_effects(_Net("keyed").eval(), _x(), target=0)
    assert got.shape == (24, 3) and torch.isfinite(got).all()
