"""Do the figures name the quantity they draw? (docsuser7: each method read against its paper)

- Neural Cleanse's anomaly index I_c = (med v - v_c) / (1.4826 MAD) is in robust standard deviations; its
  axis said "MAD units", where a class 10 MADs below the median reads 6.74.
- UnitImportanceAudit's bars said "mean |effect| of do(unit)" whatever was done to the unit; with a do-grid
  (CARE) the bar is the mean range of the interventional curve, no |effect| of one intervention.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal import MeanOf, Scale, SetTo, UnitImportanceAudit
from lightning_causal.audits import AuditResult, Probe
from lightning_causal.causal import mad_anomaly_index
from lightning_causal.reporting.tensorboard import TensorBoardRenderer


class _Writer:
    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def _figures(monkeypatch, results, inputs=None):
    figures = {}
    monkeypatch.setattr(TensorBoardRenderer, "_figure", staticmethod(lambda writer, tag, fig, step: figures.update({tag: fig})))
    TensorBoardRenderer().render(_Writer(), 0, results, inputs)
    return figures


def test_the_anomaly_index_axis_names_robust_standard_deviations_not_mads(monkeypatch):
    norms = torch.tensor([1.0, 10.0, 11.0, 12.0, 13.0], dtype=torch.float64)  # median 11, MAD 1
    index = mad_anomaly_index(norms)
    assert index[0].item() == pytest.approx(10 / 1.4826, abs=1e-4)  # 10 MADs below the median: 6.7449
    r = AuditResult("backdoor", curves={"anomaly_index": {"x": list(range(5)), "anomaly_index": index.tolist()}})
    ax = _figures(monkeypatch, [r])["causal/backdoor/curves/anomaly_index"].axes[0]
    assert ax.lines[0].get_ydata()[0] == pytest.approx(6.7449, abs=1e-4)
    label = ax.get_ylabel()
    assert "MAD units" not in label  # 6.74 is not 10 MADs
    assert "1.4826" in label and "L1 norm" in label and "below the median" in label


def _model() -> nn.Module:
    """f = v . h + c with h = W x (layer "0"): do(h_u := a) moves f by v_u (a - h_u), so over a in {-1, 0, 1}
    the curve's range is 2 |v_u| for every sample, and do(h_u := 0) changes f by v_u h_u."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.Linear(4, 1)).double()
    with torch.no_grad():
        model[1].weight.copy_(torch.tensor([[0.5, -2.0, 1.0, 0.25]], dtype=torch.float64))
    return model


def test_unit_bars_say_the_do_grid_draws_the_mean_range_of_the_curve(monkeypatch):
    model, x = _model(), torch.randn(6, 3, dtype=torch.float64)
    r = UnitImportanceAudit(["0"], intervention=[SetTo(-1.0), SetTo(0.0), SetTo(1.0)], name="grid").run(model, Probe(x))
    assert torch.allclose(r.vectors["importance/0"], torch.tensor([1.0, 4.0, 2.0, 0.5], dtype=torch.float64))  # 2 |v_u|
    ax = _figures(monkeypatch, [r])["causal/grid/bars/importance/0"].axes[0]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["1", "2", "0", "3"]
    assert ax.get_ylabel() == "mean range over 3 values\nof do(unit := a)"


@pytest.mark.parametrize(("intervention", "said"), [(None, ":= 0"), (SetTo(2.0), ":= 2"), (Scale(0.5), ":= unit × 0.5"),
                                                    (MeanOf(torch.zeros(2, 4, dtype=torch.float64)), ":= mean")])
def test_unit_bars_name_the_intervention(monkeypatch, intervention, said):
    model, x = _model(), torch.randn(6, 3, dtype=torch.float64)
    r = UnitImportanceAudit(["0"], intervention=intervention, name="units").run(model, Probe(x))
    h = model[0](x).detach()
    a = {":= 0": torch.zeros_like(h), ":= 2": torch.full_like(h, 2.0), ":= unit × 0.5": 0.5 * h, ":= mean": torch.zeros_like(h)}[said]
    hand = ((h - a) * model[1].weight.detach()[0]).abs().mean(0)  # E|v_u (h_u - a_u)|
    assert torch.allclose(r.vectors["importance/0"], hand)
    ax = _figures(monkeypatch, [r])["causal/units/bars/importance/0"].axes[0]
    assert ax.get_ylabel() == f"mean |effect| of\ndo(unit {said})"  # two lines: one ran off the figure (review_s28d)


def test_a_result_that_does_not_say_keeps_the_plain_label(monkeypatch):
    r = AuditResult("own", vectors={"importance/conv": torch.tensor([0.5, 0.1])})
    assert _figures(monkeypatch, [r])["causal/own/bars/importance/conv"].axes[0].get_ylabel() == "mean |effect| of do(unit)"


# InputEffectAudit's maps said "red: raises the explained class's score" without saying against what: δ_g(x) =
# f_t(x) − f_t(x | do(x_g := b)) is the score's change from each group set to the baseline b.


def test_the_tabular_bars_say_the_baseline_the_effects_are_against(monkeypatch):
    from lightning_causal import InputEffectAudit

    model = nn.Linear(3, 1, bias=False).double()  # one output: f = w . x, δ_g = w_g (x_g − b)
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[2.0, -1.0, 0.5]], dtype=torch.float64))
    x = torch.tensor([[1.0, 3.0, 0.5], [0.0, 1.0, 2.5]], dtype=torch.float64)
    r = InputEffectAudit(baseline=0.5, ace_values=None).run(model, Probe(x))
    hand = (torch.tensor([2.0, -1.0, 0.5], dtype=torch.float64) * (x - 0.5)).abs().mean(0)  # [1, 1.5, 0.5]
    assert torch.allclose(hand, torch.tensor([1.0, 1.5, 0.5], dtype=torch.float64))
    assert torch.allclose(r.maps["effect"].abs().mean(0), hand)
    assert r.meta["baseline"] == "0.5"
    fig = _figures(monkeypatch, [r], x)["causal/input_effect/maps/top_features"]
    title = " ".join(fig._suptitle.get_text().split())
    assert title.endswith("explaining the output, against each feature set to 0.5"), title
    drawn = [(round(b.get_width(), 6), t.get_text()) for b, t in zip(fig.axes[0].patches, fig.axes[0].get_yticklabels())]
    assert drawn == [(0.5, "x2"), (1.0, "x0"), (1.5, "x1")]  # drawn bottom-up: the smallest first


def test_the_image_maps_note_says_the_baseline(monkeypatch):
    from lightning_causal import InputEffectAudit

    torch.manual_seed(0)
    model = nn.Sequential(nn.Flatten(), nn.Linear(16, 3))
    x = torch.rand(2, 1, 4, 4)
    r = InputEffectAudit(patch_size=2, baseline=0.25, ace_values=None).run(model, Probe(x))
    fig = _figures(monkeypatch, [r], x)["causal/input_effect/maps/sample_0"]
    notes = [" ".join(t.get_text().split()) for t in fig.texts if t is not fig._suptitle]
    assert notes == ["red: raises the explained class's score against the group set to 0.25, blue: lowers it"]


def test_the_baseline_words_of_ids_embeddings_and_tensors():
    from lightning_causal.audits.input_effects import baseline_text

    assert baseline_text(0.0) == "0" and baseline_text(torch.tensor(-1.5)) == "-1.5"
    assert baseline_text(103, True) == "id 103" and baseline_text(torch.tensor(103), True) == "id 103"
    assert baseline_text(103, True, "emb") == "the embedding of id 103"
    assert baseline_text(0.0, False, "emb") == "0 at emb"
    assert baseline_text(torch.tensor([0.0, 1.0, 0.0])) is None and baseline_text((0.0, 1.0)) is None  # no single value: not said


# The causal graph's figure said 'unit effect > 0' and 'positive path effect' without saying of what: both are
# changes of the explained output under do(h_u := b), b the graph's baseline (0, the probe mean or a number).


@pytest.mark.parametrize(("baseline", "said"), [("zero", "0"), ("mean", "its mean"), (0.5, "0.5")])
def test_the_graph_title_says_the_intervention_and_the_explained_output(baseline, said):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from lightning_causal import causal_graph
    from lightning_causal.reporting.graph_figures import graph_figure

    torch.manual_seed(0)
    l1, l2 = nn.Linear(3, 4).double(), nn.Linear(4, 2).double()
    model = nn.Sequential(l1, l2)
    x = torch.randn(30, 3, dtype=torch.float64) + 2
    g = causal_graph(model, x, ["0"], target=1, top_k=None, min_share=0.0, alpha=1.0, correction="none", baseline=baseline,
                     alternative="two-sided")
    h = l1(x).detach()
    b = {"zero": torch.zeros(4, dtype=torch.float64), "mean": h.mean(0), 0.5: torch.full((4,), 0.5, dtype=torch.float64)}[baseline]
    unit_effect = (l2.weight.detach()[1] * (h - b)).mean(0)  # e_u = v_u (h_u − b_u), the explained class 1's logit
    units = {node: stats for node, stats in g.node_stats.items() if not node.startswith("output:")}
    assert len(units) == 4 or baseline == "mean"  # two-sided at alpha 1: every unit (under the mean E e_u = 0, round-off)
    for node, stats in units.items():
        assert stats["effect"] == pytest.approx(float(unit_effect[int(node.split(":")[1])]), abs=1e-12)
    fig = graph_figure(g.to_dict())  # one layer: the narrowest figure
    title = fig.axes[0].get_title()
    assert title.split("\n")[1] == f"effects of do(unit := {said}) on the explained class's score"
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    box = fig.axes[0].title.get_window_extent(canvas.get_renderer())
    assert 0 <= box.x0 and box.x1 <= fig.bbox.x1 and box.y1 <= fig.bbox.y1  # whole inside the figure
