"""Trial (core): input effects and ACE curves against analytic values."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import average_causal_effect, interventional_expectations


def _linear() -> nn.Linear:
    model = nn.Linear(3, 1).double()
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[1.0, -2.0, 0.5]], dtype=torch.float64))
        model.bias.fill_(0.3)
    return model


def test_ace_of_a_linear_model_is_w_times_the_centred_values():
    model, x = _linear(), torch.linspace(-1, 1, 30, dtype=torch.float64).view(10, 3)
    values = torch.tensor([-1.0, 0.0, 2.0, 5.0], dtype=torch.float64)
    ace = average_causal_effect(model, x, None, values)
    torch.testing.assert_close(ace, model.weight[0].detach()[:, None] * (values - values.mean())[None], rtol=0, atol=1e-12)


def test_quantile_values_of_non_finite_inputs_name_the_inputs_not_values():
    # before: "Expected argument `values` to be finite" although the caller passed no `values`
    x = torch.linspace(-1, 1, 30, dtype=torch.float64).view(10, 3)
    x[4, 1] = float("nan")
    with pytest.raises(ValueError, match=r"finite `inputs` for values='quantiles'.*group 1"):
        interventional_expectations(_linear(), x)
    # explicit values still work on the finite samples' groups (the NaN sample's rows are NaN)
    mu, _ = interventional_expectations(_linear(), x[[0, 1, 2]], None, torch.tensor([0.0, 1.0], dtype=torch.float64))
    assert torch.isfinite(mu).all()


def test_quantile_values_of_float64_inputs_keep_their_precision():
    # values='quantiles' were taken in float32: a float64 feature of small spread around a large
    # offset (1e6 +- 0.01, a timestamp, an id-like scale) collapsed to one value and its ACE to 0
    x = torch.zeros(21, 2, dtype=torch.float64)
    x[:, 0] = 1e6 + torch.linspace(-0.01, 0.01, 21, dtype=torch.float64)
    model = nn.Linear(2, 1).double()
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[100.0, 0.0]], dtype=torch.float64))
        model.bias.fill_(-1e8)
    ace = average_causal_effect(model, x, None, num_values=5)
    q = torch.quantile(x[:, 0], torch.linspace(0.05, 0.95, 5, dtype=torch.float64))
    torch.testing.assert_close(ace[0], 100.0 * (q - q.mean()), rtol=0, atol=1e-6)
