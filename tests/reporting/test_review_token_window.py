"""Review of the change (git diff 2d59a26): the window of a long sentence (e79c84d) must not hide what a user needs.

The 6 lines drawn of a 12-line sentence were chosen around the first map's largest token alone: another map's largest
token two lines away was left out although one window holds both, with nothing in its card saying so; and a first map
of 0 everywhere (a gradient method on a model whose gradient is 0) placed the window at its argmax, token 0, titled
"around the largest |...|" of a map that has none.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import torch

from lightning_causal.reporting.figure_kinds import map_figures
from lightning_causal.reporting.map_data import MapData
from lightning_causal.reporting.token_maps import MAX_STRIPS_HEIGHT

VOCAB = [f"w{i:03d}" for i in range(200)]  # 4 letters a word: 11 words a line of 56 characters (lines of tokens 11r..)
VOCAB[7], VOCAB[8], VOCAB[9] = "excellent", "terrible", "boring"


def _data(tops: dict[str, int], samples: int = 1) -> MapData:
    ids = torch.arange(10, 10 + 128).repeat(samples, 1)
    maps = {}
    for k, (name, pos) in enumerate(tops.items()):
        ids[0, pos] = 7 + k
        m = torch.full((samples, 128), 0.01)
        if pos >= 0:
            m[0, pos] = 1.0
        else:
            m.zero_()
        maps[name] = m
    return MapData(ids, maps, "input_effect", {"vocabulary": VOCAB, "targets": [1] * samples, "methods": ["Saliency"]})


def _words(fig) -> list[str]:
    return [t.get_text() for t in fig.axes[0].texts]


def test_the_window_holds_every_map_s_largest_token_where_6_lines_can():
    # causal's largest on line 9 (token 100), Saliency's on line 5 (token 60): lines 5-10 hold both
    figures = dict(map_figures(_data({"causal": 100, "Saliency": 60})))
    causal, saliency = figures["maps/sample_0/causal"], figures["maps/sample_0/compare/Saliency"]
    assert _words(causal) == _words(saliency)  # the same lines in every map's card
    assert "excellent" in _words(causal) and "terrible" in _words(saliency)
    # lines 5-10: tokens 55-64 (10 words with "terrible"), 65-75, 76-86, 87-97, 98-107 ("excellent"), 108-118
    assert _words(causal)[0] == VOCAB[10 + 55] and len(_words(causal)) == 64
    assert causal._suptitle.get_text().split("\n")[1:] == ["tokens 55–118 of 128: the 6 of 12 lines around the largest |causal|"]


def test_a_map_s_largest_token_left_out_is_named_in_its_card():
    figures = dict(map_figures(_data({"causal": 125, "Saliency": 3})))  # lines 11 and 0: no 6 lines hold both
    causal, saliency = figures["maps/sample_0/causal"], figures["maps/sample_0/compare/Saliency"]
    assert "excellent" in _words(causal) and "terrible" not in _words(saliency)
    assert "not drawn" not in causal._suptitle.get_text()
    assert saliency._suptitle.get_text().split("\n")[2] == "the largest |Saliency|, token 3, is not drawn (see the report)"
    width, height = saliency.get_size_inches() * saliency.dpi
    assert height <= MAX_STRIPS_HEIGHT * saliency.dpi and min(400 / width, 215 / height) >= 0.66


def test_a_first_map_of_zeros_leaves_the_window_to_the_next_map():
    figures = dict(map_figures(_data({"causal": -1, "Saliency": 100})))  # causal 0 everywhere
    saliency = figures["maps/sample_0/compare/Saliency"]
    assert "terrible" in _words(saliency)
    assert saliency._suptitle.get_text().split("\n")[1].endswith("lines around the largest |Saliency|")


def test_each_sentence_has_its_own_window():
    data = _data({"effect": 100}, samples=2)
    data.maps["effect"][1] = 0.01
    data.maps["effect"][1, 5] = 1.0  # the second sentence's largest on line 0
    (_, first), (_, second) = map_figures(data)
    assert "excellent" in _words(first) and _words(second)[0] == VOCAB[10] and "tokens 0–65" in second._suptitle.get_text()
