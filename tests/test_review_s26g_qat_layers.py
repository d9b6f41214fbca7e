"""The layers of a quantization-aware model with learnable fake quantization (review of newuser43's bb5d9f4d):
``_LearnableFakeQuantize`` holds its scale and zero point as parameters, which made its modules look like layers."""

from __future__ import annotations

import torch

from lightning_causal.causal import layer_causal_map
from lightning_causal.causal.structure.default_layers import leaf_layers
from tests.helpers.quantization import qat_mlp


def test_the_layers_of_a_model_with_learnable_fake_quantization_are_its_linear_layers():
    import torch.ao.quantization as tq
    from torch.ao.quantization._learnable_fake_quantize import _LearnableFakeQuantize

    observer = tq.MovingAverageMinMaxObserver
    qconfig = tq.QConfig(
        activation=_LearnableFakeQuantize.with_args(observer=observer, quant_min=0, quant_max=255),
        weight=_LearnableFakeQuantize.with_args(observer=observer, quant_min=-128, quant_max=127, dtype=torch.qint8,
                                                qscheme=torch.per_tensor_symmetric))
    model = qat_mlp(4, qconfig=qconfig)
    assert isinstance(model[1].weight_fake_quant.scale, torch.nn.Parameter)  # what made it look like a layer
    # before: ['0.activation_post_process', '1.weight_fake_quant', '1.activation_post_process', '3.weight_fake_quant', ...]
    assert leaf_layers(model) == ["1", "3"]
    x = torch.randn(8, 4, generator=torch.Generator().manual_seed(2))
    assert layer_causal_map(model.eval(), x).layers == ["1", "3"]  # before: the three activation_post_process
