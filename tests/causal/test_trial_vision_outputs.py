"""Findings of the vision trial: a segmentation model (per-pixel logits [N, C, H, W]).

``input_effects`` and ``unit_effects`` answered such an output with the fix (``output=`` a callable,
e.g. the mean logit of each class over pixels); ``causal_graph``, ``CausalGraphAudit`` and
``layer_causal_map`` said only "Expected a model returning [N, outputs] but it returned (3, 3, 8, 8)".
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import causal_graph, layer_causal_map, patch_mask, unit_effects


class _TinyUNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.enc = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU())
        self.mid = nn.Sequential(nn.MaxPool2d(2), nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.ConvTranspose2d(4, 4, 2, stride=2))
        self.out = nn.Conv2d(8, 3, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e = self.enc(x)
        return self.out(torch.cat([self.mid(e), e], 1))  # skip connection around `mid`


def _region_mean(out: torch.Tensor) -> torch.Tensor:
    return out[:, :, 2:6, 4:8].mean((2, 3))  # [N, C]: each class's mean logit over a region


@pytest.mark.parametrize("call", ["causal_graph", "layer_causal_map"])
def test_a_segmentation_map_is_answered_with_output_and_an_example(call):
    model, x = _TinyUNet().eval(), torch.randn(3, 1, 8, 8)
    with pytest.raises(ValueError, match=r"\(3, 3, 8, 8\); pass `output=` a callable out -> \[N, classes\]") as err:
        if call == "causal_graph":
            causal_graph(model, x, ["enc.0", "mid.1"])
        else:
            layer_causal_map(model, x, patch_mask((1, 8, 8), 2))
    assert "out.mean((2, 3))" in str(err.value)


def test_the_region_mean_logit_of_a_unet_equals_a_hook_loop():
    torch.manual_seed(0)
    model, x = _TinyUNet().double().eval(), torch.randn(4, 1, 8, 8, dtype=torch.float64)
    got = unit_effects(model, x, "enc.0", target=1, output=_region_mean)  # crosses the skip connection
    with torch.no_grad():
        base, cols = _region_mean(model(x))[:, 1], []
        for u in range(4):
            def zero(module, args, out, u=u):
                out = out.clone()
                out[:, u] = 0
                return out
            handle = model.enc[0].register_forward_hook(zero)
            cols.append(base - _region_mean(model(x))[:, 1])
            handle.remove()
    torch.testing.assert_close(got, torch.stack(cols, 1))
    graph = causal_graph(model, x, ["enc.0", "mid.1"], target=1, output=_region_mean)
    for node, stats in graph.node_stats.items():
        if node.startswith("enc.0:"):
            assert stats["effect"] == pytest.approx(float(cols[int(node.split(":")[1])].mean()), abs=1e-12)
