"""Dynamically quantized models (``torch.ao.quantization.quantize_dynamic``): each quantized layer
scales its input over the whole batch, so a row's output depends on its batch and the effects hold
quantization noise. The estimators refuse it before any pass, naming the layers and the ways out
(tests/causal/test_newuser76_dynamic_quantized_refused.py: the audits, the docs' recipe)."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects, unit_effects


def _float_mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3)).eval()


def _quantized_mlp() -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notices
        return torch.ao.quantization.quantize_dynamic(_float_mlp(), {nn.Linear}, dtype=torch.qint8).eval()


def _probe() -> torch.Tensor:
    return torch.randn(8, 4, generator=torch.Generator().manual_seed(1))


def test_the_noise_that_refuses_it_is_real_a_row_depends_on_its_batch():
    """Why the refusal: a row's output on the quantized model depends on the rows it runs with (its layers
    scale their input over the batch), so a unit already 0 (a dead ReLU) set to 0 in another batch than the
    clean pass's would show an effect; on the float model the row is the same alone and in the batch."""
    x = _probe()
    q, f = _quantized_mlp(), _float_mlp()
    with torch.no_grad():
        assert float((q(x[:1]) - q(x)[:1]).abs().max()) > 1e-4
        assert float((f(x[:1]) - f(x)[:1]).abs().max()) <= 1e-6


@pytest.mark.parametrize("estimator", ["unit_effects", "input_effects", "attribution", "atp", "input_attribution"])
def test_every_estimator_refuses_a_dynamically_quantized_model_naming_its_layers(estimator):
    """These ran with a warning where the two probe samples run alone happened to agree with the batch (this probe
    of 8), and gave effects holding the quantization noise; the refusal is now made before any pass, every time, and
    names the layers and the ways out (it used to be the first-order estimates' 'no gradient' refusal for the last
    three, which the layers' lack of gradient still gives on a statically quantized model)."""
    q, x = _quantized_mlp(), _probe()
    run = {"unit_effects": lambda: unit_effects(q, x, "1"), "input_effects": lambda: input_effects(q, x),
           "attribution": lambda: unit_effects(q, x, "1", method="attribution"),
           "atp": lambda: unit_effects(q, x, "1", method="atp"),
           "input_attribution": lambda: input_effects(q, x, method="attribution")}[estimator]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's deprecation notices
        with pytest.raises(ValueError, match=r"dynamically quantized layers \('0', '2', '4'; .*quantize_dynamic.*"
                                             r"audit the float model .*dequantize"):
            run()


def test_a_float_model_is_not_refused():
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        unit_effects(_float_mlp(), _probe(), "1")
    assert [w for w in record if "quantized" in str(w.message)] == []


class _DetachedInput(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = _float_mlp()

    def forward(self, x):
        return self.net(x.detach())


class _IgnoresInput(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.bias = nn.Parameter(torch.tensor([0.5, -1.0, 2.0]))

    def forward(self, x):
        return self.bias.expand(x.shape[0], 3) + 0 * x.detach().sum(1, keepdim=True)


def test_input_attribution_without_a_gradient_is_refused_not_returned_as_zeros():
    """input_effects(method='attribution') returned all zeros, silently, where no gradient reaches
    the inputs although the output depends on them (quantized layers, a detached input)."""
    x = _probe()
    with pytest.raises(ValueError, match=r"reach the inputs, on which it depends, but none does.*\(a \.detach\(\)"):
        input_effects(_DetachedInput(), x, method="attribution")
    # an output that does not depend on the inputs: zeros are its effects, exact ones
    assert torch.equal(input_effects(_IgnoresInput(), x, method="attribution"), torch.zeros(8, 4))
