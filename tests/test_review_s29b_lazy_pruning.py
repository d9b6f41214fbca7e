"""causal_pruning_fn on a model holding a lazy module not built yet (nn.LazyLinear before its first call): since
85506bea, audit_mode refuses such a model, and the probe's check pass of causal_pruning_fn (run under audit_mode)
stopped with "Expected argument `probe_inputs` of shape [[6, 5]] to be accepted by the model, but its forward pass
raised: ...", blaming a probe the model takes; a lazy layer among those pruned stopped earlier on torch's "Attempted
to use an uninitialized parameter". Both now get audit_model's words naming `model` and the way out, and the module
stays unbuilt; built first (model(x)), the model is pruned as its twin of plain layers."""

import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn

from lightning_causal.callbacks.pruning import causal_pruning_fn


def _model() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.LazyLinear(8), nn.ReLU(), nn.Linear(8, 3))


@pytest.mark.parametrize("layer", ["0", "2"], ids=["the lazy layer pruned", "another layer pruned"])
def test_an_unbuilt_lazy_module_is_refused_naming_the_model(layer):
    model = _model()
    with pytest.raises(MisconfigurationException, match=r"^causal_pruning_fn: Expected argument `model` to hold no lazy "
                                                        r"module not built yet but got \['0'\] .*build them first, with "
                                                        r"one forward pass of a batch \(`model\(x\)`\)"):
        causal_pruning_fn(model, torch.randn(6, 5), [layer])
    assert isinstance(model[0].weight, nn.parameter.UninitializedParameter)


def test_the_model_built_first_is_pruned_as_its_twin():
    model, x = _model(), torch.randn(6, 5)
    model(x[:1])
    twin = nn.Sequential(nn.Linear(5, 8), nn.ReLU(), nn.Linear(8, 3))
    twin.load_state_dict(model.state_dict())
    for net in (model, twin):
        causal_pruning_fn(net, x, ["0"]).prune(0.5)
    assert torch.equal(model[0].weight_mask, twin[0].weight_mask) and int((model[0].weight_mask.sum(1) == 0).sum()) == 4
