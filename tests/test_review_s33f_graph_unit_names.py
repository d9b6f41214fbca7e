"""Review of 513e6b7b (its leftover): UnitImportanceAudit names the units of ``unit_dim=-1`` by what the model says
they are (positions after a convolution, a Fourier layer's modes), but the causal graph's figure still titled such a
column "(neurons)", from ``unit_dim`` alone. ``CausalGraphAudit`` now records the names the same way
(``unit_names.probe_unit_kinds``, one piece for both audits) in the graph's ``meta["unit_kinds"]``, which the figure's
column titles read."""

from __future__ import annotations

import torch
from torch import nn

from lightning_causal.audits import CausalGraphAudit, Probe
from lightning_causal.reporting.graph_figures import graph_figure


def _titles(fig) -> list[str]:
    return [t.get_text() for t in fig.axes[0].texts]


def test_a_graph_of_positions_after_a_conv1d_says_positions() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv1d(2, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(18, 8), nn.ReLU(),
                          nn.Linear(8, 2)).eval()
    x = torch.randn(24, 2, 6, generator=torch.Generator().manual_seed(1))
    r = CausalGraphAudit(["1", "4"], unit_dim={"1": -1}, target=0, stability_resamples=0).run(model, Probe(x))
    graph = r.graphs["causal_graph"]
    assert graph["meta"]["unit_kinds"] == {"1": "position"}
    titles = _titles(graph_figure(graph))
    assert any("(positions" in t for t in titles) and not any("neurons" in t for t in titles)


def test_features_of_sequence_states_stay_neurons() -> None:
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Flatten(), nn.Linear(20, 2)).eval()
    x = torch.randn(24, 5, 3, generator=torch.Generator().manual_seed(1))
    graph = CausalGraphAudit(["1"], unit_dim=-1, target=0, stability_resamples=0).run(model, Probe(x)).graphs["causal_graph"]
    assert "unit_kinds" not in graph["meta"]
    assert any("(neurons" in t for t in _titles(graph_figure(graph)))
