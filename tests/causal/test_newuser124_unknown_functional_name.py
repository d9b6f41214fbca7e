"""A hypernetwork whose target network's hidden layer is an einsum of generated per-sample weights (task_newuser124):
naming that tensor (``"h"``) was refused as an unknown module with the model's module names only; the refusal now says
such a tensor is no module's output and names the way, an ``nn.Identity`` (docs/your_model.md, 'Layers in functional
code'). A model of torch's layers only, and a name close to a module's, keep the plain refusal."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import unit_effects


class Hyper(nn.Module):
    def __init__(self):
        super().__init__()
        self.hyper = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 3 * 4 + 2 * 3))

    def forward(self, x, c):
        p = self.hyper(c)
        w1, w2 = p[:, :12].view(-1, 3, 4), p[:, 12:].view(-1, 2, 3)
        h = torch.relu(torch.einsum("nhd,nd->nh", w1, x))  # the target network's hidden layer: no module returns it
        return torch.einsum("nkh,nh->nk", w2, h)


def _inputs():
    return torch.randn(5, 4), torch.randn(5, 2)


def test_a_tensor_of_the_forward_is_refused_naming_the_identity_site():
    with pytest.raises(ValueError, match="Unknown module name 'h'") as err:
        unit_effects(Hyper().eval(), _inputs(), "h", unit_dim=-1)
    message = str(err.value)
    assert "torch.einsum" in message and "nn.Identity" in message and "Layers in functional code" in message
    assert "'hyper.0'" in message  # the module names are still listed


def test_torch_layers_only_and_close_names_keep_the_plain_refusal():
    with pytest.raises(ValueError, match="Unknown module name 'h'") as err:
        unit_effects(nn.Sequential(nn.Linear(4, 3), nn.ReLU()).eval(), torch.randn(5, 4), "h")
    assert "nn.Identity" not in str(err.value)
    with pytest.raises(ValueError, match="close matches") as err:
        unit_effects(Hyper().eval(), _inputs(), "hyper.3", unit_dim=-1)
    assert "nn.Identity" not in str(err.value)
