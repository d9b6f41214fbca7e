"""Metrics applied identically to every explanation (causal effects and Captum attributions).

Explanations are compared on feature groups: a map shaped like the input is first reduced to one
score per group of a Captum-style ``feature_mask`` (:func:`aggregate_to_groups`), giving
``[N, G]`` scores. Then:

- agreement: per-sample Spearman ρ and Kendall τ_b between two explanations, top-k overlap;
- faithfulness: deletion (Samek et al. 2017) and insertion (Petsiuk et al. 2018, RISE) curves,
  groups set to / restored from the same baseline as the causal effects, and their areas;
- stability: rank correlation of an explanation at ``x`` and at ``x + ε``, ε ~ N(0, σ²);
- Captum's ``sensitivity_max`` and ``infidelity`` (Yeh et al. 2019) for reference.

Every forward pass is batched over all steps and samples and chunked by ``max_batch_size``;
randomness comes from private seeds (the global RNG is left as it was).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from captum.metrics import infidelity as _captum_infidelity
from captum.metrics import sensitivity_max as _captum_sensitivity_max
from torch import Tensor, nn

from lightning_causal.baselines.captum_methods import seeded_rng
from lightning_causal.causal._batching import map_rows, rows_per_pass
from lightning_causal.causal._state import audit_mode, gather_target, resolve_target

__all__ = [
    "aggregate_to_groups",
    "broadcast_groups",
    "average_ranks",
    "spearman",
    "kendall",
    "topk_overlap",
    "perturbation_curve",
    "curve_auc",
    "stability",
    "sensitivity",
    "infidelity",
]

Explainer = Callable[[Tensor], Tensor]


def _flat_mask(feature_mask: Tensor, shape: torch.Size) -> Tensor:
    """``[1 or N, D]`` group ids of each input element."""
    if not isinstance(feature_mask, Tensor) or feature_mask.is_floating_point() or feature_mask.dtype == torch.bool:
        raise TypeError(f"Expected argument `feature_mask` to be an integer tensor but got {feature_mask!r:.60}")
    m = feature_mask
    if m.dim() == len(shape) - 1:
        m = m.unsqueeze(0)
    try:
        full = torch.broadcast_shapes(m.shape, shape)
    except RuntimeError as err:
        raise ValueError(f"Expected argument `feature_mask` broadcastable to {list(shape)} but got {list(m.shape)}") from err
    if full != shape or m.shape[0] not in (1, shape[0]):
        raise ValueError(f"Expected argument `feature_mask` broadcastable to {list(shape)} but got {list(m.shape)}")
    if (m < 0).any():
        raise ValueError("Expected argument `feature_mask` to hold non-negative group ids but found negatives")
    return m.expand(m.shape[0], *shape[1:]).reshape(m.shape[0], -1).long()


def aggregate_to_groups(
    attributions: Tensor, feature_mask: Tensor, reduction: str = "sum", num_groups: int | None = None
) -> Tensor:
    """Per-group scores ``[N, G]`` of a map shaped like the input: ``s_g = Σ_{i ∈ g} a_i``
    (``"sum"``, for per-element attributions) or the mean over the group (``"mean"``, for maps
    that already give every element its group's value, e.g. ``FeatureAblation`` with a mask).

    Examples:
        >>> aggregate_to_groups(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[0, 0, 1]]))
        tensor([[3., 3.]])
    """
    if reduction not in ("sum", "mean"):
        raise ValueError(f"Expected argument `reduction` to be 'sum' or 'mean' but got {reduction!r}")
    m = _flat_mask(feature_mask, attributions.shape).to(attributions.device)
    g = num_groups if num_groups is not None else int(m.max()) + 1
    vals = attributions.reshape(attributions.shape[0], -1)
    idx = m.expand(vals.shape[0], -1)
    out = torch.zeros(vals.shape[0], g, dtype=vals.dtype, device=vals.device).scatter_add_(1, idx, vals)
    if reduction == "mean":
        count = torch.zeros_like(out).scatter_add_(1, idx, torch.ones_like(vals))
        out = out / count.clamp_min(1)
    return out


def broadcast_groups(values: Tensor, feature_mask: Tensor, shape: torch.Size | tuple[int, ...]) -> Tensor:
    """Group scores ``[N, G]`` spread back over an input of ``shape`` (each element gets its group's score).

    Examples:
        >>> broadcast_groups(torch.tensor([[5.0, 7.0]]), torch.tensor([[0, 0, 1]]), (1, 3))
        tensor([[5., 5., 7.]])
    """
    shape = torch.Size(shape)
    m = _flat_mask(feature_mask, shape).to(values.device)
    return values.gather(1, m.expand(values.shape[0], -1)).view(shape)


def _check_pair(a: Tensor, b: Tensor) -> None:
    if a.dim() != 2 or a.shape != b.shape:
        raise ValueError(f"Expected two explanations of the same shape [N, G] but got {list(a.shape)} and {list(b.shape)}")


def _constant(a: Tensor) -> Tensor:
    return (a == a[:, :1]).all(1)


def average_ranks(a: Tensor) -> Tensor:
    """Per-row ranks ``1..G`` of ``a`` ``[N, G]``, ties sharing their average rank.

    Examples:
        >>> average_ranks(torch.tensor([[10.0, 30.0, 20.0, 20.0]]))
        tensor([[1.0000, 4.0000, 2.5000, 2.5000]])
    """
    srt = a.sort(dim=1).values.contiguous()
    less = torch.searchsorted(srt, a.contiguous(), right=False)
    leq = torch.searchsorted(srt, a.contiguous(), right=True)
    return (less + leq + 1).to(a.dtype if a.is_floating_point() else torch.float) / 2


def spearman(a: Tensor, b: Tensor) -> Tensor:
    """Per-sample Spearman rank correlation between the rows of ``a`` and ``b`` ``[N, G]``.

    .. math:: ρ = \\frac{\\mathrm{cov}(r(a), r(b))}{σ_{r(a)} σ_{r(b)}}

    with average ranks for ties (as torchmetrics' ``spearman_corrcoef`` and SciPy, but exact:
    no ε in the denominator, so identical rankings give exactly 1). NaN where a row is constant.

    Examples:
        >>> a = torch.tensor([[1.0, 2.0, 3.0], [0.0, 5.0, 1.0]])
        >>> spearman(a, a), spearman(a, -a)
        (tensor([1., 1.]), tensor([-1., -1.]))
    """
    _check_pair(a, b)
    ra, rb = average_ranks(a.double()), average_ranks(b.double())
    ra, rb = ra - ra.mean(1, keepdim=True), rb - rb.mean(1, keepdim=True)
    rho = (ra * rb).sum(1) / torch.sqrt((ra * ra).sum(1) * (rb * rb).sum(1))
    out = rho.clamp(-1.0, 1.0).to(a.dtype if a.is_floating_point() else torch.float)
    return out.masked_fill(_constant(a) | _constant(b), float("nan"))


def kendall(a: Tensor, b: Tensor, max_batch_size: int | None = None) -> Tensor:
    """Per-sample Kendall τ_b between the rows of ``a`` and ``b`` ``[N, G]``.

    .. math:: τ_b = \\frac{\\sum_{i<j} \\mathrm{sgn}(a_i - a_j)\\,\\mathrm{sgn}(b_i - b_j)}
              {\\sqrt{\\sum_{i<j} |\\mathrm{sgn}(a_i - a_j)| \\sum_{i<j} |\\mathrm{sgn}(b_i - b_j)|}}

    (concordant minus discordant pairs over the tie-corrected pair counts; equals torchmetrics'
    ``kendall_rank_corrcoef`` variant "b", vectorised over samples in chunks of ``max_batch_size``
    rows). NaN where a row is constant.

    Examples:
        >>> kendall(torch.tensor([[1.0, 2.0, 3.0]]), torch.tensor([[1.0, 3.0, 2.0]]))
        tensor([0.3333])
    """
    _check_pair(a, b)
    g = a.shape[1]
    rows = max_batch_size or max(1, (1 << 24) // max(1, g * g))

    def tau(idx: Tensor) -> Tensor:
        sa = torch.sign(a[idx].unsqueeze(2) - a[idx].unsqueeze(1))
        sb = torch.sign(b[idx].unsqueeze(2) - b[idx].unsqueeze(1))
        num = (sa * sb).sum((1, 2))
        den = torch.sqrt(sa.abs().sum((1, 2)) * sb.abs().sum((1, 2)))
        return num / den  # every pair counted twice in numerator and denominator

    return map_rows(a.shape[0], rows, tau, a.device)


def topk_overlap(a: Tensor, b: Tensor, k: int) -> Tensor:
    """Per-sample share of the ``k`` largest groups of ``a`` that are among the ``k`` largest of ``b``.

    Examples:
        >>> topk_overlap(torch.tensor([[4.0, 3.0, 2.0, 1.0]]), torch.tensor([[4.0, 1.0, 3.0, 2.0]]), 2)
        tensor([0.5000])
    """
    _check_pair(a, b)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= a.shape[1]:
        raise ValueError(f"Expected argument `k` to be an int in [1, {a.shape[1]}] but got {k!r}")
    ta = torch.zeros_like(a, dtype=torch.bool).scatter_(1, a.topk(k, dim=1).indices, True)
    tb = torch.zeros_like(b, dtype=torch.bool).scatter_(1, b.topk(k, dim=1).indices, True)
    return (ta & tb).sum(1).to(a.dtype) / k


def _ranks(scores: Tensor) -> Tensor:
    """Position of each group when sorted by decreasing score (ties: lower group id first)."""
    order = torch.sort(scores, dim=1, descending=True, stable=True).indices
    pos = torch.arange(scores.shape[1], device=scores.device).expand_as(order)
    return torch.empty_like(order).scatter_(1, order, pos)


def _score(out: Tensor, tidx: Tensor, output: str) -> Tensor:
    if output == "softmax" or (output == "auto" and out.dim() == 2 and out.shape[1] > 1):
        out = out.softmax(1)
    return gather_target(out, tidx)


def perturbation_curve(
    model: nn.Module,
    inputs: Tensor,
    feature_mask: Tensor,
    scores: Tensor,
    mode: str = "deletion",
    baseline: float | Tensor = 0.0,
    target: int | Tensor | None = None,
    steps: int | None = None,
    output: str = "auto",
    max_batch_size: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Deletion or insertion curve of an explanation ``scores`` ``[N, G]``.

    Groups are ranked by decreasing score. At step ``s`` the ``k_s = round(s G / S)`` top groups
    are set to ``baseline`` (deletion, Samek et al. 2017: "most relevant first") or are the only
    ones restored from the baseline (insertion, Petsiuk et al. 2018), and the curve records
    ``y_s = p_t(x^{(s)})``. A faithful explanation makes deletion fall fast (low area) and
    insertion rise fast (high area). The ``N (S + 1)`` perturbed inputs run in chunked passes.

    Args:
        scores: explanation per group ``[N, G]`` (see :func:`aggregate_to_groups`).
        mode: ``"deletion"`` or ``"insertion"``.
        baseline: value of removed features (the same as the causal effects' ``do(x_g := b)``).
        target: class index / per-sample indices / ``None`` (predicted class of ``inputs``).
        steps: number of steps ``S`` (default ``min(G, 32)``).
        output: ``"softmax"`` (probability of the target), ``"raw"`` (its logit / output) or
            ``"auto"`` (softmax when the model has several outputs).

    Returns:
        ``(fractions [S + 1], curves [N, S + 1])`` with ``fractions = k_s / G``.

    Examples:
        >>> model = nn.Linear(2, 1, bias=False)
        >>> _ = model.weight.data.fill_(1.0)
        >>> perturbation_curve(model, torch.tensor([[1.0, 2.0]]), torch.tensor([[0, 1]]), torch.tensor([[0.0, 1.0]]))
        (tensor([0.0000, 0.5000, 1.0000]), tensor([[3., 1., 0.]]))
    """
    if mode not in ("deletion", "insertion"):
        raise ValueError(f"Expected argument `mode` to be 'deletion' or 'insertion' but got {mode!r}")
    if output not in ("auto", "softmax", "raw"):
        raise ValueError(f"Expected argument `output` to be 'auto', 'softmax' or 'raw' but got {output!r}")
    m = _flat_mask(feature_mask, inputs.shape).to(inputs.device)
    n, g = inputs.shape[0], scores.shape[1] if scores.dim() == 2 else -1
    if scores.dim() != 2 or scores.shape[0] != n or g < int(m.max()) + 1:
        raise ValueError(f"Expected argument `scores` of shape [{n}, G >= {int(m.max()) + 1}] but got {list(scores.shape)}")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ValueError(f"Expected argument `steps` to be None or a positive int but got {steps!r}")
    s = min(g, 32) if steps is None else steps
    counts = torch.round(torch.linspace(0, g, s + 1, device=inputs.device)).long()
    rank = _ranks(scores.to(inputs.device))
    x = inputs.reshape(n, -1)
    b = torch.as_tensor(baseline, dtype=inputs.dtype, device=inputs.device)
    b = b.expand(inputs.shape).reshape(n, -1) if b.dim() else b
    with audit_mode(model):
        tidx = resolve_target(model(inputs), target)

        def evaluate(idx: Tensor) -> Tensor:
            step, smp = idx // n, idx % n
            top = rank[smp] < counts[step].unsqueeze(1)  # [R, G]: the k_s top groups
            removed = top if mode == "deletion" else ~top
            elem = removed.gather(1, m[smp] if m.shape[0] > 1 else m.expand(len(idx), -1))
            xi = torch.where(elem, b[smp] if b.dim() else b, x[smp]).view(len(idx), *inputs.shape[1:])
            return _score(model(xi), tidx[smp], output)

        rows = rows_per_pass(model, (inputs,), max_batch_size)
        curves = map_rows(n * (s + 1), rows, evaluate, inputs.device).view(s + 1, n).T
    return counts.to(inputs.dtype) / g, curves.contiguous()


def curve_auc(fractions: Tensor, curves: Tensor) -> Tensor:
    """Per-sample area under each curve, trapezoidal rule over ``fractions`` ``[S + 1]``: ``[N]``.

    Examples:
        >>> curve_auc(torch.tensor([0.0, 0.5, 1.0]), torch.tensor([[1.0, 0.5, 0.0]]))
        tensor([0.5000])
    """
    return torch.trapezoid(curves, fractions, dim=1)


def _positive_int(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"Expected argument `{name}` to be a positive int but got {value!r}")


def _generator(seed: int, device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(int(seed))


def default_sigma(inputs: Tensor, noise_fraction: float) -> float:
    """``noise_fraction`` times the standard deviation of all input values (1 if they are constant)."""
    std = float(inputs.detach().float().std()) if inputs.numel() > 1 else 0.0
    return noise_fraction * (std if std > 0 else 1.0)


def stability(
    explain: Explainer,
    inputs: Tensor,
    sigma: float | None = None,
    noise_fraction: float = 0.1,
    n_repeats: int = 1,
    seed: int = 0,
    reference: Tensor | None = None,
) -> Tensor:
    """Per-sample stability: Spearman ρ between ``explain(x)`` and ``explain(x + ε)``,
    ε ~ N(0, σ² I), averaged over ``n_repeats`` draws of a private generator.

    Args:
        explain: ``x [N, ...] -> scores [N, G]`` (the target must be fixed inside, not re-predicted).
        sigma: noise standard deviation (default ``noise_fraction`` × std of ``inputs``).
        reference: ``explain(inputs)`` if already computed.

    Examples:
        >>> stability(lambda x: x * 2, torch.tensor([[1.0, 2.0, 3.0]]), sigma=0.01)
        tensor([1.])
    """
    if sigma is None:
        sigma = default_sigma(inputs, noise_fraction)
    if not sigma >= 0:
        raise ValueError(f"Expected argument `sigma` to be a non-negative float but got {sigma!r}")
    _positive_int("n_repeats", n_repeats)
    ref = explain(inputs) if reference is None else reference
    gen = _generator(seed, inputs.device)
    total = torch.zeros(inputs.shape[0], dtype=ref.dtype, device=ref.device)
    for _ in range(n_repeats):
        noise = torch.randn(inputs.shape, generator=gen, device=inputs.device, dtype=inputs.dtype)
        total += spearman(ref, explain(inputs + sigma * noise))
    return total / n_repeats


def sensitivity(
    explain: Callable[[Tensor, Tensor], Tensor], inputs: Tensor, target: Tensor, radius: float,
    n_perturb_samples: int = 8, seed: int = 0, max_examples_per_batch: int | None = None,
) -> Tensor:
    """Captum's ``sensitivity_max`` (Yeh et al. 2019): ``max_{‖δ‖_∞ ≤ r} ‖Φ(x + δ) − Φ(x)‖ / ‖Φ(x)‖``
    estimated from ``n_perturb_samples`` uniform draws, ``[N]``; RNG-preserved and seeded.

    Args:
        explain: ``(x [M, ...], target [M]) -> scores [M, G]`` (Captum repeats ``inputs`` and ``target``).
        target: per-sample class indices ``[N]``.

    Examples:
        >>> sensitivity(lambda x, target: x * 2, torch.ones(2, 3), torch.zeros(2, dtype=torch.long), 0.1, 4).shape
        torch.Size([2])
    """
    _positive_int("n_perturb_samples", n_perturb_samples)

    def fn(x: Tensor | tuple[Tensor, ...], target: Tensor) -> Tensor | tuple[Tensor]:
        return (explain(x[0], target),) if isinstance(x, tuple) else explain(x, target)  # Captum keeps the structure

    with seeded_rng(seed):
        return _captum_sensitivity_max(
            fn, inputs, perturb_radius=radius, n_perturb_samples=n_perturb_samples,
            max_examples_per_batch=max_examples_per_batch, target=target,
        )


def infidelity(
    model: nn.Module, inputs: Tensor, scores: Tensor, feature_mask: Tensor, target: int | Tensor | None = None,
    baseline: float | Tensor = 0.0, removal_probability: float = 0.5, n_perturb_samples: int = 8, seed: int = 0,
    normalize: bool = True,
) -> Tensor:
    """Captum's ``infidelity`` (Yeh et al. 2019) of group scores ``s`` ``[N, G]`` under random
    removal of feature groups, ``[N]``:

    .. math:: \\mathrm{INFD}(s, x) = E_z\\Big[\\big(\\textstyle\\sum_g z_g s_g - (f_t(x) - f_t(x_{z \\to b}))\\big)^2\\Big],
              \\quad z_g \\sim \\mathrm{Bernoulli}(p)

    where ``x_{z→b}`` sets the groups with ``z_g = 1`` to the baseline (Yeh's subset-removal
    perturbation, in the form Captum prescribes for "global" attributions: perturbations divided by
    ``x − b``). It asks how well the explanation's sum over any removed set predicts the effect of
    removing that set — the same baseline as the causal effects. With ``normalize`` the scores are
    first rescaled by Yeh's optimal factor β, so explanations in different units compare.

    Examples:
        >>> model = nn.Linear(2, 1, bias=False)
        >>> _ = model.weight.data.copy_(torch.tensor([[1.0, -2.0]]))
        >>> exact = torch.tensor([[1.0, -2.0]]).expand(3, 2)  # the exact contributions of a linear model
        >>> float(infidelity(model, torch.ones(3, 2), exact, torch.tensor([[0, 1]]), target=0).max()) < 1e-6
        True
    """
    _positive_int("n_perturb_samples", n_perturb_samples)
    if not 0 < removal_probability <= 1:
        raise ValueError(f"Expected argument `removal_probability` in (0, 1] but got {removal_probability!r}")
    m = _flat_mask(feature_mask, inputs.shape).to(inputs.device)
    g = scores.shape[1]
    sizes = torch.zeros(g, dtype=scores.dtype, device=inputs.device).scatter_add_(
        0, m.reshape(-1), torch.ones(m.numel(), dtype=scores.dtype, device=inputs.device)
    ) / m.shape[0]
    per_elem = broadcast_groups(scores / sizes.clamp_min(1), m, (inputs.shape[0], m.shape[1])).view_as(inputs)
    b = torch.as_tensor(baseline, dtype=inputs.dtype, device=inputs.device)

    def perturb(x: Tensor) -> tuple[Tensor, Tensor]:
        z = (torch.rand(x.shape[0], g, device=x.device) < removal_probability).to(x.dtype)
        mm = m.expand(x.shape[0], -1) if m.shape[0] == 1 else m.repeat_interleave(n_perturb_samples, 0)
        zi = z.gather(1, mm).view_as(x)
        return zi, torch.where(zi.bool(), b, x)

    with audit_mode(model), seeded_rng(seed):
        tidx = resolve_target(model(inputs), target)
        return _captum_infidelity(
            lambda x: model(x).reshape(x.shape[0], -1), perturb, inputs, per_elem, target=tidx,
            n_perturb_samples=n_perturb_samples, normalize=normalize,
        )
