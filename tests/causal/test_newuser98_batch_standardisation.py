"""A 1-D CNN standardising its input over the BATCH, `(x - x.mean(0)) / x.std(0)`, passes the probe's check on the
2 samples of the set-up's dry run (the two run alone are that batch), and the stacked rows' refusal then named control
flow and a solver's residual and advised `max_batch_size=1`, which gives NaN (one row's std). It names the statistic
over the batch, and what to do instead. (Session 41: the probe's check of 2 samples now runs sample 0 twice, a batch
holding no other sample, and refuses it there in the same terms.)"""

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects


class BatchStandardised(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv1d(4, 3, 3, padding=1)
        self.head = nn.Linear(3, 2)

    def forward(self, x):
        x = (x - x.mean(0, keepdim=True)) / (x.std(0, keepdim=True) + 1e-5)
        return self.head(self.conv(x).relu().mean(-1))


def test_batch_statistic_named_not_max_batch_size_one():
    x = torch.randn(2, 4, 16, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"statistic over its batch.*passing one sample at a time \(`max_batch_size=1`.*"
                       r"is no way out") as err:
        input_effects(BatchStandardised().eval(), x, torch.arange(4).reshape(1, 4, 1))
    assert "x.mean(-1, keepdim=True)" in str(err.value)
    assert "dry run" not in str(err.value)  # a direct call runs no set-up (before: "in the set-up's dry run")
