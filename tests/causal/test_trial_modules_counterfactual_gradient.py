"""``counterfactual_explanation`` follows the gradient of the logits with respect to the inputs. On a
dynamically quantized model (no gradient through its layers, though torch marks the output as
requiring one) or a forward that detaches its input, the search only shrank the change and then
failed inside torch ("The differentiated Tensor at index 0 appears to not have been used in the
graph", or "element 0 of tensors does not require grad"). It is now refused up front, naming the
quantized layers (a dynamically quantized model, whose rows depend on their batch, by every estimator)."""

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal import counterfactual_explanation


def _mlp() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Linear(16, 3)).eval()


class _Detached(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.net = _mlp()

    def forward(self, x):
        return self.net(x.detach())


def test_a_dynamically_quantized_model_is_refused_naming_its_quantized_layers():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch.ao's deprecation notices and its autograd-fallback warning
        model = torch.ao.quantization.quantize_dynamic(_mlp(), {nn.Linear}, dtype=torch.qint8).eval()
        with pytest.raises(ValueError, match=r"dynamically quantized layers \('0', '2'; .*no gradient either"):
            counterfactual_explanation(model, torch.randn(3, 4), target_class=0)


def test_a_forward_that_detaches_its_input_is_refused():
    with pytest.raises(ValueError, match=r"has none: the forward cuts it \(a \.detach\(\)"):
        counterfactual_explanation(_Detached(), torch.randn(3, 4), target_class=0)


def test_the_float_model_still_finds_its_counterfactuals():
    model, x = _mlp(), torch.randn(3, 4, generator=torch.Generator().manual_seed(1))
    result = counterfactual_explanation(model, x, target_class=0)
    assert result.success.all()
    with torch.no_grad():
        assert bool((model(result.counterfactuals).argmax(1) == 0).all())
