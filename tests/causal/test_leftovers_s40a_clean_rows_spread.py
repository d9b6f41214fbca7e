"""The clean-probe check of sample independence ran probe rows 0 and 1 alone: a model whose dependence on its batch
shows only on later rows passed in silence. The realistic case: an nn.LSTM fed [N, T, F] without batch_first reads the
batch as time, so row i reads rows 0 to i (rows 0 and 1 alone give what they give in the batch). Rows spread over the
probe are checked too: where rows 0 and 1 run alone agree with the batch, rows n // 2 and n - 1 run alone (one pass
more), and the refusal names the rows that differ. The optimizer-state check reads the parameters' fingerprints (param_writes'), no copies."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.param_writes import fingerprints, written_since
from lightning_causal.causal.engine.sample_independence import (
    check_samples_independent,
    checked_rows,
    optimizer_state_kept,
)


class _TimeAsBatch(nn.Module):
    """An LSTM over [N, T, F] built without batch_first: its recurrence runs over the N samples."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.rnn, self.head = nn.LSTM(3, 8), nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(x)  # [N, T, 8], step i of "time" being sample i
        return self.head(out[:, -1])


def test_a_dependence_on_later_rows_is_refused():
    model = _TimeAsBatch().eval()
    x = torch.randn(16, 5, 3, generator=torch.Generator().manual_seed(0))
    forward = Forward(model, num_samples=16)
    with torch.no_grad():
        out = forward(x)
        torch.testing.assert_close(forward(x[:2]), out[:2])  # rows 0 and 1 alone: as in the batch
    with pytest.raises(ValueError, match=r"probe samples \[8, 15\] run alone differ from their outputs in the batch of 16"):
        with torch.no_grad():
            check_samples_independent(forward, (x,), out, "The analysis")


def test_a_per_sample_model_still_passes_and_each_group_is_two_rows_of_fewer():
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).eval()
    for n in (1, 2, 3, 4, 5, 9, 64):
        groups = checked_rows(n, "cpu")
        assert [len(g) for g in groups] == ([2] if n < 4 else [2, 2]) and (n < 4 or groups[1].tolist() == [n // 2, n - 1])
        x = torch.randn(n, 3)
        with torch.no_grad():
            check_samples_independent(Forward(model, num_samples=n), (x,), model(x), "The analysis")


def test_the_optimizer_check_reads_fingerprints():
    lin = nn.Linear(2, 2)
    held = fingerprints(dict(lin.named_parameters()))
    assert optimizer_state_kept(lin, held)  # the weights as they were: put back
    with torch.no_grad():
        lin.weight[0, 0] += 1e-3
    assert not optimizer_state_kept(lin, held) and written_since(dict(lin.named_parameters()), held) == ["weight"]
