"""Findings of the vision trial: groups of channels of a grouped convolution as units.

``num_heads=4`` without ``unit_dim`` splits the last dimension (the features of ``[N, T, D]``). On a
convolution's ``[N, C, H, W]`` that is the width: ``unit_effects(model, x, "gconv", num_heads=4)``
ranked four slices of image columns, silently, where the four groups of the grouped convolution
were meant. It is refused now, naming ``unit_dim=1``.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import causal_graph, unit_effects


class _Residual(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(8, 8, 3, padding=1, groups=4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x) + x)


class _GroupedCNN(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.stem = nn.Conv2d(3, 8, 3, padding=1)
        self.gconv = nn.Conv2d(8, 8, 3, padding=1, groups=4)
        self.act = nn.ReLU()
        self.norm = nn.GroupNorm(4, 8)
        self.block = _Residual()
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.block(self.norm(self.act(self.gconv(torch.relu(self.stem(x))))))
        return self.head(h.mean((2, 3)))


@pytest.mark.parametrize("site", ["gconv", "act", "norm", "gconv:input", "block"])
def test_num_heads_without_unit_dim_on_channels_is_refused(site):
    model, x = _GroupedCNN().eval(), torch.randn(2, 3, 8, 8)
    with pytest.raises(ValueError, match=r"channels on dimension 1 .* Pass `unit_dim=1` for groups of 2 channels"):
        unit_effects(model, x, site, num_heads=4)
    with pytest.raises(ValueError, match="unit_dim=1"):
        causal_graph(model, x, ["stem", site if site != "gconv:input" else "gconv"], num_heads=4)


def test_groups_of_channels_with_unit_dim_1_equal_a_hook_loop():
    torch.manual_seed(0)
    model, x = _GroupedCNN().double().eval(), torch.randn(3, 3, 8, 8, dtype=torch.float64)
    got = unit_effects(model, x, "gconv", unit_dim=1, num_heads=4, target=2)
    with torch.no_grad():
        base, cols = model(x)[:, 2], []
        for g in range(4):
            def zero(module, args, out, g=g):
                out = out.clone()
                out[:, 2 * g:2 * g + 2] = 0
                return out
            handle = model.gconv.register_forward_hook(zero)
            cols.append(base - model(x)[:, 2])
            handle.remove()
    torch.testing.assert_close(got, torch.stack(cols, 1))
    assert unit_effects(model, x, "gconv", unit_dim=-1, num_heads=4, target=2).shape == (3, 4)  # the width, on purpose


@pytest.mark.parametrize("site", ["gconv", "norm", "gconv:input"])
def test_intervene_refuses_num_heads_without_unit_dim_on_channels(site):
    from lightning_causal.causal import Zero, intervene

    model, x = _GroupedCNN().eval(), torch.randn(2, 3, 8, 8)
    with pytest.raises(ValueError, match=r"channels on dimension 1 .* `unit_dim=1` for groups of 2 channels"):
        with intervene(model, {site: Zero(units=[0], num_heads=4)}):
            model(x)
    assert all(not m._forward_hooks and not m._forward_pre_hooks for m in model.modules())
    with torch.no_grad(), intervene(model, {"gconv": Zero(units=[1], unit_dim=1, num_heads=4)}), \
            intervene(model, {"stem": Zero(units=[0])}):
        model(x)  # groups of channels on purpose, and a plain channel: fine
