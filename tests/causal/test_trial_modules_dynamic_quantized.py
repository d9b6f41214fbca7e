"""Dynamically quantized models (``torch.ao.quantization.quantize_dynamic``): each quantized layer
scales its input over the whole batch, so a row's output depends on its batch and the effects hold
quantization noise. The estimators say so, naming the layers; the first-order estimates, which find
no gradient through quantized layers, name them as the cause."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal import Resample, input_effects, unit_effects


def _float_mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 16), nn.ReLU(), nn.Linear(16, 3)).eval()


def _quantized_mlp() -> nn.Module:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao.quantization's deprecation notices
        return torch.ao.quantization.quantize_dynamic(_float_mlp(), {nn.Linear}, dtype=torch.qint8).eval()


def _probe() -> torch.Tensor:
    return torch.randn(8, 4, generator=torch.Generator().manual_seed(1))


def _quantization_warnings(record) -> list[str]:
    return [str(w.message) for w in record if "dynamically quantized" in str(w.message)]


def test_the_noise_warned_about_is_real_zeroing_a_dead_unit_shows_an_effect():
    """Why the warning: a unit already 0 (a dead ReLU) set to 0 changes nothing, yet its effect is
    not 0 on the quantized model (its rows run in other batches), while it is exactly 0 on the float one.
    The rows run: ``Resample`` of a reference of zeros (``Zero()``'s rows on a unit already at 0 are left
    unrun, their effect exactly 0: unit_rows.moving_rows)."""
    x = _probe()
    q, f = _quantized_mlp(), _float_mlp()
    zero = Resample(torch.zeros(1, 16))
    with torch.no_grad():
        dead = q[1](q[0](x)) == 0
    assert dead.any()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        noisy = unit_effects(q, x, "1", zero)[dead].abs().max()
        assert float(unit_effects(q, x, "1")[dead].abs().max()) == 0.0  # Zero(): left unrun
    assert float(noisy) > 1e-4
    with torch.no_grad():
        dead_f = f[1](f[0](x)) == 0
    # the float model: 0 up to float32 rounding (exactly 0 here; ~1e-8 on CPUs whose matrix kernels depend on the
    # batch size, as on a 16-core machine with torch 2.11), four orders below the quantized noise
    assert float(unit_effects(f, x, "1", zero)[dead_f].abs().max()) <= 1e-6


@pytest.mark.parametrize("estimator", ["unit_effects", "input_effects"])
def test_effects_on_a_dynamically_quantized_model_warn_naming_its_layers_once(estimator):
    q, x = _quantized_mlp(), _probe()
    run = (lambda: unit_effects(q, x, "1")) if estimator == "unit_effects" else (lambda: input_effects(q, x))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        run()
    (message,) = _quantization_warnings(record)
    assert "'0', '2', '4'" in message and "quantize_dynamic" in message and "float model" in message
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        run()
    assert _quantization_warnings(record) == []  # once per model


def test_a_float_model_is_not_warned_about():
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        unit_effects(_float_mlp(), _probe(), "1")
    assert _quantization_warnings(record) == []


@pytest.mark.parametrize("method", ["attribution", "atp"])
def test_first_order_estimates_name_the_quantized_layers_that_have_no_gradient(method):
    q, x = _quantized_mlp(), _probe()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=r"quantized layers, which have no gradient \('0', '2', '4'"):
            unit_effects(q, x, "1", method=method)


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
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=r"reach the inputs.*quantized layers, which have no gradient \('0', '2', '4'"):
            input_effects(_quantized_mlp(), x, method="attribution")
    with pytest.raises(ValueError, match=r"reach the inputs, on which it depends, but none does.*\(a \.detach\(\)"):
        input_effects(_DetachedInput(), x, method="attribution")
    # an output that does not depend on the inputs: zeros are its effects, exact ones
    assert torch.equal(input_effects(_IgnoresInput(), x, method="attribution"), torch.zeros(8, 4))
