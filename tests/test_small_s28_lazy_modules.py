"""A model holding a lazy module not built yet (nn.LazyLinear before its first call), given to the core functions that
freeze the parameters and set their requires_grad back, is refused naming the module, not with torch's
'Attempted to use an uninitialized parameter in requires_grad_', which names none."""

import pytest
import torch
from torch import nn

from lightning_causal.baselines import attribute, layer_attribute
from lightning_causal.callbacks._no_trace import no_trace
from lightning_causal.causal.engine.frozen import freeze
from lightning_causal.causal.engine.state import frozen_params


def _model() -> nn.Module:
    return nn.Sequential(nn.Linear(4, 4), nn.Sequential(nn.LazyLinear(6), nn.ReLU()), nn.Linear(6, 3))


def _enter(context) -> None:
    with context:
        pass


@pytest.mark.parametrize("run", [
    lambda m, x: attribute(m, x, "Saliency", target=0),
    lambda m, x: layer_attribute(m, x, "2", "LayerGradientXActivation", target=0),
    lambda m, x: _enter(frozen_params(m)),
    lambda m, x: freeze(m),
    lambda m, x: _enter(no_trace(m)),
], ids=["attribute", "layer_attribute", "frozen_params", "freeze", "no_trace"])
def test_an_unbuilt_lazy_module_is_named(run):
    model = _model()
    flags = [p.requires_grad for p in model.parameters()]
    with pytest.raises(ValueError, match=r"lazy modules to be built, but \['1.0'\] hold parameters not built yet"):
        run(model, torch.randn(8, 4))
    assert [p.requires_grad for p in model.parameters()] == flags and model.training  # left as found
