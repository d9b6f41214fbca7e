"""Token strips in TensorBoard's image cards (a box of about 400 x 215 pixels): CaptumBaseline with two
methods on a sentence of three lines drew three strips of three lines in one 598 x 450 figure, shown at
0.48 (the 10-point words about 7 pixels high). Where every map's strips would be taller than
MAX_STRIPS_HEIGHT, each map is its own card (``maps/sample_<i>/<map>``) for every drawn sentence; a
short sentence keeps one figure (``maps/sample_<i>``)."""

import torch

from lightning_causal.reporting.figure_kinds import map_figures
from lightning_causal.reporting.map_data import MapData
from lightning_causal.reporting.token_maps import MAX_STRIPS_HEIGHT

VOCAB = [f"word{i:02d}" for i in range(50)]


def _maps(ids: torch.Tensor) -> dict[str, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    causal = torch.randn(ids.shape, generator=g)
    return {"causal": causal, "IntegratedGradients": 2 * causal, "Saliency": causal.abs()}


def test_long_sentences_get_one_card_per_map():
    ids = torch.randint(0, 50, (3, 24), generator=torch.Generator().manual_seed(1))  # 24 words of 6 letters: 3 lines
    maps = _maps(ids)
    figures = map_figures(MapData(ids, maps, "captum_baseline", {"targets": [1, 0, 1], "vocabulary": VOCAB}, None, 2))
    assert [tag for tag, _ in figures] == [f"maps/sample_{i}/{m}" for i in range(2) for m in maps]
    for (tag, fig), name in zip(figures, list(maps) * 2):
        width, height = fig.get_size_inches() * fig.dpi
        assert height <= MAX_STRIPS_HEIGHT * fig.dpi and min(400 / width, 215 / height) >= 0.66, (tag, width, height)
        [ax] = fig.axes
        assert ax.get_title(loc="left").startswith(f"{name} (max |score| ")
        assert [t.get_text() for t in ax.texts][:3] == [VOCAB[int(t)] for t in ids[int(tag.split("/")[1].removeprefix("sample_"))][:3]]
    # the colour of a word is its own map's score on the map's scale shared by the drawn sentences
    ax = dict(figures)["maps/sample_1/IntegratedGradients"].axes[0]
    peak = float(maps["IntegratedGradients"][:2].abs().max())
    level = float(maps["IntegratedGradients"][1, 0]) / peak
    from matplotlib import colormaps

    assert ax.texts[0].get_bbox_patch().get_facecolor() == colormaps["RdBu_r"](0.5 + 0.5 * level)


def test_short_sentences_keep_one_figure_of_every_map():
    ids = torch.randint(0, 50, (2, 6), generator=torch.Generator().manual_seed(2))  # one line each
    figures = map_figures(MapData(ids, _maps(ids), "cb", {"vocabulary": VOCAB}))
    assert [tag for tag, _ in figures] == ["maps/sample_0", "maps/sample_1"]
    assert len(figures[0][1].axes) == 3
