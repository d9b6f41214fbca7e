"""A layer's calls per forward pass are said one way wherever shown: the most calls counted in the audit's passes over
the probe ("up to N calls a pass on the probe"), not a fixed count ("its N calls per forward pass", "runs N
times", "(N calls)"), which an adaptive solver's or a warm-started DEQ's layer does not keep from batch to batch (bars
said 28 calls where the layer map said 21 for the same function)."""

import warnings

import torch
from matplotlib.backends.backend_agg import FigureCanvasAgg

from lightning_causal.audits import LayerMapAudit, Probe, UnitImportanceAudit
from lightning_causal.causal.engine.layer_calls import calls_counted
from lightning_causal.reporting import TensorBoardRenderer
from lightning_causal.reporting.layer_map_figures import layer_map_figure
from tests.reporting.test_trial_newuser82_repeated_layer_bars import (
    _Iterated,  # a block run three times
)


def _probe() -> Probe:
    return Probe(torch.randn(8, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(0)))


def test_the_one_wording_says_a_count_measured_on_the_probe():
    assert calls_counted(28) == "up to 28 calls a pass on the probe"


def test_bars_notes_and_the_layer_map_say_the_count_alike():
    said = calls_counted(3)
    result = UnitImportanceAudit(["block.1"]).run(_Iterated().double().eval(), _probe())
    title = TensorBoardRenderer().figures([result])["causal/unit_importance/bars/importance/block.1"].axes[0].get_title()
    assert title.endswith(f"\nset at each call: {said}")
    assert any(f"({said})" in n and "runs 3 times" not in n for n in result.meta["notes"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the layer map's warning of a layer read at its last call
        layer_map = LayerMapAudit(layers=["block.1", "head"]).run(_Iterated().double().eval(), _probe())
    assert any(f"block.1 ({said})" in n for n in layer_map.meta["notes"])
    fig = layer_map_figure(layer_map.graphs["layer_map"])
    FigureCanvasAgg(fig).draw()
    assert f"block.1 ({said})" in " ".join(" ".join(t.get_text() for ax in fig.axes for t in ax.texts).split())
