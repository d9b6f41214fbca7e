"""Chunk sizes on inputs larger than the fixtures: the memory budget of the row engine
(``rows_per_pass``) must bound every forward pass, and chunk boundaries must not change a number."""

import warnings

import pytest
import torch
from torch import Tensor, nn

from lightning_causal.causal import EmpiricalMarginals, input_effects, sobol_indices
from lightning_causal.causal.engine.batching import DEFAULT_MEMORY_BUDGET, rows_per_pass
from lightning_causal.causal.sensitivity.icc import intrinsic_causal_contributions


class _WideActivation(nn.Module):
    """A cheap module whose output the engine counts as 4 MiB per row (an expanded view): a stand-in
    for a CNN whose activations are far larger than its inputs."""

    width = 1 << 20

    def forward(self, x: Tensor) -> Tensor:
        return x[:, :1].expand(-1, self.width)


class _Head(nn.Module):
    def forward(self, h: Tensor) -> Tensor:
        return h[:, 0] * 2.0


def test_sobol_indices_on_a_module_chunks_to_the_activation_budget():
    model = nn.Sequential(_WideActivation(), _Head())
    x = torch.randn(32, 8, generator=torch.Generator().manual_seed(0))
    sizes: list[int] = []
    model.register_forward_pre_hook(lambda _m, args: sizes.append(args[0].shape[0]))
    res = sobol_indices(model, EmpiricalMarginals(x), n=64, groups=torch.arange(8) // 2, n_bootstrap=0)
    per_row = _WideActivation.width * 4
    assert max(sizes) <= DEFAULT_MEMORY_BUDGET // per_row  # 128 rows, not the 4096 of an input-only default
    assert abs(float(res.first[0]) - 1.0) < 0.1 and float(res.first[1:].abs().max()) < 1e-9  # f = 2 x0
    ref = sobol_indices(model, EmpiricalMarginals(x), n=64, groups=torch.arange(8) // 2, n_bootstrap=0, max_batch_size=7)
    assert torch.allclose(res.first, ref.first, atol=1e-10, rtol=0) and torch.allclose(res.total, ref.total, atol=1e-10, rtol=0)


class _HugeActivation(_WideActivation):
    width = 1 << 28  # 1 GiB per row as the engine counts it (an expanded view: no memory)


def test_a_row_larger_than_the_budget_warns_and_says_what_to_do():
    model = nn.Sequential(_HugeActivation(), _Head())
    x = torch.randn(3, 8, generator=torch.Generator().manual_seed(0))
    with pytest.warns(UserWarning, match=r"1024 MiB.*512 MiB budget.*max_batch_size=1"):
        rows = rows_per_pass(model, (x,))
    assert rows == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert rows_per_pass(model, (x,), 1) == 1  # the user's choice: no trial, no warning
        ref = input_effects(model, x, max_batch_size=1)
    with pytest.warns(UserWarning, match="max_batch_size=1"):
        assert torch.equal(input_effects(model, x), ref)


class _TupleActivation(_WideActivation):
    def forward(self, x: Tensor) -> tuple[Tensor, tuple[Tensor, Tensor]]:  # as nn.LSTM: (output, (h, c))
        return super().forward(x), (x[:, :1], x[:, :1])


class _FirstOfTuple(nn.Module):
    def forward(self, out: tuple[Tensor, tuple[Tensor, Tensor]]) -> Tensor:
        return out[0][:, 0] * 2.0


def test_rows_per_pass_counts_activations_returned_in_tuples():
    model = nn.Sequential(_TupleActivation(), _FirstOfTuple())
    x = torch.randn(3, 8, generator=torch.Generator().manual_seed(0))
    assert rows_per_pass(model, (x,)) <= DEFAULT_MEMORY_BUDGET // (_WideActivation.width * 4)  # 4 MiB a row: not 65536 rows
    lstm = nn.LSTM(4, 256, batch_first=True)
    seq = torch.randn(2, 512, 4, generator=torch.Generator().manual_seed(0))
    per_row = 512 * 256 * 4  # the LSTM's output [T, H] of one row, float32: 512 KiB
    assert rows_per_pass(lstm, (seq,), budget_bytes=64 * per_row, working_set_bytes=1 << 40) <= 64


class _IndependentSCM:
    """Three independent standard normal columns (``x = u``): the smallest SCM contract."""

    columns = ["x0", "x1", "x2"]

    def sample_noise(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        return torch.randn(n, 3, generator=generator, dtype=torch.float64)

    def generate(self, noise: Tensor) -> Tensor:
        return noise.clone()


def test_icc_on_a_module_chunks_to_the_activation_budget():
    model = nn.Sequential(_WideActivation(), _Head())  # f = 2 x0, 8 MiB a row as counted (float64)
    sizes: list[int] = []
    model.register_forward_pre_hook(lambda _m, args: sizes.append(args[0].shape[0]))
    res = intrinsic_causal_contributions(model, _IndependentSCM(), n=64, shapley=False, n_bootstrap=0)
    assert max(sizes) <= DEFAULT_MEMORY_BUDGET // (_WideActivation.width * 8)  # 64 rows, not all 320 at once
    ref = intrinsic_causal_contributions(model, _IndependentSCM(), n=64, shapley=False, n_bootstrap=0, max_batch_size=7)
    assert torch.allclose(res.first, ref.first, atol=1e-10, rtol=0) and torch.allclose(res.total, ref.total, atol=1e-10, rtol=0)
    assert abs(float(res.total[0]) - 1.0) < 0.1 and float(res.total[1:].abs().max()) < 1e-9


def test_the_row_measurement_leaves_a_training_model_as_it_was():
    """rows_per_pass measures bytes per row with a trial forward; called on a model in train mode (by
    CaptumBaseline's reference metrics, outside the estimators' eval mode) its BatchNorm learned the
    trial rows."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.ReLU(), nn.Linear(6, 2)).train()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    assert rows_per_pass(model, (torch.randn(8, 4),)) >= 1
    assert model.training and all(m.training for m in model.modules())
    assert all(torch.equal(v, before[k]) for k, v in model.state_dict().items())
