"""An early exit decided on a batch statistic (`if x[:, 0].mean() > 0: return early`) under `sobol_indices`: the
analysis runs the drawn rows in chunks, so every row of a chunk takes the chunk's branch, and the check that two drawn
rows run alone give their chunk's values took rows 0 and 1 only, which took the chunk's branch alone too: the indices
came out of a function no sample computes, silently (a digits MLP with such an exit: a fifth of the drawn rows took
another branch alone). Rows spread over the first chunk are now run alone as well."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import sobol_indices


class BatchExit(nn.Module):
    """Returns ``x0`` for the whole batch when the batch's mean of ``x0`` is positive, else ``2 + x1``."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x[:, 0].mean() > 0:
            return x[:, 0]
        return 2 + x[:, 1]


class RowExit(nn.Module):
    """The same exit decided per row (`torch.where`): each row's value is its own."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.where(x[:, 0] > 0, x[:, 0], 2 + x[:, 1])


def sampler(n: int, generator: torch.Generator) -> torch.Tensor:
    """``x0`` in (1, 2), negated on every fifth row from row 4 on (rows 4, 9, 14, ...: not rows 32 and 63, which the clean
    check of sample independence runs apart too since leftovers_s40a, so that the spread rows' check is reached); ``x1``
    in (0, 1)."""
    sign = torch.where(torch.arange(n) % 5 == 4, -1.0, 1.0).double()
    return torch.stack([sign * (1 + torch.rand(n, generator=generator, dtype=torch.float64)),
                        torch.rand(n, generator=generator, dtype=torch.float64)], 1)


def test_the_premise_rows_0_and_1_take_their_chunk_s_branch_alone_and_row_4_does_not():
    x = sampler(64, torch.Generator().manual_seed(0))
    model = BatchExit()
    assert x[:, 0].mean() > 0  # the chunk's branch: x0 for every row
    torch.testing.assert_close(model(x[:2]), model(x)[:2])  # what the former check compared
    assert model(x[[4, 4]])[0] == 2 + x[4, 1] != model(x)[4]  # row 4 alone: the other branch
    torch.testing.assert_close(model(x[[32, 63]]), model(x)[[32, 63]])  # as are rows 32 and 63


def test_a_branch_on_a_batch_statistic_is_refused_by_the_sobol_analysis():
    with pytest.raises(ValueError, match=r"drawn row \d+ run alone gives another value than in the analysis' pass that "
                                         r"held it \(passes of at most 64 rows; .*"
                                         r"control flow on a batch statistic"):
        sobol_indices(BatchExit(), sampler, n=64, n_bootstrap=0, max_batch_size=64)


def test_the_same_exit_per_row_is_analysed():
    result = sobol_indices(RowExit(), sampler, n=64, n_bootstrap=0, max_batch_size=64)
    assert torch.isfinite(result.first).all() and torch.isfinite(result.total).all()
