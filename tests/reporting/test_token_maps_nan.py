"""A token strip whose scores hold a NaN was titled "max |score| nan" and its boxes were shaded from NaN (matplotlib's
transparent "bad" colour): the title gives the largest finite |score| and how many scores are not finite, drawn grey."""

import math

import torch
from matplotlib.colors import to_rgba

from lightning_causal.reporting.map_data import MapData
from lightning_causal.reporting.token_maps import token_maps


def test_a_nan_score_leaves_the_title_finite_and_its_token_grey():
    ids = torch.tensor([[1, 2, 3, 4]])
    scores = torch.tensor([[0.5, math.nan, -2.0, 0.25]])
    data = MapData(inputs=ids, maps={"causal": scores}, audit="tokens", meta={"vocabulary": ["pad", "a", "b", "c", "d"]})
    (_, fig), = token_maps(data)
    ax = fig.axes[0]
    assert "max |score| 2" in ax.get_title(loc="left") and "1 of 4 scores is not finite (NaN/inf): grey" in ax.get_title(loc="left")
    boxes = {t.get_text(): t.get_bbox_patch().get_facecolor() for t in ax.texts}
    assert boxes["b"] == to_rgba("0.75") and boxes["a"] != to_rgba("0.75") and boxes["a"][3] == 1.0


def test_a_long_sentences_window_holds_its_largest_finite_score_not_a_nan():
    """A sentence of more than MAX_WINDOW_LINES lines is drawn around its token of largest |score|; argmax read a NaN as
    the largest, so the window went around the NaN token (3) and the token of score 5 (position 118) was neither drawn
    nor named."""
    ids = torch.arange(1, 121).unsqueeze(0)  # 120 tokens of 1 to 3 digits: 7 lines of 56 characters
    scores = torch.full((1, 120), 0.01)
    scores[0, 3], scores[0, 118] = math.nan, 5.0
    (_, fig), = token_maps(MapData(inputs=ids, maps={"causal": scores}, audit="tokens"))
    drawn = [t.get_text() for t in fig.axes[0].texts]
    assert "119" in drawn and "4" not in drawn  # position 118 is id 119; the NaN's id 4 falls out of the window
