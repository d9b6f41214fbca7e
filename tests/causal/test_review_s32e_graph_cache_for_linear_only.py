"""Review of 1ca91e45 (review_s32e): beside a plain ``torch.fx`` suffix, the causal graph builds a layer's prefix cache
only for the linear update (an ``nn.Linear`` reading the layer's output as it is, or since leftovers_s33a a
convolution it answers); a layer that a depthwise convolution, an activation or a normalisation reads keeps the plain
suffix without paying the cache's probe run and checks (on a small
CNN they doubled the passes of a one-layer graph). The graphs equal those of full forward passes either way."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal.structure import graph_context
from lightning_causal.causal.structure.graph import causal_graph
from tests.causal.test_graph_linear_s32_sweep import _reference, full_passes  # noqa: F401


def _assert_same_graph(a, b):
    """The same edges and every statistic equal to float64 rounding (a NaN where the other has one)."""
    assert [e[:2] for e in a.edges] == [e[:2] for e in b.edges] and a.edges
    assert [e[2] for e in a.edges] == pytest.approx([e[2] for e in b.edges], rel=1e-9, abs=1e-12)
    for sa, sb in zip(a.edge_stats, b.edge_stats):
        assert sa == pytest.approx(sb, rel=1e-9, abs=1e-12, nan_ok=True)
    assert a.node_stats.keys() == b.node_stats.keys()
    for node in a.node_stats:
        assert a.node_stats[node] == pytest.approx(b.node_stats[node], rel=1e-9, abs=1e-12, nan_ok=True)


@pytest.fixture
def caches(monkeypatch):
    """The layers the graph builds a prefix cache for, in order."""
    built: list[str] = []
    original = graph_context.prefix_cache

    def counting(forward, xs, layer, **kwargs):
        built.append(layer)
        return original(forward, xs, layer, **kwargs)

    monkeypatch.setattr(graph_context, "prefix_cache", counting)
    return built


@pytest.mark.parametrize("groups", [8, 1])
def test_a_layer_read_by_a_convolution_builds_a_prefix_cache_only_where_the_update_answers_it(groups, caches, updates,
                                                                                              full_passes, monkeypatch):  # noqa: F811
    monkeypatch.setattr(graph_context, "CONV_CACHE_MIN_WORK", 0)  # the rule of leftovers_s34c would refuse this size
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1, groups=groups),
                          nn.ReLU(), nn.Flatten(), nn.Linear(8 * 36, 3)).double().eval()
    x = torch.randn(16, 1, 6, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    graph = causal_graph(model, x, ["1", "3"], top_k=4, alpha=0.5)
    # '3' is read by Flatten (a new tensor): the plain suffix, no cache. '1' is read by a convolution: depthwise (groups
    # 8), which the update does not answer (a channel is a group's whole input), the plain suffix too (before: both
    # cached); a plain one, answered by the update since leftovers_s33a, the cache
    assert caches == ([] if groups == 8 else ["1"])
    assert (updates["rows"] == 0) == (groups == 8)
    _assert_same_graph(graph, _reference(full_passes, model, x, ["1", "3"], top_k=4, alpha=0.5))


def test_a_layer_read_by_a_linear_layer_through_an_eval_dropout_still_takes_the_update(caches, updates, full_passes):  # noqa: F811
    # Dropout in evaluation mode returns its input itself: the linear layer reads the layer's output as it is
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(6, 32), nn.ReLU(), nn.Dropout(0.3), nn.Linear(32, 16), nn.Tanh(),
                          nn.Linear(16, 3)).double().eval()
    x = torch.randn(24, 6, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    graph = causal_graph(model, x, ["0", "1", "4"], top_k=4, alpha=0.5)
    # '0' is read by the ReLU (no cache), '1' by the linear layer '3' through the dropout, '4' by the linear layer '5'
    assert sorted(caches) == ["1", "4"] and updates["rows"] > 32
    _assert_same_graph(graph, _reference(full_passes, model, x, ["0", "1", "4"], top_k=4, alpha=0.5))
