"""Final read of 96c5dcfa: the fx fast path traces a call that fills a forward's ``*args``/``**kwargs`` through a
shallow copy of the model given a subclass with a flat signature. Lightning Fabric's ``_FabricModule`` (``forward(self,
*args, **kwargs)``) forwards attribute writes to the module it wraps, so setting the copy's class set the class of the
user's network (and of the wrapper, which shares it): every later call of the model failed ('_FabricModule' object has
no attribute '_original_module'), and ``unit_effects`` of a Fabric model with it. The copy's class is set on the copy
alone now; the model, the network and their classes are left as they were."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import unit_effects
from lightning_causal.causal.engine.interventions import Zero, intervene


class Net(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.inp, self.mid, self.head = nn.Linear(6, 8), nn.Linear(8, 8), nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.mid(torch.tanh(self.inp(x)))))


class Forwarding(nn.Module):
    """A wrapper like Fabric's: ``forward(*args, **kwargs)``, attribute writes forwarded to the wrapped module once
    built."""

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self._module = module
        self._built = True

    def forward(self, *args, **kwargs):
        return self._module(*args, **kwargs)

    def __setattr__(self, name, value):
        if self.__dict__.get("_built") and name not in self.__dict__ and not isinstance(value, (nn.Module, torch.Tensor)):
            setattr(self.__dict__["_modules"]["_module"], name, value)
        else:
            super().__setattr__(name, value)


def _hand(model: nn.Module, x: torch.Tensor, layer: str) -> torch.Tensor:
    clean = model(x)[torch.arange(len(x)), 0]
    out = []
    for u in range(8):
        with intervene(model, {layer: Zero(units=[u])}):
            out.append(clean - model(x)[torch.arange(len(x)), 0])
    return torch.stack(out, 1)


@pytest.mark.parametrize("wrap", ["forwarding", "fabric"])
def test_a_wrapper_forwarding_attribute_writes_keeps_its_class_and_the_networks(wrap):
    net = Net().double().eval()
    if wrap == "fabric":
        model = pytest.importorskip("lightning.fabric").Fabric(accelerator="cpu", devices=1).setup(net)
        layer = "_forward_module.mid"
    else:
        model, layer = Forwarding(net), "_module.mid"
    classes = type(model), type(net)
    x = torch.randn(7, 6, dtype=torch.float64)
    got = unit_effects(model, x, layer, target=0)
    assert (type(model), type(net)) == classes
    torch.testing.assert_close(got, _hand(net, x, "mid"), rtol=0, atol=1e-12)
    torch.testing.assert_close(model(x), net(x), rtol=0, atol=0)  # the model still runs
