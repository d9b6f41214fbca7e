"""Metrics applied identically to every explanation (causal effects and Captum attributions).

Explanations are compared on feature groups: a map shaped like the input is first reduced to one
score per group of a Captum-style ``feature_mask`` (:func:`aggregate_to_groups`), giving
``[N, G]`` scores. Then:

- agreement: per-sample Spearman ρ and Kendall τ_b between two explanations, top-k overlap;
- faithfulness: deletion (Samek et al. 2017) and insertion (Petsiuk et al. 2018, RISE) curves,
  groups set to / restored from the same baseline as the causal effects, and their areas;
- stability: rank correlation of an explanation at ``x`` and at ``x + ε``, ε ~ N(0, σ²), σ by default a share of
  each input element's standard deviation over the probe's samples
  (:func:`~lightning_causal.causal.engine.input_noise.input_noise_sd`); for token ids, at ``x`` with a small random share of its tokens replaced (:func:`token_stability`);
- Captum's ``sensitivity_max`` and ``infidelity`` (Yeh et al. 2019) for reference.

Every forward pass is batched over all steps and samples and chunked by ``max_batch_size``;
randomness comes from private seeds (the global RNG is left as it was).

The rank-based metrics take an optional ``valid`` mask ``[N, G]`` (bool): the groups of each row
that count (for padded token inputs, the groups with a real token). Invalid groups are left out
of the rankings and are never replaced by the curves.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal, get_args

import torch
from captum.metrics import infidelity as _captum_infidelity
from captum.metrics import sensitivity_max as _captum_sensitivity_max
from torch import Tensor, nn

from lightning_causal.baselines.captum_forward import num_samples_of
from lightning_causal.baselines.captum_methods import CaptumForward, seeded_rng
from lightning_causal.causal.engine.batching import map_rows, rows_per_pass
from lightning_causal.causal.engine.checks import (
    check_callable,
    check_choice,
    check_float,
    check_int,
    check_seed,
)
from lightning_causal.causal.engine.finite import check_finite_value
from lightning_causal.causal.engine.forward import Forward, OutputSpec
from lightning_causal.causal.engine.groups import broadcast_groups, flat_mask, group_counts
from lightning_causal.causal.engine.input_noise import input_noise_sd, varies
from lightning_causal.causal.engine.noise import GeneratorWatch, common_noise
from lightning_causal.causal.engine.ranking import rank_positions, spearman
from lightning_causal.causal.engine.state import (
    audit_mode,
    check_logits,
    gather_target,
    resolve_target,
)

__all__ = [
    "CurveMode",
    "CurveScore",
    "TokenPool",
    "perturbation_curve",
    "curve_auc",
    "stability",
    "token_stability",
    "sensitivity",
    "infidelity",
]

Explainer = Callable[[Tensor], Tensor]
#: the values of ``perturbation_curve(mode=, score=)`` and ``token_stability(pool=)`` (and ``CompareSettings``'s)
CurveMode = Literal["deletion", "insertion"]
CurveScore = Literal["auto", "softmax", "raw"]
TokenPool = Literal["probe", "position"]


def _score(out: Tensor, tidx: Tensor, score: str) -> Tensor:
    if score == "softmax" or (score == "auto" and out.dim() == 2 and out.shape[1] > 1):
        out = check_logits(out, f"the perturbation curves (score={score!r}; score='raw' reads the output as it is: "
                                "`perturbation_curve(..., score='raw')`, `CaptumBaseline(..., settings=CompareSettings("
                                "score='raw'))`, for rows that are no class probabilities, a mixture's weights or a "
                                "composition)").softmax(1)
    return gather_target(out, tidx)


def perturbation_curve(
    model: nn.Module,
    inputs: Tensor,
    feature_mask: Tensor,
    scores: Tensor,
    *,
    mode: CurveMode = "deletion",
    baseline: float | Tensor = 0.0,
    target: int | Tensor | None = None,
    steps: int | None = None,
    score: CurveScore = "auto",
    max_batch_size: int | None = None,
    output: OutputSpec = None,
    additional_forward_args: Any = None,
    valid: Tensor | None = None,
    clean: tuple[Tensor, bool | None] | None = None,
) -> tuple[Tensor, Tensor]:
    """Deletion or insertion curve of an explanation ``scores`` ``[N, G]``.

    Groups are ranked by decreasing score. At step ``s`` the ``k_s = round(s G / S)`` top groups
    are set to ``baseline`` (deletion, Samek et al. 2017: "most relevant first") or are the only
    ones restored from the baseline (insertion, Petsiuk et al. 2018), and the curve records
    ``y_s = p_t(x^{(s)})``. A faithful explanation makes deletion fall fast (low area) and
    insertion rise fast (high area). The ``N (S + 1)`` perturbed inputs run in chunked passes.

    With ``valid`` ``[N, G]``, row ``n`` ranks only its ``G_n`` valid groups and step ``s``
    removes (deletion) or restores (insertion) ``k_{n,s} = round(s G_n / S)`` of them; its invalid
    groups keep their values throughout, and its fractions are ``k_{n,s} / G_n`` (NaN when
    ``G_n = 0``). Padding then changes neither the curves nor their areas.

    Args:
        model: the model.
        inputs: one input ``[N, ...]``.
        feature_mask: its groups: integer ids ``0..G-1`` broadcastable to ``inputs``.
        scores: explanation per group ``[N, G]`` (see :func:`aggregate_to_groups`).
        mode: ``"deletion"`` or ``"insertion"``.
        baseline: value of removed features (the same as the causal effects' ``do(x_g := b)``).
        target: class index / per-sample indices / ``None`` (predicted class of ``inputs``).
        steps: number of steps ``S`` (default ``min(G, 32)``; with ``valid``, ``min(max_n G_n, 32)``).
        score: ``"softmax"`` (probability of the target; a model with several outputs only), ``"raw"``
            (its logit / output) or ``"auto"`` (softmax when the model has several outputs).
        output: which tensor of the model's return value is scored (see
            :class:`~lightning_causal.causal.engine.forward.Forward`).
        additional_forward_args: extra forward arguments (see
            :class:`~lightning_causal.causal.engine.forward.Forward`).
        valid: the groups of each row that are ranked and replaced (``None``: all of them).
        max_batch_size: rows per forward pass; ``None``: chosen from the memory budget.
        clean: ``(the explained output on inputs [N, ...], whether its pass moved a global generator)``, where the
            caller has run that pass (:class:`~lightning_causal.causal.engine.noise.GeneratorWatch`; ``None`` for
            "unknown": a small pass asks), so that the curves of several explanations or modes run it once; ``None``:
            run here.

    Returns:
        ``(fractions [S + 1], curves [N, S + 1])`` with ``fractions = k_s / G``; with ``valid``,
        per-row fractions ``[N, S + 1]`` (:func:`curve_auc` takes both).

    Examples:
        >>> model = nn.Linear(2, 1, bias=False)
        >>> _ = model.weight.data.fill_(1.0)
        >>> perturbation_curve(model, torch.tensor([[1.0, 2.0]]), torch.tensor([[0, 1]]), torch.tensor([[0.0, 1.0]]))
        (tensor([0.0000, 0.5000, 1.0000]), tensor([[3., 1., 0.]]))
        >>> model3 = nn.Linear(3, 1, bias=False)
        >>> _ = model3.weight.data.fill_(1.0)
        >>> perturbation_curve(model3, torch.tensor([[1.0, 2.0, 4.0]]), torch.tensor([[0, 1, 2]]), torch.tensor([[0.0, 1.0, 9.0]]),
        ...                    valid=torch.tensor([[True, True, False]]))  # group 2 is padding: never removed
        (tensor([[0.0000, 0.5000, 1.0000]]), tensor([[7., 5., 4.]]))
    """
    if mode not in get_args(CurveMode):
        raise ValueError(f"Expected argument `mode` to be 'deletion' or 'insertion' but got {mode!r}")
    check_choice("score", score, get_args(CurveScore))
    check_finite_value("baseline", baseline)  # every removed feature NaN: the curve NaN after its start
    m = flat_mask(feature_mask, inputs.shape).to(inputs.device)
    n, g = inputs.shape[0], scores.shape[1] if scores.dim() == 2 else -1
    if scores.dim() != 2 or scores.shape[0] != n or g < int(m.max()) + 1:
        raise ValueError(f"Expected argument `scores` of shape [{n}, G >= {int(m.max()) + 1}] but got {list(scores.shape)}")
    check_int("steps", steps, minimum=1, none_ok=True)
    if valid is not None and (not isinstance(valid, Tensor) or valid.dtype != torch.bool or valid.shape != scores.shape):
        raise ValueError(f"Expected argument `valid` to be None or a boolean tensor of shape {list(scores.shape)} but got {valid!r:.80}")
    if valid is None:
        s = min(g, 32) if steps is None else steps
        counts = torch.round(torch.linspace(0, g, s + 1, device=inputs.device)).long()
        rank = rank_positions(scores.to(inputs.device))
    else:
        valid = valid.to(inputs.device)
        sizes = valid.sum(1)  # G_n
        s = max(1, min(int(sizes.max()), 32)) if steps is None else steps
        products = torch.arange(s + 1, device=inputs.device).view(-1, 1) * sizes  # s G_n, exact integers
        counts = torch.round(products.double() / s).long()  # [S + 1, N]: k_{n,s} (halves to even, as round)
        rank = rank_positions(scores.to(inputs.device), valid)
    x = inputs.reshape(n, -1)
    b = torch.as_tensor(baseline, dtype=inputs.dtype, device=inputs.device)
    b = b.expand(inputs.shape).reshape(n, -1) if b.dim() else b
    forward = Forward(model, output=output, additional_forward_args=additional_forward_args, num_samples=n)
    if clean is not None and not (isinstance(clean, tuple) and len(clean) == 2 and isinstance(clean[0], Tensor)
                                  and clean[0].shape[:1] == (n,) and (clean[1] is None or isinstance(clean[1], bool))):
        raise ValueError(f"Expected argument `clean` to be None or (the explained output [{n}, ...] on `inputs`, True, "
                         f"False or None) but got {clean!r:.80}")
    with audit_mode(forward.model):
        if clean is None:
            with GeneratorWatch() as clean_pass:  # whether the model draws from a global generator: no pass of its own
                out = forward(inputs)
            clean = out, clean_pass.moved
        clean, drew = clean
        if score == "softmax" and (clean.dim() != 2 or clean.shape[1] < 2):
            raise ValueError(
                f"Expected argument `score='softmax'` only for a model with several outputs [N, C >= 2] but its output is "
                f"{list(clean.shape)}: the softmax of one output is 1 whatever the input (flat curves); use score='raw' or 'auto'"
            )
        tidx = resolve_target(clean, target)

        def evaluate(idx: Tensor) -> Tensor:
            step, smp = idx // n, idx % n
            if valid is None:
                top = rank[smp] < counts[step].unsqueeze(1)  # [R, G]: the k_s top groups
                removed = top if mode == "deletion" else ~top
            else:
                top = rank[smp] < counts[step, smp].unsqueeze(1)  # the k_{n,s} top valid groups
                removed = top if mode == "deletion" else ~top & valid[smp]
            elem = removed.gather(1, m[smp] if m.shape[0] > 1 else m.expand(len(idx), -1))
            xi = torch.where(elem, b[smp] if b.dim() else b, x[smp]).view(len(idx), *inputs.shape[1:])
            return _score(forward(xi, rows=smp), tidx[smp], score)

        rows = rows_per_pass(forward.model, (inputs,), max_batch_size, forward=forward)
        # every point of a sample's curve: one noise
        noise = common_noise(forward, forward.model, (inputs,), rows, drew=drew)
        if noise is None:
            curves = map_rows(n * (s + 1), rows, evaluate, inputs.device).view(s + 1, n).T
        else:  # a model that draws noise in eval mode: common random numbers along each curve
            curves = noise.rows(s + 1, lambda step, smp: evaluate(step * n + smp), inputs.device).T
    if valid is None:
        return counts.to(inputs.dtype) / g, curves.contiguous()
    dtype = inputs.dtype if inputs.is_floating_point() else curves.dtype
    return (counts.T.to(dtype) / sizes.view(-1, 1)).contiguous(), curves.contiguous()


def curve_auc(fractions: Tensor, curves: Tensor) -> Tensor:
    """Per-sample area under each curve, trapezoidal rule over ``fractions`` ``[S + 1]`` (or per
    row, ``[N, S + 1]``): ``[N]``.

    Args:
        fractions: ``[S + 1]`` or ``[N, S + 1]``, as above, non-decreasing.
        curves: ``[N, S + 1]``.

    Examples:
        >>> curve_auc(torch.tensor([0.0, 0.5, 1.0]), torch.tensor([[1.0, 0.5, 0.0]]))
        tensor([0.5000])
    """
    for name, t in (("fractions", fractions), ("curves", curves)):
        if not isinstance(t, Tensor):
            raise TypeError(f"Expected argument `{name}` to be a tensor but got {type(t).__name__}")
    if curves.dim() != 2:
        raise ValueError(f"Expected argument `curves` to be [N, S + 1] (one curve per row) but got {list(curves.shape)}")
    if fractions.shape not in (curves.shape[1:], curves.shape):
        raise ValueError(f"Expected argument `fractions` to be [{curves.shape[1]}] or {list(curves.shape)} (one per point of `curves` "
                         f"{list(curves.shape)}) but got {list(fractions.shape)}")
    if bool((fractions.diff(dim=-1) < 0).any()):  # a decreasing axis would give the area with its sign flipped
        raise ValueError(f"Expected argument `fractions` to be non-decreasing along each curve but got {fractions.tolist()!s:.80}")
    return torch.trapezoid(curves, fractions, dim=1)


def _generator(seed: int, device: torch.device) -> torch.Generator:
    return torch.Generator(device=device).manual_seed(check_seed(seed))


def _noise_sd(inputs: Tensor, sigma: float | Tensor | None, noise_fraction: float, name: str = "sigma") -> float | Tensor:
    """``sigma`` checked (a float >= 0 or a tensor of them broadcastable to one sample ``[1, ...]``), or by default
    ``noise_fraction`` standard deviations of each element of ``inputs`` over the samples (``input_noise_sd``)."""
    if sigma is None:
        check_float("noise_fraction", noise_fraction, minimum=0.0)
        if not varies(inputs):
            raise ValueError(
                f"Expected argument `inputs` to vary over its samples: the default `{name}` is `noise_fraction` standard "
                f"deviations of each input element over the samples, and no element of the {list(inputs.shape)} inputs "
                f"varies (one sample?); give `{name}=` in the inputs' units, or more samples")
        return input_noise_sd(inputs, noise_fraction)
    if isinstance(sigma, Tensor):
        if not bool((sigma >= 0).all()) or sigma.dim() > inputs.dim():
            raise ValueError(f"Expected argument `{name}` to be non-negative and broadcastable to one sample "
                             f"{[1, *inputs.shape[1:]]} but got {sigma!r:.80}")
        try:
            torch.broadcast_shapes(sigma.shape, (1, *inputs.shape[1:]))
        except RuntimeError:
            raise ValueError(f"Expected argument `{name}` to be broadcastable to one sample {[1, *inputs.shape[1:]]} but "
                             f"got {list(sigma.shape)}") from None
        return sigma.to(inputs.device, inputs.dtype)
    check_float(name, sigma, minimum=0.0)
    return float(sigma)


def stability(
    explain: Explainer,
    inputs: Tensor,
    sigma: float | Tensor | None = None,
    *,
    noise_fraction: float = 0.1,
    n_repeats: int = 1,
    seed: int = 0,
    reference: Tensor | None = None,
    valid: Tensor | None = None,
) -> Tensor:
    """Per-sample stability: Spearman ρ between ``explain(x)`` and ``explain(x + σ ⊙ ε)``,
    ε ~ N(0, I), averaged over ``n_repeats`` draws of a private generator.

    ε is drawn in the inputs' dtype, and torch's CPU generator gives other normal draws in float64 than in float32
    under one seed (every one, from 16 elements): a model's float64 twin is measured on other noise, so its
    stability differs by the spread of the draws, not by rounding (a tanh MLP of 6 inputs, 64 samples: 0.968 in
    float32, 0.971 in float64); compare such twins with ``n_repeats`` draws enough to make that spread small.

    By default each element's σ is ``noise_fraction`` of its own standard deviation over the samples of ``inputs``,
    ``σ_e = noise_fraction · sd_n(x_ne)`` (:func:`~lightning_causal.causal.engine.input_noise.input_noise_sd`, the
    rule of every stability measure): a column of a table, a pixel of an image, moves by the same share of its own
    spread (the std of all the values together moved a column of sd 1 beside one of sd 1000 by 71 of its sds at
    0.1). An element constant over the samples (an image's blank border) gets no noise; inputs of which no element
    varies (one sample) are refused: give ``sigma``.

    Args:
        explain: ``x [N, ...] -> scores [N, G]`` (the target must be fixed inside, not re-predicted).
        sigma: noise standard deviation in the inputs' units: a float for every element, or a tensor of one per
            element broadcastable to ``[1, ...]`` (default: ``noise_fraction`` standard deviations of each element,
            as above).
        reference: ``explain(inputs)`` if already computed.
        valid: ``[N, G]`` groups that Spearman ranks (``None``: all; see :func:`~lightning_causal.causal.engine.ranking.spearman`).
        inputs: the inputs ``[N, ...]`` (floating point).
        noise_fraction: ``σ_e``'s share of each element's standard deviation over the samples when ``sigma`` is ``None``.
        n_repeats: draws averaged (an integer >= 1).
        seed: the seed of the private generator.

    Examples:
        >>> stability(lambda x: x * 2, torch.tensor([[1.0, 2.0, 3.0]]), sigma=0.01)
        tensor([1.])
        >>> table = torch.tensor([[0.0, 1000.0], [1.0, 5000.0], [2.0, 3000.0]])  # columns of sd 1 and 2000
        >>> stability(lambda x: x / torch.tensor([1.0, 1000.0]), table, noise_fraction=0.01)  # σ 0.01 and 20
        tensor([1., 1., 1.])
    """
    check_int("n_repeats", n_repeats, minimum=1)
    check_callable("explain", explain, "a callable x -> scores [N, G]")
    if not isinstance(inputs, Tensor) or not inputs.is_floating_point():
        raise TypeError(f"Expected argument `inputs` to be floating point (Gaussian noise is added to it) but got "
                        f"{inputs.dtype if isinstance(inputs, Tensor) else type(inputs).__name__}; for token ids or codes "
                        "use token_stability, which replaces a share of them")
    sigma = _noise_sd(inputs, sigma, noise_fraction)
    ref = explain(inputs) if reference is None else reference
    gen = _generator(seed, inputs.device)
    total = torch.zeros(inputs.shape[0], dtype=ref.dtype, device=ref.device)
    for _ in range(n_repeats):
        noise = torch.randn(inputs.shape, generator=gen, device=inputs.device, dtype=inputs.dtype)
        total += spearman(ref, explain(inputs + sigma * noise), valid)
    return total / n_repeats


def token_stability(
    explain: Explainer,
    inputs: Tensor,
    eligible: Tensor,
    share: float = 0.1,
    *,
    n_repeats: int = 1,
    seed: int = 0,
    reference: Tensor | None = None,
    valid: Tensor | None = None,
    pool: TokenPool = "probe",
) -> Tensor:
    """Per-sample stability of an explanation of token ids: Spearman ρ between ``explain(x)`` and
    ``explain(x')``, where ``x'`` replaces each ``eligible`` token with probability ``share`` by
    another token drawn from the eligible tokens of ``inputs`` (the probe's own words: the perturbation
    stays in distribution and needs no vocabulary); ``n_repeats`` draws of a private generator.

    Every sample with an eligible token gets at least one replaced (where ``share > 0``), and a
    replacement is another token than the one it replaces (drawn again, up to 16 times, where the draw
    gave the same; it stays only where the pool holds no other). Otherwise a short text was often left
    as it was (4 tokens at ``share=0.1``: no token drawn in 0.9⁴ ≈ 66% of the samples), its ρ exactly 1
    whatever the method, which pulled every method towards 1 and them together: an explanation that any
    change re-ranks read 0.61 on texts of 4 tokens against 0.05 on texts of 32. A sample's
    perturbation is thus at least one token, a large share of a short text (a quarter of 4).

    A discrete perturbation, the token analogue of ``x + ε``: special tokens (``[CLS]``, ``[SEP]``,
    padding, the baseline token) are kept out of ``eligible`` by the caller, and ``valid`` ``[N, G]``
    restricts Spearman to the groups that count (padding groups, whose scores are 0 in both, would
    otherwise add agreeing ties).

    ``pool="position"`` draws each replacement from the eligible tokens at the same position of
    the probe's samples instead of from all of them: for categorical codes ``[N, D]``, where each
    column has codes of its own (a code of a 4-level column is out of range for a binary one).

    Args:
        explain: ``ids [N, ...] -> scores [N, G]`` (the target fixed inside).
        inputs: token ids ``[N, ...]``.
        eligible: booleans shaped like ``inputs``: the tokens that may be replaced and drawn from.
        share: the probability, in ``[0, 1]``, that an eligible token is replaced.
        n_repeats: draws averaged (an integer >= 1).
        seed: the seed of the private generator.
        reference: ``explain(inputs)`` if already computed.
        valid: ``[N, G]`` groups that Spearman ranks (``None``: all).
        pool: ``"probe"`` or ``"position"``, as above.

    Examples:
        >>> ids = torch.tensor([[1, 5, 6, 7, 2]])
        >>> keep = torch.tensor([[False, True, True, True, False]])
        >>> token_stability(lambda x: x.float(), ids, keep, share=0.0)
        tensor([1.])
    """
    if not isinstance(eligible, Tensor) or eligible.shape != inputs.shape or eligible.dtype != torch.bool:
        raise ValueError(f"Expected argument `eligible` to be a boolean tensor {list(inputs.shape)} but got {eligible!r:.60}")
    if not 0.0 <= share <= 1.0:
        raise ValueError(f"Expected argument `share` to be in [0, 1] but got {share!r}")
    check_int("n_repeats", n_repeats, minimum=1)
    check_choice("pool", pool, get_args(TokenPool))
    by_position = pool == "position"
    pool = inputs[eligible]
    if pool.numel() == 0:
        raise ValueError("Expected at least one eligible token to draw replacements from but got none")
    flat = eligible.reshape(eligible.shape[0], -1)
    sample, column = flat.nonzero().unbind(1)  # each eligible token's sample and position, reading order (as pool)
    sample = sample.cpu()
    if by_position:  # the eligible tokens of every position
        counts = flat.sum(0)
        by_column = inputs.reshape(flat.shape).T[flat.T]  # eligible tokens, position by position
        starts = (counts.cumsum(0) - counts)[column]
    gen = _generator(seed, torch.device("cpu"))

    def draw(at: Tensor) -> Tensor:
        """Replacements for the eligible tokens ``at`` (indices into ``pool``)."""
        if by_position:
            k = (torch.rand(at.numel(), generator=gen, dtype=torch.float64).to(inputs.device) * counts[column[at]]).long()
            return by_column[starts[at] + k.minimum(counts[column[at]] - 1)]
        return pool[torch.randint(pool.numel(), (at.numel(),), generator=gen).to(inputs.device)]

    ref = explain(inputs) if reference is None else reference
    total = torch.zeros(inputs.shape[0], dtype=ref.dtype, device=ref.device)
    for _ in range(n_repeats):
        # One draw per eligible token, in reading order: how many padded positions surround the
        # tokens (the padded length, left or right padding) does not change which tokens are swapped.
        u = torch.rand(pool.numel(), generator=gen)
        swap = u < share
        if share > 0:  # at least one token of each sample: its eligible token of smallest draw
            first = torch.full((inputs.shape[0],), 2.0).scatter_reduce(0, sample, u, "amin")
            swap |= u == first[sample]
        swap = swap.to(inputs.device)
        draws = draw(torch.arange(pool.numel(), device=inputs.device))
        for _ in range(16):  # another token than the one replaced, where the pool holds one
            same = (swap & (draws == pool)).nonzero().flatten()
            if not same.numel():
                break
            draws[same] = draw(same)
        perturbed = inputs.clone()
        perturbed[eligible] = torch.where(swap, draws, pool)
        total += spearman(ref, explain(perturbed), valid)
    return total / n_repeats


def sensitivity(
    explain: Callable[[Tensor, Tensor], Tensor], inputs: Tensor, target: Tensor, radius: float | Tensor, *,
    n_perturb_samples: int = 8, seed: int = 0, max_examples_per_batch: int | None = None,
) -> Tensor:
    """Captum's ``sensitivity_max`` (Yeh et al. 2019): ``max_{‖δ‖_∞ ≤ r} ‖Φ(x + δ) − Φ(x)‖ / ‖Φ(x)‖``
    estimated from ``n_perturb_samples`` uniform draws, ``[N]``; RNG-preserved and seeded. The
    ``N · n_perturb_samples`` perturbed inputs are explained in calls of ``max_examples_per_batch``
    rows (at least ``N``: Captum perturbs every sample in each call; ``None``: all at once); the
    perturbations are drawn once, so the calls do not change them.

    Args:
        explain: ``(x [M, ...], target [M]) -> scores [M, G]`` (Captum repeats ``inputs`` and ``target``).
        inputs: the inputs ``[N, ...]``.
        target: per-sample class indices ``[N]``.
        radius: the ``L∞`` radius ``r`` of the uniform perturbations: a float for every element, or one per element
            broadcastable to one sample ``[1, ...]`` (``input_noise_sd(inputs, share)``: a share of each element's
            standard deviation over the samples, as ``CaptumBaseline`` gives it; each element's draw is then
            ``r_e · U(−1, 1)``).
        n_perturb_samples: perturbations per sample (an integer >= 1).
        seed: the seed of the draws (the global generators are restored after).
        max_examples_per_batch: rows per call of ``explain``, as above.

    Examples:
        >>> sensitivity(lambda x, target: x * 2, torch.ones(2, 3), torch.zeros(2, dtype=torch.long), 0.1, n_perturb_samples=4).shape
        torch.Size([2])
    """
    check_int("n_perturb_samples", n_perturb_samples, minimum=1)
    check_callable("explain", explain, "a callable (x, target) -> scores")
    if radius is None:
        raise ValueError("Expected argument `radius` to be a non-negative float or a tensor of them but got None")
    radius = _noise_sd(inputs, radius, 0.0, "radius")
    n = inputs.shape[0]
    if not isinstance(target, Tensor) or target.dim() and target.shape[0] != n:
        raise ValueError(f"Expected argument `target` to be class indices [{n}] (one per sample of `inputs`) but got "
                         f"{list(target.shape) if isinstance(target, Tensor) else type(target).__name__}")
    drawn: list[Tensor] = []  # every perturbation, drawn at Captum's first call as its default draws them unsliced
    done = [0]

    def fn(x: Tensor | tuple[Tensor, ...], target: Tensor) -> Tensor | tuple[Tensor]:
        return (explain(x[0], target),) if isinstance(x, tuple) else explain(x, target)  # Captum keeps the structure

    def perturb(x: Tensor, perturb_radius: float) -> tuple[Tensor]:
        k = x.shape[0] // n  # Captum's rows: each sample repeated k times (repeat_interleave)
        if not drawn:  # Captum's default_perturb_func on all N * n_perturb_samples rows: float32 uniform draws
            size = (n * n_perturb_samples, *x.shape[1:])
            draw = (torch.FloatTensor(*size).uniform_(-perturb_radius, perturb_radius) if not isinstance(radius, Tensor) else
                    torch.FloatTensor(*size).uniform_(-1.0, 1.0) * radius.detach().float().cpu())  # r_e · U(-1, 1)
            drawn.append(draw.to(x.device).view(n, n_perturb_samples, *x.shape[1:]))
        delta = drawn[0][:, done[0]:done[0] + k].reshape(x.shape)
        done[0] += k
        return (x + delta.to(x.dtype),)  # float32 draws: a bfloat16 or float16 probe stays in its dtype

    with seeded_rng(seed):
        per_pass = None if max_examples_per_batch is None else min(max(max_examples_per_batch, n), n * n_perturb_samples)
        return _captum_sensitivity_max(
            fn, inputs, perturb_func=perturb, perturb_radius=radius if not isinstance(radius, Tensor) else 1.0,
            n_perturb_samples=n_perturb_samples,
            max_examples_per_batch=per_pass, target=target,
        )


def infidelity(
    model: nn.Module, inputs: Tensor, scores: Tensor, feature_mask: Tensor, *, target: int | Tensor | None = None,
    baseline: float | Tensor = 0.0, removal_probability: float = 0.5, n_perturb_samples: int = 8, seed: int = 0,
    normalize: bool = True, output: OutputSpec = None, additional_forward_args: Any = None, max_batch_size: int | None = None,
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

    The ``N · n_perturb_samples`` perturbed inputs run in passes of at most ``max_batch_size``
    rows (default: the engine's memory budget,
    :func:`~lightning_causal.causal.engine.batching.rows_per_pass`) but of whole probes at least
    (Captum's loop perturbs every sample in each pass, and adds a pass over the ``N`` inputs); each
    sample's perturbations are drawn once, so the passes do not change them.

    Args:
        model: the model.
        inputs: one input ``[N, ...]``.
        scores: the explanation per group ``[N, G]``.
        feature_mask: the groups: integer ids ``0..G-1`` broadcastable to ``inputs``.
        target: class index, per-sample indices ``[N]``, or ``None`` (the predicted class).
        baseline: the value of removed groups (a number or a tensor broadcastable to ``inputs``).
        removal_probability: ``p``, the probability that a group is removed in a draw.
        n_perturb_samples: draws per sample.
        seed: the seed of the draws (the global generators are restored after).
        normalize: rescale the scores by β first, as above.
        output: which tensor of the model's return value is explained, as in
            :class:`~lightning_causal.causal.engine.forward.Forward`.
        additional_forward_args: extra forward arguments, as in
            :class:`~lightning_causal.causal.engine.forward.Forward`.
        max_batch_size: rows per pass, as above.

    Examples:
        >>> model = nn.Linear(2, 1, bias=False)
        >>> _ = model.weight.data.copy_(torch.tensor([[1.0, -2.0]]))
        >>> exact = torch.tensor([[1.0, -2.0]]).expand(3, 2)  # the exact contributions of a linear model
        >>> float(infidelity(model, torch.ones(3, 2), exact, torch.tensor([[0, 1]]), target=0).max()) < 1e-6
        True
    """
    check_int("n_perturb_samples", n_perturb_samples, minimum=1)
    check_finite_value("baseline", baseline)  # every perturbed row NaN: infidelity NaN
    if not 0 < removal_probability <= 1:
        raise ValueError(f"Expected argument `removal_probability` in (0, 1] but got {removal_probability!r}")
    m = flat_mask(feature_mask, inputs.shape).to(inputs.device)
    n = inputs.shape[0]
    if not isinstance(scores, Tensor) or scores.dim() != 2 or scores.shape[0] != n or scores.shape[1] < int(m.max()) + 1:
        raise ValueError(f"Expected argument `scores` of shape [{n}, G >= {int(m.max()) + 1}] but got {list(getattr(scores, 'shape', []))}")
    g = scores.shape[1]
    sizes = group_counts(inputs, feature_mask, g).to(scores.dtype)  # each sample's own group sizes
    per_elem = broadcast_groups(scores / sizes.clamp_min(1), m, (inputs.shape[0], m.shape[1])).view_as(inputs)
    b = torch.as_tensor(baseline, dtype=inputs.dtype, device=inputs.device)

    done = [0]  # perturbations per sample handed out so far: Captum asks for them in consecutive slices

    def perturb(x: Tensor) -> tuple[Tensor, Tensor]:
        k = x.shape[0] // n  # Captum's rows: each sample repeated k times (repeat_interleave)
        z = draws[:, done[0]:done[0] + k].reshape(n * k, g).to(x.dtype)
        done[0] += k
        mm = m.expand(x.shape[0], -1) if m.shape[0] == 1 else m.repeat_interleave(k, 0)
        zi = z.gather(1, mm).view_as(x)
        return zi, torch.where(zi.bool(), b, x)

    forward = CaptumForward(model, output=output, additional_forward_args=additional_forward_args,
                            num_samples=num_samples_of(inputs))
    with audit_mode(forward.model), seeded_rng(seed):
        tidx = resolve_target(forward(inputs, *(forward.captum_args() or ())), target)
        rows = forward.rows_per_pass(inputs, max_batch_size)
        # every perturbation drawn at once (the draws of one pass of all of them): [N, n_perturb_samples, G]
        draws = (torch.rand(n * n_perturb_samples, g, device=inputs.device) < removal_probability).view(n, n_perturb_samples, g)
        return _captum_infidelity(
            lambda x, *args: forward(x, *args).reshape(x.shape[0], -1), perturb, inputs, per_elem, target=tidx,
            additional_forward_args=forward.captum_args(), n_perturb_samples=n_perturb_samples, normalize=normalize,
            max_examples_per_batch=min(max(rows, n), n * n_perturb_samples),
        )
