"""The causal graph builds a layer's prefix cache beside its plain ``torch.fx`` suffix for a convolution reader only
where the update spares enough work a row (leftovers_s34c, ``graph_context.CONV_CACHE_MIN_WORK``): on small CNNs the
cache's probe run and checks cost more than the update saves (``bench_graph.py --small``), on wide ones the update is
the point. The graphs equal those of full forward passes either way."""

from __future__ import annotations

import torch
from torch import nn

from lightning_causal.causal.engine.linear_update import LinearReaders
from lightning_causal.causal.structure import graph_context
from lightning_causal.causal.structure.graph import causal_graph
from tests.causal.test_graph_linear_s32_sweep import _reference, full_passes  # noqa: F401
from tests.causal.test_review_s32e_graph_cache_for_linear_only import _assert_same_graph, caches  # noqa: F401


def _cnn(channels: int) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, channels, 3, padding=1), nn.ReLU(), nn.Conv2d(channels, channels, 3, padding=1),
                         nn.Tanh(), nn.Flatten(), nn.Linear(channels * 64, 3)).double().eval()


def _graph_against_full_passes(model, full_passes):  # noqa: F811
    x = torch.randn(16, 1, 8, 8, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    graph = causal_graph(model, x, ["1", "3"], top_k=4, alpha=0.5)
    _assert_same_graph(graph, _reference(full_passes, model, x, ["1", "3"], top_k=4, alpha=0.5))


def test_a_small_cnn_keeps_the_plain_suffix(caches, updates, full_passes):  # noqa: F811
    # 16 channels of 8x8: 16 x 9 x 16 x 64 x 15/16 = 138,240 multiply-adds spared a row, below the rule's 1,000,000
    _graph_against_full_passes(_cnn(16), full_passes)
    assert caches == [] and updates["rows"] == 0


def test_a_wide_cnn_builds_the_cache_and_takes_the_update(caches, updates, full_passes):  # noqa: F811
    # 64 channels: 64 x 9 x 64 x 64 x 63/64 = 2,322,432 spared a row
    _graph_against_full_passes(_cnn(64), full_passes)
    assert caches == ["1"] and updates["rows"] > 16 * 64


def test_the_work_spared_is_the_readers_product_less_the_update_share():
    conv, lin = nn.Conv2d(16, 8, 3, padding=1, groups=2), nn.Linear(8, 4)
    readers = LinearReaders(nn.Identity())
    readers.value = torch.zeros(1, 16, 8, 8)
    readers.outputs = {conv: torch.zeros(1, 8, 8, 8)}
    assert readers.conv_work_spared(1, 1) == 8 * 9 * 8 * 64 * (7 / 8)  # a group's 8 input channels, 1 changed
    readers.outputs[lin] = torch.zeros(1, 16, 8, 4)  # a linear layer reading the last dimension answers positions
    assert readers.conv_work_spared(-1, 1) is None  # its update is always taken (session 32)
    assert graph_context.CONV_CACHE_MIN_WORK == 1_000_000
