"""Review of e8d69538: a ModuleList named as a site (its blocks looped over in forward) was told 'it is a ModuleList,
which holds tensors and has no forward ... a layer computed in functional code ... give the layer's output an
nn.Identity': holds_tensors_only read only the missing forward, which a ModuleList lacks too; it holds modules, which
run, and one of them is the site to name. An nn.ParameterList keeps the functional-code way out."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal.causal import unit_effects
from lightning_causal.causal.engine.unit_sites import holds_tensors_only


class _Blocks(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.blocks = nn.ModuleList([nn.Linear(3, 3), nn.Linear(3, 3)])
        self.ws = nn.ParameterList([nn.Parameter(torch.randn(2, 3))])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = torch.relu(block(x))
        return F.linear(x, self.ws[0])


def test_a_module_list_is_no_holder_of_tensors_only() -> None:
    model = _Blocks()
    assert not holds_tensors_only(model.blocks) and not holds_tensors_only(nn.ModuleDict({"a": nn.ReLU()}))
    assert holds_tensors_only(model.ws)
    with pytest.raises(ValueError, match="'blocks' to be called") as err:
        unit_effects(model, torch.randn(4, 3), "blocks")
    assert "holds tensors" not in str(err.value) and "functional code (F.linear(x, self.w)" not in str(err.value)
    with pytest.raises(ValueError, match="it is a ParameterList, which holds tensors"):
        unit_effects(model, torch.randn(4, 3), "ws")
