"""Findings of the vision-transformer trial: rank comparisons of few units or groups.

A tiny ViT has 2-4 attention heads (DeiT-tiny has 3); its image may be cut into 4 quadrants.
With ``k`` at least the number of units, any two rankings share their whole top-k, so a top-k
overlap of 1.0 said nothing. These tests pin the overlaps to hand-computed values.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.audits import CaptumBaseline, Probe
from lightning_causal.audits.captum_baseline import CompareSettings
from lightning_causal.audits.drift import vector_drift


def test_drift_of_four_heads_sees_a_reversed_ranking():
    """Four heads whose importance ranking reversed between two audits: the top-3 sets {0, 1, 2} and
    {1, 2, 3} share 2 of 4 heads. With the default k = 5 the whole ranking was the top-k: 1.0."""
    before, after = torch.tensor([4.0, 3.0, 2.0, 1.0]), torch.tensor([1.0, 2.0, 3.0, 4.0])
    out = vector_drift({"importance/heads": before}, {"importance/heads": after})
    assert out["drift/importance/heads/topk_jaccard"] == pytest.approx(0.5)
    assert out["drift/importance/heads/spearman"] == pytest.approx(-1.0)
    two = vector_drift({"v": torch.tensor([2.0, 1.0])}, {"v": torch.tensor([1.0, 2.0])})  # two units: the top one swapped
    assert two["drift/v/topk_jaccard"] == 0.0


class _Quadrants(nn.Module):
    """f(x) = sum_q w_q * sum(x in quadrant q) on 1x16x16 images: causal effect of do(quadrant := 0)
    is w_q * sum(x_q); Saliency (|gradient| summed over the quadrant) is 64 |w_q|."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.tensor([4.0, 3.0, 2.0, 1.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q = torch.stack([x[:, 0, :8, :8], x[:, 0, :8, 8:], x[:, 0, 8:, :8], x[:, 0, 8:, 8:]], 1).flatten(2).sum(2)
        z = (q * self.w).sum(1, keepdim=True)
        return torch.cat([-z, z], 1)


def _quadrant_image() -> torch.Tensor:
    x = torch.ones(1, 1, 16, 16)
    x[..., :8, :8], x[..., :8, 8:], x[..., 8:, :8], x[..., 8:, 8:] = 0.1, 1.0, 2.0, 10.0
    return x


def test_captum_topk_overlap_of_four_patches_is_informative():
    """Causal |effects| per quadrant 0.4, 3, 4, 10 (x 64) rank 3, 2, 1, 0; Saliency's 64 |w| ranks 0, 1, 2, 3.
    Their top-3 sets {3, 2, 1} and {0, 1, 2} share 2: overlap 2/3 (top_k=5 covered all 4 quadrants: 1.0)."""
    r = CaptumBaseline(("Saliency",), patch_size=8, target=1).run(_Quadrants(), Probe(_quadrant_image()))
    assert r.scalars["compare/Saliency/topk"] == pytest.approx(2 / 3)
    assert r.scalars["compare/Saliency/spearman"] == pytest.approx(-1.0)
    assert r.meta["top_k"] == 3


class _FourNeurons(nn.Module):
    """h = x_0 * (1, 2, 3, 4) (neurons of `hidden`), f = h @ (8, 4, 2, 1): each neuron's causal
    effect is 8 a h_1 = 2 a h_2 ... i.e. 8, 8, 6, 4 times a; LayerActivation ranks them 3, 2, 1, 0."""

    def __init__(self) -> None:
        super().__init__()
        self.hidden = nn.Linear(1, 4)
        self.out = nn.Linear(4, 2, bias=False)
        with torch.no_grad():
            self.hidden.weight.copy_(torch.tensor([[1.0], [2.0], [3.0], [4.0]]))
            self.hidden.bias.zero_()
            self.out.weight.copy_(torch.tensor([[0.0, 0.0, 0.0, 0.0], [8.0, 4.0, 2.0, 1.0]]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.out(self.hidden(x.flatten(1)[:, :1]))


def test_captum_layer_topk_overlap_of_four_units_is_informative():
    """Four units (as four heads): causal effects 8, 8, 6, 4 (x a) put {0, 1, 2} first; LayerActivation's
    1, 2, 3, 4 (x a) put {3, 2, 1} first: 2 of 3 shared. The top-5 of four units was all of them: 1.0."""
    x = torch.full((1, 1, 4, 4), 0.5)
    settings = CompareSettings(layer_method="LayerActivation")
    r = CaptumBaseline(("Saliency",), patch_size=2, target=1, layers=["hidden"], settings=settings).run(_FourNeurons(), Probe(x))
    assert r.scalars["compare/LayerActivation-hidden/topk"] == pytest.approx(2 / 3)


def test_image_maps_of_per_channel_groups_show_each_groups_effect():
    """A feature mask with one group per colour channel and quadrant: the red group of the top-left
    quadrant has effect 0.9, the blue group of the same pixels -0.6, the blue group of the bottom-right
    quadrant -0.7. The heatmap drew the channels' mean, 0.1 and -0.23 (the two effects nearly
    cancelled, each group at a third); it draws each pixel's channel of largest |value|, 0.9 and
    -0.7, as the counterfactual differences do."""
    from lightning_causal.reporting.comparison import attribution_grid
    from lightning_causal.reporting.figure_kinds import MapData, map_figures

    effect = torch.zeros(2, 3, 8, 8)
    effect[:, 0, :4, :4], effect[:, 2, :4, :4], effect[:, 2, 4:, 4:] = 0.9, -0.6, -0.7
    inputs = torch.rand(2, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    figs = dict(map_figures(MapData(inputs, {"causal": effect}, "input_effect")))
    drawn = [im for ax in figs["maps/sample_0"].axes if ax.get_title() == "causal" for im in ax.get_images()][0]
    values = torch.as_tensor(drawn.get_array())
    assert float(values[0, 0]) == pytest.approx(0.9) and float(values[7, 7]) == pytest.approx(-0.7) and float(values[0, 7]) == 0.0
    assert drawn.get_clim() == pytest.approx((-0.9, 0.9))
    grid = attribution_grid(inputs, {"causal": effect})
    shown = [torch.as_tensor(ax.get_images()[0].get_array()) for ax in grid.axes if ax.get_images() and ax.get_title() != "input"
             and ax.get_label() != "<colorbar>" and torch.as_tensor(ax.get_images()[0].get_array()).dim() == 2]
    assert shown and all(float(s[0, 0]) == pytest.approx(0.9) and float(s[7, 7]) == pytest.approx(-0.7) for s in shown)
