"""Estimators on an accelerator: a CUDA model explained where it lives gives the CPU's numbers
(float64 on both; skipped without CUDA)."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import (
    AdditiveNoiseSCM,
    ClassProbability,
    UniformCube,
    causal_graph,
    intrinsic_causal_contributions,
    sobol_indices,
)

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


@cuda
def test_icc_of_a_cuda_model_equals_the_cpu_value():
    # the SCM's rows (on the CPU) reached the CUDA model: 'Expected all tensors to be on the same device'
    g = torch.Generator().manual_seed(0)
    a = torch.randn(400, generator=g)
    b = 0.8 * a + 0.3 * torch.randn(400, generator=g)
    scm = AdditiveNoiseSCM(["a", "b"], {"b": ["a"]}).fit(torch.stack([a, b], 1))
    model = _mlp(2)
    on_cpu = intrinsic_causal_contributions(model, scm, n=256, target=1, shapley=False, n_bootstrap=0)
    on_gpu = intrinsic_causal_contributions(model.cuda(), scm, n=256, target=1, shapley=False, n_bootstrap=0)
    assert torch.allclose(on_gpu.first, on_cpu.first, rtol=1e-9, atol=1e-12)
    assert torch.allclose(on_gpu.total, on_cpu.total, rtol=1e-9, atol=1e-12)


@cuda
def test_sobol_indices_of_a_cuda_model_on_a_cpu_sampler_equal_the_cpu_values():
    # UniformCube draws on the CPU: the CUDA model got CPU rows ('Expected all tensors to be on the same device'),
    # reported through ClassProbability as a shape problem ('pass `input_shape=`')
    model = nn.Sequential(nn.Linear(3, 6), nn.Tanh(), nn.Linear(6, 1)).double().eval()
    on_cpu = sobol_indices(model, UniformCube(3), n=256, n_bootstrap=0)
    on_gpu = sobol_indices(model.cuda(), UniformCube(3), n=256, n_bootstrap=0)
    assert torch.allclose(on_gpu.first.cpu(), on_cpu.first, rtol=1e-9, atol=1e-12)
    model = _mlp(3).cpu()
    on_cpu = sobol_indices(ClassProbability(model, 1), UniformCube(3), n=256, n_bootstrap=0)
    on_gpu = sobol_indices(ClassProbability(model.cuda(), 1), UniformCube(3), n=256, n_bootstrap=0)
    assert torch.allclose(on_gpu.total.cpu(), on_cpu.total, rtol=1e-9, atol=1e-12)
