"""newuser85 trial: hypernetworks and dynamic filters. A model whose main layer runs in functional code, with weights a
module makes (a dynamic filter: per-sample 3x3 kernels from a global descriptor, applied with a grouped F.conv2d; a
hypernetwork's F.linear with weights made from a task embedding), got a layer map of the modules around that layer
only (descriptor -> kernel generator -> head) without a word: the layer the input and the generated weights meet in
was in no node. The default layers' pass of two probe samples now counts the layer functions called outside every layer the map
reads and warns, naming them and the way out (an nn.Identity named with `layers=`); layers of your own that call
F.linear on their weights (parametrized too), torch's modules (nn.MultiheadAttention's F.linear) and named layers
give no such warning. The map's meta["left_out"] holds each call, so the audit's notes and the figure say it too."""

from __future__ import annotations

import warnings

import pytest
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrizations

from lightning_causal import LayerMapAudit, audit_model
from lightning_causal.audits import Probe
from lightning_causal.causal import layer_causal_map
from lightning_causal.causal.structure.functional_layers import FUNCTIONAL

NOTE = "The layer map reads modules only, and the model computes layers in functional code outside them"


class _DynamicFilter(nn.Module):  # per-sample kernels made from each image's descriptor, applied with F.conv2d
    def __init__(self, with_site: bool = False) -> None:
        super().__init__()
        self.desc = nn.Sequential(nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(16, 12), nn.ReLU())
        self.kgen = nn.Linear(12, 4 * 9)
        self.head = nn.Linear(4 * 16, 3)
        self.site = nn.Identity() if with_site else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[0]
        k = self.kgen(self.desc(x)).view(n * 4, 1, 3, 3)
        h = F.relu(F.conv2d(x.view(1, n, 8, 8), k, padding=1, groups=n).view(n, 4, 8, 8))
        if self.site is not None:
            h = self.site(h)
        return self.head(F.max_pool2d(h, 2).flatten(1))


class _OneTask(nn.Module):  # one weight set made from a task embedding, applied with F.linear
    def __init__(self) -> None:
        super().__init__()
        self.task = nn.Embedding(3, 6)
        self.hyper = nn.Sequential(nn.Linear(6, 16), nn.Tanh(), nn.Linear(16, 32))
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = self.hyper(self.task(torch.tensor([1], device=x.device))).view(8, 4)
        return self.head(torch.relu(F.linear(x, w)))


class _OwnLinear(nn.Module):  # a layer of yours: F.linear on its own weight, inside the layer the map reads
    def __init__(self, i: int, o: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.randn(o, i) / i**0.5)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight)


class _Attention(nn.Module):  # torch's nn.MultiheadAttention calls F.linear with its out_proj's weight itself
    def __init__(self) -> None:
        super().__init__()
        self.encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, 16, batch_first=True), 2)
        self.head = nn.Linear(8, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x).mean(1))


def _notes(run) -> list[str]:  # noqa: ANN001
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        run()
    return [str(w.message) for w in caught if NOTE in str(w.message)]


def test_a_dynamic_filters_functional_conv_is_named_by_the_layer_map_and_the_audit() -> None:
    torch.manual_seed(0)
    model, x = _DynamicFilter().eval(), torch.randn(12, 1, 8, 8)
    notes = _notes(lambda: layer_causal_map(model, x))
    assert len(notes) == 1 and "F.conv2d in _DynamicFilter.forward (1 call per pass)" in notes[0]
    assert "nn.Identity" in notes[0] and "`layers=`" in notes[0]
    got = {}
    notes = _notes(lambda: got.update(lm=layer_causal_map(model, x), audit=audit_model(model, [LayerMapAudit()], Probe(x), probe_size=12)[0]))
    assert len(notes) == 2 and all("F.conv2d in _DynamicFilter.forward" in note for note in notes)
    # the map's meta, the audit's notes (text card, report) and the figure's "left out" line say it too
    assert got["lm"].meta["left_out"] == {"F.conv2d in _DynamicFilter.forward": FUNCTIONAL}
    assert f"left out of the default layers: F.conv2d in _DynamicFilter.forward ({FUNCTIONAL})" in got["audit"].meta["notes"]


def test_a_hypernetworks_functional_linear_is_named() -> None:
    torch.manual_seed(0)
    notes = _notes(lambda: layer_causal_map(_OneTask().eval(), torch.randn(12, 4)))
    assert len(notes) == 1 and "F.linear in _OneTask.forward (1 call per pass)" in notes[0]


@pytest.mark.parametrize("case", ["site", "own", "parametrized", "torch"])
def test_layers_the_map_reads_give_no_note(case: str) -> None:
    torch.manual_seed(0)
    if case == "site":  # the way out: the functional layer's output through an nn.Identity named with layers=
        model, x, layers = _DynamicFilter(with_site=True).eval(), torch.randn(12, 1, 8, 8), ["desc.2", "kgen", "site", "head"]
    elif case in ("own", "parametrized"):
        model, x, layers = nn.Sequential(_OwnLinear(4, 8), nn.ReLU(), _OwnLinear(8, 2)).eval(), torch.randn(12, 4), None
        if case == "parametrized":
            parametrizations.orthogonal(model[0], "weight")
    else:
        model, x, layers = _Attention().eval(), torch.randn(12, 5, 8), None
    assert _notes(lambda: layer_causal_map(model, x, layers=layers)) == []
