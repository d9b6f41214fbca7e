"""Figures of a regression model (one output), trial "batch": they explained "class 0"."""

from __future__ import annotations

import torch
from torch import nn

from lightning_causal.audits import CaptumBaseline, InputEffectAudit, Probe
from lightning_causal.reporting.figure_kinds import MapData, map_figures


def _texts(fig) -> str:
    return " | ".join([fig._suptitle.get_text() if fig._suptitle else ""] + [t.get_text() for ax in fig.axes
                      for t in (ax.title, ax.xaxis.label)])


def test_maps_of_a_one_output_model_explain_the_output_not_class_0():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 1))  # a regression
    x, y = torch.randn(10, 3), torch.randn(10)
    for audit in (InputEffectAudit(ace_values=None), CaptumBaseline(("Saliency",))):
        result = audit.run(model, Probe(x, y))
        assert result.meta["outputs"] == 1
        for inputs, kind in ((x, "tabular"), (x.reshape(10, 1, 3), "sequence")):
            maps = {k: v.reshape(inputs.shape) for k, v in result.maps.items()}
            figures = map_figures(MapData(inputs, maps, audit.name, result.meta, y), kind=kind)
            text = " || ".join(_texts(fig) for _, fig in figures)
            assert "class" not in text, text  # was "explaining class 0", "raises the class score", "explains class 0"
            assert "the output" in text
    # a classifier keeps its classes
    two = nn.Sequential(nn.Linear(3, 2))
    result = InputEffectAudit(ace_values=None).run(two, Probe(x))
    assert "outputs" not in result.meta
    (_, fig), *_ = map_figures(MapData(x, result.maps, "ie", result.meta), kind="tabular")
    assert "explaining" in _texts(fig) and "class" in _texts(fig)
