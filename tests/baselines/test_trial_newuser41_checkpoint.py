"""Captum's methods on a model that checkpoints activations (``torch.utils.checkpoint``) in every mode, eval included
(a new user's memory-saving trial).

Before: a reentrant checkpoint (``use_reentrant=True``) stopped every Captum gradient method with torch's own
RuntimeError ("torch.utils.checkpoint is incompatible with .grad()", or "appears to not have been used in the graph"
for LayerConductance), or a no-gradient refusal whose causes did not name the checkpoint; a non-reentrant one stopped
LayerIntegratedGradients and LayerGradientXActivation on a layer inside the segment with torch's CheckpointError ("A
different number of tensors was saved"), naming neither the layer nor a way out. Now ValueErrors name the method,
the layer and what works. What runs gives the numbers of the same weights without checkpointing, to the bit.
"""

import pytest
import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from lightning_causal.baselines import attribute, layer_attribute


class _Net(nn.Module):
    """Two blocks, each run through ``checkpoint`` unconditionally (``mode`` "re" / "nre"), or plainly."""

    def __init__(self, mode: str = "plain") -> None:
        super().__init__()
        self.body = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 8), nn.Tanh())
        self.tail = nn.Sequential(nn.Linear(8, 8), nn.ReLU())
        self.head = nn.Linear(8, 3)
        self.mode = mode

    def forward(self, x):
        h = x
        for block in (self.body, self.tail):
            h = block(h) if self.mode == "plain" else checkpoint(block, h, use_reentrant=self.mode == "re")
        return self.head(h)


def _pair(mode: str) -> tuple[nn.Module, nn.Module, torch.Tensor]:
    torch.manual_seed(0)
    plain = _Net().double().eval()
    model = _Net(mode).double().eval()
    model.load_state_dict(plain.state_dict())
    return model, plain, torch.randn(6, 4, dtype=torch.float64)


@pytest.mark.parametrize("method", ["IntegratedGradients", "Saliency", "DeepLift", "GuidedBackprop"])
def test_input_gradient_methods_on_a_reentrant_checkpoint_are_refused_with_the_ways_out(method):
    model, _, x = _pair("re")
    with pytest.raises(ValueError, match=rf"Captum's {method} takes gradients with torch.autograd.grad, which a "
                                         r"torch.utils.checkpoint\(\.\.\., use_reentrant=True\).*use_reentrant=False.*"
                                         r"self.training.*FeatureAblation"):
        attribute(model, x, method)


@pytest.mark.parametrize("method", ["LayerConductance", "LayerIntegratedGradients", "LayerGradientXActivation"])
@pytest.mark.parametrize("layer", ["body.2", "tail"])
def test_layer_methods_in_a_reentrant_segment_name_the_checkpoint(method, layer):
    model, _, x = _pair("re")
    with pytest.raises(ValueError, match=rf"Captum's {method} .* layer '{layer}' .*use_reentrant=True\) segment holding "
                                         r"the layer \(use_reentrant=False"):
        layer_attribute(model, x, layer, method)


@pytest.mark.parametrize("method", ["LayerIntegratedGradients", "LayerGradientXActivation"])
def test_layer_methods_hooking_a_layer_inside_a_non_reentrant_segment_are_refused_naming_it(method):
    model, _, x = _pair("nre")
    with pytest.raises(ValueError, match=rf"Captum's {method} replaces or hooks the output of layer 'body.2' .*recomputes "
                                         r"the segment without Captum's hook.*LayerConductance and LayerActivation"):
        layer_attribute(model, x, "body.2", method)


@pytest.mark.parametrize(("layer", "method"), [
    ("body.2", "LayerConductance"), ("body.2", "LayerActivation"), ("tail.0", "LayerConductance"),
    ("body", "LayerIntegratedGradients"), ("body", "LayerGradientXActivation"), ("head", "LayerIntegratedGradients"),
])
def test_layer_methods_that_run_with_checkpointing_equal_the_model_without_it(layer, method):
    model, plain, x = _pair("nre")
    torch.testing.assert_close(layer_attribute(model, x, layer, method), layer_attribute(plain, x, layer, method),
                               rtol=0, atol=0)


@pytest.mark.parametrize("mode", ["nre", "re"])
def test_input_methods_that_run_with_checkpointing_equal_the_model_without_it(mode):
    model, plain, x = _pair(mode)
    methods = ["FeatureAblation"] + (["IntegratedGradients", "Saliency", "DeepLift", "GuidedBackprop"] if mode == "nre" else [])
    for method in methods:
        torch.testing.assert_close(attribute(model, x, method), attribute(plain, x, method), rtol=0, atol=0)
