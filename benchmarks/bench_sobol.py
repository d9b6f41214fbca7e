"""Sobol' indices benchmark: lightning_causal against SALib, and the cost of a SobolAudit.

    .venv/bin/python benchmarks/bench_sobol.py [--repeats 5] [--seeds 50] [--threads 1]

1. ``sobol_indices`` vs SALib (``SALib.sample.sobol.sample`` + evaluate + ``SALib.analyze.sobol.analyze``,
   first and total order, 100 bootstrap resamples, same N, same function, scrambled Sobol' points
   for both). Functions with analytic indices: Ishigami (a=7, b=0.1, D=3) and Sobol's G-function
   (D=8, a = 0, 1, 4.5, 9, 99, 99, 99, 99). Time: median over ``--repeats`` after a warm-up.
   Error: max |estimate - analytic| over S and ST, mean and median over ``--seeds`` scrambles
   (the error distribution is heavy-tailed: use many seeds before comparing means).
   Target: time <= 0.5x SALib's with errors no larger than SALib's. One torch thread by default:
   SALib's NumPy work is single-threaded, and on a shared machine extra threads only contend.
2. ``SobolAudit(n=1024, patch_size=2)`` (16 patches, (16 + 2) * 1024 forward rows) on a LeNet-style
   CNN trained on scikit-learn's digits (8x8), probe of 256 validation digits, in units of one
   training epoch (plain PyTorch loop, 1,437 images, batch 64, Adam).
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from SALib.analyze import sobol as salib_analyze  # noqa: E402
from SALib.sample import sobol as salib_sample  # noqa: E402

from benchmarks._timing import median_time  # noqa: E402
from lightning_causal.audits.base import Probe  # noqa: E402
from lightning_causal.audits.sobol import SobolAudit  # noqa: E402
from lightning_causal.causal.samplers import UniformCube  # noqa: E402
from lightning_causal.causal.sobol import sobol_indices  # noqa: E402

G_A = np.array([0.0, 1.0, 4.5, 9.0, 99.0, 99.0, 99.0, 99.0])


def ishigami_np(x: np.ndarray) -> np.ndarray:
    return np.sin(x[:, 0]) + 7.0 * np.sin(x[:, 1]) ** 2 + 0.1 * x[:, 2] ** 4 * np.sin(x[:, 0])


def ishigami_t(x: torch.Tensor) -> torch.Tensor:
    return torch.sin(x[:, 0]) + 7.0 * torch.sin(x[:, 1]) ** 2 + 0.1 * x[:, 2] ** 4 * torch.sin(x[:, 0])


def gfun_np(x: np.ndarray) -> np.ndarray:
    return np.prod((np.abs(4 * x - 2) + G_A) / (1 + G_A), axis=1)


def gfun_t(x: torch.Tensor) -> torch.Tensor:
    a = torch.as_tensor(G_A, dtype=x.dtype)
    return ((4 * x - 2).abs() + a).div(1 + a).prod(dim=1)


def gfun_analytic() -> tuple[np.ndarray, np.ndarray]:
    v = 1 / (3 * (1 + G_A) ** 2)
    total_var = np.prod(1 + v) - 1
    return v / total_var, v * np.prod(1 + v) / (1 + v) / total_var


ISHIGAMI_S, ISHIGAMI_ST = np.array([0.3139, 0.4424, 0.0]), np.array([0.5576, 0.4424, 0.2437])
FUNCTIONS = {
    "Ishigami (D=3)": (ishigami_np, ishigami_t, [[-math.pi, math.pi]] * 3, (ISHIGAMI_S, ISHIGAMI_ST)),
    "G-function (D=8)": (gfun_np, gfun_t, [[0.0, 1.0]] * 8, gfun_analytic()),
}




def _error(s1, st, truth) -> float:
    return float(max(np.abs(np.asarray(s1) - truth[0]).max(), np.abs(np.asarray(st) - truth[1]).max()))


def compare_salib(name: str, n: int, repeats: int, seeds: int) -> dict:
    f_np, f_t, bounds, truth = FUNCTIONS[name]
    d = len(bounds)
    problem = {"num_vars": d, "names": [f"x{i}" for i in range(d)], "bounds": bounds}
    lo, hi = [b[0] for b in bounds], [b[1] for b in bounds]
    cube = UniformCube(d, lo, hi)

    def salib(seed: int = 0):
        x = salib_sample.sample(problem, n, calc_second_order=False, seed=seed)
        return salib_analyze.analyze(problem, f_np(x), calc_second_order=False, num_resamples=100, seed=seed + 1)

    def ours(seed: int = 0):
        return sobol_indices(f_t, cube, n=n, n_bootstrap=100, seed=seed)

    t_salib, t_ours = median_time(salib, repeats), median_time(ours, repeats)
    err_salib = [_error(r["S1"], r["ST"], truth) for r in (salib(s) for s in range(seeds))]
    err_ours = [_error(r.first, r.total, truth) for r in (ours(s) for s in range(seeds))]
    return {"function": name, "N": n, "evals": (d + 2) * n, "salib_s": t_salib, "ours_s": t_ours,
            "ratio": t_ours / t_salib, "err_salib": statistics.mean(err_salib), "err_ours": statistics.mean(err_ours),
            "med_salib": statistics.median(err_salib), "med_ours": statistics.median(err_ours)}


class LeNet(nn.Module):
    """LeNet-style CNN for 1x8x8 digits (defined here so the benchmark is self-contained)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, padding=1)
        self.conv2 = nn.Conv2d(16, 32, 3, padding=1)
        self.fc1 = nn.Linear(32 * 2 * 2, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        return self.fc2(F.relu(self.fc1(x.flatten(1))))


def _digits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(data.target)
    perm = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    return x[perm[360:]], y[perm[360:]], x[perm[:360]], y[perm[:360]]


def audit_cost(n: int, epochs: int) -> dict:
    torch.manual_seed(0)
    xtr, ytr, xval, yval = _digits()
    model = LeNet()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def epoch() -> None:
        model.train()
        for i in range(0, len(ytr), 64):
            opt.zero_grad()
            F.cross_entropy(model(xtr[i : i + 64]), ytr[i : i + 64]).backward()
            opt.step()

    epoch_times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        epoch()
        epoch_times.append(time.perf_counter() - t0)
    t_epoch = statistics.median(epoch_times[1:])
    acc = float((model.eval()(xval).argmax(1) == yval).float().mean())
    audit, probe = SobolAudit(n=n, patch_size=2, target=3), Probe(xval[:256])
    t_audit = median_time(lambda: audit.run(model, probe), 3)
    result = audit.run(model, probe)
    return {"n": n, "groups": result.meta["groups"], "rows": result.meta["n_evaluations"], "epoch_s": t_epoch,
            "audit_s": t_audit, "epochs": t_audit / t_epoch, "val_acc": acc,
            "top_patch": result.tables["indices"][0]["group"], "top_ST": result.tables["indices"][0]["ST"]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--seeds", type=int, default=50)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (NumPy/SALib use one)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}\n")
    print(f"Errors: max |estimate - analytic| over S and ST; mean (median) over {args.seeds} scrambles.\n")
    print("| function | N | evaluations | SALib (s) | ours (s) | ours / SALib | error SALib | error ours |")
    print("|---|---|---|---|---|---|---|---|")
    for name in FUNCTIONS:
        for n in (2**10, 2**12, 2**14):
            r = compare_salib(name, n, args.repeats, args.seeds)
            print(f"| {r['function']} | {r['N']} | {r['evals']} | {r['salib_s']:.4f} | {r['ours_s']:.4f} | "
                  f"{r['ratio']:.2f}x | {r['err_salib']:.4f} ({r['med_salib']:.4f}) | {r['err_ours']:.4f} ({r['med_ours']:.4f}) |")
    print("\n| SobolAudit n | patches | forward rows | one epoch (s) | audit (s) | audit in epochs | val acc | top patch (ST) |")
    print("|---|---|---|---|---|---|---|---|")
    for n in (256, 1024):
        r = audit_cost(n, epochs=6)
        print(f"| {r['n']} | {r['groups']} | {r['rows']} | {r['epoch_s']:.3f} | {r['audit_s']:.3f} | "
              f"{r['epochs']:.2f} | {r['val_acc']:.3f} | {r['top_patch']} ({r['top_ST']:.3f}) |")


if __name__ == "__main__":
    main()
