"""Input distributions for :func:`~lightning_causal.causal.sensitivity.sobol.sobol_indices`, and classifiers as
scalar functions.

Every sampler here exposes ``dim`` and ``icdf(u)`` (the inverse CDF on the unit cube, so Sobol'
points can be used) and is also callable as ``sampler(n, generator)`` (plain Monte Carlo).
Inputs of any sample shape (images ``[C, H, W]``) are handled flattened to ``D`` columns;
``sample_shape`` remembers the shape, and :func:`class_probability` reshapes back. Image patches are
then groups of columns: ``groups = patch_mask((C, H, W), p)``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn
from torch.distributions import Distribution

from lightning_causal.causal.engine.checks import check_float, check_int
from lightning_causal.causal.engine.forward import Forward, OutputSpec
from lightning_causal.causal.engine.input_kinds import check_input_kinds
from lightning_causal.causal.engine.output_selection import held_distribution
from lightning_causal.causal.engine.probe_warnings import ProbeContentsWarning
from lightning_causal.causal.engine.state import audit_mode, check_logits, output_fix
from lightning_causal.causal.engine.user_frame import outside_package

__all__ = [
    "UniformCube",
    "IndependentNormal",
    "EmpiricalMarginals",
    "GaussianCopula",
    "ClassProbability",
    "class_probability",
]

_NORMAL = torch.distributions.Normal(torch.tensor(0.0, dtype=torch.float64), torch.tensor(1.0, dtype=torch.float64))


class _CubeSampler:
    """Shared ``__call__``: Monte Carlo draws through ``icdf``."""

    dim: int

    def icdf(self, u: Tensor) -> Tensor:  # pragma: no cover - abstract
        """The inputs ``[n, D]`` at the points ``u`` of the unit cube (column ``j`` from ``u[:, j]``,
        and for dependent inputs, :class:`GaussianCopula`, from earlier columns too).

        Args:
            u: ``[n, D]`` points in ``(0, 1)``.
        """
        raise NotImplementedError

    def _check_u(self, u: Tensor) -> Tensor:
        if not isinstance(u, Tensor) or u.dim() != 2 or u.shape[1] != self.dim:
            shape = list(u.shape) if isinstance(u, Tensor) else type(u).__name__
            raise ValueError(f"Expected argument `u` of shape [n, {self.dim}] but got {shape}")
        return u

    def __call__(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``n`` independent draws ``[n, D]`` from a private (or the given) generator."""
        check_int("n", n, minimum=1)
        gen = generator if generator is not None else torch.Generator().manual_seed(0)
        u = torch.rand(n, self.dim, generator=gen, dtype=torch.float64).clamp(2.0**-32, 1 - 2.0**-32)
        return self.icdf(u)


def check_bounds(value: float | Sequence[float] | Tensor, dim: int, name: str) -> Tensor:
    """``value`` as ``dim`` finite float64 values (a scalar is repeated).

    Args:
        value: a scalar or ``dim`` values.
        dim: the number of columns ``D``.
        name: the argument's name, for the error message.
    """
    t = torch.as_tensor(value, dtype=torch.float64).reshape(-1)
    if t.numel() == 1:
        t = t.expand(dim)
    if t.numel() != dim or not torch.isfinite(t).all():
        raise ValueError(f"Expected argument `{name}` to be a finite scalar or {dim} values but got {value!r}")
    return t.clone()


class UniformCube(_CubeSampler):
    """Independent uniform inputs on ``[low, high]^D`` (per-column bounds allowed).

    Args:
        dim: the number of inputs ``D`` (an integer >= 1).
        low: the lower bound: a scalar or one per column.
        high: the upper bound, above ``low`` in every column: a scalar or one per column.

    Examples:
        >>> UniformCube(2, -1.0, 1.0).icdf(torch.tensor([[0.5, 0.75]], dtype=torch.float64))
        tensor([[0.0000, 0.5000]], dtype=torch.float64)
    """

    def __init__(self, dim: int, low: float | Sequence[float] | Tensor = 0.0,
                 high: float | Sequence[float] | Tensor = 1.0) -> None:
        check_int("dim", dim, minimum=1)
        self.dim = dim
        self.low, self.high = check_bounds(low, dim, "low"), check_bounds(high, dim, "high")
        if not (self.high > self.low).all():
            raise ValueError(f"Expected argument `high` to exceed `low` in every column but got {high!r} <= {low!r}")

    def icdf(self, u: Tensor) -> Tensor:
        u = self._check_u(u)
        return self.low.to(u) + (self.high - self.low).to(u) * u


class IndependentNormal(_CubeSampler):
    """Independent Gaussian inputs ``X_j ~ N(mean_j, std_j^2)``.

    Unlike :class:`UniformCube`, the first argument is the means, not the dimension: an ``int``
    there is refused (``IndependentNormal([0.0] * 3)`` draws three standard normal inputs).

    Args:
        mean: the ``D`` means (a sequence or a tensor; finite).
        std: the standard deviations (positive): a scalar or one per column.

    Examples:
        >>> IndependentNormal([0.0, 1.0], [1.0, 2.0]).icdf(torch.tensor([[0.5, 0.5]], dtype=torch.float64))
        tensor([[0., 1.]], dtype=torch.float64)
    """

    def __init__(self, mean: Sequence[float] | Tensor, std: float | Sequence[float] | Tensor = 1.0) -> None:
        if isinstance(mean, int) and not isinstance(mean, bool):  # `IndependentNormal(3)` as `UniformCube(3)`: one input of mean 3
            raise TypeError(
                f"Expected argument `mean` to be the D means (a sequence or tensor) but got the int {mean!r}, which would "
                f"give one input of mean {mean}; for {mean} standard normal inputs use IndependentNormal([0.0] * {mean})"
            )
        self.mean = torch.as_tensor(mean, dtype=torch.float64).reshape(-1)
        if self.mean.numel() < 1 or not torch.isfinite(self.mean).all():
            raise ValueError(f"Expected argument `mean` to hold finite values but got {mean!r}")
        self.dim = self.mean.numel()
        self.std = check_bounds(std, self.dim, "std")
        if not (self.std > 0).all():
            raise ValueError(f"Expected argument `std` to be positive but got {std!r}")

    def icdf(self, u: Tensor) -> Tensor:
        u = self._check_u(u)
        return self.mean.to(u) + self.std.to(u) * _NORMAL.icdf(u.double()).to(u)


def _check_data(data: Tensor) -> Tensor:
    check_input_kinds("data", data)  # a sparse bag of words failed in torch ('aten::ne.Scalar' on SparseCPU): to_dense()
    if not isinstance(data, Tensor) or data.dtype == torch.bool or data.is_complex():
        got = f"a tensor of dtype {data.dtype}" if isinstance(data, Tensor) else type(data).__name__
        hint = ": bool masks as 0/1 codes, data.long(), to a function that casts them" if getattr(data, "dtype", None) == torch.bool else ""
        raise TypeError(f"Expected argument `data` to be a floating-point or integer tensor [N, ...] but got {got}{hint}")
    if data.dim() < 2 or data.shape[0] < 2:
        raise ValueError(f"Expected argument `data` of shape [N >= 2, ...] but got {list(data.shape)}")
    if not torch.isfinite(data).all():
        raise ValueError("Expected argument `data` to be finite but it holds NaN or infinity")
    return data


class EmpiricalMarginals(_CubeSampler):
    """Independent columns (or independent groups of columns), each as observed in ``data``.

    ``icdf(u)_j`` is the ``ceil(u N)``-th smallest value of column ``j`` (the exact inverse of the
    empirical CDF), so draws resample every column independently from its observed values. Any
    dependence between the columns of ``data`` is dropped: the indices answer "what if the inputs
    varied independently, each as observed". With ``groups``, the columns of a group of several
    columns are drawn together, as the group's values in one observed row (row ``ceil(u N)`` for
    the ``u`` of the group's first column): a one-hot block stays one-hot, an image patch stays a
    patch of one image; groups vary independently of each other, and a group's indices (whose
    columns the pick-freeze design swaps together) are those of that joint variable.

    Args:
        data: ``[N, ...]`` observations (images are flattened to ``D = C H W`` columns). Integer data
            (category codes) is drawn in its own dtype, observed codes that a model embedding them takes.
        groups: ``None`` or a group id per column (``D`` elements, as ``sobol_indices`` takes them).

    Examples:
        >>> s = EmpiricalMarginals(torch.tensor([[0.0, 10.0], [1.0, 20.0], [2.0, 30.0], [3.0, 40.0]]))
        >>> s.icdf(torch.tensor([[0.1, 0.99], [0.5, 0.26]], dtype=torch.float64))
        tensor([[ 0., 40.],
                [ 2., 20.]])
        >>> one_hot = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [0.0, 1.0]])
        >>> EmpiricalMarginals(one_hot, groups=[0, 0]).icdf(torch.tensor([[0.3, 0.9]], dtype=torch.float64))
        tensor([[0., 1.]])
    """

    def __init__(self, data: Tensor, groups: Tensor | Sequence[int] | None = None) -> None:
        data = _check_data(data)
        self.sample_shape = tuple(data.shape[1:])
        flat = data.detach().reshape(data.shape[0], -1)
        self.sorted = flat.sort(dim=0).values  # [N, D]
        self.dim = self.sorted.shape[1]
        self.rows: Tensor | None = None  # [N, D'] the observed rows of the joint columns
        self.joint: Tensor | None = None  # [D'] those columns
        self.lead: Tensor | None = None  # [D'] the column whose u draws each one's row
        if groups is not None:
            ids = torch.as_tensor(groups).reshape(-1).long()
            if ids.numel() != self.dim:
                raise ValueError(f"Expected argument `groups` to hold one id per column ({self.dim}) but got {ids.numel()}")
            first = {}
            for j, g in enumerate(ids.tolist()):
                first.setdefault(g, j)
            sizes = torch.bincount(ids - ids.min())
            joint = (sizes[ids - ids.min()] > 1).nonzero().flatten()
            if joint.numel():
                self.joint = joint
                self.lead = torch.tensor([first[g] for g in ids[joint].tolist()], dtype=torch.long)
                self.rows = flat[:, joint]

    def quantile(self, u: Tensor) -> Tensor:
        """Column-wise empirical quantiles of ``u`` ``[n, D]``.

        Args:
            u: ``[n, D]`` points in ``(0, 1)``.
        """
        n = self.sorted.shape[0]
        idx = (u.double() * n).floor().long().clamp_(0, n - 1).to(self.sorted.device)
        return self.sorted.gather(0, idx)

    def icdf(self, u: Tensor) -> Tensor:
        u = self._check_u(u)
        out = self.quantile(u)
        if self.joint is not None:
            n = self.sorted.shape[0]
            row = (u[:, self.lead.to(u.device)].double() * n).floor().long().clamp_(0, n - 1).to(self.rows.device)
            out[:, self.joint.to(out.device)] = self.rows.gather(0, row)
        return out


class GaussianCopula(EmpiricalMarginals):
    """Empirical marginals joined by a Gaussian copula that keeps the rank correlation of ``data``.

    Fit: normal scores ``z = Φ^{-1}(rank / (N + 1))`` per column (average ranks for ties), their
    correlation ``R = L L^T`` (Cholesky, with a small ridge if ``R`` is singular). Sampling: ``icdf(u) =
    F^{-1}_j(Φ((L Φ^{-1}(u))_j))`` per column (Nelsen 2006).

    **What Sobol' indices mean with dependent inputs.** The pick-freeze design swaps coordinates
    of the *independent* uniforms ``u``, and ``L`` is lower triangular, so column ``j`` is built
    from ``u_1 .. u_j``: ``u_j`` is the part of ``X_j`` not explained by ``X_1 .. X_{j-1}`` (the
    Rosenblatt transform). The index of group ``g`` is the share of ``Var f(X)`` due to that
    innovation, including what it moves in later correlated columns (Mara, Tarantola & Annoni
    2015). Column order matters: the first column gets its "full" index (own plus correlated
    contributions), the last its "independent" index; reorder the columns to ask the other
    question. The indices still sum to at most 1 (first order) because the ``u_j`` are independent;
    for a linear-Gaussian chain this is exactly the intrinsic causal contribution of each column
    (:func:`~lightning_causal.causal.sensitivity.icc.intrinsic_causal_contributions`).

    Args:
        data: ``[N, ...]`` observations (flattened to ``D`` columns).
        ridge: added to the diagonal of ``R`` if it is not positive definite.

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> x = torch.randn(500, 1, generator=g)
        >>> s = GaussianCopula(torch.cat([x, x + 0.1 * torch.randn(500, 1, generator=g)], 1))
        >>> round(float(s.correlation[0, 1]), 2)
        0.99
    """

    def __init__(self, data: Tensor, ridge: float = 1e-6) -> None:
        super().__init__(data)
        check_float("ridge", ridge, minimum=0.0)
        flat = data.detach().reshape(data.shape[0], -1)
        self.correlation = _normal_score_correlation(flat)
        self.cholesky = _robust_cholesky(self.correlation, float(ridge))
        _warn_singular(flat)

    def icdf(self, u: Tensor) -> Tensor:
        u = self._check_u(u)
        z = _NORMAL.icdf(u.double().cpu()) @ self.cholesky.T
        return self.quantile(_NORMAL.cdf(z).clamp(0.0, 1.0 - 2.0**-53))


def _warn_singular(flat: Tensor) -> None:
    """Warn when the ``N`` samples cannot determine the correlation of the ``D`` varying columns
    (``D >= N``: its rank is at most ``N - 1``). Each later column's innovation ``u_j`` is then
    (almost) nothing, so Sobol' indices with this sampler give (nearly) all of the variance to the
    groups of the first ``N - 1`` columns, whatever the model reads (a [3, 120] signal from 32 samples:
    every total index on the first 4 of 12 windows, none on the window the model uses). Its category is
    :class:`~lightning_causal.causal.engine.probe_warnings.ProbeContentsWarning`."""
    n = flat.shape[0]
    varying = int((flat != flat[:1]).any(0).sum())
    if varying >= n:
        warnings.warn(
            f"GaussianCopula: the correlation of {varying} varying columns estimated from {n} samples is singular (rank "
            f"at most {n - 1}): every column after the first {n - 1} is drawn as (nearly) a function of the earlier ones, "
            "so Sobol' indices with this sampler give the groups of the first columns nearly all of the variance, "
            f"whatever the model reads. Use more samples than varying columns (over {varying}), fewer columns, or "
            "independent groups (EmpiricalMarginals; SobolAudit(sampler='empirical'))",
            ProbeContentsWarning, stacklevel=outside_package())


def _normal_score_correlation(data: Tensor) -> Tensor:
    """Correlation of the normal scores of the columns of ``data`` ``[N, D]`` (Spearman-like)."""
    x = data.double().cpu().T.contiguous()  # [D, N]
    n = x.shape[1]
    s = x.sort(dim=1).values
    # Average ranks with ties: sorted positions lo+1 .. hi hold the value -> rank (lo + hi + 1) / 2.
    lo = torch.searchsorted(s, x, right=False)
    hi = torch.searchsorted(s, x, right=True)
    z = _NORMAL.icdf((lo + hi + 1).double() / 2 / (n + 1))
    z = z - z.mean(1, keepdim=True)
    std = z.square().mean(1).sqrt()
    const = std <= 1e-12
    z = z / std.clamp_min(1e-12).unsqueeze(1)
    corr = z @ z.T / n
    corr[const, :] = 0.0
    corr[:, const] = 0.0
    corr.diagonal().fill_(1.0)
    return corr


def _robust_cholesky(corr: Tensor, ridge: float) -> Tensor:
    eye = torch.eye(corr.shape[0], dtype=corr.dtype)
    for eps in (0.0, ridge, 1e3 * ridge, 1e-2):
        chol, info = torch.linalg.cholesky_ex((corr + eps * eye) / (1.0 + eps))
        if int(info) == 0:
            return chol
    vals, vecs = torch.linalg.eigh(corr)  # pragma: no cover - last resort
    return torch.linalg.cholesky((vecs * vals.clamp_min(1e-6)) @ vecs.T)  # pragma: no cover


class ClassProbability:
    """``x [M, D] -> p_target(x) [M]``: a classifier as the scalar function of a sensitivity analysis.

    Each call reshapes the rows to ``input_shape``, casts them to the dtype of the model's
    parameters (the samplers draw float64), runs ``model`` in eval mode under ``no_grad``
    (every submodule's training flag restored afterwards) and returns the softmax probability of
    class ``target`` (the raw output when ``probability=False``). A model with one output is a
    binary classifier's single logit ``z``: its classes are 0 and 1, with ``p_1 = sigmoid(z)`` and
    ``p_0 = sigmoid(-z)``.

    Args:
        model: the classifier.
        target: the class whose probability is returned.
        input_shape: one sample's shape the rows ``[M, D]`` are reshaped to; ``None``: the rows as they
            are.
        probability: return the class probability (``True``) or the raw output of class ``target``.
        output: which tensor of the model's return value, as in
            :func:`~lightning_causal.causal.effects.input_effects.input_effects`.
        additional_forward_args: extra forward arguments, as in
            :func:`~lightning_causal.causal.effects.input_effects.input_effects`.

    Examples:
        >>> import torch
        >>> from torch import nn
        >>> p1 = ClassProbability(nn.Identity(), target=1)  # the rows are the logits: p_1 = softmax(x)_1
        >>> p1(torch.tensor([[0.0, 0.0], [0.0, 2.0]], dtype=torch.float64))  # 1/2 and e^2 / (1 + e^2)
        tensor([0.5000, 0.8808], dtype=torch.float64)
    """

    def __init__(self, model: nn.Module, target: int, input_shape: Sequence[int] | None = None,
                 probability: bool = True, *, output: OutputSpec = None, additional_forward_args: Any = None) -> None:
        check_int("target", target, minimum=0)  # the class index read from every row's output
        self.forward = Forward(model, output=output, additional_forward_args=additional_forward_args)
        self.model, self.target, self.probability = self.forward.model, target, probability
        self.input_shape = tuple(int(s) for s in input_shape) if input_shape is not None else None
        self.outputs: int | None = None  # the model's output width, known after the first call
        #: an integer dtype: rows are category codes drawn as floats (observed values), cast back to it
        self.input_dtype: torch.dtype | None = None
        #: the explained output before the softmax on the first (at most :data:`KEPT_ROWS`) rows the calls ran, and
        #: the model's return value and explained output of the first call: what an audit's checks of the outputs
        #: (logits or not) read, without a pass of their own. The return value is kept only where it is or holds a
        #: ``torch.distributions`` object (what those checks read of it), else ``None`` with the first rows of the
        #: explained output; the rows are copies, not views of the call's return value, which they would keep whole
        #: (a language model's logits ``[M, T, V]`` behind ``out.logits[:, -1]``, its cache)
        self.first_outputs: Tensor | None = None
        self.first_return: tuple[Any, Tensor] | None = None

    @property
    def explained(self) -> str:
        """What a call returns: ``"softmax probability"``, ``"sigmoid probability"`` (one output),
        ``"raw output"``, or ``"unknown"`` before the first call."""
        if not self.probability:
            return "raw output"
        if self.outputs is None:
            return "unknown"
        return "sigmoid probability" if self.outputs == 1 else "softmax probability"

    def __call__(self, x: Tensor) -> Tensor:
        if self.input_shape is not None:
            x = x.reshape(x.shape[0], *self.input_shape)
        if self.input_dtype is not None and not self.input_dtype.is_floating_point:
            x = x.round().to(self.input_dtype)
        home = x.device
        param = next((p for p in self.model.parameters() if p.is_floating_point()), None)
        if param is not None:  # samplers draw float64 on the CPU: a float32 (bf16) model takes its dtype, a CUDA model its device
            x = x.to(device=param.device, dtype=param.dtype if x.is_floating_point() else x.dtype)
        with audit_mode(self.model, rng=False):  # called per chunk: sobol_indices restores the RNG around all calls
            try:
                raw = self.forward.raw(x)
                picked = self.forward.checked(raw, x)
                out = picked.to(home)
            except RuntimeError as err:  # flat rows [M, D] into a model of images or sequences
                if self.input_shape is not None or x.dim() != 2:
                    raise
                raise ValueError(
                    f"The model failed on the sampler's flat rows of shape {list(x.shape)} ({err}); if it takes "
                    "samples of another shape ([M, C, H, W]), pass `input_shape=` (e.g. (1, 8, 8)) to ClassProbability or "
                    "class_probability, or class_probability(model, reference=x), which takes the shape of x"
                ) from err
        if out.dim() == 1:
            out = out.unsqueeze(1)
        classes = 2 if self.probability and out.dim() == 2 and out.shape[1] == 1 else out.shape[-1]
        if out.dim() != 2 or not 0 <= self.target < classes:
            raise ValueError(
                f"Expected the model to return [M, classes] with class {self.target} but got shape {list(out.shape)}"
                + (" (one output: the classes 0 and 1 of its sigmoid)" if classes == 2 and out.shape[-1] == 1 else "")
                + (f"; {output_fix(out)}" if out.dim() > 2 else "")
            )
        self.outputs = int(out.shape[1])
        self._keep(raw, picked)
        if out.dtype in (torch.float16, torch.bfloat16):
            out = out.float()  # a half-precision softmax keeps a handful of distinct probabilities: the variance is lost
        if self.probability:
            if out.shape[1] == 1:  # one logit z: P(class 1) = sigmoid(z), P(class 0) = sigmoid(-z)
                return (out[:, 0] if self.target == 1 else -out[:, 0]).sigmoid()
            out = check_logits(out, "the Sobol' analysis (probability=True)").softmax(dim=1)
        return out[:, self.target]

    def _keep(self, raw: Any, out: Tensor) -> None:
        """Keep ``first_return`` (the first call's: ``out`` the explained output read of ``raw``) and the first
        :data:`KEPT_ROWS` rows of ``first_outputs``."""
        if self.first_return is None:  # the distribution's moments are compared with the whole explained output
            held = isinstance(raw, Distribution) or held_distribution(raw) is not None
            self.first_return = (raw, out.detach()) if held else (None, out[:KEPT_ROWS].detach().clone())
        kept = 0 if self.first_outputs is None else self.first_outputs.shape[0]
        if kept < KEPT_ROWS:
            rows = out[: KEPT_ROWS - kept].detach().clone()
            self.first_outputs = rows if self.first_outputs is None else torch.cat([self.first_outputs, rows])


#: the rows of the explained output that :class:`ClassProbability` keeps (``first_outputs``)
KEPT_ROWS = 64


def class_probability(
    model: nn.Module,
    target: int | None = None,
    reference: Tensor | None = None,
    input_shape: Sequence[int] | None = None,
    *,
    probability: bool = True,
    output: OutputSpec = None,
    additional_forward_args: Any = None,
) -> ClassProbability:
    """The probability of class ``target``, or of the class ``model`` predicts for ``reference``.

    Args:
        model: a classifier returning logits ``[M, classes]``.
        target: the class; give exactly one of ``target`` and ``reference``.
        reference: inputs ``[R, ...]``; the target is their most frequent predicted class
            (the predicted class of a single reference input).
        input_shape: sample shape the flattened rows are reshaped to (e.g. ``(1, 8, 8)``); default
            with ``reference``: the shape of its samples.
        probability: softmax if True (one output ``z``: ``P(class 1) = sigmoid(z)``, ``P(class 0) =
            sigmoid(-z)``), the raw output otherwise.
        output: which tensor of the model's return value holds the logits.
        additional_forward_args: extra forward arguments shared by every row (the rows are new
            inputs drawn by a sampler: per-sample arguments cannot follow them).

    Raises:
        ValueError: neither or both of ``target`` and ``reference``, or a negative ``target``.
        TypeError: ``model`` not an ``nn.Module``.

    Examples:
        >>> model = nn.Linear(2, 3)
        >>> f = class_probability(model, target=1)
        >>> f(torch.zeros(4, 2)).shape
        torch.Size([4])
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"Expected argument `model` to be a torch.nn.Module but got {type(model)}")
    if (target is None) == (reference is None):
        raise ValueError("Expected exactly one of `target` and `reference` but got "
                         + ("neither" if target is None else "both"))
    if reference is not None:
        if not isinstance(reference, Tensor) or reference.dim() < 1 or reference.shape[0] < 1:
            raise ValueError(f"Expected argument `reference` to be a tensor [R, ...] but got {type(reference)}")
        forward = Forward(model, output=output, additional_forward_args=additional_forward_args)
        with audit_mode(forward.model):
            out = forward(reference)
        if out.dim() == 2 and out.shape[1] > 1:
            target = int(out.argmax(1).mode().values)
        else:  # one logit: the class its sigmoid predicts (the raw output has the one column 0)
            target = int((out.reshape(-1) > 0).long().mode().values) if probability else 0
        if input_shape is None and reference.dim() > 2:  # images, sequences: the flat rows take the reference's shape
            input_shape = tuple(reference.shape[1:])
    return ClassProbability(model, target, input_shape, probability, output=output,  # which checks `target`
                            additional_forward_args=additional_forward_args)
