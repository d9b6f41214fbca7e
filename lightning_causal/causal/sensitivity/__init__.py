"""Global sensitivity: Sobol' indices, input samplers and intrinsic causal contributions (ICC)."""

from lightning_causal.causal.sensitivity.icc import (
    ICCResult,
    intrinsic_causal_contributions,
    shapley_weights,
)
from lightning_causal.causal.sensitivity.samplers import (
    ClassProbability,
    EmpiricalMarginals,
    GaussianCopula,
    IndependentNormal,
    UniformCube,
    class_probability,
)
from lightning_causal.causal.sensitivity.sobol import (
    ConstantOutputWarning,
    InverseCDFSampler,
    SobolResult,
    sobol_indices,
)

__all__ = [
    "ClassProbability",
    "ConstantOutputWarning",
    "EmpiricalMarginals",
    "GaussianCopula",
    "ICCResult",
    "IndependentNormal",
    "InverseCDFSampler",
    "SobolResult",
    "UniformCube",
    "class_probability",
    "intrinsic_causal_contributions",
    "shapley_weights",
    "sobol_indices",
]
