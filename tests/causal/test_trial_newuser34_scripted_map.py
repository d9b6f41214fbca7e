"""The layer map of an eager wrapper around a TorchScript model (a shipped scripted network inside the user's
module): its default layers leave the scripted part out, so none are left, and the refusal said "name the
layers with `layers=`", which the scripted layers refuse too. It now names the scripted module and the way out."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal import layer_causal_map


class Wrap(nn.Module):
    def __init__(self, inner: nn.Module) -> None:
        super().__init__()
        self.net = inner

    def forward(self, x):
        return self.net(x)


def test_a_wrapped_scripted_model_names_the_scripted_module():
    torch.manual_seed(0)
    eager = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2)).eval()
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match=r"holds none \(its layers lie in the TorchScript module 'net'.*eager module"):
        layer_causal_map(Wrap(torch.jit.script(eager)), x)
    assert layer_causal_map(Wrap(eager), x).layers == ["net.0", "net.2"]  # the eager module: its layers


def test_a_wrapped_exported_model_names_the_exported_module():
    """The same wrapper around a torch.export'ed model (its layers hold the weights its graph's operations read and
    are never called, so no default layers) was told to name the layers with `layers=`, which they refuse too."""
    torch.manual_seed(0)
    eager = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2)).eval()
    x = torch.randn(5, 4, generator=torch.Generator().manual_seed(0))
    ep = torch.export.export(eager, (x,), dynamic_shapes=({0: torch.export.Dim("batch")},)).module()
    with pytest.raises(ValueError, match=r"holds none \(its layers lie in the torch.export'ed module 'net', whose graph "
                                         r"never calls them: audit the eager module that was exported\)"):
        layer_causal_map(Wrap(ep), x)
