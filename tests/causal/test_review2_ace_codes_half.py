"""interventional_expectations / average_causal_effect of a half precision model(x_cont, x_cat): the values
grid took x_cont's dtype, in which codes beyond 256 (bfloat16) or 2048 (float16) are no whole numbers, so
values=[301, 303] ran, and were reported, as codes 300 and 304, silently. Beside codes the grid is float32
now; the float columns' values are still set, and reported, in their own precision."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import interventional_expectations


class _Coded(nn.Module):
    """x_cont + e[code], e[c] = c - base for the codes near ``base``: small whole numbers, exact in half precision."""

    def __init__(self, base: int, dtype: torch.dtype) -> None:
        super().__init__()
        self.codes = nn.Embedding(base + 16, 1)
        with torch.no_grad():
            self.codes.weight.copy_((torch.arange(base + 16.0) - base).clamp_min(0).view(-1, 1))
        self.to(dtype)

    def forward(self, x_cont: torch.Tensor, x_cat: torch.Tensor) -> torch.Tensor:
        return x_cont + self.codes(x_cat[:, 0])


@pytest.mark.parametrize(("dtype", "base"), [(torch.bfloat16, 300), (torch.float16, 2048)])
def test_codes_beyond_the_whole_numbers_of_half_precision_run_as_given(dtype: torch.dtype, base: int) -> None:
    model = _Coded(base, dtype)
    x_cont = torch.tensor([[0.1], [0.2], [0.3], [0.4]], dtype=dtype)
    x_cat = torch.tensor([[base + 2], [base + 4], [base + 6], [base + 8]])
    mask = (torch.tensor([[0]]), torch.tensor([[1]]))
    codes = torch.tensor([base + 1.0, base + 3.0, base + 5.0])
    mu, values = interventional_expectations(model, (x_cont, x_cat), values=codes, feature_mask=mask, target=0)
    assert values[1].tolist() == codes.tolist()  # the codes asked for, as reported
    mean_cont = float(x_cont.float().mean())
    torch.testing.assert_close(mu[1].float(), torch.tensor([1.0, 3.0, 5.0]) + mean_cont, atol=2e-2, rtol=0)  # as run
    # the float column is set in its own dtype, and reported as set
    assert values[0].tolist() == codes.to(dtype).float().tolist()
