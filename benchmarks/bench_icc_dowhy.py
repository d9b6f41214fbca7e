"""Intrinsic causal contributions: ``intrinsic_causal_contributions`` against DoWhy's
``gcm.intrinsic_causal_influence`` on the same fitted SCM and the same network.

DoWhy is not a dependency of lightning_causal (it pulls cvxpy, numba, statsmodels, ...); run this
in an environment that has both, e.g.::

    python3 -m venv /tmp/dv && /tmp/dv/bin/pip install torch==2.13.0 dowhy lightning captum torchmetrics tensorboard matplotlib
    PYTHONPATH=. /tmp/dv/bin/python benchmarks/bench_icc_dowhy.py [--seeds 5]

Data SCM (linear Gaussian, 4 nodes): ``X1 = N1``, ``X2 = 0.8 X1 + N2``, ``X3 = -0.5 X1 + 0.6 X2 + N3``,
``X4 = N4``, noise scales 1, 0.6, 0.5, 0.8; 20,000 rows. Both libraries fit the same structure on the
same rows (least squares, Gaussian noises). The model ``Y = f(X)`` is (a) linear, where the ICC of
the fitted SCM is analytic (``c_j^2 σ_j^2 / Σ_k c_k^2 σ_k^2``, ``c = (I − B)^{-T} w``, ``B`` the fitted
coefficients), and (b) a seeded MLP 4-16-1 (tanh). In DoWhy ``Y`` is a sink node whose mechanism is the network with zero noise
(``prediction_model="exact"``, variance as the attribution), so that ``DoWhy_j = Var(Y) · ICC^Sh_j``
(``docs/methods.md``); both are reported as shares of ``Var(Y)``.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import networkx as nx
import numpy as np
import pandas as pd
import torch
from dowhy import gcm
from scipy import stats
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from lightning_causal.causal.scm.scm import AdditiveNoiseSCM  # noqa: E402
from lightning_causal.causal.sensitivity.icc import intrinsic_causal_contributions  # noqa: E402

COLUMNS = ["x1", "x2", "x3", "x4"]
PARENTS = {"x2": ["x1"], "x3": ["x1", "x2"]}
W = {"x2": {"x1": 0.8}, "x3": {"x1": -0.5, "x2": 0.6}}
SCALES = [1.0, 0.6, 0.5, 0.8]
LINEAR_W = torch.tensor([1.0, -1.0, 2.0, 0.5])


def make_data(n: int, seed: int) -> torch.Tensor:
    truth = AdditiveNoiseSCM.linear(COLUMNS, W, noise_std=SCALES)
    return truth.sample(n, torch.Generator().manual_seed(seed))


def analytic_linear_icc(scm: AdditiveNoiseSCM) -> np.ndarray:
    """ICC of ``Y = w·X`` under the *fitted* linear SCM: ``Y = c·N`` with ``c = (I − B)^{-T} w``,
    ``ICC_j = c_j^2 σ_j^2 / Σ_k c_k^2 σ_k^2`` (first = total = Shapley)."""
    b = np.zeros((4, 4))  # b[child, parent]
    for j, c in enumerate(COLUMNS):
        for p, w in zip(scm.parents.get(c, []), scm.functions[j].weight.tolist()):
            b[j, COLUMNS.index(p)] = w
    c = np.linalg.solve((np.eye(4) - b).T, LINEAR_W.numpy())
    v = c**2 * scm.noise_std.double().numpy() ** 2
    return v / v.sum()


class _Network(gcm.ml.PredictionModel):
    """DoWhy prediction model that is the network itself (nothing to fit)."""

    def __init__(self, model: nn.Module) -> None:
        self.model = model

    def fit(self, X: np.ndarray, Y: np.ndarray) -> None:  # noqa: N803 (DoWhy's names)
        pass

    def predict(self, X: np.ndarray) -> np.ndarray:  # noqa: N803
        with torch.no_grad():
            return self.model(torch.as_tensor(X, dtype=torch.float32)).numpy().reshape(-1, 1)

    def clone(self) -> _Network:
        return _Network(self.model)


def dowhy_icc(model: nn.Module, data: torch.Tensor, seed: int, randomization: int, baseline: int) -> np.ndarray:
    gcm.util.general.set_random_seed(seed)
    graph = nx.DiGraph([(p, c) for c, ps in PARENTS.items() for p in ps] + [(c, "y") for c in COLUMNS])
    scm = gcm.StructuralCausalModel(graph)
    for c in COLUMNS:
        if c in PARENTS:
            scm.set_causal_mechanism(c, gcm.AdditiveNoiseModel(gcm.ml.create_linear_regressor(), gcm.ScipyDistribution(stats.norm)))
        else:
            scm.set_causal_mechanism(c, gcm.ScipyDistribution(stats.norm))
    scm.set_causal_mechanism("y", gcm.AdditiveNoiseModel(_Network(model), gcm.EmpiricalDistribution()))
    frame = pd.DataFrame(data.numpy(), columns=COLUMNS)
    with torch.no_grad():
        frame["y"] = model(data).numpy().reshape(-1)
    gcm.fit(scm, frame)
    icc = gcm.intrinsic_causal_influence(scm, "y", prediction_model="exact", num_samples_randomization=randomization,
                                         num_samples_baseline=baseline)
    values = np.array([icc[c] for c in COLUMNS])
    return values / (values.sum() + icc["y"])  # shares of Var(Y); y's own (zero) noise included


def ours_icc(model: nn.Module, data: torch.Tensor, seed: int, n: int):
    scm = AdditiveNoiseSCM(COLUMNS, PARENTS).fit(data)
    return intrinsic_causal_contributions(model, scm, n=n, seed=seed)


def networks() -> dict[str, nn.Module]:
    linear = nn.Linear(4, 1, bias=False)
    linear.weight.data = LINEAR_W.unsqueeze(0)
    torch.manual_seed(0)
    mlp = nn.Sequential(nn.Linear(4, 16), nn.Tanh(), nn.Linear(16, 1))
    return {"linear": linear.eval(), "MLP 4-16-1 (tanh)": mlp.eval()}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--n", type=int, default=65536, help="our noise samples per block")
    parser.add_argument("--randomization", type=int, default=1000, help="DoWhy's num_samples_randomization")
    parser.add_argument("--baseline", type=int, default=1000, help="DoWhy's num_samples_baseline")
    args = parser.parse_args()
    torch.set_num_threads(1)
    gcm.config.disable_progress_bars()
    data = make_data(20_000, seed=0)
    print(f"DoWhy {__import__('dowhy').__version__}; ours n = {args.n} ({2 ** 4} Shapley blocks); DoWhy "
          f"{args.randomization} x {args.baseline} per subset; mean (sd) over {args.seeds} seeds; shares of Var(Y).\n")
    print("| model | node | analytic | ours Shapley ICC | ours first | ours total | DoWhy ICC | ours s | DoWhy s |")
    print("|---|---|---|---|---|---|---|---|---|")
    truth = analytic_linear_icc(AdditiveNoiseSCM(COLUMNS, PARENTS).fit(data))
    for name, model in networks().items():
        ours, theirs, t_ours, t_theirs = [], [], [], []
        for seed in range(args.seeds):
            t0 = time.perf_counter()
            ours.append(ours_icc(model, data, seed, args.n))
            t_ours.append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            theirs.append(dowhy_icc(model, data, seed, args.randomization, args.baseline))
            t_theirs.append(time.perf_counter() - t0)
        sh = np.stack([r.shapley.numpy() for r in ours])
        first, total = np.stack([r.first.numpy() for r in ours]), np.stack([r.total.numpy() for r in ours])
        dw = np.stack(theirs)

        def cell(v: np.ndarray, j: int) -> str:
            return f"{v[:, j].mean():.4f} ({v[:, j].std(ddof=1):.4f})"

        for j, c in enumerate(COLUMNS):
            exact = f"{truth[j]:.4f}" if name == "linear" else "–"
            timing = (f"{statistics.median(t_ours):.2f} | {statistics.median(t_theirs):.2f}" if j == 0 else " | ")
            print(f"| {name} | {c} | {exact} | {cell(sh, j)} | {cell(first, j)} | {cell(total, j)} | {cell(dw, j)} | {timing} |")


if __name__ == "__main__":
    main()
