"""newuser36: a 128-token sentence's strip fits a TensorBoard card readably.

One strip of a 128-token sentence was 12 lines, a 598 x 430 figure that a card (a box of about 400 x 215 pixels) shows
at 0.5, the 10-point words about 7 pixels high. A sentence of more than MAX_WINDOW_LINES lines is drawn as that many
lines around its token of largest |score| of the first map (the same lines in every map's card), the title naming them.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import torch

from lightning_causal.reporting import token_maps
from lightning_causal.reporting.figure_kinds import map_figures
from lightning_causal.reporting.map_data import MapData
from lightning_causal.reporting.token_maps import MAX_STRIPS_HEIGHT

MAX_WINDOW_LINES = getattr(token_maps, "MAX_WINDOW_LINES", 6)  # (so that the test fails, not errors, before the window)

VOCAB = [f"w{i:03d}" for i in range(200)]  # 4 letters a word: 11 words a line of 56 characters
VOCAB[7] = "excellent"


def _data(maps_of) -> MapData:
    ids = torch.randint(8, 200, (2, 128), generator=torch.Generator().manual_seed(0))
    ids[0, 100] = 7  # the planted keyword, on line 9 of 12
    effect = torch.full((2, 128), 0.01)
    effect[0, 100] = 1.0
    return MapData(ids, maps_of(effect), "input_effect", {"vocabulary": VOCAB, "targets": [1, 1], "methods": ["Saliency"]})


def test_a_128_token_sentence_is_drawn_as_a_readable_window_around_its_largest_effect():
    figures = map_figures(_data(lambda e: {"effect": e}))
    tag, fig = figures[0]
    width, height = fig.get_size_inches() * fig.dpi
    assert tag == "maps/sample_0" and height <= MAX_STRIPS_HEIGHT * fig.dpi
    assert min(400 / width, 215 / height) >= 0.66  # the card's scale: words at two thirds or more
    texts = fig.axes[0].texts
    words = [t.get_text() for t in texts]
    assert "excellent" in words and len({t.get_position()[1] for t in texts}) == MAX_WINDOW_LINES  # 6 whole lines
    # the keyword is on a late line: the window is the sentence's last 6 lines, up to token 127
    ids = _data(lambda e: {"effect": e}).inputs[0]
    first = 128 - len(words)
    assert words == [VOCAB[int(t)] for t in ids[first:]]
    assert fig._suptitle.get_text().split("\n")[1] == f"tokens {first}–127 of 128: the 6 of 12 lines around the largest |effect|"


def test_every_map_of_a_sentence_shows_the_same_window():
    figures = dict(map_figures(_data(lambda e: {"causal": e, "Saliency": e.flip(-1)})))
    causal, saliency = figures["maps/sample_0/causal"], figures["maps/sample_0/compare/Saliency"]
    assert [t.get_text() for t in causal.axes[0].texts] == [t.get_text() for t in saliency.axes[0].texts]
    assert "excellent" in [t.get_text() for t in saliency.axes[0].texts]


def test_a_short_sentence_is_drawn_whole_with_no_window_line():
    data = _data(lambda e: {"effect": e})
    short = MapData(data.inputs[:, :40], {"effect": data.maps["effect"][:, :40]}, "input_effect", data.meta)
    (_, fig), _ = map_figures(short)
    assert len(fig.axes[0].texts) == 40 and "\n" not in fig._suptitle.get_text()
