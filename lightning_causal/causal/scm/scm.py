"""Data structural causal models for tabular inputs and the counterfactuals they define.

:class:`AdditiveNoiseSCM` is a DAG over the columns of a tensor ``[N, D]`` with additive-noise
structural equations ``x_j = f_j(pa(x_j)) + u_j``. Like the naive
:class:`~lightning_causal.causal.scm.attribute_flip.AttributeFlip` it exposes
``scm.flip(column)``, a counterfactual whose ``flip_counterfactual(x)`` swaps a binary column and
propagates it: the one counterfactual type that
:func:`~lightning_causal.causal.scm.fairness.counterfactual_fairness_gap`, the fairness audit and the
repair term take (see :func:`~lightning_causal.causal.scm.attribute_flip.resolve_counterfactual`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Literal, get_args

import torch
from torch import Tensor

from lightning_causal.causal.engine.checks import check_int
from lightning_causal.causal.engine.user_frame import outside_package
from lightning_causal.causal.scm.codes import (
    _require_binary,
    check_binary,  # noqa: F401 (re-exported: attribute_flip imports it from here)
    check_binary_values,
    flipped_binary,
    warn_fractional_codes,
)
from lightning_causal.causal.scm.dag import check_graph, topological_order
from lightning_causal.causal.scm.structural_functions import (
    LinearFunction,
    MLPFunction,
    StructuralFunction,
)

# the graph checks (dag.py) and the coded-column checks (codes.py) live in their own modules; their
# names stay importable from here (check_binary, check_binary_values: attribute_flip)
__all__ = ["AdditiveNoiseSCM", "LinearFunction", "MLPFunction", "NoiseKind", "StructuralFunction"]

#: what ``AdditiveNoiseSCM(noise=)`` takes
NoiseKind = Literal["gaussian", "residuals"]

Value = float | Tensor


def _factory(regressor: object, column: str) -> Callable[[], StructuralFunction]:
    if regressor is None:
        return LinearFunction
    if isinstance(regressor, Mapping):
        return regressor.get(column, LinearFunction)  # type: ignore[return-value]
    if callable(regressor):
        return regressor  # type: ignore[return-value]
    raise TypeError(
        f"Expected argument `regressor` to be None, a factory of structural functions or a mapping column -> factory but got {type(regressor)}"
    )


class AdditiveNoiseSCM:
    r"""Additive-noise structural causal model over the named columns of a tensor ``[N, D]``.

    .. math:: x_j = f_j(\mathrm{pa}(x_j)) + u_j, \qquad u_j \text{ independent}

    ``fit`` estimates each ``f_j`` (linear least squares by default, ``f_j`` = mean for a root);
    ``counterfactual`` follows Pearl's three steps as in Kusner et al. 2017 (level 3):
    *abduction* ``u = x − f(pa(x))``, *action* ``do(x_k := v)``, *prediction*: the descendants of the
    intervened columns are recomputed in topological order with their own noises, every other
    column is returned unchanged.

    Args:
        columns: the D column names in tensor order.
        parents: child -> parent names (a DAG; cycles and unknown names raise ``ValueError``).
        regressor: ``None`` (linear), a factory ``() -> StructuralFunction`` used for every node
            (e.g. :class:`MLPFunction`), or a mapping column -> factory (others linear).
        noise: what :meth:`sample_noise` draws: ``"gaussian"`` (``N(0, noise_std²)``, the default) or
            ``"residuals"`` (the fitted residuals resampled row-wise; keeps binary roots binary).
        codes: the columns that hold category codes (whole numbers the model reads as categories:
            ``.long()``, an embedding, one-hot), by name. A counterfactual that gives them fractions
            warns (:func:`warn_fractional_codes`), as does ``intrinsic_causal_contributions`` where
            the SCM generates fractions for them. Whole-number columns not listed (counts, ages) are
            numeric: fractions there are the model's inputs as the SCM computes them, not warned of.

    Attributes:
        columns: the column names.
        parents: the graph, child -> parent names.
        order: a topological order of column indices.
        code_columns: the indices of ``codes``.
        noise_std: ``[D]`` standard deviation of the fitted residuals (after :meth:`fit`).

    Examples:
        >>> g = torch.Generator().manual_seed(0)
        >>> a = torch.randint(0, 2, (500,), generator=g).float()
        >>> m = 2.0 * a + 0.1 * torch.randn(500, generator=g)
        >>> scm = AdditiveNoiseSCM(["a", "m"], {"m": ["a"]}).fit(torch.stack([a, m], 1))
        >>> x_cf = scm.counterfactual(torch.tensor([[0.0, 0.3]]), {"a": 1.0})
        >>> [round(v, 1) for v in x_cf[0].tolist()]
        [1.0, 2.3]
    """

    def __init__(
        self,
        columns: Sequence[str],
        parents: Mapping[str, Sequence[str]],
        regressor: object = None,
        noise: NoiseKind = "gaussian",
        codes: Sequence[str] | None = (),
    ) -> None:
        self.columns, self.parents = check_graph(columns, parents)
        codes = () if codes is None else codes
        if isinstance(codes, str) or not isinstance(codes, (list, tuple, set, frozenset)) or not all(
                isinstance(c, str) and c in self.columns for c in codes):
            raise ValueError(f"Expected argument `codes` to be a sequence of column names, each one of {self.columns}, "
                             f"but got {codes!r:.100}")
        self.code_columns = sorted({self.columns.index(c) for c in codes})
        self.order = topological_order(self.columns, self.parents)
        if noise not in get_args(NoiseKind):
            raise ValueError(f"Expected argument `noise` to be 'gaussian' or 'residuals' but got {noise!r}")
        self.noise = noise
        self._index = {c: i for i, c in enumerate(self.columns)}
        self._pa_idx = [[self._index[p] for p in self.parents.get(c, [])] for c in self.columns]
        self.functions: list[StructuralFunction] = []
        for c in self.columns:
            f = _factory(regressor, c)()
            if not callable(getattr(f, "fit", None)) or not callable(f):
                raise TypeError(f"Expected the regressor of column {c!r} to have `fit` and `__call__` but got {type(f)}")
            self.functions.append(f)
        self.noise_std: Tensor | None = None
        self._residuals: Tensor | None = None
        self._cache: dict[object, object] = {}  # propagators and flip plans; cleared by fit

    @classmethod
    def linear(
        cls,
        columns: Sequence[str],
        coefficients: Mapping[str, Mapping[str, float]],
        intercepts: Mapping[str, float] | None = None,
        noise_std: Sequence[float] | None = None,
        codes: Sequence[str] = (),
    ) -> AdditiveNoiseSCM:
        """A linear SCM with known structural coefficients ``{child: {parent: w}}`` (no fitting);
        ``codes``: the category-code columns, as in the constructor.

        Args:
            columns: the column names, in the tensor's order.
            coefficients: ``{child: {parent: w}}``: the parents of each child and their weights (columns
                not named are roots).
            intercepts: ``{column: b}``; ``None`` or a column left out: 0.
            noise_std: one non-negative noise scale per column; ``None``: all 1.
            codes: the category-code columns, as in the constructor.

        Examples:
            >>> scm = AdditiveNoiseSCM.linear(["a", "m"], {"m": {"a": 2.0}})
            >>> scm.counterfactual(torch.tensor([[0.0, 0.5]]), {"a": 1.0})
            tensor([[1.0000, 2.5000]])
        """
        scm = cls(columns, {c: list(w) for c, w in coefficients.items()}, codes=codes)
        intercepts = dict(intercepts or {})
        unknown = [c for c in intercepts if c not in scm.columns]
        if unknown:
            raise ValueError(f"Expected the keys of argument `intercepts` to be columns of the SCM, {scm.columns}, but got {unknown}")
        for j, c in enumerate(scm.columns):
            f = LinearFunction()
            f.weight = torch.tensor([float(coefficients.get(c, {})[p]) for p in scm.parents.get(c, [])], dtype=torch.float64)
            f.bias = torch.tensor(float(intercepts.get(c, 0.0)), dtype=torch.float64)
            scm.functions[j] = f
        std = torch.ones(len(scm.columns)) if noise_std is None else torch.as_tensor(noise_std, dtype=torch.float32)
        if std.shape != (len(scm.columns),) or (std < 0).any():
            raise ValueError(f"Expected argument `noise_std` to be {len(scm.columns)} non-negative numbers but got {noise_std!r}")
        scm.noise_std = std
        return scm

    def index(self, column: str | int) -> int:
        """Index of ``column`` (a name or an index) in the tensor; unknown columns raise ``ValueError``.

        Args:
            column: a column name or index.
        """
        if isinstance(column, int) and not isinstance(column, bool) and 0 <= column < len(self.columns):
            return column
        if isinstance(column, str) and column in self._index:
            return self._index[column]
        raise ValueError(f"Expected a column of the SCM, one of {self.columns}, but got {column!r}")

    def descendants(self, column: str | int) -> list[int]:
        """Indices of the strict descendants of ``column``.

        Args:
            column: a column name or index.
        """
        start = self.index(column)
        found: set[int] = set()
        for j in self.order:
            if any(p == start or p in found for p in self._pa_idx[j]):
                found.add(j)
        return [j for j in self.order if j in found]

    def _check_x(self, x: Tensor, name: str = "x") -> Tensor:
        if not isinstance(x, Tensor) or x.dim() != 2 or x.shape[1] != len(self.columns):
            shape = list(x.shape) if isinstance(x, Tensor) else type(x)
            raise ValueError(f"Expected argument `{name}` to be a tensor [N, {len(self.columns)}] but got {shape}")
        if not x.is_floating_point():
            raise TypeError(f"Expected argument `{name}` to be a floating point tensor but got {x.dtype}")
        return x

    def _fitted(self) -> None:
        if self.noise_std is None:
            raise RuntimeError("AdditiveNoiseSCM is not fitted; call `fit(x)` first")

    def _f(self, j: int, x: Tensor | list[Tensor]) -> Tensor:
        cols = self._pa_idx[j]
        if isinstance(x, list):
            pa = torch.stack([x[i] for i in cols], 1) if cols else x[j].new_zeros(x[j].shape[0], 0)
        else:
            pa = x[:, cols]
        return self.functions[j](pa)

    def fit(self, x: Tensor) -> AdditiveNoiseSCM:
        """Fit every structural function on the rows of ``x`` ``[N, D]`` and the noise scales.

        Args:
            x: data ``[N, D]`` (at least 2 rows, finite), columns in the SCM's order.
        """
        x = self._check_x(x)
        if x.shape[0] < 2 or not torch.isfinite(x).all():
            raise ValueError("Expected argument `x` to hold at least 2 rows of finite values")
        self._cache = {}
        for j in range(len(self.columns)):
            self.functions[j].fit(x[:, self._pa_idx[j]], x[:, j])
        self.noise_std = torch.zeros(len(self.columns))  # marks fitted for abduct
        self._residuals = self.abduct(x).detach()
        #: columns that hold whole numbers only in the data (category codes, counts)
        self.integer_columns = [j for j in range(len(self.columns)) if bool((x[:, j] == x[:, j].round()).all())]
        odd = [self.columns[j] for j in self.code_columns if j not in self.integer_columns]
        if odd:
            raise ValueError(f"Expected the columns of argument `codes` to hold whole numbers (category codes) in `x` but "
                             f"{odd} hold fractions; leave numeric columns out of `codes=`")
        self.noise_std = self._residuals.float().std(dim=0, correction=0)
        # a node with P parents has P + 1 linear parameters (more for an MLP): on that few rows the fit interpolates
        exact = [self.columns[j] for j in range(len(self.columns)) if self._pa_idx[j] and x.shape[0] <= len(self._pa_idx[j]) + 1]
        if exact:
            warnings.warn(
                f"AdditiveNoiseSCM.fit: {x.shape[0]} rows fit the structural functions of {exact}, each with at least as "
                "many parameters as rows (its parents' weights and an intercept), so they reproduce the rows exactly: their "
                "noise is 0 and the SCM treats them as exact functions of their parents (no intrinsic contribution, noiseless "
                "counterfactuals). Fit on more rows", UserWarning, stacklevel=outside_package())
        return self

    def abduct(self, x: Tensor) -> Tensor:
        """Abduction: the noises ``u_j = x_j − f_j(pa(x_j))`` ``[N, D]``.

        Args:
            x: data ``[N, D]``, columns in the SCM's order.
        """
        self._fitted()
        x = self._check_x(x)
        return torch.stack([x[:, j] - self._f(j, x) for j in range(len(self.columns))], 1)

    def generate(self, noise: Tensor) -> Tensor:
        """Apply the structural equations in topological order to ``noise`` ``[n, D]`` (differentiable).

        Args:
            noise: noises ``[n, D]``, one column per SCM column.
        """
        self._fitted()
        noise = self._check_x(noise, "noise")
        cols = list(noise.unbind(1))  # placeholders of the right shape, overwritten in order
        for j in self.order:
            cols[j] = self._f(j, cols) + noise[:, j]
        return torch.stack(cols, 1)

    def sample_noise(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``[n, D]`` independent noises: Gaussian with ``noise_std`` or resampled residuals (``noise=``).

        Args:
            n: the number of rows (an integer >= 1).
            generator: the ``torch.Generator`` drawn from; ``None``: the global one.
        """
        self._fitted()
        check_int("n", n, minimum=1)
        if self.noise == "gaussian":
            return torch.randn(n, len(self.columns), generator=generator) * self.noise_std
        res = self._residuals
        if res is None:
            raise RuntimeError("noise='residuals' needs an SCM fitted on data; this one has no residuals")
        idx = torch.randint(res.shape[0], (n, res.shape[1]), generator=generator)  # type: ignore[union-attr]
        return res.gather(0, idx).float()  # type: ignore[union-attr]

    def sample(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``generate(sample_noise(n, generator))``: ``n`` samples from the fitted model.

        Args:
            n: the number of samples (an integer >= 1).
            generator: as in :meth:`sample_noise`.
        """
        return self.generate(self.sample_noise(n, generator))

    def counterfactual(self, x: Tensor, interventions: Mapping[str | int, Value]) -> Tensor:
        """``x_cf`` under ``do(column := value)`` by abduction, action, prediction.

        Args:
            x: factual rows ``[N, D]``.
            interventions: column (name or index) -> a number or a per-row tensor ``[N]``.

        Returns:
            ``[N, D]``: intervened columns set, their descendants recomputed with the abducted
            noises, all other columns equal to ``x``.

        Raises:
            ValueError: an unknown column, or a value that is not finite or not of shape ``[N]``.
        """
        self._fitted()
        x = self._check_x(x)
        if not isinstance(interventions, Mapping) or not interventions:
            raise ValueError(f"Expected argument `interventions` to be a non-empty mapping column -> value but got {interventions!r}")
        fixed = {self.index(k): self._intervention_value(k, v, x) for k, v in interventions.items()}
        changed = set(fixed).union(*(self.descendants(k) for k in fixed)) - set(fixed)
        if all(type(f) is LinearFunction for f in self.functions):
            x_cf = self._linear_counterfactual(x, fixed)
        else:
            u = {j: x[:, j] - self._f(j, x) for j in changed}  # abduction, only where needed
            cols = list(x.unbind(1))
            for j in self.order:
                if j in fixed:
                    cols[j] = fixed[j]
                elif j in changed:
                    cols[j] = self._f(j, cols) + u[j]
            x_cf = torch.stack(cols, 1)
        codes = [j for j in getattr(self, "code_columns", ()) if j in changed]  # descendants declared category codes
        if codes:
            part = x_cf[:, codes].detach()
            off = part != part.round()
            if bool(off.any()):
                row, col = (int(i) for i in off.nonzero()[0])
                bad = [j for j, hit in zip(codes, off.any(0).tolist()) if hit]
                warn_fractional_codes(self, bad, (float(x[row, codes[col]]), float(part[row, col])) if codes[col] == bad[0] else None)
        return x_cf

    def _intervention_value(self, column: str | int, value: Value, x: Tensor) -> Tensor:
        """``value`` of ``do(column := value)`` as ``[N]``: a finite number or ``N`` finite values."""
        v = torch.as_tensor(value, dtype=x.dtype, device=x.device)
        if v.numel() == 1:
            v = v.reshape(())
        elif tuple(v.shape) != (x.shape[0],):
            raise ValueError(
                f"Expected the value of intervention {column!r} to be a number or one value per row of `x`, shape "
                f"[{x.shape[0]}], but got shape {list(v.shape)}"
            )
        if not bool(torch.isfinite(v).all()):
            raise ValueError(f"Expected the value of intervention {column!r} to be finite but it holds NaN or infinity")
        return v.expand(x.shape[0])

    def _propagator(self, fixed: frozenset[int]) -> Tensor:
        """``M [D, D]``: total effect of column k on column j once the columns ``fixed`` are cut
        from their parents (``M = (I − W̃)^{-1}``, exact zeros where j does not descend from k)."""
        if fixed not in self._cache:
            d = len(self.columns)
            w = torch.zeros(d, d, dtype=torch.float64)
            for j, f in enumerate(self.functions):
                if j not in fixed and self._pa_idx[j]:
                    w[j, self._pa_idx[j]] = f.weight  # type: ignore[attr-defined]
            m = torch.linalg.inv(torch.eye(d, dtype=torch.float64) - w)
            reach = torch.eye(d, dtype=torch.bool)
            for j in self.order:  # reach[j, k]: k = j or k is an ancestor of j through uncut edges
                if j not in fixed:
                    for p in self._pa_idx[j]:
                        reach[j] |= reach[p]
            self._cache[fixed] = torch.where(reach, m, torch.zeros_like(m))
        return self._cache[fixed]  # type: ignore[return-value]

    def _linear_counterfactual(self, x: Tensor, fixed: dict[int, Tensor]) -> Tensor:
        """Closed form for linear SCMs: ``x_cf = x + Δ M^T`` with ``Δ`` the change of the fixed columns."""
        idx = list(fixed)
        values = torch.stack([fixed[j] for j in idx], 1)
        m = self._propagator(frozenset(idx)).to(device=x.device, dtype=x.dtype)
        x_cf = x + (values - x[:, idx]) @ m[:, idx].T
        x_cf[:, idx] = values
        return x_cf

    def flip(self, column: str | int, values: Sequence[float] = (0.0, 1.0)) -> SCMFlip:
        """The counterfactual that flips the binary ``column`` (``v0 <-> v1``) and propagates it:
        a :class:`~lightning_causal.causal.scm.scm_flip.SCMFlip`, whose ``flip_counterfactual(x)``
        the fairness gap, audit and repair term call.

        Args:
            column: the binary column to flip: a column name or index.
            values: ``(v0, v1)``: the column's two values.

        Examples:
            >>> scm = AdditiveNoiseSCM.linear(["a", "m"], {"m": {"a": 2.0}})
            >>> scm.flip("a")
            SCMFlip(column='a', values=(0.0, 1.0))
        """
        return SCMFlip(self, column, values)

    def _flip(self, x: Tensor, column: str | int, values: Sequence[float]) -> Tensor:
        """``x`` with the binary ``column`` swapped in every row and its descendants recomputed
        (closed form ``x + (x_s' − x_s) cᵀ`` for a linear SCM, ``x_s'`` the other value; see :class:`SCMFlip`)."""
        self._fitted()
        x = self._check_x(x)
        j, vals, allowed, effect = self._flip_plan(column, values, x)
        col = x[:, j]
        _require_binary(col, vals, allowed, self.columns[j])
        flipped = flipped_binary(col, allowed)
        if effect is None:
            return self.counterfactual(x, {j: flipped})
        x_cf = torch.addcmul(x, (flipped - col).unsqueeze(1), effect)
        x_cf[:, j] = flipped  # exact, whatever the rounding of the step
        return x_cf

    def flip_effects(self, column: str | int) -> Tensor | None:
        """``c [D]`` (float64): the total effect of ``column`` on every column of a fitted linear
        SCM (``c[column] = 1``, exact zeros off its descendants); ``None`` for a nonlinear SCM.

        Args:
            column: a column name or index.

        Examples:
            >>> scm = AdditiveNoiseSCM.linear(["a", "m1", "m2", "z"], {"m1": {"a": 2.0}, "m2": {"m1": 0.5}})
            >>> scm.flip_effects("a")
            tensor([1., 2., 1., 0.], dtype=torch.float64)
        """
        self._fitted()
        j = self.index(column)
        if not all(type(f) is LinearFunction for f in self.functions):
            return None
        effect = self._propagator(frozenset([j]))[:, j].clone()
        effect[j] = 1.0
        return effect

    def _flip_plan(self, column: str | int, values: Sequence[float], x: Tensor) -> tuple[int, tuple[float, float], Tensor, Tensor | None]:
        """``(j, values, values as a tensor, c or None)`` for :meth:`_flip`, cached per
        (column, values, dtype, device) once validated; cleared by :meth:`fit`."""
        try:
            key: tuple | None = ("flip", column, values, x.dtype, x.device)
            plan = self._cache.get(key)
        except TypeError:  # unhashable `values` (a list): validated on every call
            key, plan = None, None
        if plan is None:
            vals = check_binary_values(values)
            j = self.index(column)
            effect = self.flip_effects(j)
            if effect is not None:  # a flip moves column k by ±(v1 - v0) c_k: fractions in codes unless that is whole
                step = effect * (vals[1] - vals[0])
                bad = [k for k in getattr(self, "code_columns", ()) if k != j and bool(step[k] != step[k].round())]
                if bad:
                    warn_fractional_codes(self, bad)
            allowed = torch.tensor(vals, dtype=x.dtype, device=x.device)
            plan = (j, vals, allowed, None if effect is None else effect.to(device=x.device, dtype=x.dtype))
            if key is not None:
                self._cache[key] = plan
        return plan  # type: ignore[return-value]

    def __repr__(self) -> str:
        edges = sum(len(p) for p in self.parents.values())
        return f"AdditiveNoiseSCM(columns={len(self.columns)}, edges={edges}, fitted={self.noise_std is not None})"


# at the end, after the class: scm_flip imports this module. A name of the module's globals, so that
# typing.get_type_hints(AdditiveNoiseSCM.flip) resolves its return annotation (jsonargparse, LightningCLI)
from lightning_causal.causal.scm.scm_flip import SCMFlip  # noqa: E402
