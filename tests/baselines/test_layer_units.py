"""Captum's layer attributions on the same units as ``unit_effects``: neurons (``unit_dim=-1``) and
heads (``num_heads``) of ``[N, T, D]`` layers, a module's input (``"<module>:input"``), and the
default refused where it would be positions."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.audits import CaptumBaseline, Probe
from lightning_causal.baselines.captum_methods import layer_attribute
from lightning_causal.causal.engine.interventions import capture


class Seq(nn.Module):
    """``[N, T, F]`` -> Linear + tanh per position ``[N, T, 6]`` -> mean over positions -> logits."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.hidden = nn.Sequential(nn.Linear(3, 6), nn.Tanh())
        self.head = nn.Linear(6, 2)

    def forward(self, x):
        return self.head(self.hidden(x).mean(1))


def _x():
    return torch.rand(5, 4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(1))


def test_layer_activation_per_neuron_and_per_head_by_hand():
    model, x = Seq().double(), _x()
    with capture(model, ["hidden"]) as acts:
        model(x)
    h = acts["hidden"]  # [N, T, 6]
    torch.testing.assert_close(layer_attribute(model, x, "hidden", "LayerActivation", unit_dim=-1), h.mean(1))
    torch.testing.assert_close(layer_attribute(model, x, "hidden", "LayerActivation", num_heads=2),
                               h.view(5, 4, 2, 3).mean((1, 3)))
    with pytest.raises(ValueError, match="unit_dim=-1"):
        layer_attribute(model, x, "hidden", "LayerActivation")


def test_layer_conductance_regroups_the_same_total_and_reads_a_module_input():
    model, x = Seq().double(), _x()
    neurons = layer_attribute(model, x, "hidden", target=0, unit_dim=-1, options={"n_steps": 64})
    heads = layer_attribute(model, x, "hidden", target=0, num_heads=2, options={"n_steps": 64})
    torch.testing.assert_close(neurons.sum(1), heads.sum(1))  # one sum, grouped two ways
    with torch.no_grad():
        gap = model(x)[:, 0] - model(torch.zeros_like(x))[:, 0]
    torch.testing.assert_close(neurons.sum(1), gap, atol=2e-3, rtol=0)  # completeness (IG through the layer)
    mlp = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 2)).double()
    flat = torch.rand(6, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    torch.testing.assert_close(layer_attribute(mlp, flat, "2:input", target=1), layer_attribute(mlp, flat, "1", target=1))
    assert not mlp[2]._forward_pre_hooks and not hasattr(mlp[2], "lc_input_site")


def test_captum_baseline_sets_neuron_effects_beside_layer_conductance():
    model, x = Seq().double(), _x()
    r = CaptumBaseline(["Saliency"], layers=["hidden"], unit_dim={"hidden": -1}).run(model, Probe(x))
    assert {"spearman", "kendall", "topk"} <= {k.rsplit("/", 1)[1] for k in r.scalars if k.startswith("compare/LayerConductance-hidden/")}
    with pytest.raises(ValueError, match="unit_dim=-1"):
        CaptumBaseline(["Saliency"], layers=["hidden"]).run(model, Probe(x))


class _Transpose(nn.Module):
    def forward(self, h):
        return h.transpose(1, 2)


class Two(nn.Module):
    """Two Linear + tanh layers per position of ``[N, T, 3]``, mean, head; ``first``: each layer
    returns its neurons on dimension 1 (``[N, 6, T]``), the units-first twin."""

    def __init__(self, first: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        tail = [_Transpose()] if first else []
        self.l1 = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), *tail)
        self.l2 = nn.Sequential(nn.Linear(6, 6), nn.Tanh(), *tail)
        self.head, self.first = nn.Linear(6, 2), first

    def forward(self, x):
        back = (lambda h: h.transpose(1, 2)) if self.first else (lambda h: h)
        h1 = back(self.l1(x))
        return self.head(back(self.l2(h1)).mean(1))


def test_attribution_graph_over_neurons_equals_the_units_first_network():
    from lightning_causal.baselines.attribution_graph import attribution_graph
    from lightning_causal.causal import causal_graph

    x = torch.rand(12, 4, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    seq, twin = Two(False).double().eval(), Two(True).double().eval()
    like = causal_graph(seq, x, ["l1", "l2"], top_k=3, unit_dim=-1)
    like_twin = causal_graph(twin, x, ["l1", "l2"], top_k=3)
    assert like.meta["unit_layouts"] == {"l1": {"unit_dim": -1, "num_heads": None}, "l2": {"unit_dim": -1, "num_heads": None}}
    assert like.nodes == like_twin.nodes and any(s.startswith("l1:") and t.startswith("l2:") for s, t, _ in like.edges)
    got, want = attribution_graph(seq, x, like, target=0, n_steps=8), attribution_graph(twin, x, like_twin, target=0, n_steps=8)
    assert got.nodes == want.nodes and [e[:2] for e in got.edges] == [e[:2] for e in want.edges]
    torch.testing.assert_close(torch.tensor([e[2] for e in got.edges]), torch.tensor([e[2] for e in want.edges]))


class Recurrent(nn.Module):
    """An LSTM (returns ``(out, (h, c))``), ``out`` also passed through an ``nn.Identity`` (a tensor twin)."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.rnn, self.same, self.head = nn.LSTM(3, 5, batch_first=True), nn.Identity(), nn.Linear(5, 2)

    def forward(self, x):
        out, _ = self.rnn(x)
        return self.head(self.same(out)[:, -1])


@pytest.mark.parametrize("method", ["LayerConductance", "LayerActivation"])
def test_a_layer_returning_a_tuple_is_attributed_at_its_element_0(method):
    # Captum's layer methods need a tensor: they failed on an LSTM with "Given input is not a torch.Tensor"
    model, x = Recurrent().double(), _x()
    got = layer_attribute(model, x, "rnn", method, target=1, unit_dim=-1)
    torch.testing.assert_close(got, layer_attribute(model, x, "same", method, target=1, unit_dim=-1), atol=1e-12, rtol=0)
    if method == "LayerActivation":
        with capture(model, ["rnn"]) as acts:
            model(x)
        torch.testing.assert_close(got, acts["rnn"].mean(1), atol=1e-12, rtol=0)
    assert not hasattr(model.rnn, "lc_output_site") and not model.rnn._forward_hooks
