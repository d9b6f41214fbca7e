"""A layer named as the user's own model names it, passed with a wrapper around that model (Lightning
Fabric's ``fabric.setup(model)``, DDP, a LightningModule holding it as ``self.model``): the error names
the wrapper's full name of the layer and the wrapped module to pass. Before, a short name of a model
of more than 20 modules got the first 20 names of the wrapper ('available: [...]') and not the layer."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import unit_effects


class Deep(nn.Module):
    """30 blocks and a head: more modules than the 20 names the plain error lists."""

    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.Sequential(*[nn.Sequential(nn.Linear(6, 6), nn.Tanh()) for _ in range(15)])
        self.head = nn.Linear(6, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.blocks(x))


class Holder(nn.Module):
    """A LightningModule-like holder of the model (``self.model``)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def test_fabric_wrapper_error_names_the_full_name_and_model_module():
    fabric = pytest.importorskip("lightning.fabric").Fabric(accelerator="cpu", devices=1)
    torch.manual_seed(0)
    net = Deep()
    model = fabric.setup(net)
    x = torch.randn(5, 6)
    with pytest.raises(ValueError, match="Unknown module name 'head'") as err:
        unit_effects(model, x, "head")
    message = str(err.value)
    assert "'_forward_module.head'" in message and "`model.module`" in message, message
    # both ways out give the numbers of the layer the user meant
    expected = unit_effects(net, x, "head")
    torch.testing.assert_close(unit_effects(model.module, x, "head"), expected)
    torch.testing.assert_close(unit_effects(model, x, "_forward_module.head"), expected)
    with pytest.raises(ValueError, match=r"'_forward_module.blocks.3.0'.*`model.module`"):
        unit_effects(model, x, "blocks.3.0:input")  # an input site: the hint is its module's


def test_holder_error_names_the_submodule_without_a_module_attribute():
    torch.manual_seed(0)
    holder = Holder(Deep())
    with pytest.raises(ValueError, match=r"'model.head'.*the submodule 'model' itself") as err:
        unit_effects(holder, torch.randn(4, 6), "head")
    assert "model.module" not in str(err.value)


def test_a_name_of_no_submodule_keeps_the_close_matches():
    with pytest.raises(ValueError, match=r"close matches: \['head'"):
        unit_effects(Deep(), torch.randn(4, 6), "heads")
