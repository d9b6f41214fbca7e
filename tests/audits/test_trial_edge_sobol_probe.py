"""Trial "edge": SobolAudit on a probe holding NaN, for a model that reads NaN as a missing value
(finite outputs, so the callback's probe check lets it through). Before, the audit failed on
"argument `data` to be finite", an argument of EmpiricalMarginals the user never passed; it now
names the probe's samples."""

import pytest
import torch
from torch import nn

from lightning_causal.audits import Probe, SobolAudit


class Imputing(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.linear = nn.Linear(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(torch.nan_to_num(x, nan=0.0))


def test_a_nan_in_the_probe_is_named_by_sample():
    x = torch.randn(8, 3, generator=torch.Generator().manual_seed(0))
    x[5, 2] = float("nan")
    with pytest.raises(ValueError, match=r"SobolAudit draws its inputs from the probe's values.*samples \[5\] of 8"):
        SobolAudit(n=64).run(Imputing(), Probe(x))
