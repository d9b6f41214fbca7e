"""One rule for scores that are not finite (NaN, +inf, -inf) in every map kind (``figure_style``'s module docstring):
drawn grey where a score is a colour, no bar where it is a length, last in a ranking, counted in no colour scale, and
noted beside the drawing as "k of n scores are not finite (NaN/inf): <how drawn>".

Before, three rules differed: tabular bars said "3 scores not finite: no bar for ...", token strips "1 not finite,
grey", and heatmap rows (image, frame, point and sequence maps) said nothing and drew such a pixel in matplotlib's
transparent "bad" colour, which on a white figure reads as a score of 0; a map whose only negative value was -inf was
drawn on a signed scale; an infinite step of a signal's bars warned at every draw."""

import io
import math
import warnings

import numpy as np
import pytest
import torch
from matplotlib import colormaps
from matplotlib.colors import to_rgba
from matplotlib.markers import MarkerStyle

from lightning_causal.reporting.figure_style import NOT_FINITE, not_finite_note
from lightning_causal.reporting.frame_maps import frame_maps
from lightning_causal.reporting.image_maps import image_maps
from lightning_causal.reporting.map_data import MapData
from lightning_causal.reporting.point_maps import point_maps
from lightning_causal.reporting.sequence_maps import sequence_maps
from lightning_causal.reporting.tabular_maps import tabular_maps
from lightning_causal.reporting.token_maps import token_maps

NAN, INF = math.nan, math.inf
#: one sample's scores: three not finite, the largest finite |score| 2 (a signed map: -0.5)
SCORES = [NAN, INF, -INF, 1.0, -0.5, 2.0]
GREY = to_rgba(NOT_FINITE)


def _drawn(fig):
    """``fig`` drawn to PNG, a RuntimeWarning (an infinite bar: 'invalid value encountered in dot') an error."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        fig.savefig(io.BytesIO(), format="png")
    return fig


def _texts(fig) -> str:
    """The figure's notes: its texts but its title."""
    return "\n".join(t.get_text() for t in fig.texts if t.get_text() != fig.get_suptitle())


def _colours(image) -> np.ndarray:
    """The RGBA colours an ``AxesImage`` draws its data in (its colour map, limits and bad colour)."""
    return image.to_rgba(image.get_array())


def test_the_note_counts_nan_and_both_infinities():
    assert not_finite_note(torch.tensor(SCORES), "grey") == "3 of 6 scores are not finite (NaN/inf): grey"
    assert not_finite_note(torch.tensor([[NAN, 1.0]]), "no bar") == "1 of 2 scores is not finite (NaN/inf): no bar"
    assert not_finite_note(torch.tensor([1.0]), "grey") == ""


def test_tabular_bars_say_the_count_of_every_score_and_scale_from_finite_means():
    causal = torch.tensor([[1.0, 0.5, 0.25, 0.125, 2.0]] * 4)
    causal[0, 1], causal[1, 2], causal[2, 3] = NAN, INF, -INF
    data = MapData(inputs=torch.zeros(4, 5), maps={"causal": causal}, audit="a", meta={"targets": [0] * 4})
    (_, fig), = tabular_maps(data)
    ax = _drawn(fig).axes[0]
    assert ax.get_xlabel().split("\n")[-1] == "3 of 20 scores are not finite (NaN/inf): no bar for x1, x2, x3"
    assert [t.get_text() for t in ax.get_yticklabels()][-2:] == ["x0", "x4"]  # largest on top; NaN/inf means last
    widths = [p.get_width() for p in ax.patches]
    assert widths[-2:] == [1.0, 2.0] and all(math.isnan(w) for w in widths[:3])
    assert ax.get_xlim()[1] < 2.5  # the axis of the finite means (an infinite one is no bar)

    ig = causal.clone()
    (_, fig), = tabular_maps(MapData(inputs=torch.zeros(4, 5), maps={"causal": causal.nan_to_num(0.0, 0.0, 0.0), "ig": ig},
                                     audit="a", meta={"targets": [0] * 4}))
    ax = _drawn(fig).axes[0]
    assert "ig: 3 of 20 scores are not finite (NaN/inf): no bar for x1, x2, x3" in " ".join(ax.get_xlabel().split("\n"))
    ig_heights = [p.get_height() for p in ax.patches[5:]]  # ig's bars in the order of causal's ranking, over its finite peak
    assert ig_heights[0] == 1.0 and ig_heights[1] == 0.5 and all(math.isnan(h) for h in ig_heights[2:])


@pytest.mark.parametrize("targets", [[0] * 4, [0, 1, 0, 1]])
def test_a_tabular_caption_names_no_colour_of_a_bar_not_drawn(targets):
    """A feature of a NaN or infinite mean |score| is no bar: its direction (none, its covariance NaN; blue, its mean
    -inf) named "grey" or "blue" in the caption though no such bar was drawn."""
    x = torch.tensor([[0.0, 1.0, 2.0], [1.0, 0.0, 1.0], [2.0, 3.0, 0.0], [3.0, 2.0, 3.0]])
    causal = x * torch.tensor([1.0, 0.5, 0.25])  # every column raises the output: red
    causal[0, 1], causal[1, 2] = NAN, -INF
    (_, fig), = tabular_maps(MapData(inputs=x, maps={"causal": causal}, audit="a", meta={"targets": targets}))
    caption = _drawn(fig).axes[0].get_xlabel()
    if targets == [0] * 4:  # one output explained: each column's direction, none where its covariance is not finite
        assert "grey" not in caption
    else:  # each sample's own class: the sign of each mean score, -inf for x2
        assert "blue" not in caption
    assert caption.split("\n")[-1] == "2 of 12 scores are not finite (NaN/inf): no bar for x1, x2"


def test_token_strips_say_the_count_and_draw_grey_on_the_finite_scale():
    ids = torch.tensor([[1, 2, 3, 4, 5, 6]])
    data = MapData(inputs=ids, maps={"causal": torch.tensor([SCORES])}, audit="tokens",
                   meta={"vocabulary": ["pad", "a", "b", "c", "d", "e", "f"]})
    (_, fig), = token_maps(data)
    ax = _drawn(fig).axes[0]
    assert ax.get_title(loc="left") == "causal (max |score| 2; red +, blue −)\n3 of 6 scores are not finite (NaN/inf): grey"
    boxes = {t.get_text(): t.get_bbox_patch().get_facecolor() for t in ax.texts}
    assert boxes["a"] == boxes["b"] == boxes["c"] == GREY
    assert boxes["d"] == colormaps["RdBu_r"](0.5 + 0.5 * 1.0 / 2.0)  # 1 on the scale of the finite peak 2


def _image_data(maps: dict) -> MapData:
    return MapData(inputs=torch.rand(1, 1, 2, 3), maps=maps, audit="ie", meta={"targets": [0]})


def test_heatmap_rows_draw_grey_on_the_finite_scale_and_note_the_count():
    (_, fig), = image_maps(_image_data({"causal": torch.tensor(SCORES).reshape(1, 1, 2, 3)}))
    image = _drawn(fig).axes[1].get_images()[0]
    assert image.get_clim() == (-2.0, 2.0)
    colours = _colours(image).reshape(6, 4)
    assert [tuple(c) for c in colours[:3]] == [GREY] * 3
    assert tuple(colours[5]) == colormaps["RdBu_r"](1.0)  # 2: the top of the finite scale
    assert _texts(fig).replace("\n", " ") == (
        "red: raises the explained class's score, blue: lowers it; 3 of 6 scores are not finite (NaN/inf): grey, ringed")


def test_heatmap_rows_of_several_maps_name_the_map_and_one_only_negative_at_minus_inf_signs_no_scale():
    maps = {"causal": torch.tensor(SCORES).reshape(1, 1, 2, 3), "Saliency": torch.tensor([[[[0.0, -INF, 1.0], [4.0, 2.0, 0.5]]]])}
    (_, fig), = image_maps(_image_data(maps))
    saliency = _drawn(fig).axes[2].get_images()[0]  # input, causal, Saliency, the colour bars
    assert saliency.get_cmap().name == "Reds" and saliency.get_clim() == (0.0, 4.0)
    assert tuple(_colours(saliency)[0, 1]) == GREY
    assert _texts(fig).replace("\n", " ") == (
        "red: raises the explained class's score, blue: lowers it; Saliency: size only; "
        "causal: 3 of 6 scores are not finite (NaN/inf): grey, ringed; Saliency: 1 of 6 scores is not finite (NaN/inf): "
        "grey, ringed")


def test_frame_maps_draw_grey_and_note_the_count():
    video = torch.tensor(SCORES).reshape(1, 1, 2, 1, 3)  # [N, C, T, H, W]: two frames
    (_, fig), = frame_maps(MapData(inputs=torch.rand(1, 1, 2, 1, 3), maps={"causal": video}, audit="ie"))
    frames = [ax.get_images()[0] for ax in _drawn(fig).axes[3:5]]  # the input's two frames and an empty corner first
    assert all(f.get_clim() == (-2.0, 2.0) for f in frames)
    assert [tuple(c) for c in _colours(frames[0])[0]] == [GREY] * 3
    assert _texts(fig) == "3 of 6 scores are not finite (NaN/inf): grey, ringed"


@pytest.mark.parametrize("dims", [2, 3])
def test_point_maps_draw_grey_crosses_under_the_points_and_note_the_count(dims):
    """A NaN/inf point is a grey cross in a collection of its own drawn before the finite points, in 2-D and 3-D.

    Review of 7324d4c (review_s26c): a grey dot beside pale blue ones of a dense cloud could not be told from them (a
    PNG of 200 points, 16 NaN/inf), and in 3-D "drawn under the others" did nothing: matplotlib sorts a collection's
    points by depth. Before, one collection held every point, grey dots among them."""
    points = torch.arange(6.0 * dims).reshape(1, 6, dims)
    scores = torch.tensor(SCORES).reshape(1, 6, 1).expand(1, 6, dims)  # one group per point: every coordinate its score
    (_, fig), = point_maps(MapData(inputs=points, maps={"causal": scores}, audit="ie"))
    ax = _drawn(fig).axes[0]
    crosses, dots = ax.collections
    assert len(crosses.get_offsets()) == 3 and len(dots.get_offsets()) == 3  # the non-finite ones, then the finite ones
    cross = MarkerStyle("x")
    assert np.allclose(crosses.get_paths()[0].vertices, cross.get_path().transformed(cross.get_transform()).vertices)
    assert [tuple(c) for c in crosses.get_edgecolors()] == [GREY]
    assert dots.get_clim() == (-2.0, 2.0) and GREY not in [tuple(c) for c in dots.get_facecolors()]
    if dims == 3:  # the collections drawn in the order added, not sorted by their depth
        assert ax.computed_zorder is False
    assert _texts(fig).replace("\n", " ") == "3 of 6 scores are not finite (NaN/inf): grey crosses"  # before: ": grey", of grey crosses


def test_sequence_bars_draw_no_bar_without_a_warning_and_note_the_count():
    signal = torch.tensor(SCORES).reshape(1, 1, 6)
    (_, fig), = sequence_maps(MapData(inputs=torch.rand(1, 1, 6), maps={"causal": signal}, audit="ie"))
    twin = _drawn(fig).axes[1]
    heights = [p.get_height() for p in twin.patches]
    assert all(math.isnan(h) for h in heights[:3]) and heights[3:] == [1.0, -0.5, 2.0]
    assert twin.get_ylim() == (-2.0, 2.0)
    assert _texts(fig) == "3 of 6 scores are not finite (NaN/inf): no bar"


@pytest.mark.parametrize("targets", [None, [0]])
def test_sequence_heatmaps_draw_grey_and_note_the_count(targets):
    channels = torch.tensor(SCORES).reshape(1, 2, 3).repeat(1, 1, 4)  # [N, C, T]: 2 channels of 12 steps
    meta = {"targets": targets} if targets else {}
    (_, fig), = sequence_maps(MapData(inputs=torch.rand(1, 2, 12), maps={"causal": channels}, audit="ie", meta=meta))
    image = _drawn(fig).axes[1].get_images()[0]
    assert image.get_clim() == (-2.0, 2.0) and tuple(_colours(image)[0, 0]) == GREY
    note = "12 of 24 scores are not finite (NaN/inf): grey, ringed"  # rings: test_leftovers2_s26_not_finite_rings
    assert _texts(fig) == (note if targets is None else f"red: raises the explained class's score, blue: lowers it\n{note}")


def test_the_attribution_grid_draws_grey_on_the_finite_scale_and_notes_each_column():
    from lightning_causal.reporting.comparison import attribution_grid

    causal = torch.tensor(SCORES).reshape(1, 1, 2, 3)
    fig = _drawn(attribution_grid(torch.rand(1, 1, 2, 3), {"causal": causal, "Saliency": causal.abs().nan_to_num(0.0, 1.0)}))
    image = fig.axes[1].get_images()[0]
    assert image.get_clim() == (-2.0, 2.0) and [tuple(c) for c in _colours(image)[0]] == [GREY] * 3
    assert fig.get_supxlabel() == "causal: 3 of 6 scores are not finite (NaN/inf): grey, ringed"


@pytest.mark.parametrize(("nans", "said"), [((3,), "1 of 120 scores is not finite (NaN/inf): grey, outside the tokens drawn"),
                                            ((3, 117), "2 of 120 scores are not finite (NaN/inf): grey, 1 of them outside the tokens drawn"),
                                            ((117,), "1 of 120 scores is not finite (NaN/inf): grey")])
def test_a_long_sentences_window_says_which_not_finite_scores_it_leaves_out(nans, said):
    """The note of a long sentence's strip counts the sentence's scores (as its title's largest |score| does) and says
    how many of its non-finite ones the window leaves out, so that a count with no grey box drawn is explained.

    Review of 7324d4c (review_s26c): the window of tokens 22-119 said "1 of 120 scores is not finite (NaN/inf): grey"
    of a NaN at token 3, with no grey box in the strip."""
    ids = torch.arange(1, 121).unsqueeze(0)  # 120 tokens of 1 to 3 digits: 7 lines of 56 characters, 6 drawn
    scores = torch.full((1, 120), 0.01)
    scores[0, 118] = 5.0  # the window is drawn around it: token 3 left out, 117 drawn
    scores[0, list(nans)] = NAN
    (_, fig), = token_maps(MapData(inputs=ids, maps={"causal": scores}, audit="tokens"))
    ax = _drawn(fig).axes[0]
    assert ax.get_title(loc="left").split("\n")[1] == said
    grey = [t.get_text() for t in ax.texts if t.get_bbox_patch().get_facecolor() == GREY]
    assert grey == (["118"] if 117 in nans else [])  # position 117 is id 118
