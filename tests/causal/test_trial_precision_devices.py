"""Estimators on an accelerator: a CUDA model explained where it lives gives the CPU's numbers
(float64 on both; skipped without CUDA)."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import causal_graph

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")


def _mlp(inputs: int = 4) -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(inputs, 6), nn.ReLU(), nn.Linear(6, 6), nn.ReLU(), nn.Linear(6, 2)).double().eval()


@cuda
def test_causal_graph_of_a_cuda_model_equals_the_cpu_graph():
    # _select_nodes indexed a CPU tensor of class ids with a CUDA index: a RuntimeError on any CUDA model
    x = torch.randn(64, 4, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    model = _mlp()
    on_cpu = causal_graph(model, x, ["1", "3"], top_k=None, ablation="zero")
    on_gpu = causal_graph(model.cuda(), x.cuda(), ["1", "3"], top_k=None, ablation="zero")
    assert on_gpu.nodes == on_cpu.nodes
    assert [e[:2] for e in on_gpu.edges] == [e[:2] for e in on_cpu.edges]
    assert on_gpu.meta["faithfulness"] == pytest.approx(on_cpu.meta["faithfulness"], rel=1e-9)

