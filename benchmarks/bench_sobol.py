"""Sobol' indices benchmark: lightning_causal against SALib, and the cost of a SobolAudit.

    .venv/bin/python benchmarks/bench_sobol.py [--repeats 5] [--seeds 1000] [--threads 1] [--skip-audit]

1. ``sobol_indices`` vs SALib (``SALib.sample.sobol.sample`` + evaluate + ``SALib.analyze.sobol.analyze``,
   first and total order, 100 bootstrap resamples, same N, same function, scrambled Sobol' points
   for both). Functions with analytic indices: Ishigami (a=7, b=0.1, D=3) and Sobol's G-function
   (D=8, a = 0, 1, 4.5, 9, 99, 99, 99, 99). Time: median over ``--repeats`` after a warm-up.
   Error: max |estimate - analytic| over S and ST over ``--seeds`` scrambles of each (the error
   distribution is heavy-tailed: 50 scrambles moved the mean by up to 25%). SALib's errors come
   from SALib's exact design (``salib_design``: SciPy's scrambled points, checked equal to
   ``SALib.sample.sobol.sample``) and ``SALib.analyze.sobol.analyze``, so that 1,000 scrambles take
   minutes instead of SALib's Python sampling loop; the comparison is the ratio of mean errors with
   a 95% interval and a Mann-Whitney test of the two error samples.
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
from scipy.stats import mannwhitneyu, qmc  # noqa: E402

from benchmarks._timing import median_time  # noqa: E402
from lightning_causal.audits.base import Probe  # noqa: E402
from lightning_causal.audits.sobol import SobolAudit  # noqa: E402
from lightning_causal.causal.sensitivity.samplers import UniformCube  # noqa: E402
from lightning_causal.causal.sensitivity.sobol import sobol_indices  # noqa: E402

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


def salib_design(d: int, n: int, seed: int) -> np.ndarray:
    """``SALib.sample.sobol.sample(problem, n, calc_second_order=False, seed=seed)`` on the unit cube,
    built with NumPy instead of SALib's Python double loop: the halves ``A | B`` of SciPy's
    scrambled ``qmc.Sobol(2 d, seed=seed)``, rows ordered ``A, AB_1 .. AB_d, B`` per base point
    (checked against SALib's own sampler in :func:`compare_salib`)."""
    u = qmc.Sobol(2 * d, scramble=True, seed=seed).random(n)
    a, b = u[:, :d], u[:, d:]
    blocks = [a] + [np.where(np.arange(d) == j, b, a) for j in range(d)] + [b]
    return np.stack(blocks, 1).reshape(-1, d)


def _salib_error(problem, f_np, truth, lo, hi, n: int, seed: int) -> float:
    x = np.asarray(lo) + (np.asarray(hi) - np.asarray(lo)) * salib_design(problem["num_vars"], n, seed)
    # the point estimates do not depend on the resamples; 2 keeps SALib's bootstrap cheap
    r = salib_analyze.analyze(problem, f_np(x), calc_second_order=False, num_resamples=2, seed=seed + 1)
    return _error(r["S1"], r["ST"], truth)


def _mean_ratio_ci(ours: np.ndarray, ref: np.ndarray) -> tuple[float, float, float]:
    """Ratio of mean errors ``mean(ours) / mean(ref)`` with a 95% delta-method interval
    (independent samples)."""
    m1, m2 = ours.mean(), ref.mean()
    v1, v2 = ours.var(ddof=1) / len(ours), ref.var(ddof=1) / len(ref)
    ratio = m1 / m2
    half = 1.96 * ratio * math.sqrt(v1 / m1**2 + v2 / m2**2)
    return ratio, ratio - half, ratio + half


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
    for seed in range(2):  # the fast design is SALib's sample, exactly
        reference = salib_sample.sample(problem, n, calc_second_order=False, seed=seed)
        assert np.array_equal(reference, np.asarray(lo) + (np.asarray(hi) - np.asarray(lo)) * salib_design(d, n, seed))
    err_salib = np.array([_salib_error(problem, f_np, truth, lo, hi, n, s) for s in range(seeds)])
    err_ours = np.array([_error(r.first, r.total, truth) for r in (ours(s) for s in range(seeds))])
    ratio, low, high = _mean_ratio_ci(err_ours, err_salib)
    return {"function": name, "N": n, "evals": (d + 2) * n, "salib_s": t_salib, "ours_s": t_ours,
            "ratio": t_ours / t_salib, "salib": err_salib, "ours": err_ours, "err_ratio": (ratio, low, high),
            "p": mannwhitneyu(err_ours, err_salib).pvalue}


def _summary(e: np.ndarray) -> str:
    return f"{e.mean():.5f} ± {e.std(ddof=1) / math.sqrt(len(e)):.5f} / {np.median(e):.5f} / {np.quantile(e, 0.9):.5f}"


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
    parser.add_argument("--seeds", type=int, default=1000)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (NumPy/SALib use one)")
    parser.add_argument("--skip-audit", action="store_true", help="only the comparison with SALib")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    print(f"torch {torch.__version__}, threads {torch.get_num_threads()}\n")
    rows = [compare_salib(name, n, args.repeats, args.seeds) for name in FUNCTIONS for n in (2**10, 2**12, 2**14)]
    print("| function | N | evaluations | SALib (s) | ours (s) | ours / SALib |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['function']} | {r['N']} | {r['evals']} | {r['salib_s']:.4f} | {r['ours_s']:.4f} | {r['ratio']:.2f}x |")
    print(f"\nErrors: max |estimate - analytic| over S and ST, over {args.seeds} scrambles each "
          "(mean ± standard error / median / 90th percentile); mean-error ratio ours / SALib with a 95% interval; "
          "Mann-Whitney U p-value of the two error samples.\n")
    print("| function | N | SALib error | ours error | mean ratio [95% CI] | MWU p |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        ratio, low, high = r["err_ratio"]
        print(f"| {r['function']} | {r['N']} | {_summary(r['salib'])} | {_summary(r['ours'])} | "
              f"{ratio:.3f} [{low:.3f}, {high:.3f}] | {r['p']:.2f} |")
    pooled = np.array([r["ours"].mean() / r["salib"].mean() for r in rows])
    print(f"\nGeometric mean of the six mean-error ratios: {math.exp(np.log(pooled).mean()):.3f}")
    if args.skip_audit:
        return
    print("\n| SobolAudit n | patches | forward rows | one epoch (s) | audit (s) | audit in epochs | val acc | top patch (ST) |")
    print("|---|---|---|---|---|---|---|---|")
    for n in (256, 1024):
        r = audit_cost(n, epochs=6)
        print(f"| {r['n']} | {r['groups']} | {r['rows']} | {r['epoch_s']:.3f} | {r['audit_s']:.3f} | "
              f"{r['epochs']:.2f} | {r['val_acc']:.3f} | {r['top_patch']} ({r['top_ST']:.3f}) |")


if __name__ == "__main__":
    main()
