"""The docs (methods.md: Sobol' classifiers and the ICC of a class probability) tell users to pass
``class_probability(model, target)``; it must import from ``lightning_causal.causal`` beside
``sobol_indices`` and ``ClassProbability`` (before: ImportError there)."""

import torch
from torch import nn


def test_class_probability_imports_beside_sobol_indices():
    from lightning_causal.causal import EmpiricalMarginals, class_probability, sobol_indices
    from lightning_causal.causal.sensitivity.samplers import class_probability as where_defined

    assert class_probability is where_defined
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.Tanh(), nn.Linear(8, 2))
    x = torch.randn(64, 3, generator=torch.Generator().manual_seed(1))
    f = class_probability(model, 1)
    r = sobol_indices(f, EmpiricalMarginals(x), 64, n_bootstrap=0)
    assert r.first.shape == (3,) and f.explained == "softmax probability"
