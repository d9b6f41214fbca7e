"""Review of docsuser7's figure words (git diff 6c52889e): are they true for every configuration?"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal import InputEffectAudit, Scale, SetTo, UnitImportanceAudit, Zero
from lightning_causal.audits import AuditResult, Probe
from tests.test_trial_docsuser7_figure_words import (  # f = v . h + c, v = [0.5, -2, 1, 0.25]
    _figures,
    _model,
)


class _Pixels(nn.Module):
    """f = w . x / 255 of a uint8 image [N, 1, 2, 2] (one output): δ_g = w_g x_g / 255 at the baseline pixel value 0."""

    def __init__(self) -> None:
        super().__init__()
        self.w = torch.tensor([1.0, -2.0, 0.5, 4.0], dtype=torch.float64)

    def forward(self, x):
        return (x.flatten(1).double() / 255 @ self.w).unsqueeze(1)


def test_a_uint8_images_baseline_is_a_pixel_value_not_an_id(monkeypatch):
    # uint8 pixels are values: the note said "against the group set to id 0", the words of a token id
    x = torch.tensor([[[[255, 51], [0, 102]]], [[[10, 20], [30, 40]]]], dtype=torch.uint8)
    r = InputEffectAudit(patch_size=1, baseline=0, ace_values=None).run(_Pixels(), Probe(x))
    hand = x.flatten(1).double() / 255 * torch.tensor([1.0, -2.0, 0.5, 4.0], dtype=torch.float64)  # w_g (x_g − 0) / 255
    assert torch.allclose(r.maps["effect"].flatten(1).double(), hand)
    assert r.meta["baseline"] == "0"
    fig = _figures(monkeypatch, [r], x)["causal/input_effect/maps/sample_0"]
    notes = [" ".join(t.get_text().split()) for t in fig.texts if t is not fig._suptitle]
    assert notes == ["red: raises the output against the group set to 0, blue: lowers it"]


# UnitImportanceAudit's bars (5ab69296): the value axis said "do(unit := 2)" of a SetTo subclass whose values are its
# own, "do(unit := a)" of a grid of scales or of mixed kinds, and its one line ran off the figure's top edge from
# about 31 characters on ("mean |effect| of do(neuron := resampled)").


class _Clipped(SetTo):
    """A SetTo of one's own: its value where h_u is above it, h_u elsewhere (not do(h_u := value))."""

    def values(self, output):
        return torch.minimum(output, super().values(output))


def _bars(monkeypatch, r):
    return _figures(monkeypatch, [r])[f"causal/{r.audit}/bars/importance/0"]


def test_unit_bars_say_only_what_was_done_to_the_unit(monkeypatch):
    model, x = _model(), torch.randn(8, 3, dtype=torch.float64)
    h, v = model[0](x).detach(), model[1].weight.detach()[0]
    own = UnitImportanceAudit(["0"], intervention=_Clipped(0.0), name="own").run(model, Probe(x))
    assert torch.allclose(own.vectors["importance/0"], (v * (h - h.clamp(max=0.0))).abs().mean(0))  # E|v_u (h_u − min(h_u, 0))|
    assert "do" not in own.meta and _bars(monkeypatch, own).axes[0].get_ylabel() == "mean |effect| of do(unit)"
    scales = UnitImportanceAudit(["0"], intervention=[Scale(0.0), Scale(2.0)], name="scales").run(model, Probe(x))
    assert torch.allclose(scales.vectors["importance/0"], 2 * (v * h).abs().mean(0))  # range of v_u a h_u over a in {0, 2}
    assert _bars(monkeypatch, scales).axes[0].get_ylabel() == "mean range over 2 values\nof do(unit := unit × a)"
    mixed = UnitImportanceAudit(["0"], intervention=[Zero(), Scale(2.0)], name="mixed").run(model, Probe(x))
    assert torch.allclose(mixed.vectors["importance/0"], 2 * (v * h).abs().mean(0))  # |v_u (2 h_u − 0)|
    assert _bars(monkeypatch, mixed).axes[0].get_ylabel() == "mean range over\n2 interventions"
    grid = UnitImportanceAudit(["0"], intervention=[SetTo(-1.0), Zero(), SetTo(1.0)], name="grid").run(model, Probe(x))
    assert torch.allclose(grid.vectors["importance/0"], 2 * v.abs())  # range of v_u a over a in {-1, 0, 1}
    assert _bars(monkeypatch, grid).axes[0].get_ylabel() == "mean range over 3 values\nof do(unit := a)"


@pytest.mark.parametrize("do", [{"do": ":= resampled"}, {"do": ":= set values"}, {"do": "× 0.25"},
                                {"do_grid": 12, "do": "× a"}, {"do_grid": 12}])
@pytest.mark.parametrize("kind", ["unit", "neuron", "head"])
@pytest.mark.parametrize("exact", [None, []])  # [] (method="attribution"): every bar an estimate, a line more
def test_unit_bars_value_axis_is_whole_inside_the_figure(monkeypatch, do, kind, exact):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    meta = {**do, "unit_kind/0": kind, **({"exact_units/0": exact} if exact is not None else {})}
    r = AuditResult("units", vectors={"importance/0": torch.tensor([0.3, 0.1, 0.2, 0.05])}, meta=meta)
    fig = _bars(monkeypatch, r)
    canvas = FigureCanvasAgg(fig)
    canvas.draw()
    box = fig.axes[0].yaxis.label.get_window_extent(canvas.get_renderer())
    assert 0 <= box.x0 and 0 <= box.y0 and box.y1 <= fig.bbox.y1, (fig.axes[0].get_ylabel(), box, fig.bbox)


class _Bag(nn.Module):
    """f = (1/T) Σ_t w[id_t] (one output): δ_t = (w[id_t] − w[b]) / T with token t set to id b."""

    def __init__(self) -> None:
        super().__init__()
        self.emb = nn.Embedding(6, 1).double()
        with torch.no_grad():
            self.emb.weight.copy_(torch.tensor([[0.0], [1.0], [-2.0], [0.5], [3.0], [-1.0]], dtype=torch.float64))

    def forward(self, ids):
        return self.emb(ids).mean(1)


@pytest.mark.parametrize(("baseline", "input_layer", "said"), [(5, None, "id 5"), (5, "emb", "the embedding of id 5")])
def test_the_token_strips_say_what_each_token_is_set_to(monkeypatch, baseline, input_layer, said):
    # the strips' "red +, blue −" said nothing of the baseline, where docs/methods.md says the maps name it (81264caa)
    ids = torch.tensor([[1, 2, 3, 4], [4, 4, 1, 3]])
    r = InputEffectAudit(baseline=baseline, input_layer=input_layer, ace_values=None).run(_Bag(), Probe(ids))
    w = torch.tensor([0.0, 1.0, -2.0, 0.5, 3.0, -1.0], dtype=torch.float64)
    assert torch.allclose(r.maps["effect"].double(), (w[ids] - w[5]) / 4)  # (w[id_t] − w[5]) / T
    fig = _figures(monkeypatch, [r], ids)["causal/input_effect/maps/sample_0"]
    assert fig._suptitle.get_text().split("\n")[1:] == [f"effects against each token set to {said}"]


# CaptumBaseline's causal map is InputEffectAudit's δ_g against each group set to its baseline b, and its figures did
# not say b; its attribution methods' maps are no set-to-b effects, so the words name the causal map only.


def test_captum_baselines_figures_say_the_causal_maps_baseline_only(monkeypatch):
    from lightning_causal import CaptumBaseline

    model = nn.Linear(3, 2, bias=False).double()  # f_c = w_c . x, δ_g = w_tg (x_g − b) of the predicted class t
    with torch.no_grad():
        model.weight.copy_(torch.tensor([[2.0, -1.0, 0.5], [0.0, 1.0, 1.0]], dtype=torch.float64))
    x = torch.tensor([[1.0, 3.0, 0.5], [0.0, 1.0, 2.5], [2.0, 0.0, 1.0]], dtype=torch.float64)
    r = CaptumBaseline(methods=("Saliency",), baseline=0.5).run(model, Probe(x))
    t = torch.tensor([1, 1, 0])  # (model(x)).argmax(1): [-0.75, 3.5], [0.25, 3.5], [4.5, 1]
    assert torch.equal(model(x).argmax(1), t)
    assert torch.allclose(r.maps["causal"].double(), model.weight.detach()[t] * (x - 0.5))
    assert (r.meta["baseline"], r.meta["baseline_maps"]) == ("0.5", ["causal"])
    fig = _figures(monkeypatch, [r], x)["causal/captum_baseline/maps/top_features"]
    title = " ".join(fig._suptitle.get_text().split())
    assert title.endswith("explaining each sample's predicted class; causal: against each feature set to 0.5"), title
    # the title's third line takes no room from the bars: as high as those of a baseline the title does not say
    plain = CaptumBaseline(methods=("Saliency",), baseline=torch.tensor([0.5, 0.5, 0.25], dtype=torch.float64)).run(model, Probe(x))
    other = _figures(monkeypatch, [plain], x)["causal/captum_baseline/maps/top_features"]
    assert "baseline" not in plain.meta and (fig._suptitle.get_text().count("\n"), other._suptitle.get_text().count("\n")) == (2, 1)
    heights = [f.axes[0].get_position().height * f.get_figheight() for f in (fig, other)]  # inches
    assert heights[0] == pytest.approx(heights[1], abs=0.05), heights


def test_captum_baselines_image_note_and_token_strips_name_the_causal_map(monkeypatch):
    from lightning_causal import CaptumBaseline

    x = torch.tensor([[[[255, 51], [0, 102]]], [[[10, 20], [30, 40]]]], dtype=torch.uint8)
    r = CaptumBaseline(methods=("FeatureAblation",), patch_size=1, baseline=0).run(_Pixels(), Probe(x))
    fig = _figures(monkeypatch, [r], x)["causal/captum_baseline/maps/sample_0"]
    notes = [" ".join(t.get_text().split()) for t in fig.texts if t is not fig._suptitle]
    assert notes == ["red: raises the output, blue: lowers it; causal: against the group set to 0"]
    ids = torch.tensor([[1, 2, 3, 4], [4, 4, 1, 3]])
    r = CaptumBaseline(methods=("FeatureAblation",), baseline=5).run(_Bag(), Probe(ids))
    w = torch.tensor([0.0, 1.0, -2.0, 0.5, 3.0, -1.0], dtype=torch.float64)
    assert torch.allclose(r.maps["causal"].double(), (w[ids] - w[5]) / 4)
    fig = _figures(monkeypatch, [r], ids)["causal/captum_baseline/maps/sample_0"]
    assert fig._suptitle.get_text().split("\n")[1:] == ["causal: effects against each token set to id 5"]
