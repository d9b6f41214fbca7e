"""Trial "edge": a probe sample holding NaN or infinity. Before, every estimator returned its rows as
NaN (and every mean, ranking and share over the samples with them), silently; now a sample whose
non-finite inputs reach the explained output is refused, naming `inputs` and the samples. A model
that reads NaN as a missing value, and a diverged model of finite inputs, are not refused."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import (
    average_causal_effect,
    causal_graph,
    counterfactual_explanation,
    input_effects,
    layer_causal_map,
    unit_effects,
)


def _model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)).double().eval()


def _inputs() -> torch.Tensor:
    x = torch.randn(6, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    x[2, 1] = float("nan")
    x[4, 0] = float("inf")  # saturates the tanh: a finite output, a sample with defined effects
    return x


@pytest.mark.parametrize("call", [
    lambda m, x: input_effects(m, x),
    lambda m, x: input_effects(m, x, method="attribution"),
    lambda m, x: average_causal_effect(m, x, None, torch.tensor([0.0, 1.0], dtype=torch.float64)),
    lambda m, x: unit_effects(m, x, "0"),
    lambda m, x: causal_graph(m, x, ["0"]),
    lambda m, x: layer_causal_map(m, x, None),
], ids=["input_effects", "attribution", "ace", "unit_effects", "causal_graph", "layer_map"])
def test_non_finite_samples_are_named_not_turned_into_nan(call):
    with pytest.raises(ValueError, match=r"`inputs` to be finite but sample \[2\] of 6 holds NaN or infinity"):
        call(_model(), _inputs())


class Imputing(nn.Module):
    """Reads NaN and infinity as missing (0), as a tabular model with missing values may."""

    def __init__(self) -> None:
        super().__init__()
        self.linear = nn.Linear(4, 2).double()
        with torch.no_grad():
            self.linear.weight.copy_(torch.tensor([[1.0, -2.0, 0.5, 3.0], [0.0, 1.0, 1.0, -1.0]], dtype=torch.float64))
            self.linear.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(torch.nan_to_num(x, nan=0.0, posinf=0.0, neginf=0.0))


def test_a_model_that_imputes_missing_values_keeps_its_effects():
    x = _inputs()
    got = input_effects(Imputing(), x, target=0)
    # do(x_g := 0) of a linear model: w_g * x_g, and 0 where the model reads x_g as missing (0)
    expected = torch.nan_to_num(x, nan=0.0, posinf=0.0) * Imputing().linear.weight[0].detach()
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-12)


def test_a_diverged_model_of_finite_inputs_is_reported_not_refused():
    model = _model()
    with torch.no_grad():
        model[2].bias[0] = float("nan")
    x = torch.randn(5, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    assert torch.isnan(input_effects(model, x, target=0)).all()


def test_a_counterfactual_of_a_nan_sample_is_refused_not_a_success():
    # before: the NaN sample's logits argmax to class 0, so it was a "success" with its input unchanged
    x = _inputs().float()
    with pytest.raises(ValueError, match=r"sample \[2\] of 6 holds NaN or infinity"):
        counterfactual_explanation(_model().float(), x, 0)
