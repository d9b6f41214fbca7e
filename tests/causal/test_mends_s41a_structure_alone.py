"""With ``max_batch_size=1`` (the stacked-rows refusal's advice) the layer map and the causal graph take each sample's
clean activations alone, as their intervened rows run: a model branching on its batch's mean gives what the same
function written per sample gives (review_leftovers_s41b §4a, its neighbours)."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import causal_graph, layer_causal_map
from lightning_causal.causal.engine.stacked_rows import StackedRowsError
from tests.causal.test_mends_s41a_clean_alone import _probe


class Branch(nn.Module):
    """``head(act(fc(x)))``, ``fc``'s output tripled where the batch's mean of x0 is not above 0 (``per_sample``: where
    the sample's own x0 is not: what each sample alone gives)."""

    def __init__(self, per_sample: bool = False) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc, self.act, self.head = nn.Linear(4, 3), nn.Identity(), nn.Linear(3, 2)
        self.per_sample = per_sample

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.fc(x)
        if self.per_sample:
            h = torch.where(x[:, :1] > 0, h, 3 * h)
        else:
            h = h if bool(x[:, 0].mean() > 0) else 3 * h
        return self.head(self.act(h))


def test_layer_map_one_row_per_pass_is_the_per_sample_models() -> None:
    x, layers = _probe(), ["fc", "act", "head"]
    with pytest.raises(StackedRowsError, match="max_batch_size=1"):
        layer_causal_map(Branch().eval(), x, layers=layers, target=1)
    got = layer_causal_map(Branch().eval(), x, layers=layers, target=1, max_batch_size=1)
    ref = layer_causal_map(Branch(per_sample=True).eval(), x, layers=layers, target=1)
    torch.testing.assert_close(got.response, ref.response, rtol=0, atol=1e-6)
    torch.testing.assert_close(got.cka, ref.cka, rtol=0, atol=1e-6)
    for name in ("<output>", "act", "head"):
        torch.testing.assert_close(got.group_effects[name], ref.group_effects[name], rtol=0, atol=1e-6)


def test_causal_graph_one_row_per_pass_is_the_per_sample_models() -> None:
    x = _probe()
    with pytest.raises(StackedRowsError, match="max_batch_size=1"):
        causal_graph(Branch().eval(), x, ["fc", "act"], target=1, baseline="zero")
    got = causal_graph(Branch().eval(), x, ["fc", "act"], target=1, baseline="zero", max_batch_size=1)
    ref = causal_graph(Branch(per_sample=True).eval(), x, ["fc", "act"], target=1, baseline="zero")
    assert got.edges == ref.edges
    for node, stats in ref.node_stats.items():
        for key, value in stats.items():
            assert got.node_stats[node][key] == pytest.approx(value, abs=1e-6), (node, key)
