"""Trial "fixes3": a layer behind a ReLU that no probe sample activates. The layer map's default layers
left out the layer before it (its gradient is 0 and noise added to it leaves the output unchanged, as
for another output's head), and the map showed fewer layers than the model has, with no reason. It now
warns, naming the layer and why, and so for the layers it keeps that no intervention moves; the map's
``meta`` lists both, the audit's notes (the TensorBoard summary card) and the figure say so. The
dry run on 2 samples, whose units may all be off where the probe's are not, leaves the warnings to the fit."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits import LayerMapAudit, Probe
from lightning_causal.causal import layer_causal_map
from lightning_causal.causal.structure.output_path import BLOCKED, UNUSED
from lightning_causal.reporting.layer_map_figures import layer_map_figure
from lightning_causal.reporting.summary import markdown_summary


def _mlp(dead: int) -> nn.Sequential:
    """``0 -> relu -> 2 -> relu -> 4``, the bias of layer ``dead`` at -100: its ReLU is off for every probe
    sample (|W x| < 3 here), so layer 4 reads a constant."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 2)).double().eval()
    with torch.no_grad():
        model[dead].bias.fill_(-100.0)
    return model


def _x(n: int = 16) -> torch.Tensor:
    return torch.randn(n, 4, dtype=torch.float64, generator=torch.Generator().manual_seed(1))


def test_a_layer_before_a_dead_relu_left_out_of_the_default_layers_is_named():
    model, x = _mlp(2), _x()
    with torch.no_grad():
        assert not bool((model[:4](x) > 0).any())  # the second ReLU: no unit active on any probe sample
    with pytest.warns(UserWarning, match=r"No input intervention moves the layers \['4'\]"):
        with pytest.warns(UserWarning, match=r"leaves the layers \['0'\] out of its default layers: .* on the 16 probe samples"):
            lm = layer_causal_map(model, x, None)
    assert lm.layers == ["2", "4"]  # '0' is still left out: the output reads none of it on this probe
    assert lm.meta["left_out"] == {"0": BLOCKED} and lm.meta["unmoved"] == ["4"]
    assert float(lm.response[1]) == 0.0  # layer 4's output is its bias for every intervention
    # named, layer 0 is mapped (warned as not reaching the output)
    with pytest.warns(UserWarning, match=r"The layers \['0'\] do not reach the explained output"), \
            pytest.warns(UserWarning, match=r"No input intervention moves the layers \['4'\]"):
        named = layer_causal_map(model, x, None, layers=["0", "2", "4"])
    assert named.layers == ["0", "2", "4"] and named.meta["left_out"] == {}


def test_layers_after_a_dead_relu_are_named_as_unmoved():
    with pytest.warns(UserWarning, match=r"No input intervention moves the layers \['2', '4'\] on the 16 probe samples"):
        lm = layer_causal_map(_mlp(0), _x(), None)
    assert lm.layers == ["0", "2", "4"] and lm.meta["left_out"] == {}
    assert lm.meta["unmoved"] == ["2", "4"] and lm.response[1:].tolist() == [0.0, 0.0]
    assert lm.to_dict()["meta"]["unmoved"] == ["2", "4"]


def test_another_outputs_head_is_left_out_without_a_warning():
    class TwoHeads(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.body, self.cls, self.reg = nn.Linear(4, 6), nn.Linear(6, 3), nn.Linear(6, 1)

        def forward(self, x):
            h = torch.tanh(self.body(x))
            return {"cls": self.cls(h), "reg": self.reg(h)}

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a head of another output is no layer of this one: nothing to warn of
        lm = layer_causal_map(TwoHeads().double().eval(), _x(), None, output="cls")
        torch.manual_seed(0)
        live = layer_causal_map(nn.Sequential(nn.Linear(4, 6), nn.ReLU(), nn.Linear(6, 2)).double().eval(), _x(), None)
    assert lm.layers == ["body", "cls"] and lm.meta["left_out"] == {"reg": UNUSED} and lm.meta["unmoved"] == []
    assert live.meta == {**live.meta, "left_out": {}, "unmoved": []}


def test_the_audit_notes_and_figure_name_the_left_out_and_unmoved_layers():
    with pytest.warns(UserWarning, match="leaves the layers"), pytest.warns(UserWarning, match="No input intervention moves"):
        r = LayerMapAudit().run(_mlp(2), Probe(_x()))
    assert r.meta["notes"] == [f"left out of the default layers: 0 ({BLOCKED})",
                               "no intervention moves 4 on the 16 probe samples (response 0, CKA NaN: a dead ReLU before it, or no path "
                               "from the explained input)"]
    text = markdown_summary(0, [r])
    assert "- layer_map: left out of the default layers: 0 (not read on the probe" in text
    assert "- layer_map: no intervention moves 4 on the 16 probe samples" in text
    fig = layer_map_figure(r.graphs["layer_map"])
    note = " ".join(t.get_text() for t in fig.axes[-1].texts).replace("\n", " ")  # the key's axes, last
    assert note.startswith("left out: 0 (not read on the probe") and "no intervention moves: 4" in note


def test_the_dry_run_leaves_the_warnings_to_the_fit():
    """The ReLU passes x0 + x1 > 0: off in the first 2 samples, also with either feature at 0, on in the others."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(2, 1), nn.ReLU(), nn.Linear(1, 3), nn.Tanh(), nn.Linear(3, 2)).double().eval()
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 1.0]], dtype=torch.float64))
        model[0].bias.zero_()
    x = torch.tensor([[-1.0, -0.5], [-0.6, -0.3], [1.0, 2.0], [0.5, 0.3], [2.0, -1.0], [0.7, 0.1]], dtype=torch.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = LayerMapAudit().dry_run(model, Probe(x))
        full = LayerMapAudit().run(model, Probe(x))
    assert r.graphs["layer_map"]["meta"]["unmoved"] == ["2", "4"]  # the 2 samples: said in the notes only
    assert r.meta["notes"][0].startswith("no intervention moves 2, 4 on the 2 probe samples")
    assert "notes" not in full.meta and full.graphs["layer_map"]["layers"] == ["0", "2", "4"]
