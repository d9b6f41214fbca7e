"""Sobol' indices of a model of category codes (an embedding) through the core API: before,
EmpiricalMarginals refused integer data (TypeError), and its float64 draws of the codes reached the
model's nn.Embedding as floats (RuntimeError) through ClassProbability and an nn.Module alike. The
draws now keep the data's integer dtype; the indices are checked against the exact ones of the
product of the columns' empirical distributions, enumerated."""

import torch
from torch import nn

from lightning_causal.causal import (
    EmpiricalMarginals,
    GaussianCopula,
    class_probability,
    sobol_indices,
)


class CodeModel(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.embed, self.head = nn.Embedding(5, 4), nn.Linear(12, 2)

    def forward(self, codes: torch.Tensor) -> torch.Tensor:
        return self.head(torch.tanh(self.embed(codes)).flatten(1))


def _exact(f, columns):
    """S and S_T of f under independent columns, each uniform over its observed values (enumerated)."""
    grids = torch.meshgrid(*columns, indexing="ij")
    y = f(torch.stack([g.reshape(-1) for g in grids], 1)).double().reshape(*[len(c) for c in columns])
    var, d = y.var(unbiased=False), len(columns)
    first = [float(y.mean(dim=[k for k in range(d) if k != j]).var(unbiased=False) / var) for j in range(d)]
    total = [float(1 - y.mean(dim=j).var(unbiased=False) / var) for j in range(d)]
    return torch.tensor(first, dtype=torch.float64), torch.tensor(total, dtype=torch.float64)


def test_sobol_indices_of_an_embedding_model_of_codes_are_exact():
    model = CodeModel()
    codes = torch.randint(0, 5, (20, 3), generator=torch.Generator().manual_seed(1))
    sampler = EmpiricalMarginals(codes)
    assert sampler.icdf(torch.full((2, 3), 0.5, dtype=torch.float64)).dtype == torch.long  # observed codes
    f = class_probability(model, 1)
    with torch.no_grad():
        first, total = _exact(f, [codes[:, j] for j in range(3)])
    r = sobol_indices(f, sampler, 4096, seed=0)
    assert torch.allclose(r.first, first, atol=0.01) and torch.allclose(r.total, total, atol=0.01), (r.first, first, r.total, total)
    one_output = nn.Sequential(model, nn.Flatten(0), nn.Unflatten(0, (-1, 2)))  # an nn.Module passed as it is
    logit = sobol_indices(lambda x: one_output(x)[:, 1], sampler, 256, n_bootstrap=0)
    assert logit.first.shape == (3,)
    assert GaussianCopula(codes).icdf(torch.full((1, 3), 0.5, dtype=torch.float64)).dtype == torch.long
