"""Sequence maps in TensorBoard's image cards: a card shows its image in a box of about 400 x 215
pixels, so a figure is scaled to fit its height when it is taller than about half its width.
CaptumBaseline on signals stacked the causal map and each Captum method in one figure (598 x 580
pixels for three maps, 598 x 558 for three features), scaled to about a third: no text could be read.
Several maps are now one card each (``maps/sample_<i>/<map>``), one map keeps ``maps/sample_<i>``."""

import pytest
import torch

from lightning_causal.audits.base import AuditResult
from lightning_causal.reporting.figure_kinds import map_figures
from lightning_causal.reporting.map_data import MapData
from lightning_causal.reporting.tensorboard import TensorBoardRenderer

CARD_ASPECT = 1.8  # width / height of a TensorBoard image card's box (about 400 x 215 pixels)


def _map_panels(fig):
    """The axes that draw a map: bars (one channel) or a heatmap, not the input's panel or a colour bar."""
    return [ax for ax in fig.axes if (ax.patches or ax.images) and ax.get_ylabel() and not ax.get_ylabel().startswith("input")]


def _maps(shape: tuple[int, ...]) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    causal = torch.randn(shape, generator=g)
    return {"causal": causal, "IntegratedGradients": 2 * causal, "Saliency": causal.abs(), "NoiseTunnel(Saliency)": causal.abs()}


@pytest.mark.parametrize("shape", [(3, 1, 64), (3, 48, 3), (3, 64, 16), (3, 3, 64)])
def test_several_maps_of_a_signal_are_one_card_each_of_a_cards_aspect(shape):
    x = torch.randn(shape, generator=torch.Generator().manual_seed(1))
    maps = _maps(shape)
    figures = map_figures(MapData(x, maps, "captum_baseline", {"targets": [1, 0, 1]}, None, 2))
    names = ["causal", "IntegratedGradients", "Saliency", "NoiseTunnel_Saliency"]  # tag-safe
    assert [tag for tag, _ in figures] == [f"maps/sample_{i}/{n}" for i in range(2) for n in names]
    for (tag, fig), name in zip(figures, list(maps) * 2):
        width, height = fig.get_size_inches()
        assert width / height >= CARD_ASPECT, (tag, width, height)  # fits the card by its width: text stays readable
        assert fig._suptitle.get_text().startswith(f"{name}: captum_baseline, sample "), tag
        drawn = _map_panels(fig)
        assert len(drawn) == 1, tag  # one map per figure: its bars (one channel) or its heatmap
    # the values drawn are the map's own: sample 1's IntegratedGradients card holds 2 x the causal map of sample 1
    fig = dict(figures)["maps/sample_1/IntegratedGradients"]
    [panel] = _map_panels(fig)
    drawn = (torch.tensor([p.get_height() for p in panel.patches]) if panel.patches
             else torch.as_tensor(panel.images[0].get_array().data))
    expected = maps["IntegratedGradients"][1]
    expected = expected[0] if shape[1] == 1 else expected.T if shape[2] < shape[1] else expected
    assert torch.allclose(drawn.float(), expected.float())


def test_one_map_keeps_its_tag_and_several_share_one_scale_per_map_across_cards():
    x = torch.randn(2, 1, 40, generator=torch.Generator().manual_seed(2))
    effect = torch.zeros(2, 1, 40)
    effect[0, 0, 5], effect[1, 0, 7] = 3.0, -1.0
    assert [tag for tag, _ in map_figures(MapData(x, {"causal": effect}, "ie"))] == ["maps/sample_0", "maps/sample_1"]
    first, total = effect.abs() * 0.5, effect.abs()
    figures = dict(map_figures(MapData(x, {"total": total, "first": first}, "sobol", {"shared_map_scale": True})))
    limits = {tag: fig.axes[1].get_ylim() for tag, fig in figures.items()}
    assert set(limits.values()) == {(0.0, 3.0)}  # Sobol' indices: one scale for both maps, in every card
    assert len(limits) == 4


def test_map_names_that_give_one_tag_are_numbered():
    x = torch.randn(1, 1, 32)
    maps = {"a b": torch.randn(1, 1, 32), "a_b": torch.randn(1, 1, 32)}
    assert [tag for tag, _ in map_figures(MapData(x, maps, "cb"))] == ["maps/sample_0/a_b_0", "maps/sample_0/a_b_1"]


def test_renderer_logs_one_card_per_map_of_a_signal():
    figures = {}
    renderer = TensorBoardRenderer()
    renderer._figure = lambda writer, tag, fig, step: figures.__setitem__(tag, fig)

    class Writer:
        def __getattr__(self, name):
            return lambda *args, **kwargs: None

    x = torch.randn(6, 1, 64, generator=torch.Generator().manual_seed(3))
    methods = ["IntegratedGradients", "Saliency", "NoiseTunnel(Saliency)"]  # CaptumBaseline's meta["methods"]
    renderer.render(Writer(), 0, [AuditResult("captum_baseline", maps=_maps((6, 1, 64)), meta={"methods": methods})], x)
    maps = sorted(t for t in figures if "/maps/" in t)
    assert maps == sorted(f"causal/captum_baseline/maps/sample_{i}/{n}" for i in range(4)  # the methods' after causal
                          for n in ("causal", "compare/IntegratedGradients", "compare/Saliency", "compare/NoiseTunnel_Saliency"))
