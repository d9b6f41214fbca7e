"""Trial "edge": the ACE curve of one intervention value. ACE_g(alpha) = mu_g(alpha) - mean over the
values of mu_g, so a single value gave a column of zeros for every group, silently (values='quantiles'
already refused num_values=1); it is refused now, naming `values`. Two values give the analytic
w_g (alpha - mean alpha) of a linear model."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import average_causal_effect, interventional_expectations
from tests.helpers.models import hand_linear


def _linear() -> nn.Linear:
    return hand_linear([1.0, -2.0, 0.5], bias=0.3).double()  # f(x) = x0 - 2 x1 + 0.5 x2 + 0.3 (exact in float32)


@pytest.mark.parametrize("values", [torch.tensor([1.0]), torch.tensor([[1.0], [2.0], [3.0]])], ids=["[1]", "[G, 1]"])
def test_one_value_is_refused(values):
    x = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"`values` to hold at least 2 intervention values per group"):
        average_causal_effect(_linear(), x, None, values.double())
    mu, _ = interventional_expectations(_linear(), x, None, values.double())  # mu at one value stays available
    assert mu.shape == (3, 1)


def test_two_values_give_the_analytic_curve():
    x = torch.randn(5, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    values = torch.tensor([-1.0, 3.0], dtype=torch.float64)
    ace = average_causal_effect(_linear(), x, None, values)
    torch.testing.assert_close(ace, torch.tensor([[1.0], [-2.0], [0.5]], dtype=torch.float64) * torch.tensor([[-2.0, 2.0]],
                               dtype=torch.float64), rtol=0, atol=1e-12)
