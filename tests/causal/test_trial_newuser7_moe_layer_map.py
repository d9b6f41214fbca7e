"""A top-1 mixture of experts whose router sends every probe sample to one expert (newuser7 trial).

On the clean probe that expert's layers return one row per sample, so the layer map's default layers took
them; an intervention that routes rows to the other expert then stopped the map (and a fit with
``LayerMapAudit()`` at set-up) with "Expected module 'experts.0.fc' to return [...] ... Name modules ...
with `layers=`", naming layers the user never chose. They are left out of the default layers now, with a
warning, and the map equals the one of the layers that run on every row."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import layer_causal_map


class Expert(nn.Module):
    def __init__(self, scale: float) -> None:
        super().__init__()
        self.fc = nn.Linear(3, 2)
        with torch.no_grad():
            self.fc.weight.copy_(scale * torch.tensor([[1.0, -1.0, 0.5], [0.5, 1.0, -1.0]]))
            self.fc.bias.zero_()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(x)


class TopOneMixture(nn.Module):
    """``router`` scores ``[0, 10 x0 + 5]``: a sample with x0 = -1 goes to expert 0, with x0 := 0 to expert 1;
    each row is scaled by its gate (the router's softmax at the chosen expert), ``head`` reads the combined rows."""

    def __init__(self) -> None:
        super().__init__()
        self.router = nn.Linear(3, 2)
        with torch.no_grad():
            self.router.weight.copy_(torch.tensor([[0.0, 0.0, 0.0], [10.0, 0.0, 0.0]]))
            self.router.bias.copy_(torch.tensor([0.0, 5.0]))
        self.experts = nn.ModuleList([Expert(1.0), Expert(-2.0)])
        self.head = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        logits = self.router(x)
        idx = logits.argmax(1)
        out = x.new_zeros(x.shape[0], 2)
        for e, expert in enumerate(self.experts):
            rows = (idx == e).nonzero().flatten()
            if len(rows):
                out = out.index_add(0, rows, expert(x[rows]))
        return self.head(torch.relu(out * logits.softmax(1).gather(1, idx[:, None])))


def _probe() -> torch.Tensor:
    x = torch.randn(12, 3, generator=torch.Generator().manual_seed(0))
    x[:, 0] = -1.0  # every sample routed to expert 0; do(x0 := 0) routes it to expert 1
    return x


def test_default_layers_leave_out_an_expert_that_every_probe_sample_took() -> None:
    torch.manual_seed(0)
    model, x = TopOneMixture(), _probe()
    assert (model.router(x).argmax(1) == 0).all()
    with pytest.warns(UserWarning, match=r"leaves the layers \['experts.0.fc'\] out of its default layers.*an expert of a mixture"):
        lm = layer_causal_map(model, x)
    assert list(lm.meta["left_out"]) == ["experts.0.fc"]
    assert "an expert of a mixture" in lm.meta["left_out"]["experts.0.fc"]
    named = layer_causal_map(model, x, layers=["router", "head"])  # the layers that run on every row
    assert lm.layers == named.layers == ["router", "head"] and lm.nodes == named.nodes
    torch.testing.assert_close(lm.cka, named.cka, equal_nan=True)
    torch.testing.assert_close(lm.response, named.response)


def test_a_named_expert_is_still_refused() -> None:
    model, x = TopOneMixture(), _probe()
    with pytest.raises(ValueError, match=r"Expected module 'experts.0.fc' to return .* runs on some rows only"):
        layer_causal_map(model, x, layers=["router", "experts.0.fc", "head"])


def test_experts_that_take_some_probe_rows_are_listed_as_left_out() -> None:
    """methods.md: ``meta["left_out"]`` holds every layer the default layers leave out, with why; the experts of a
    probe routed to both (each returning fewer rows than samples) were left out with a console warning only, so the
    layer map's notes and figure (the text card in a fit) showed a map of the router and head with no word of them."""
    from lightning_causal.audits.layer_map import layer_map_notes

    model, x = TopOneMixture(), _probe()
    x[::2, 0] = 1.0  # half of the samples to expert 1
    with pytest.warns(UserWarning, match="do not hold the samples on dimension 0"):
        lm = layer_causal_map(model, x)
    assert lm.layers == ["router", "head"]
    assert sorted(lm.meta["left_out"]) == ["experts.0.fc", "experts.1.fc"]
    assert any("experts.0.fc, experts.1.fc" in n and "an expert of a mixture" in n for n in layer_map_notes(lm.meta))
