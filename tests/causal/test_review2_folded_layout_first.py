"""unit_effects on a layer whose output is [T, N, ...] (positions first, as batch_first=False lays it out):
the one-sample pass gives it T rows, which the folded-rows support (51c4737) took for T rows per sample, so
method='attribution' (or screen=) was refused as a folded layer ('use method=exact'), and only the exact
method then said what is wrong. The layout is checked first: every method gets the batch_first message."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import Zero, unit_effects


class _PositionsFirst(nn.Module):
    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return h.transpose(0, 1)  # [N, T, D] -> [T, N, D]


class _Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Linear(3, 4)
        self.seq = _PositionsFirst()
        self.head = nn.Linear(4, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.seq(self.enc(x)).mean(0))


@pytest.mark.parametrize("options", [{"method": "attribution"}, {"method": "atp"}, {"screen": 2},
                                     {"intervention": [Zero(), Zero()], "method": "exact"}])
def test_a_positions_first_layer_is_refused_for_its_layout_by_every_method(options: dict) -> None:
    torch.manual_seed(0)
    x = torch.randn(5, 6, 3)
    with pytest.raises(ValueError, match="batch_first") as err:
        unit_effects(_Net().eval(), x, "seq", unit_dim=-1, **options)
    assert "method=" not in str(err.value)  # not refused as a folded layer (first-order estimates)
