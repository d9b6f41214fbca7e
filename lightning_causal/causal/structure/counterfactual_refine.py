"""Discrete features and the final polishing of :func:`~lightning_causal.causal.structure.counterfactuals.counterfactual_explanation`.

:class:`DiscreteFeatures` holds the one-hot groups (categorical features) and the integer features
of tabular inputs: it validates them against the inputs and bounds and projects a point onto them
(each group one-hot at its largest entry, integers rounded into their bounds). :func:`polish`
moves the counterfactuals towards the minimum of ``l1 ||δ||_1 + l2 ||δ||²``: Newton steps on the
linearised decision margin, each the exact minimiser of the proximity cost under one linear
constraint (for ``l2 = 0`` the fractional knapsack: the budget goes to the features of largest
gradient first; otherwise the elastic-net solution, exact on its piecewise linear multiplier).
"""

from __future__ import annotations

import numbers
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.leaf_gradients import LeafGradients

__all__ = ["DiscreteFeatures", "check_discrete", "polish"]


@dataclass(frozen=True)
class DiscreteFeatures:
    """One-hot groups and integer features of the flattened inputs ``[N, D]``.

    Attributes:
        groups: the column indices of each one-hot group.
        integer: ``[D]`` whether a column is an integer feature.
        int_lo: ``[D]`` the least integer within the bounds (``ceil(low)``; ``[N, D]`` for bounds of each input).
        int_hi: ``[D]`` the largest integer within the bounds (``floor(high)``; ``[N, D]`` likewise).
    """

    groups: tuple[Tensor, ...]
    integer: Tensor
    int_lo: Tensor
    int_hi: Tensor

    def project(self, xc: Tensor, x: Tensor, mutable: Tensor) -> Tensor:
        """``xc`` with every group one-hot at its largest mutable entry (ties keep ``x``'s category;
        a column frozen by ``mutable`` is never switched on) and the integer features rounded into
        their bounds; the other features as they are."""
        return self.projector(x, mutable)(xc)

    def projector(self, x: Tensor, mutable: Tensor) -> Callable[[Tensor], Tensor]:
        """:meth:`project` for these inputs ``x`` and ``mutable``, as a function of ``xc``: what depends on
        them alone (each row's own category, the columns a group may switch on, the mutable integer
        columns) is computed once, for a search that projects every step."""
        x0 = x.flatten(1)
        free = mutable.flatten(1).expand_as(x0)
        rounds = bool(self.integer.any())
        int_free = self.integer & free
        own = []
        for cols in self.groups:
            allowed = free[:, cols] | (x0[:, cols] == 1)
            kept = ~allowed.any(1, keepdim=True)  # a row frozen whole (a padded node): kept as it is
            own.append((cols, x0[:, cols].argmax(1, keepdim=True), allowed,
                        (kept, x0[:, cols]) if bool(kept.any()) else None))

        def project(xc: Tensor) -> Tensor:
            f = xc.flatten(1).clone()
            if rounds:
                rounded = torch.minimum(torch.maximum(f.round(), self.int_lo), self.int_hi)
                f = torch.where(int_free, rounded, f)
            for cols, orig, allowed, kept in own:
                v = f[:, cols]
                score = torch.where(allowed, v, -torch.inf)
                pick = score.argmax(1, keepdim=True)
                pick = torch.where(score.gather(1, orig) >= score.gather(1, pick), orig, pick)
                hot = torch.zeros_like(v).scatter_(1, pick, 1.0)
                f[:, cols] = hot if kept is None else torch.where(kept[0], kept[1], hot)
            return f.view_as(xc)

        return project

    def fixed(self, d: int, device: torch.device) -> Tensor:
        """``[D]`` the columns polishing keeps: the one-hot ones."""
        out = torch.zeros(d, dtype=torch.bool, device=device)
        for cols in self.groups:
            out[cols] = True
        return out


def _columns(name: str, value: object, d: int) -> list[int]:
    """Column indices: a sequence, a NumPy array or an integer tensor of ints in ``[0, d)``, each once."""
    if isinstance(value, Tensor) and not value.is_floating_point() and value.dtype != torch.bool or type(value).__module__ == "numpy":
        value = value.tolist()  # type: ignore[union-attr]
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence):
        raise TypeError(f"Expected argument `{name}` to be a sequence of column indices but got {type(value).__name__} {value!r}")
    bad = [c for c in value if not isinstance(c, numbers.Integral) or isinstance(c, bool) or not 0 <= c < d]
    if bad:
        raise ValueError(f"Expected argument `{name}` to hold column indices in [0, {d}) (columns of inputs.flatten(1)) but got "
                         f"{bad[0]!r}")
    cols = [int(c) for c in value]
    if len(set(cols)) != len(cols):
        raise ValueError(f"Expected argument `{name}` to name each column once but got {cols}")
    return cols


def check_discrete(categorical: object, integer: object, x: Tensor, lo: Tensor, hi: Tensor,
                   padding: Tensor | None = None) -> DiscreteFeatures | None:
    """``categorical`` (a sequence of one-hot groups, each a sequence of >= 2 column indices of
    ``inputs.flatten(1)``) and ``integer`` (column indices, or a boolean tensor broadcastable to one
    input) checked against the inputs ``x`` and the bounds ``(lo, hi)``
    (broadcast to one input, or to the inputs for bounds of each input); ``None`` where both are ``None``.
    ``padding`` (booleans broadcastable to ``x``, :func:`~lightning_causal.causal.engine.ablation.padding_positions`):
    a group lying wholly in a row's padding (a padded node's all-zero atom type) is not checked in that row;
    the search never changes it (:meth:`DiscreteFeatures.projector` keeps a row's group that no column may change)."""
    if categorical is None and integer is None:
        return None
    f, d = x.flatten(1), x[0].numel()
    lo_f, hi_f = lo.flatten(1), hi.flatten(1)  # [1, D], or [N, D] for bounds of each input
    groups: list[list[int]] = []
    if categorical is not None:
        if isinstance(categorical, (str, bytes, Tensor)) or not isinstance(categorical, Sequence):
            raise TypeError("Expected argument `categorical` to be None or a sequence of one-hot groups, each a sequence of column "
                            f"indices (e.g. [[3, 4, 5]]), but got {type(categorical).__name__}")
        seen: dict[int, int] = {}
        for k, group in enumerate(categorical):
            cols = _columns(f"categorical[{k}]", group, d)
            if len(cols) < 2:
                raise ValueError(f"Expected argument `categorical` groups of at least 2 columns but group {k} is {cols}")
            for c in cols:
                if c in seen:
                    raise ValueError(f"Expected argument `categorical` groups sharing no column but column {c} is in groups "
                                     f"{seen[c]} and {k}")
                seen[c] = k
            groups.append(cols)
    is_int = torch.zeros(d, dtype=torch.bool, device=x.device)
    if integer is not None:
        if isinstance(integer, Tensor) and integer.dtype == torch.bool:  # a mask; an integer tensor holds indices
            try:
                is_int = torch.broadcast_to(integer.to(x.device).bool(), x[:1].shape).flatten()
            except RuntimeError as err:
                raise ValueError(f"Expected argument `integer` broadcastable to one input {list(x.shape[1:])} but got "
                                 f"{list(integer.shape)}") from err
        else:
            is_int[_columns("integer", integer, d)] = True
        both = [c for g in groups for c in g if is_int[c]]
        if both:
            raise ValueError(f"Expected arguments `integer` and `categorical` to share no column but column {both[0]} is in both "
                             "(one-hot columns are integral already)")
    padded = None if padding is None else torch.broadcast_to(padding.to(x.device), x.shape).flatten(1)
    for k, cols in enumerate(groups):
        v = f[:, cols]
        wrong = ~((v == 0) | (v == 1)).all(1) | (v.sum(1) != 1)
        bad = (wrong if padded is None else wrong & ~padded[:, cols].all(1)).nonzero().flatten()
        if bad.numel():
            i = int(bad[0])
            raise ValueError(f"Expected argument `categorical` to name one-hot columns (one 1, the rest 0, in every row) but "
                             f"group {k} (columns {cols}) holds {v[i].tolist()} in row {i} ({bad.numel()} of {len(v)} rows)")
        outside = ((lo_f[:, cols] > 0) | (hi_f[:, cols] < 1)).nonzero()
        if outside.numel():
            r, c = int(outside[0, 0]), cols[int(outside[0, 1])]
            row = f" in row {r}" if len(lo_f) > 1 else ""
            raise ValueError(f"Expected argument `bounds` to allow 0 and 1 on the one-hot columns of `categorical` but column {c} "
                             f"has [{float(lo_f[r, c]):g}, {float(hi_f[r, c]):g}]{row}; freeze a category with `mask=` instead")
    frac = (f != f.round()) & is_int
    if frac.any():
        i, c = frac.nonzero()[0].tolist()
        raise ValueError(f"Expected argument `integer` to name columns of integral values but inputs row {i} holds "
                         f"{float(f[i, c]):g} in column {c} ({int(frac.any(1).sum())} of {len(f)} rows)")
    int_lo, int_hi = lo_f.ceil(), hi_f.floor()
    empty = (is_int & (int_lo > int_hi)).nonzero()
    if empty.numel():
        r, c = empty[0].tolist()
        row = f" in row {r}" if len(lo_f) > 1 else ""
        raise ValueError(f"Expected argument `bounds` to hold an integer on every `integer` column but column {c} has "
                         f"[{float(lo_f[r, c]):g}, {float(hi_f[r, c]):g}]{row}")
    if len(int_lo) == 1:  # one input's bounds: [D]
        int_lo, int_hi = int_lo[0], int_hi[0]
    cols = tuple(torch.tensor(g, device=x.device) for g in groups)
    return DiscreteFeatures(cols, is_int, int_lo, int_hi)


def _margin(logits: Tensor, target: Tensor) -> Tensor:
    """``z_t - max_{c != t} z_c`` per row (> 0: the model predicts ``t``)."""
    z_t = logits.gather(1, target.view(-1, 1)).squeeze(1)
    rivals = logits.scatter(1, target.view(-1, 1), -torch.inf)  # max(1) runs threads even on [N, 2]: the argmax's value
    return z_t - rivals.gather(1, rivals.argmax(1, keepdim=True)).squeeze(1)


def _solve(a: Tensor, cap: Tensor, need: Tensor, l1: float, l2: float) -> Tensor:
    """Magnitudes ``δ >= 0`` ``[N, D]`` minimising ``Σ l1 δ_j + l2 δ_j²`` subject to
    ``Σ a_j δ_j >= need`` and ``δ <= cap`` (a row that cannot reach ``need`` gets the most it can).

    ``l2 = 0``: the fractional knapsack (features by decreasing ``a``, each up to its cap);
    otherwise ``δ_j(μ) = clip((μ a_j - l1) / (2 l2), 0, cap_j)`` with ``μ`` solved exactly on the
    piecewise linear ``Σ a_j δ_j(μ)``.

    Examples:
        >>> a, cap = torch.tensor([[1.0, 2.0, 0.5]]), torch.tensor([[9.0, 0.5, 9.0]])
        >>> _solve(a, cap, torch.tensor([2.0]), l1=1.0, l2=0.0).tolist()  # 0.5 of the best feature, then 1 of the next
        [[1.0, 0.5, 0.0]]
    """
    use = a > 0
    gain_max = torch.where(use, a * cap, 0.0).sum(1)
    need = torch.minimum(need.clamp_min(0.0), gain_max)
    if l2 == 0:
        a_s, order = a.sort(1, descending=True)
        cap_s = cap.gather(1, order)
        full = torch.where(a_s > 0, a_s * cap_s, 0.0)
        before = torch.cat([torch.zeros_like(full[:, :1]), full.cumsum(1)[:, :-1]], 1)  # not cumsum - full: inf - inf
        rest = (need.unsqueeze(1) - before).clamp_min(0.0)
        take = torch.where(a_s > 0, torch.minimum(cap_s, rest / a_s.clamp_min(1e-300)), 0.0)
        return torch.zeros_like(a).scatter(1, order, take)

    # gain(μ) = Σ a_j δ_j(μ) is piecewise linear: δ_j grows from μ = l1 / a_j, stops at its cap
    k = 2 * l2
    start = torch.where(use, l1 / a.clamp_min(1e-300), torch.inf)
    stop = torch.where(use, (l1 + k * cap) / a.clamp_min(1e-300), torch.inf)
    capped = use & torch.isfinite(stop)
    rate, offset = a * a / k, -a * l1 / k
    events = torch.cat([start, stop], 1)
    slope_step = torch.cat([torch.where(use, rate, 0.0), torch.where(capped, -rate, 0.0)], 1)
    offset_step = torch.cat([torch.where(use, offset, 0.0), torch.where(capped, -offset + a * cap, 0.0)], 1)
    events, order = events.sort(1)
    slope, intercept = slope_step.gather(1, order).cumsum(1), offset_step.gather(1, order).cumsum(1)
    gain = torch.where(torch.isfinite(events), slope * events + intercept, torch.inf)  # at each event, after it
    at = (gain >= need.unsqueeze(1)).int().argmax(1, keepdim=True)  # the first event that reaches `need`
    before = (at - 1).clamp_min(0)
    s_prev, i_prev = slope.gather(1, before).squeeze(1), intercept.gather(1, before).squeeze(1)
    mu = torch.where((at.squeeze(1) > 0) & (s_prev > 0), (need - i_prev) / torch.where(s_prev > 0, s_prev, 1.0),
                     events.gather(1, at).squeeze(1))
    return torch.where(use, ((mu.unsqueeze(1) * a - l1) / k).clamp_min(0.0), 0.0).minimum(cap)


def polish(forward: Forward, x: Tensor, target: Tensor, mutable: Tensor, box: tuple[Tensor, Tensor],
           discrete: DiscreteFeatures | None, costs: tuple[float, float], start: Tensor, best: Tensor, best_cost: Tensor,
           iterations: int, scale: Tensor | None = None) -> None:
    """``iterations`` Newton steps from ``start`` on the margin linearised at the current point.

    Each step's candidates: the cheapest change under that constraint (:func:`_solve`) from the
    current point's categories and from each set of switches of :func:`_category_starts`, with
    integers rounded up and down (:func:`_step`), and, with three or more classes, the cheapest
    change under both largest rivals' margins (:func:`_solve_two`). Each is projected, checked
    with a forward pass, and the cheapest valid one is the next point (else the first). ``best``
    and ``best_cost`` are updated in place where a candidate is valid and cheaper. ``scale`` (``[1 or N, D]``,
    positive): each feature's unit of cost, ``l1 Σ |δ_j| / s_j + l2 Σ (δ_j / s_j)²``, solved in those units."""
    (lo, hi), (l1, l2) = box, costs
    n, d = x.shape[0], x[0].numel()
    x0 = x.flatten(1).double()
    s = torch.ones(1, d, dtype=torch.float64, device=x.device) if scale is None else scale.flatten(1).double().expand(n, d)
    free = mutable.flatten(1).expand(n, d).clone()
    is_int = torch.zeros(d, dtype=torch.bool, device=x.device)
    if discrete is not None:
        free &= ~discrete.fixed(d, x.device)
        is_int = discrete.integer
    lo_f, hi_f = lo.flatten(1).double().expand(n, d), hi.flatten(1).double().expand(n, d)
    if discrete is not None:
        lo_f = torch.where(is_int, discrete.int_lo.double(), lo_f)
        hi_f = torch.where(is_int, discrete.int_hi.double(), hi_f)
    with torch.no_grad():
        m0 = _margin(forward(x), target).double()
    slack = 1e-3 * m0.abs() + 1e-6  # the margin aimed at beyond the boundary, grown where a step lands short
    point = start.detach().clone()
    groups = discrete.groups if discrete is not None else ()
    mut = mutable.flatten(1).expand(n, d)
    grads = LeafGradients(forward.model)  # a reentrant checkpoint decided at the first iteration

    def margin_again() -> Tensor:  # the pass of xs again, where torch refused its .grad() (LeafGradients)
        again = forward(xs)
        return (again.gather(1, target.view(-1, 1)).squeeze(1)
                - again.scatter(1, target.view(-1, 1), -torch.inf).gather(1, rivals[:, :1]).squeeze(1)).sum()

    for _ in range(iterations):
        with torch.enable_grad():
            xs = point.detach().requires_grad_(True)
            logits = forward(xs)
            z_t, others = logits.gather(1, target.view(-1, 1)).squeeze(1), logits.scatter(1, target.view(-1, 1), -torch.inf)
            rivals = others.topk(min(2, logits.shape[1] - 1), dim=1).indices  # the two largest other classes
            m = z_t - others.gather(1, rivals[:, :1]).squeeze(1)
            g = grads.grad(m.sum(), xs, retain_graph=rivals.shape[1] > 1, again=margin_again)
            if rivals.shape[1] > 1:
                m2 = z_t - others.gather(1, rivals[:, 1:]).squeeze(1)
                g2 = grads.grad(m2.sum(), xs)
        g, m, base = g.flatten(1).double(), m.detach().double(), xs.detach().flatten(1).double()
        sign = torch.where(g >= 0, 1.0, -1.0)
        cap = torch.where(sign > 0, hi_f - x0, x0 - lo_f).clamp_min(0.0)
        a = torch.where(free, g.abs(), 0.0)
        need = slack - m + (a * sign * (base - x0)).sum(1)  # Σ_free g_j δ_j needed for the margin `slack`
        starts, gains = [base], [torch.zeros_like(m)]
        for cand in _category_starts(groups, base, x0, g, mut):
            starts.append(cand)
            gains.append((g * (cand - base)).sum(1))  # only the one-hot columns differ from `base`
        points = [p for start_k, gain_k in zip(starts, gains) for p in _step(start_k, need - gain_k, a, sign, cap, free, is_int, (l1, l2), x0, s)]
        if rivals.shape[1] > 1:  # both rivals' margins at once where the first step falls short of the second's
            g2 = torch.where(free, g2.flatten(1).double(), 0.0)  # (one at a time alternates where they tie at the optimum)
            m2 = m2.detach().double()
            rows = (m2 + (g2 * (points[0] - base)).sum(1) < slack).nonzero().flatten()
            if rows.numel():
                need2 = slack[rows] - m2[rows] + (g2[rows] * (base[rows] - x0[rows])).sum(1)
                s_r = s.expand(n, d)[rows]  # solved in the units of cost, x = s * (x / s)
                both = s_r * _solve_two(torch.where(free, g, 0.0)[rows] * s_r, g2[rows] * s_r, need[rows], need2, x0[rows] / s_r,
                                        lo_f[rows] / s_r, hi_f[rows] / s_r, (l1, l2))
                two = points[0].clone()  # the other rows: the first step again
                two[rows] = torch.where(free[rows], x0[rows] + both, base[rows])
                points.append(two)
        chosen, chosen_cost = None, torch.full_like(best_cost, torch.inf)
        for point_k in points:
            point_k = torch.where(mutable, torch.maximum(torch.minimum(point_k.view_as(x).to(x.dtype), hi), lo), x)
            if discrete is not None:
                point_k = discrete.project(point_k, x, mutable)
            with torch.no_grad():
                valid = forward(point_k).argmax(1) == target
            dd = (point_k - x).flatten(1).double() / s
            cost = torch.where(valid, l1 * dd.abs().sum(1) + l2 * dd.pow(2).sum(1), torch.inf).to(best_cost.dtype)
            if chosen is None:  # the next point: the cheapest valid one of this step, else the step keeping the categories
                chosen, ok_any = point_k, valid
            take = cost < chosen_cost
            chosen = torch.where(take.view(-1, *[1] * (x.dim() - 1)), point_k, chosen)
            chosen_cost, ok_any = torch.where(take, cost, chosen_cost), ok_any | valid
        better = chosen_cost < best_cost
        best[better], best_cost[better] = chosen[better], chosen_cost[better]
        slack = torch.where(ok_any, slack, 4 * slack)
        point = chosen


def _category_starts(groups: tuple[Tensor, ...], base: Tensor, x0: Tensor, g: Tensor, mut: Tensor) -> list[Tensor]:
    """``base`` with the k groups of largest linearised gain switched from the input's own category
    to their best one and the other groups at the input's, for k = 0..G (every switch costs 2 in L1,
    so for a linear model these are the best sets of k switches)."""
    if not groups:
        return []
    blocks, block_gain = [], []
    for cols in groups:
        v, gc = x0[:, cols], g[:, cols]
        own = v.argmax(1, keepdim=True)
        gain = torch.where(mut[:, cols] & (v == 0), gc - gc.gather(1, own), -torch.inf)
        pick = gain.argmax(1, keepdim=True)  # max(1)'s index and value, without its threads on tiny rows
        top = gain.gather(1, pick)
        switch = (top > 0) & mut[:, cols].gather(1, own)  # never a group whose own category is frozen
        blocks.append(torch.where(switch, torch.zeros_like(v).scatter_(1, pick, 1.0), v))
        block_gain.append(torch.where(switch, top, 0.0).squeeze(1))
    rank = torch.stack(block_gain, 1).argsort(1, descending=True).argsort(1)
    out = []
    for k in range(len(groups) + 1):
        cand = base.clone()
        for j, cols in enumerate(groups):
            cand[:, cols] = torch.where(rank[:, j:j + 1] < k, blocks[j], x0[:, cols])
        out.append(cand)
    return out


def _step(start: Tensor, need: Tensor, a: Tensor, sign: Tensor, cap: Tensor, free: Tensor, is_int: Tensor,
          costs: tuple[float, float], x0: Tensor, scale: Tensor) -> list[Tensor]:
    """``start`` with its free features replaced by the cheapest change of gain ``need``; with integer
    features two points: the integers rounded up (away from ``x0``: the gain only grows) and rounded
    down (towards ``x0``), the continuous features re-solved for the rest in each. ``scale``: each
    feature's unit of cost (the change is solved in those units)."""
    step = scale * _solve(a * scale, cap / scale, need, *costs)
    if not is_int.any():
        return [torch.where(free, x0 + sign * step, start)]
    out = []
    for whole in ((step - 1e-9).ceil(), (step + 1e-9).floor()):
        whole = torch.where(is_int, whole.clamp_min(0.0).minimum(cap.floor()), 0.0)
        rest = scale * _solve(torch.where(is_int, 0.0, a) * scale, cap / scale, need - (a * whole).sum(1), *costs)
        out.append(torch.where(free, x0 + sign * torch.where(is_int, whole, rest), start))
    return out


def _solve_two(g1: Tensor, g2: Tensor, n1: Tensor, n2: Tensor, x0: Tensor, lo: Tensor, hi: Tensor,
               costs: tuple[float, float]) -> Tensor:
    """The change ``δ`` ``[N, D]`` of least cost with ``g1·δ >= n1`` and ``g2·δ >= n2`` inside the
    bounds: the surrogate constraint ``θ g1 + (1 - θ) g2`` whose cheapest solution costs most (the
    surrogate dual, exact for convex costs; golden-section search on θ, the dual being quasi-concave),
    then the mix of the solutions on both sides of that θ that meets both constraints at least cost.

    Examples:
        >>> g1, g2 = torch.tensor([[1.0, 0.0, 2.0]]).double(), torch.tensor([[0.0, 1.0, -2.0]]).double()
        >>> one, inf = torch.ones(1).double(), torch.full((1, 3), torch.inf).double()
        >>> _solve_two(g1, g2, one, one, 0 * g1, -inf, inf, (1.0, 0.0)).round(decimals=6).tolist()  # each alone: 0.5 of x2
        [[1.0, 1.0, 0.0]]
    """
    l1, l2 = costs

    def at(theta: Tensor) -> tuple[Tensor, Tensor]:
        h = theta.unsqueeze(1) * g1 + (1 - theta).unsqueeze(1) * g2
        sign = torch.where(h >= 0, 1.0, -1.0)
        a, cap = h.abs(), torch.where(h >= 0, hi - x0, x0 - lo).clamp_min(0.0)
        need = theta * n1 + (1 - theta) * n2
        mag = _solve(a, cap, need, l1, l2)
        reach = torch.where(a > 0, a * cap, 0.0).sum(1) >= need
        return sign * mag, torch.where(reach, l1 * mag.sum(1) + l2 * mag.pow(2).sum(1), torch.inf)

    r = (5**0.5 - 1) / 2
    left, right = torch.zeros_like(n1), torch.ones_like(n1)
    c, d = right - r * (right - left), left + r * (right - left)
    fc, fd = at(c)[1], at(d)[1]
    for _ in range(40):  # keep the side of the larger value: the maximum of the dual lies there
        up = fc >= fd  # the maximum is in [left, d]
        left, right = torch.where(up, left, c), torch.where(up, d, right)
        new = torch.where(up, right - r * (right - left), left + r * (right - left))
        f_new = at(new)[1]
        c, d, fc, fd = (torch.where(up, new, d), torch.where(up, c, new), torch.where(up, f_new, fd),
                        torch.where(up, fc, f_new))
    da, db = at(left)[0], at(right)[0]
    lo_a, hi_a = torch.zeros_like(n1), torch.ones_like(n1)  # α: the share of `da` in the mix, both constraints kept
    for g, n in ((g1, n1), (g2, n2)):
        ra, rb = (g * da).sum(1) - n, (g * db).sum(1) - n
        slope = ra - rb
        bound = -rb / torch.where(slope == 0, 1.0, slope)
        lo_a = torch.where(slope > 0, torch.maximum(lo_a, bound), lo_a)
        hi_a = torch.where(slope < 0, torch.minimum(hi_a, bound), hi_a)
        hi_a = torch.where((slope == 0) & (rb < 0), -1.0, hi_a)  # never met: no mix
    close = (lo_a > hi_a) & (lo_a - hi_a < 1e-6)  # met at one α, up to rounding
    lo_a, hi_a = torch.where(close, hi_a, lo_a), torch.where(close, lo_a, hi_a)
    mixes = [alpha.unsqueeze(1) * da + (1 - alpha).unsqueeze(1) * db for alpha in (lo_a, hi_a)]
    cost = [l1 * m.abs().sum(1) + l2 * m.pow(2).sum(1) for m in mixes]
    out = torch.where((cost[0] <= cost[1]).unsqueeze(1), mixes[0], mixes[1])
    return torch.where((lo_a <= hi_a).unsqueeze(1), out, da)
