"""Figures of a multi-label classifier (multi-hot labels ``[N, K]``) audited with ``target=k``:
their titles and captions said "explaining class 1" and "red: raises the class score", as if
label 1 were one class of a single decision; they name the label and its logit."""

from __future__ import annotations

import torch
from torch import nn

from lightning_causal.audits import CaptumBaseline, CompareSettings, InputEffectAudit, Probe
from lightning_causal.reporting.figure_kinds import MapData, map_figures


def _texts(fig) -> str:
    parts = [fig._suptitle.get_text() if fig._suptitle else ""] + [t.get_text() for t in fig.texts]
    return " | ".join(parts + [t.get_text() for ax in fig.axes for t in (ax.title, ax.xaxis.label)])


def test_maps_of_a_multi_label_model_name_the_label():
    torch.manual_seed(0)
    model, x = nn.Linear(5, 3), torch.randn(8, 5)
    multi_hot = torch.tensor([[1, 1, 0], [0, 0, 0], [1, 0, 1], [0, 1, 0]] * 2).float()
    for audit in (InputEffectAudit(target=1, ace_values=None), CaptumBaseline(("Saliency",), target=1, settings=CompareSettings(score="raw"))):
        result = audit.run(model, Probe(x, multi_hot))
        assert result.meta["multi_label"] is True
        tabular = " || ".join(_texts(fig) for _, fig in map_figures(MapData(x, result.maps, audit.name, result.meta), kind="tabular"))
        assert "explaining label 1" in tabular and "class" not in tabular, tabular
    one_hot = nn.functional.one_hot(torch.arange(8) % 3, 3).float()  # a softmax classifier's labels: classes
    result = InputEffectAudit(target=1, ace_values=None).run(model, Probe(x, one_hot))
    assert "multi_label" not in result.meta
    (_, fig), *_ = map_figures(MapData(x, result.maps, "ie", result.meta), kind="tabular")
    assert "explaining class 1" in _texts(fig) and "raises the class score" in _texts(fig)
    image_x = torch.randn(8, 1, 4, 4)
    image_model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    result = InputEffectAudit(target=2, patch_size=2, ace_values=None).run(image_model, Probe(image_x, multi_hot))
    text = " || ".join(_texts(fig) for _, fig in map_figures(MapData(image_x, result.maps, "ie", result.meta)))
    assert "explains label 2" in text and "raises the explained label's logit" in text and "class" not in text, text
