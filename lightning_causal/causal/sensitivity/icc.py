"""Intrinsic causal contributions (ICC) of the nodes of a data SCM to a model's output.

Inputs ``X = g(N)`` come from an additive-noise SCM with independent noises ``N_1 .. N_D`` (one per
node, ``scm.generate``). The network output ``Y = f(X) = f(g(N))`` is a deterministic function of the
noises, so its variance splits over the noises exactly as Sobol' indices split it over
independent inputs (Saha et al. 2025, "On Measuring Intrinsic Causal Attributions in Deep Neural
Networks"; Janzing et al. 2024, "Quantifying intrinsic causal contributions via structure
preserving interventions"):

.. math::
    \\mathrm{ICC}^{1}_j = \\frac{\\mathrm{Var}(E[Y \\mid N_j])}{\\mathrm{Var}\\,Y}, \\quad
    \\mathrm{ICC}^{T}_j = \\frac{E[\\mathrm{Var}(Y \\mid N_{\\sim j})]}{\\mathrm{Var}\\,Y}, \\quad
    \\mathrm{ICC}^{Sh}_j = \\sum_{T \\subseteq [D] \\setminus j} \\frac{|T|!\\,(D-|T|-1)!}{D!}
        \\bigl(v(T \\cup j) - v(T)\\bigr),\\; v(T) = \\frac{\\mathrm{Var}(E[Y \\mid N_T])}{\\mathrm{Var}\\,Y}.

The Shapley version (Owen 2014's Shapley effects of the noises) sums to 1 and lies between the
first- and total-order contributions. When every input is a root node, ``N_j = X_j - E X_j`` and the
contributions are the Sobol' indices of the inputs.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import torch
from torch import Tensor, nn

from lightning_causal.causal.engine.batching import rows_per_pass
from lightning_causal.causal.engine.checks import check_int
from lightning_causal.causal.engine.forward import Forward, OutputSpec
from lightning_causal.causal.engine.state import (
    audit_mode,
    gather_target,
    model_devices,
    resolve_target,
)
from lightning_causal.causal.engine.user_frame import outside_package
from lightning_causal.causal.sensitivity.pick_freeze import (
    bootstrap_counts,
    check_func_noise,
    evaluate_checked,
    is_constant,
    make_generator,
    model_kept,
    normal_ci,
    pick_freeze_indices,
    refuse_traced_func,
    user_func,
)
from lightning_causal.causal.sensitivity.sobol import (
    SobolResult,
    check_group_names,
    check_sobol_options,
    saltelli_matrices,
)

__all__ = ["ICCResult", "NoiseSCM", "intrinsic_causal_contributions", "shapley_weights"]

#: Exact Shapley values cost ``2^D n`` evaluations; beyond this many nodes, ask for groups.
MAX_SHAPLEY_NODES = 10
#: The most players :func:`shapley_weights` builds its ``[2^D, D]`` float64 matrix for (168 MB at 20).
MAX_SHAPLEY_WEIGHTS = 20


@runtime_checkable
class NoiseSCM(Protocol):
    """What ICC needs from an SCM (``AdditiveNoiseSCM`` provides it): independent noises and the
    structural equations applied to them."""

    columns: list[str]

    def sample_noise(self, n: int, generator: torch.Generator | None = None) -> Tensor: ...

    def generate(self, noise: Tensor) -> Tensor: ...


@dataclass
class ICCResult(SobolResult):
    """:class:`SobolResult` over the noises of the SCM's nodes, plus the Shapley-symmetrised ICC.

    Attributes:
        shapley: ``[D]`` Shapley ICC (sums to 1), or ``None`` when ``shapley=False``.
        shapley_ci: ``[D, 2]`` bootstrap intervals of ``shapley``.

    Examples:
        >>> import torch
        >>> class Roots:  # two independent standard-normal root nodes
        ...     columns = ["a", "b"]
        ...     def sample_noise(self, n, generator=None):
        ...         return torch.randn(n, 2, generator=generator)
        ...     def generate(self, noise):
        ...         return noise
        >>> r = intrinsic_causal_contributions(lambda x: x[:, 0] + 2 * x[:, 1], Roots(), n=1024)
        >>> r.names, r.shapley.shape, r.shapley_ci.shape, round(r.shapley.sum().item(), 6)
        (['a', 'b'], torch.Size([2]), torch.Size([2, 2]), 1.0)
    """

    shapley: Tensor | None = None
    shapley_ci: Tensor | None = None

    def to_rows(self) -> list[dict[str, Any]]:
        rows = super().to_rows()
        if self.shapley is not None and self.shapley_ci is not None:
            for j, row in enumerate(rows):
                row["shapley"] = float(self.shapley[j])
                row["shapley_ci"] = [float(v) for v in self.shapley_ci[j]]
        return rows


def shapley_weights(d: int) -> Tensor:
    """``W [2^D, D]`` with ``shapley = v @ W`` for a set function ``v`` over the ``2^D`` subsets
    (bit ``j`` of the row index = node ``j`` in the subset): ``W[s, j] = w(|s|-1)`` if ``j ∈ s``
    and ``-w(|s|)`` otherwise, ``w(k) = k! (D-k-1)! / D!``.

    Args:
        d: the number of nodes ``D`` (players), 1 to :data:`MAX_SHAPLEY_WEIGHTS` (the matrix holds
            ``2^D`` rows).

    Examples:
        >>> shapley_weights(2)
        tensor([[-0.5000, -0.5000],
                [ 0.5000, -0.5000],
                [-0.5000,  0.5000],
                [ 0.5000,  0.5000]], dtype=torch.float64)
    """
    check_int("d", d, minimum=1, maximum=MAX_SHAPLEY_WEIGHTS)
    members = _subsets(d)
    size = members.sum(1, keepdim=True).double()

    def w(k: Tensor) -> Tensor:
        k = k.clamp(0, d - 1)
        return torch.exp(torch.lgamma(k + 1) + torch.lgamma(d - k) - torch.lgamma(torch.tensor(d + 1.0, dtype=torch.float64)))

    return torch.where(members, w(size - 1), -w(size)).double()


def _pairs(d: int) -> tuple[Tensor, Tensor]:
    """``(without, with_j)`` ``[D, 2^(D-1)]``: for each node ``j`` the subsets ``T`` not holding it and ``T + j``
    (bit ``j`` of a subset's index = node ``j``)."""
    index = torch.arange(2**d)
    without = torch.stack([index[(index >> j) & 1 == 0] for j in range(d)])
    return without, without | (1 << torch.arange(d)).unsqueeze(1)


def _shapley(v: Tensor, same: Tensor | None = None) -> Tensor:
    """Shapley values ``[..., D]`` of set functions ``v [..., 2^D]`` (bit ``j`` of the index = node ``j``):
    ``sum_{T not holding j} w(|T|) (v(T + j) - v(T))``, the number ``v @ shapley_weights(D)`` gives, with the
    differences taken first. ``same`` ``[D, 2^(D-1)]`` marks the pairs ``(T, T + j)`` whose evaluations are
    identical: their difference is 0 exactly, whatever the round-off of the two estimates (a node the model
    ignores got 1e-16 from the weighted sum, and a bootstrap interval about as wide that left out the 0)."""
    d = (v.shape[-1] - 1).bit_length()
    without, with_j = _pairs(d)
    weights = shapley_weights(d).neg().T.gather(1, without)  # -W[T, j] = w(|T|) for T not holding j
    diff = v[..., with_j] - v[..., without]
    if same is not None:
        diff = diff.masked_fill(same, 0.0)
    return (diff * weights.to(v.dtype)).sum(-1)


def _subsets(d: int) -> Tensor:
    """All subsets of ``d`` nodes as a bool matrix ``[2^D, D]`` (row ``s`` = the bits of ``s``)."""
    return (torch.arange(2**d).unsqueeze(1) >> torch.arange(d)) & 1 == 1


def _model_func(model_or_func: Any, target: int | None, output_spec: OutputSpec = None) -> Any:
    if not isinstance(model_or_func, nn.Module):
        if not callable(model_or_func):
            raise TypeError(f"Expected argument `model_or_func` to be an nn.Module or a callable but got {type(model_or_func)}")
        return user_func(model_or_func, "the SCM's rows (an AdditiveNoiseSCM's are float32, whatever data it was fit on)")
    forward = Forward(model_or_func, output=output_spec)
    param = next((p for p in model_or_func.parameters() if p.is_floating_point()), None)

    def output(x: Tensor) -> Tensor:
        home = x.device  # the SCM's (CPU): the values go back there
        if param is not None and x.is_floating_point() and (x.dtype != param.dtype or x.device != param.device):
            x = x.to(device=param.device, dtype=param.dtype)  # the SCM's float32 rows: a float64, bf16 or CUDA model takes its own
        with audit_mode(forward.model, rng=False):  # restored once around all calls: each draws its own noise
            out = forward(x).to(home)
        if out.dtype in (torch.float16, torch.bfloat16):
            out = out.float()
        if out.dim() == 1 or (out.dim() == 2 and out.shape[1] == 1):
            return out.reshape(-1)
        if target is None:
            raise ValueError(
                f"Expected argument `target` (the output column to explain) for a model with {out.shape[-1]} outputs "
                "but got None; pass `target=` or a scalar func such as class_probability(model, target)"
            )
        return gather_target(out, resolve_target(out, target))

    return output


def _check_scm(scm: Any) -> int:
    if not isinstance(scm, NoiseSCM):
        raise TypeError(
            f"Expected argument `scm` to provide `columns`, `sample_noise(n, generator)` and `generate(noise)` "
            f"(e.g. AdditiveNoiseSCM) but got {type(scm)}"
        )
    return len(scm.columns)


def intrinsic_causal_contributions(
    model_or_func: nn.Module | Any,
    scm: NoiseSCM,
    n: int = 4096,
    target: int | None = None,
    *,
    shapley: bool = True,
    n_bootstrap: int = 100,
    max_batch_size: int | None = None,
    seed: int = 0,
    generator: torch.Generator | None = None,
    confidence: float = 0.95,
    output: OutputSpec = None,
) -> ICCResult:
    """Share of ``Var f(X)`` due to each node's own noise, for inputs ``X = scm.generate(N)``.

    First and total order are the Sobol' indices of the noises of ``Y = f(scm.generate(N))``
    (pick-freeze; first order Saltelli et al. 2010, total order Jansen 1999); the Shapley ICC
    (Janzing et al. 2024) uses the closed indices ``v(T) = Var(E[Y | N_T]) / Var Y`` of all ``2^D``
    noise subsets, evaluated in one batched pass (``2^D n`` evaluations; ``D + 2`` blocks of ``n``
    without Shapley), each over the same estimator's value for the set of all nodes, so that the
    Shapley ICC sums to 1 and a node the model ignores gets exactly 0. Noises are drawn
    by ``scm.sample_noise`` (plain Monte Carlo).

    Args:
        model_or_func: an ``nn.Module`` (its raw output column ``target``, a logit for a
            classifier, or its only output; the SCM's rows cast to the model's dtype; run in eval
            mode under ``no_grad``, modes restored) or a scalar function ``[M, D] -> [M]``, e.g.
            ``class_probability(model, t)`` to explain a class probability; a function of your own
            gets the SCM's rows as they are (an ``AdditiveNoiseSCM``'s are float32, also when fit on
            float64 data): cast them for a float64 model, ``lambda x: model(x.double())[:, 0]``; it runs the
            model as it is (its mode; a generator it holds, ``self.gen``, is not put back: pass the model or
            ``class_probability`` for that).
        scm: a fitted SCM with independent noises (``columns``, ``sample_noise``, ``generate``).
        n: noise samples per block.
        target: output column of a multi-output model (a class index for logits).
        shapley: also compute the Shapley ICC (needs ``D <= 10``).
        n_bootstrap: bootstrap resamples (0: no intervals).
        max_batch_size: rows per model call (default 4096; for an ``nn.Module`` no more than the
            engine's activation budget allows,
            :func:`~lightning_causal.causal.engine.batching.rows_per_pass`).
        seed: seeds a private generator unless ``generator`` is given (global RNG untouched).
        generator: a ``torch.Generator`` for noises and bootstrap.
        confidence: level of the intervals.
        output: which tensor of the model's return value to explain (a module only; see
            :class:`~lightning_causal.causal.engine.forward.Forward`).

    Returns:
        :class:`ICCResult` with one entry per SCM column, named after the columns.

    Raises:
        TypeError: ``scm`` without the noise interface; ``model_or_func`` not callable.
        ValueError: bad ``n``/``n_bootstrap``/``confidence``, ``shapley`` with more than 10 nodes,
            a multi-output model without ``target``, non-finite outputs.

    Examples:
        >>> class Roots:  # two independent standard-normal root nodes
        ...     columns = ["a", "b"]
        ...     def sample_noise(self, n, generator=None):
        ...         return torch.randn(n, 2, generator=generator)
        ...     def generate(self, noise):
        ...         return noise
        >>> r = intrinsic_causal_contributions(lambda x: x[:, 0] + 2 * x[:, 1], Roots(), n=8192)
        >>> [round(v, 1) for v in r.shapley.tolist()]
        [0.2, 0.8]
    """
    check_sobol_options(n, n_bootstrap, confidence, max_batch_size)
    d = _check_scm(scm)
    if shapley and d > MAX_SHAPLEY_NODES:
        raise ValueError(
            f"Expected at most {MAX_SHAPLEY_NODES} SCM nodes for `shapley=True` (cost 2^D n evaluations) but got {d}; "
            "use shapley=False"
        )
    func = _model_func(model_or_func, target, output)
    gen = make_generator(seed, generator)
    a, b, n, method, _ = saltelli_matrices(lambda m, g: scm.sample_noise(m, generator=g), n, gen)
    if a.shape[1] != d:
        raise ValueError(f"Expected `scm.sample_noise` to return one noise per column ({d}) but got {a.shape[1]}")
    names = check_group_names(list(scm.columns), d)
    select = _subsets(d) if shapley else torch.cat(
        [torch.zeros(1, d, dtype=torch.bool), torch.ones(1, d, dtype=torch.bool), torch.eye(d, dtype=torch.bool)]
    )
    _warn_fractional_codes(scm, a)
    rows = max_batch_size or 4096
    if max_batch_size is None and isinstance(model_or_func, nn.Module):  # no more than the activation budget allows
        with torch.no_grad():
            example = scm.generate(a[:4])
        rows = min(rows, rows_per_pass(model_or_func, (example,), forward=lambda x, rows: func(x)))
    module = model_or_func if isinstance(model_or_func, nn.Module) else None
    devices = model_devices(module) if module is not None else None
    with model_kept(model_or_func, module, devices):  # its state put back (its own generators, its noise draws)
        refuse_traced_func(model_or_func, None, "intrinsic_causal_contributions")
        noise = check_func_noise(func, a, rows, scm.generate, devices)
        y = evaluate_checked(func, a, b, select, rows=rows, transform=scm.generate, noise=noise, model=module,
                             what="intrinsic_causal_contributions", devices=devices)  # a branch on the batch refused
    if is_constant(y, [str(s.nonzero().flatten().tolist()) for s in select]):
        z = torch.zeros(d, dtype=torch.float64)
        zi = torch.zeros(d, 2, dtype=torch.float64)
        return ICCResult(z, z.clone(), zi, zi.clone(), names, n, int(y.numel()), 0.0, float(confidence), method,
                         z.clone() if shapley else None, zi.clone() if shapley else None)
    y = y - y.mean()
    counts = bootstrap_counts(n, n_bootstrap, gen) if n_bootstrap else None
    return _icc_result(y, d, shapley, counts, names, n, method, confidence)


def _warn_fractional_codes(scm: NoiseSCM, noise: Tensor) -> None:
    """Warn when declared category-code columns (``AdditiveNoiseSCM(codes=...)``, ``code_columns``)
    are generated with fractions: a model that reads codes (``.long()``, one-hot) sees other codes,
    or fails on a negative one. Whole-number columns not declared codes (counts) are numeric."""
    codes = getattr(scm, "code_columns", None)
    if not codes:
        return
    x = scm.generate(noise).detach()
    bad = [j for j in codes if not bool((x[:, j] == x[:, j].round()).all())]
    if bad:
        cols = [scm.columns[j] for j in bad]
        lo, hi = float(x[:, bad[0]].min()), float(x[:, bad[0]].max())
        warnings.warn(
            f"intrinsic_causal_contributions: the SCM generates fractions for the category-code columns {cols} (`codes=`; "
            f"{cols[0]!r} from {lo:.3g} to {hi:.3g}), so a model reading them as codes sees other categories or fails. "
            "For a root column, `AdditiveNoiseSCM(..., noise='residuals')` draws the observed codes; a code column with "
            "parents is no additive-noise variable (give the model a numeric input for it and leave it out of `codes=`)",
            UserWarning, stacklevel=outside_package(),
        )


def _icc_result(y: Tensor, d: int, shapley: bool, counts: Tensor | None, names: list[str], n: int,
                method: str, confidence: float) -> ICCResult:
    if shapley:  # rows are the subsets; 0 = {} (A), 2^D - 1 = all (B), 2^j = {j}
        y_a, y_b, single = y[0], y[-1], y[2 ** torch.arange(d)]
        closed = y[1:]  # the proper non-empty subsets, then all (its estimate normalises the others)
    else:  # rows: A, B, {0}, ..., {D-1}
        y_a, y_b, single = y[0], y[1], y[2:]
        closed = single
    first, total, first_boot, total_boot, var = pick_freeze_indices(y_a, y_b, torch.cat([single, closed]), single, counts=counts)
    result = ICCResult(
        first[:d], total, normal_ci(first[:d], None if first_boot is None else first_boot[:, :d], confidence),
        normal_ci(total, total_boot, confidence), names, n, int(y.numel()), var, float(confidence), method,
    )
    if shapley:
        def sh(v: Tensor) -> Tensor:
            # v(T) of the proper non-empty subsets over the same estimator's v(all) (the last column): a
            # node the model ignores leaves every f(A_B^T) unchanged, so v(T + j) = v(T) exactly, also for
            # T + j = all, and its Shapley ICC is exactly 0 (_shapley sets those differences to 0); v({}) = 0,
            # v(all) = 1
            whole = v[..., -1:]
            v = torch.where(whole > 0, v[..., :-1] / whole.clamp_min(1e-300), v[..., :-1])
            full = torch.ones(*v.shape[:-1], 1, dtype=v.dtype)
            zero = torch.zeros_like(full)
            return _shapley(torch.cat([zero, v, full], dim=-1), same)

        # y's row s holds the evaluations of subset s (0: A, 2^D - 1: B); as a [2] * D grid, axis D - 1 - j is bit j
        grid = y.reshape(*([2] * d), -1)
        same = torch.stack([(grid.select(d - 1 - j, 1) == grid.select(d - 1 - j, 0)).reshape(2 ** (d - 1), -1).all(-1)
                            for j in range(d)])  # one node at a time: 2^(D-1) n booleans, not two copies of y

        result.shapley = sh(first[d:])
        result.shapley_ci = normal_ci(result.shapley, None if first_boot is None else sh(first_boot[:, d:]), confidence)
    return result
