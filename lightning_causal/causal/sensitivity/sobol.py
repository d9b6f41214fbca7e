"""Variance-based global sensitivity: Sobol' indices with bootstrap confidence intervals.

For ``Y = f(X)`` with independent inputs (or independent groups of inputs) ``X_1 .. X_G``:

.. math::
    S_g = \\frac{\\mathrm{Var}(E[Y \\mid X_g])}{\\mathrm{Var}(Y)}, \\qquad
    S_{T,g} = \\frac{E[\\mathrm{Var}(Y \\mid X_{\\sim g})]}{\\mathrm{Var}(Y)}.

Estimated with the pick-freeze design of Saltelli (2002): two independent sample matrices ``A``
and ``B`` (``n`` rows each) and, per group ``g``, ``AB_g`` = ``A`` with the columns of group ``g``
taken from ``B``; ``(G + 2) n`` evaluations of ``f`` in all, batched and chunked.
First order by Saltelli et al. (2010), total order by Jansen (1999), both normalised by the
variance of ``[f(A), f(B)]`` after centring every output on the overall mean (as SALib does):

.. math::
    \\hat S_g = \\frac{\\tfrac1n \\sum_j f(B)_j (f(AB_g)_j - f(A)_j)}{\\hat V}, \\qquad
    \\hat S_{T,g} = \\frac{\\tfrac1{2n} \\sum_j (f(A)_j - f(AB_g)_j)^2}{\\hat V}.

Confidence intervals: bootstrap over the ``n`` rows (Archer, Saltelli & Sobol' 1997), normal
approximation ``estimate ± z · sd`` like SALib; all resamples at once as a matrix product of
multinomial counts with the per-row terms (no Python loop over resamples). The rows of one
scrambled Sobol' net are not independent draws, so there the bootstrap overstates the error
(4-14x for a smooth function at ``n = 256``); ``replicates=K`` draws ``K`` independent nets of
``n / K`` points instead and gives ``estimate ± t_{K-1} · sd_K / √K`` (the estimate of all
``n`` rows, ``sd_K`` over the nets' own estimates; randomised QMC, Owen 1997), at the level asked, for a larger error of the estimate itself.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from lightning_causal.causal.engine.batching import (
    check_max_batch_size,
    rows_per_pass,
)
from lightning_causal.causal.engine.checks import check_float, check_int
from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.state import audit_mode, model_devices
from lightning_causal.causal.engine.user_frame import outside_package
from lightning_causal.causal.sensitivity.pick_freeze import (
    ConstantOutputWarning,
    bootstrap_counts,
    check_func_noise,
    evaluate_checked,
    is_constant,
    make_generator,
    model_kept,
    normal_ci,
    pick_freeze_indices,
    refuse_traced_func,
    scrambled_sobol,
    user_func,
)
from lightning_causal.causal.structure.significance import p_values

__all__ = ["ConstantOutputWarning", "SobolResult", "InverseCDFSampler", "sobol_indices"]

#: Largest dimension of :class:`torch.quasirandom.SobolEngine` (``2 D`` must not exceed it).
_SOBOL_MAX_DIM = 21201
#: Default rows per evaluation chunk, capped so that one chunk of inputs holds <= 2**24 elements.
_DEFAULT_ROWS = 4096
_MAX_ELEMENTS = 2**24


@runtime_checkable
class InverseCDFSampler(Protocol):
    """A distribution of independent inputs given by its inverse CDF on the unit cube.

    ``dim`` is the number of columns ``D``; ``icdf(u)`` maps ``u`` ``[n, D]`` in ``(0, 1)`` to inputs
    ``[n, D]`` such that column ``j`` depends on ``u_{:, j}`` (and, for dependent inputs, on earlier
    columns only; see :class:`~lightning_causal.causal.sensitivity.samplers.GaussianCopula`).

    Examples:
        >>> import torch
        >>> from lightning_causal.causal import UniformCube
        >>> sampler = UniformCube(3)
        >>> isinstance(sampler, InverseCDFSampler), sampler.dim
        (True, 3)
        >>> sampler.icdf(torch.full((2, 3), 0.25, dtype=torch.float64))
        tensor([[0.2500, 0.2500, 0.2500],
                [0.2500, 0.2500, 0.2500]], dtype=torch.float64)
    """

    dim: int

    def icdf(self, u: Tensor) -> Tensor: ...


Sampler = InverseCDFSampler | Callable[[int, torch.Generator], Tensor]


@dataclass
class SobolResult:
    """First- and total-order Sobol' indices of ``G`` groups with bootstrap confidence intervals.

    Attributes:
        first: first-order indices ``S_g`` ``[G]`` (float64).
        total: total-order indices ``S_T,g`` ``[G]``.
        first_ci: ``[G, 2]`` lower and upper bounds at level ``confidence`` (NaN without bootstrap).
        total_ci: ``[G, 2]``.
        names: one name per group.
        n: base sample size (rows of ``A`` and ``B``) actually used.
        n_evaluations: evaluations of ``func`` (``(G + 2) n``).
        variance: ``Var(Y)`` estimated from ``f(A)`` and ``f(B)``.
        confidence: level of the intervals.
        method: ``"sobol"`` (scrambled Sobol' points) or ``"monte-carlo"``.

    Examples:
        >>> from lightning_causal.causal import UniformCube, sobol_indices
        >>> r = sobol_indices(lambda x: x[:, 0] + 2 * x[:, 1], UniformCube(2), n=1024)
        >>> r.names, r.n, r.n_evaluations  # (G + 2) n = 4 * 1024
        (['0', '1'], 1024, 4096)
        >>> round(r.variance, 2), r.first_ci.shape  # Var(U_1 + 2 U_2) = 1/12 + 4/12
        (0.42, torch.Size([2, 2]))
    """

    first: Tensor
    total: Tensor
    first_ci: Tensor
    total_ci: Tensor
    names: list[str]
    n: int
    n_evaluations: int
    variance: float
    confidence: float = 0.95
    method: str = "sobol"

    def to_rows(self) -> list[dict[str, Any]]:
        """One row per group: ``group`` (its index), ``feature`` (its name in :attr:`names`), ``S``, ``S_ci``, ``ST``,
        ``ST_ci`` (plain floats): named as the audits' tables name an input group.

        Examples:
            >>> from lightning_causal.causal import UniformCube, sobol_indices
            >>> row = sobol_indices(lambda x: x[:, 0] + 2 * x[:, 1], UniformCube(2), n=256, names=["a", "b"]).to_rows()[1]
            >>> row["group"], row["feature"], round(row["ST"], 1)
            (1, 'b', 0.8)
        """
        return [
            {"group": g, "feature": name, "S": float(self.first[g]), "S_ci": self.first_ci[g].tolist(),
             "ST": float(self.total[g]), "ST_ci": self.total_ci[g].tolist()}
            for g, name in enumerate(self.names)
        ]

    def to_dict(self) -> dict[str, Any]:
        """JSON-able dictionary: every field, tensors as (nested) lists."""
        return {k: v.tolist() if isinstance(v, Tensor) else v for k, v in vars(self).items()}


def _check_groups(groups: Tensor | Sequence[int] | None, d: int) -> Tensor:
    """Group id per column ``[D]``, ids ``0 .. G-1`` each used at least once."""
    if groups is None:
        return torch.arange(d)
    if not isinstance(groups, Tensor):
        if isinstance(groups, (str, bytes)) or not isinstance(groups, Sequence):
            raise TypeError(f"Expected argument `groups` to be a tensor or a sequence of ints but got {type(groups)}")
        groups = torch.tensor(list(groups))
    if groups.is_floating_point() or groups.dtype == torch.bool:
        raise TypeError(f"Expected argument `groups` to hold integer group ids but got dtype {groups.dtype}")
    groups = groups.reshape(-1).long().cpu()
    if groups.numel() != d:
        raise ValueError(f"Expected argument `groups` to have one id per input column ({d}) but got {groups.numel()}")
    if (groups < 0).any():
        raise ValueError("Expected argument `groups` to hold non-negative group ids but found negatives")
    used = torch.bincount(groups)
    if (used == 0).any():
        missing = torch.nonzero(used == 0).flatten().tolist()[:8]
        raise ValueError(f"Expected argument `groups` to use every id 0..{used.numel() - 1} but ids {missing} are empty")
    return groups


def _check_matrix(x: Any, n: int, d: int | None, what: str) -> Tensor:
    if not isinstance(x, Tensor):
        raise TypeError(f"Expected {what} to return a tensor but got {type(x)}")
    if x.dim() != 2 or x.shape[0] != n or (d is not None and x.shape[1] != d):
        want = f"[{n}, {d}]" if d is not None else f"[{n}, D]"
        raise ValueError(f"Expected {what} to return a tensor of shape {want} but got {list(x.shape)}")
    if not torch.isfinite(x).all():
        raise ValueError(f"Expected {what} to return finite inputs but it returned NaN or infinity")
    return x


def saltelli_matrices(
    sampler: Sampler, n: int, generator: torch.Generator, replicates: int = 1
) -> tuple[Tensor, Tensor, int, str, Callable[[Tensor], Tensor] | None]:
    """Base matrices ``A`` and ``B`` ``[n, D]`` and the map from their rows to inputs.

    With ``sampler.icdf``: scrambled Sobol' points ``u`` (``n`` rounded up to a power of two, with
    a warning), ``A``/``B`` are the two halves of ``u`` and the map is the checked ``icdf``, so the
    pick-freeze mixing happens on the unit cube (what makes dependent samplers such as
    :class:`~lightning_causal.causal.sensitivity.samplers.GaussianCopula` meaningful). With a callable sampler:
    two draws, mixed as they are (map ``None``).

    Returns ``(A, B, n, method, transform)``.

    Args:
        sampler: an :class:`InverseCDFSampler` or a callable ``(n, generator) -> [n, D]`` draws.
        n: the base sample size.
        generator: the ``torch.Generator`` of the draws (scrambling or sampling).
        replicates: independent scrambles, each of ``n / replicates`` consecutive rows (Sobol'
            points only; Monte Carlo rows are independent whatever their blocks).
    """
    if isinstance(sampler, InverseCDFSampler):
        d = check_int("sampler.dim", sampler.dim, minimum=1)
        if n & (n - 1):
            rounded = 1 << (n - 1).bit_length()
            warnings.warn(
                f"`n` = {n} is not a power of two; scrambled Sobol' points keep their balance only for "
                f"powers of two, so `n` was rounded up to {rounded}",
                UserWarning,
                stacklevel=outside_package(),
            )
            n = rounded
        if 2 * d <= _SOBOL_MAX_DIM:
            u = torch.cat([scrambled_sobol(n // replicates, 2 * d, generator) for _ in range(replicates)])
            method = "sobol"
        else:  # SobolEngine has at most 21201 dimensions
            u, method = torch.rand(n, 2 * d, generator=generator, dtype=torch.float64), "monte-carlo"
            u = u.clamp(2.0**-32, 1.0 - 2.0**-32)

        def transform(v: Tensor) -> Tensor:
            return _check_matrix(sampler.icdf(v), v.shape[0], d, "`sampler.icdf`")

        return u[:, :d], u[:, d:], n, method, transform
    if not callable(sampler):
        raise TypeError(
            "Expected argument `sampler` to have `dim` and `icdf(u)` or to be a callable (n, generator) -> "
            f"Tensor [n, D] but got {type(sampler)}"
        )
    a = _check_matrix(sampler(n, generator), n, None, "`sampler`")
    b = _check_matrix(sampler(n, generator), n, a.shape[1], "`sampler`")
    return a, b, n, "monte-carlo", None


def module_func(func: Callable[[Tensor], Tensor], sample_shape: Sequence[int] | None = None) -> Callable[[Tensor], Tensor]:
    """``func`` itself, or for an ``nn.Module`` its output on the rows cast to its dtype and moved to
    its device (the samplers draw float64, on the CPU unless built from data elsewhere; the output
    comes back to the rows' device) and reshaped to ``sample_shape`` (a sampler's ``sample_shape``: images drawn as
    flat rows), in eval mode with every submodule's mode restored after each call: a module in
    train mode would otherwise update its BatchNorm statistics and apply dropout to the samples.

    Args:
        func: a callable ``[M, D] -> [M]`` or an ``nn.Module``.
        sample_shape: one sample's shape the rows are reshaped to (only when it has more than one
            dimension); ``None``: as they are.
    """
    if not isinstance(func, nn.Module):
        return user_func(func, "the sampler's rows (this package's samplers draw float64)")
    forward = Forward(func)
    param = next((p for p in func.parameters() if p.is_floating_point()), None)
    shape = tuple(int(v) for v in sample_shape) if sample_shape is not None and len(sample_shape) > 1 else None

    def call(x: Tensor) -> Tensor:
        home = x.device
        if param is not None:  # a float64 or bf16 model takes its dtype, a CUDA model its device
            x = x.to(device=param.device, dtype=param.dtype if x.is_floating_point() else x.dtype)
        if shape is not None:
            x = x.reshape(x.shape[0], *shape)
        with audit_mode(forward.model, rng=False):  # sobol_indices restores the RNG once: each call draws its own noise
            return forward(x).to(home)

    return call


def check_sobol_options(n: int, n_bootstrap: int, confidence: float, max_batch_size: int | None, replicates: int = 1) -> None:
    """Validate the options of :func:`sobol_indices` (each as documented there).

    Args:
        n: the base sample size (an integer >= 2).
        n_bootstrap: bootstrap resamples: 0 or an integer >= 2.
        confidence: the level of the intervals, in ``(0, 1)``.
        max_batch_size: rows per call, ``None`` or an integer >= 1.
        replicates: 1, or a power of two >= 2 with at least two rows per replicate.
    """
    check_int("n", n, minimum=2)
    check_int("replicates", replicates, minimum=1)
    if replicates > 1 and (replicates & (replicates - 1) or 2 * replicates > n):
        raise ValueError(f"Expected argument `replicates` to be 1 or a power of two with at least two rows each (n = {n}) "
                         f"but got {replicates}")
    if isinstance(n_bootstrap, bool) or not isinstance(n_bootstrap, int) or n_bootstrap < 0 or n_bootstrap == 1:
        raise ValueError(f"Expected argument `n_bootstrap` to be 0 (no intervals) or an int >= 2 but got {n_bootstrap!r}")
    check_float("confidence", confidence, minimum=0.0, maximum=1.0, open_min=True, open_max=True)
    check_max_batch_size(max_batch_size)


def sobol_indices(
    func: Callable[[Tensor], Tensor],
    sampler: Sampler,
    n: int = 1024,
    groups: Tensor | Sequence[int] | None = None,
    *,
    n_bootstrap: int = 100,
    max_batch_size: int | None = None,
    seed: int = 0,
    generator: torch.Generator | None = None,
    confidence: float = 0.95,
    names: Sequence[str] | None = None,
    replicates: int = 1,
) -> SobolResult:
    """First-order (Saltelli et al. 2010) and total-order (Jansen 1999) Sobol' indices of groups.

    .. math::
        S_g = \\frac{\\mathrm{Var}(E[f(X) \\mid X_g])}{\\mathrm{Var} f(X)}, \\quad
        S_{T,g} = 1 - \\frac{\\mathrm{Var}(E[f(X) \\mid X_{\\sim g}])}{\\mathrm{Var} f(X)}

    Args:
        func: ``[M, D] -> [M]`` (or ``[M, 1]``); called on chunks of at most ``max_batch_size`` rows
            under ``torch.no_grad()``. The rows are float64 (the samplers draw in double precision; the
            draws of :class:`EmpiricalMarginals` of integer data are codes in that dtype):
            :func:`~lightning_causal.causal.sensitivity.samplers.class_probability` casts them to the
            model's dtype (and reshapes them); in a ``func`` of your own, cast them:
            ``lambda x: model(x.float())[:, 1]``. A one-output ``nn.Module`` may be passed as it
            is: it gets the rows in its own dtype, reshaped to the sampler's ``sample_shape`` (the
            images of :class:`EmpiricalMarginals`), and runs in eval mode (modes restored, and the generators
            it holds, ``self.gen``, as :func:`class_probability`'s model); a ``func`` of your own runs the model as
            it is (its mode; its own generators not put back).
        sampler: independent inputs; an object with ``dim`` and ``icdf(u)`` (scrambled Sobol' points,
            quasi-Monte Carlo; ``n`` is rounded up to a power of two with a warning), or a callable
            ``(n, generator) -> [n, D]`` (plain Monte Carlo, called twice for ``A`` and ``B``).
        n: base sample size; the cost is ``(G + 2) n`` evaluations of ``func``.
        groups: group id per column ``[D]`` (or any shape with ``D`` elements, e.g. a patch mask);
            the columns of a group are swapped together. ``None``: one group per column.
        n_bootstrap: bootstrap resamples for the intervals (0: none, intervals NaN).
        max_batch_size: rows per call of ``func`` (default 4096, fewer for wide inputs; for an
            ``nn.Module`` also no more than the engine's activation budget allows,
            :func:`~lightning_causal.causal.engine.batching.rows_per_pass`; a ``func`` of your own
            that runs a large model should pass it).
        seed: seeds a private generator (the global RNG is never used) unless ``generator`` is given.
        generator: a ``torch.Generator`` for the scrambling, Monte Carlo draws and bootstrap.
        confidence: level of the intervals.
        names: one name per group (default ``"0"``, ``"1"``, ...).
        replicates: ``K``: intervals from ``K`` independent replicates of ``n / K`` rows (for an
            inverse-CDF sampler ``K`` independently scrambled nets; for a callable sampler
            consecutive blocks of ``n // K`` or ``n // K + 1`` rows), ``estimate ± t_{K-1} · sd / √K``
            with ``estimate`` that of all ``n`` rows and ``sd`` over the ``K`` replicates' own
            estimates, instead of the bootstrap (``n_bootstrap`` then only says whether to give
            intervals). 1 (default): one net and the bootstrap, whose intervals are too wide for
            Sobol' points (the rows of one net are no independent draws; ``y = x1 + 2 x2 + 4 x1 x3``
            at ``n = 256``: half-widths 4-14x the error, coverage 1.00), while ``K = 4`` covered at
            0.93-0.96 with 1.1-2.6x the error of one net of ``n`` points. A power of two, at most ``n / 2``.

    Returns:
        :class:`SobolResult`. A constant output gives zeros with a warning (as SALib).

    Raises:
        ValueError: bad ``n``/``n_bootstrap``/``confidence``/``groups``, a sampler output of the wrong
            shape or not finite, or non-finite outputs of ``func``.
        TypeError: a sampler that is neither an inverse-CDF object nor a callable.

    Examples:
        >>> from lightning_causal.causal import UniformCube
        >>> r = sobol_indices(lambda x: x[:, 0] + 2 * x[:, 1], UniformCube(2), n=1024)
        >>> [round(v, 2) for v in r.first.tolist()], [round(v, 2) for v in r.total.tolist()]
        ([0.2, 0.8], [0.2, 0.8])
    """
    check_sobol_options(n, n_bootstrap, confidence, max_batch_size, replicates)
    if not callable(func):
        raise TypeError(f"Expected argument `func` to be a callable [M, D] -> [M] (a model, or class_probability(model, c)) but got "
                        f"{type(func).__name__}")
    module = func if isinstance(func, nn.Module) else None
    func = module_func(func, getattr(sampler, "sample_shape", None))
    gen = make_generator(seed, generator)
    a, b, n, method, transform = saltelli_matrices(sampler, n, gen, replicates)
    ids = _check_groups(groups, a.shape[1])
    g = int(ids.max()) + 1
    names = check_group_names(names, g)
    select = torch.cat([torch.zeros(1, ids.numel(), dtype=torch.bool), torch.ones(1, ids.numel(), dtype=torch.bool),
                        ids.unsqueeze(0) == torch.arange(g).unsqueeze(1)])
    rows = max_batch_size or max(1, min(_DEFAULT_ROWS, _MAX_ELEMENTS // a.shape[1]))
    if max_batch_size is None and module is not None:  # a model: its activations, not its inputs, fill the memory
        example = a[:4] if transform is None else transform(a[:4])
        rows = min(rows, rows_per_pass(module, (example,), forward=lambda x, rows: func(x)))
    devices = model_devices(module) if module is not None else None
    with model_kept(func, module, devices):  # its state put back (its own generators); one block: an OOM retry said once
        what = "The Sobol' analysis (sobol_indices)"
        refuse_traced_func(func, module, what)
        noise = check_func_noise(func, a, rows, transform, devices)
        # every pass's first and last rows run apart too (a branch on the batch refused), then A's drawn rows
        y = evaluate_checked(func, a, b, select, rows=rows, transform=transform, noise=noise, model=module, what=what,
                             devices=devices)
    result = SobolResult(*_zero_result(g), names, n, int(y.numel()), 0.0, float(confidence), method)
    if is_constant(y, ["A", "B"] + [f"AB[{name}]" for name in names]):
        return result
    y = y - y.mean()  # indices are shift-invariant; centring removes the bias of non-centred outputs
    if replicates > 1:  # each replicate's rows, weighted to their mean: the replicates' own estimates
        block = torch.arange(n) * replicates // n  # a Monte Carlo n need not divide by K: blocks of n // K or n // K + 1 rows
        counts = torch.nn.functional.one_hot(block, replicates).T.double()
        counts *= n / counts.sum(1, keepdim=True)
    else:
        counts = bootstrap_counts(n, n_bootstrap, gen) if n_bootstrap else None
    first, total, first_boot, total_boot, var = pick_freeze_indices(y[0], y[1], y[2:], y[2:], counts=counts)
    result.first, result.total, result.variance = first, total, var
    interval = _replicate_ci if replicates > 1 else normal_ci
    result.first_ci = interval(first, first_boot if n_bootstrap else None, confidence)
    result.total_ci = interval(total, total_boot if n_bootstrap else None, confidence)
    return result


def _replicate_ci(estimate: Tensor, reps: Tensor | None, confidence: float) -> Tensor:
    """``estimate ± t_{K-1, (1+c)/2} · sd(reps) / √K`` as ``[G, 2]`` for ``K`` independent replicates'
    estimates ``reps [K, G]`` (Student's t quantile by bisection of its tail); NaN without replicates."""
    if reps is None or reps.shape[0] < 2:
        return torch.full((estimate.numel(), 2), float("nan"), dtype=torch.float64)
    k = reps.shape[0]
    half = _t_quantile(k - 1, confidence) * reps.std(dim=0, unbiased=True) / k**0.5
    return torch.stack([estimate - half, estimate + half], dim=1)


@functools.lru_cache(maxsize=64)
def _t_quantile(df: int, confidence: float) -> float:
    """``q`` with ``P(T_df >= q) = (1 - confidence) / 2``, by bisection (2.776 for 4 degrees of freedom at 0.95)
    in a bracket doubled until it holds ``q`` (6366 for 1 degree of freedom at 0.9999)."""

    def tail(q: float) -> float:
        return float(p_values(torch.tensor([q], dtype=torch.float64), "greater", df=df))

    lo, hi = 0.0, 1.0
    while tail(hi) > (1 - confidence) / 2:
        lo, hi = hi, 2.0 * hi
    for _ in range(60):
        mid = 0.5 * (lo + hi)
        if tail(mid) > (1 - confidence) / 2:
            lo = mid
        else:
            hi = mid
    return hi


def _zero_result(g: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    z = torch.zeros(g, dtype=torch.float64)
    return z, z.clone(), torch.zeros(g, 2, dtype=torch.float64), torch.zeros(g, 2, dtype=torch.float64)


def check_group_names(names: Sequence[str] | None, g: int) -> list[str]:
    """One name per group: ``names`` as strings, or ``"0"``, ``"1"``, ... when ``None``.

    Args:
        names: one name per group, or ``None``.
        g: the number of groups.
    """
    if names is None:
        return [str(i) for i in range(g)]
    names = [str(s) for s in names]
    if len(names) != g:
        raise ValueError(f"Expected argument `names` to have one name per group ({g}) but got {len(names)}")
    return names
