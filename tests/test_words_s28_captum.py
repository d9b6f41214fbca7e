"""CaptumBaseline's causal map drawn alone (more maps than one figure holds) names its baseline without a taller card."""

from __future__ import annotations

import torch
from torch import nn

from lightning_causal import CaptumBaseline
from lightning_causal.audits import Probe
from lightning_causal.reporting.image_maps import image_maps
from lightning_causal.reporting.map_data import MapData


def _cards(baseline, labels=None):
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 2, bias=False)).double()  # f_c = w_c . x: δ_g = w_tg (x_g − b)
    with torch.no_grad():
        model[1].weight.copy_(torch.arange(32, dtype=torch.float64).reshape(2, 16) / 16 - 1)
    x = torch.linspace(0, 1, 32, dtype=torch.float64).reshape(2, 1, 4, 4)
    r = CaptumBaseline(methods=("Saliency", "IntegratedGradients"), patch_size=1, baseline=baseline).run(model, Probe(x, labels))
    t = model(x).argmax(1)
    assert torch.allclose(r.maps["causal"].double().flatten(1), model[1].weight.detach()[t] * (x - baseline).flatten(1))
    return r, int(t[0]), dict(image_maps(MapData(x, r.maps, r.audit, r.meta, labels)))


def _notes(fig):
    return [t.get_text() for t in fig.texts if t is not fig._suptitle]


def test_the_causal_cards_title_names_the_baseline_its_note_one_line():
    labels = torch.tensor([1, 0])
    r, t, figs = _cards(0.5, labels)
    causal, ig = figs["maps/sample_0/causal"], figs["maps/sample_0/compare/IntegratedGradients"]
    assert causal._suptitle.get_text().split("\n") == ["captum_baseline, sample 0 (label 1):",
                                                      f"explains class {t} against each group set to 0.5"]
    assert "set to" not in ig._suptitle.get_text()  # the attribution methods' maps are no set-to-b effects
    assert _notes(causal) == ["red: raises the explained class's score, blue: lowers it"]
    # as tall as the causal card of a baseline the figures do not say (a tensor of several values): 4.2 x 2.95 inches,
    # which TensorBoard's card (about 400 x 215) shows at 0.73 (the note's two lines: 3.1 inches, 0.69)
    plain, _, other = _cards(torch.tensor([0.5] * 15 + [0.25], dtype=torch.float64).reshape(1, 4, 4), labels)
    assert "baseline" not in plain.meta and "set to" not in other["maps/sample_0/causal"]._suptitle.get_text()
    assert tuple(causal.get_size_inches()) == tuple(other["maps/sample_0/causal"].get_size_inches()) == (4.2, 2.95)


def test_where_the_title_has_no_room_the_note_names_the_baseline():
    _, t, figs = _cards(0.5)  # "captum_baseline, sample 0: explains class 1": one line, the words would make it two
    causal = figs["maps/sample_0/causal"]
    assert causal._suptitle.get_text() == f"captum_baseline, sample 0: explains class {t}"
    assert " ".join(" ".join(_notes(causal)).split()) == "red: raises the explained class's score against the group set to 0.5, blue: lowers it"
