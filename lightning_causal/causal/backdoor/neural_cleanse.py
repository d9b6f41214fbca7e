"""Neural Cleanse (Wang et al. 2019): reverse-engineer, for every class, the smallest trigger that
sends inputs to it, and flag the classes whose trigger is anomalously small (MAD anomaly index
of the mask norms, :func:`~lightning_causal.causal.backdoor.triggers.mad_anomaly_index`)."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from lightning_causal.causal.backdoor.flagging import (
    COMPACTNESS,
    MAX_NORM_RATIO,
    MAX_PLAIN_RATIO,
    MAX_RATIO,
    TARGET_ASR,
    ReversedTriggers,
    resolve_max_ratio,
    resolve_target_asr,
)
from lightning_causal.causal.backdoor.mask_statistics import (
    compact_ratio,
    divide_by_concentration,
    mask_concentration,
    norm_ratio,
)
from lightning_causal.causal.backdoor.suspects import mad_anomaly_index
from lightning_causal.causal.backdoor.triggers import Trigger, _check_model, _logits
from lightning_causal.causal.engine.batching import check_max_batch_size, map_rows, rows_per_pass
from lightning_causal.causal.engine.checks import check_float, check_int, check_type
from lightning_causal.causal.engine.forward import Forward, OutputSpec
from lightning_causal.causal.engine.noise import warn_separate_noise
from lightning_causal.causal.engine.state import audit_mode, frozen_params

__all__ = ["COMPACTNESS", "MAX_NORM_RATIO", "MAX_PLAIN_RATIO", "MAX_RATIO", "TARGET_ASR", "ReversedTriggers", "check_reverse_options", "compact_ratio", "mask_concentration", "mask_shape",
           "neural_cleanse", "norm_ratio", "reverse_engineer_triggers"]


@dataclass
class _Config:
    steps: int
    lr: float
    init_lambda: float
    target_asr: float
    batch_size: int
    patience: int
    lo: float
    hi: float


def _squash(theta: Tensor) -> Tensor:
    return (torch.tanh(theta) + 1) / 2


def _optimisation_dtype(x: Tensor) -> torch.dtype:
    """The dtype a trigger is optimised in: ``x``'s, at least float32. Adam's ``eps`` (1e-8) is 0 in
    float16 (its steps became 0/0 = NaN) and bfloat16 resolves a mask entry to 2-3 digits, so the
    masks of a half-precision model are optimised in float32 and stamped in the model's dtype."""
    return torch.promote_types(x.dtype, torch.float32)


def _optimise_classes(model: Forward, x: Tensor, pred: Tensor, cls: Tensor, theta_m: Tensor, theta_p: Tensor,
                      batches: Tensor, cfg: _Config, region: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """Neural Cleanse for the classes ``cls`` at once (a class may repeat: one row per start);
    returns the best (mask, pattern, lambda) and whether the target rate was ever reached. With
    ``region`` (0/1, broadcast over the masks) the masks are confined to it. The parameters are in
    :func:`_optimisation_dtype`; the stamped rows reach the model in ``x``'s dtype."""
    def squash_mask(theta: Tensor) -> Tensor:
        return _squash(theta) if region is None else _squash(theta) * region

    k, b = cls.numel(), batches.shape[1]
    theta_m, theta_p = theta_m.clone().requires_grad_(True), theta_p.clone().requires_grad_(True)
    opt = torch.optim.Adam([theta_m, theta_p], lr=cfg.lr, betas=(0.5, 0.9))
    lam = torch.full((k,), cfg.init_lambda, device=x.device)
    up = torch.zeros(k, dtype=torch.long, device=x.device)
    down = torch.zeros_like(up)
    best_m, best_p = squash_mask(theta_m).detach().clone(), _squash(theta_p).detach().clone()
    best_norm = torch.full((k,), float("inf"), device=x.device, dtype=best_m.dtype)  # the parameters' dtype
    labels = cls.repeat_interleave(b)
    for step in range(cfg.steps):
        idx = batches[step]
        keep = (pred[idx].unsqueeze(0) != cls.unsqueeze(1)).float()  # [k, b]: not already the class
        m, p = squash_mask(theta_m), cfg.lo + (cfg.hi - cfg.lo) * _squash(theta_p)
        xt = (1 - m.unsqueeze(1)) * x[idx].unsqueeze(0) + m.unsqueeze(1) * p.unsqueeze(1)
        out = model(xt.reshape(k * b, *x.shape[1:]).to(x.dtype), rows=idx.repeat(k))
        ce = F.cross_entropy(out, labels, reduction="none").view(k, b)
        norm = m.flatten(1).sum(1)
        loss = ((ce * keep).sum(1) / keep.sum(1).clamp_min(1) + lam * norm).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            hit = (out.argmax(1).view(k, b) == cls.unsqueeze(1)).float()
            asr = (hit * keep).sum(1) / keep.sum(1).clamp_min(1)
            ok = asr >= cfg.target_asr
            better = ok & (norm < best_norm)
            best_m[better], best_p[better], best_norm[better] = m[better], p[better], norm[better]
            up, down = torch.where(ok, up + 1, 0), torch.where(ok, 0, down + 1)
            lam = torch.where(up >= cfg.patience, lam * 1.5, torch.where(down >= cfg.patience, lam / 1.5**1.5, lam))
            up, down = torch.where(up >= cfg.patience, 0, up), torch.where(down >= cfg.patience, 0, down)
    never = torch.isinf(best_norm)  # never reached the target rate: keep the last trigger
    with torch.no_grad():
        best_m[never] = squash_mask(theta_m)[never]
        best_p[never] = (cfg.lo + (cfg.hi - cfg.lo) * _squash(theta_p))[never]
    return best_m, best_p, lam, ~never


def check_class_outputs(width: int, caller: str) -> None:
    """Neural Cleanse reverses one trigger per class: refuse a model of fewer than 2 outputs with
    what to do (``caller`` names who asks).

    Examples:
        >>> check_class_outputs(10, "BackdoorAudit")
    """
    if width < 2:
        raise ValueError(f"{caller} reverses one trigger per class and needs a model with at least 2 outputs but it "
                         f"returns {width}; a binary classifier with one logit z can return torch.cat([-z, z], 1) "
                         "(two-class logits), or pass the trigger")


def _check_reverse_args(x: Tensor, num_classes: int, steps: int, lr: float, init_lambda: float, target_asr: float,
                        batch_size: int, patience: int, generator: torch.Generator | None) -> None:
    if not isinstance(x, Tensor) or x.dim() < 2 or x.shape[0] == 0:
        got = list(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"Expected argument `x` to be a non-empty floating-point batch [N, D, ...] (samples, then features) but got {got}")
    if not x.is_floating_point():  # the shape alone read as the fault
        raise ValueError(f"Expected argument `x` to be a floating-point batch but got dtype {x.dtype} (shape {list(x.shape)}): a "
                         "trigger's mask and pattern are optimised over continuous inputs; for integer inputs (token ids, "
                         "category codes) audit a known trigger instead (BackdoorAudit(trigger=...))")
    bad = (~torch.isfinite(x.detach())).flatten(1).any(1)
    if bool(bad.any()):  # else the pattern's range, drawn from x, is refused as a non-finite `pattern` the caller never gave
        rows = bad.nonzero().flatten().tolist()
        raise ValueError(f"Expected argument `x` to be finite but samples {rows[:8]}{' ...' if len(rows) > 8 else ''} of "
                         f"{x.shape[0]} hold NaN or infinity; drop or impute them")
    check_int("num_classes", num_classes, minimum=2)
    check_int("steps", steps, minimum=1), check_int("batch_size", batch_size, minimum=1), check_int("patience", patience, minimum=1)
    check_float("lr", lr, minimum=0.0, open_min=True), check_float("init_lambda", init_lambda, minimum=0.0, open_min=True), check_float("target_asr", target_asr, minimum=0.0, maximum=1.0, open_min=True)
    check_type("generator", generator, torch.Generator, none_ok=True)


@dataclass
class _Setup:
    """What every reversal run shares: the model call, the optimiser settings, the generator,
    the rows per forward pass, the mask's shape and the minibatch indices of every step."""

    fwd: Forward
    cfg: _Config
    generator: torch.Generator
    max_batch_size: int | None
    mshape: tuple[int, ...]
    batches: Tensor


def _prepare(model: nn.Module, x: Tensor, steps: int, lr: float, init_lambda: float, target_asr: float, batch_size: int,
             patience: int, input_range: tuple[float, float] | None, generator: torch.Generator | None,
             max_batch_size: int | None, output: OutputSpec, additional_forward_args: Any, channel_dim: int | None = 1) -> _Setup:
    """The shared set-up of :func:`neural_cleanse` and ``reverse_trigger`` (arguments already
    checked); the minibatch indices are the generator's first draw."""
    mbs = check_max_batch_size(max_batch_size)
    fwd = Forward(model, output=output, additional_forward_args=additional_forward_args, num_samples=x.shape[0])
    lo, hi = _input_range(x, input_range)
    g = generator if generator is not None else torch.Generator().manual_seed(0)
    b = min(batch_size, mbs) if mbs is not None else batch_size
    cfg = _Config(steps, float(lr), float(init_lambda), float(target_asr), b, patience, lo, hi)
    mshape = mask_shape(x, channel_dim)
    batches = torch.randint(x.shape[0], (steps, b), generator=g).to(x.device)
    return _Setup(fwd, cfg, g, mbs, mshape, batches)


def mask_shape(x: Tensor, channel_dim: int | None = 1) -> tuple[int, ...]:
    """The shape of a reversed trigger's mask for inputs ``x`` ``[N, ...]``: one input's shape with
    the ``channel_dim`` dimension (whose entries share one mask entry) of size 1; every element
    for tabular ``[N, D]`` inputs or ``channel_dim=None``.

    ``channel_dim=1`` (default) fits images ``[N, C, H, W]`` and ``Conv1d`` inputs ``[N, C, T]``;
    features-last sequences ``[N, T, F]`` (recurrent and transformer inputs) need ``-1``, or the
    mask would be one entry per feature shared by every step (a warning says so when dimension 1 is
    the longer one).

    Examples:
        >>> mask_shape(torch.zeros(2, 3, 8, 8)), mask_shape(torch.zeros(2, 64, 1), -1), mask_shape(torch.zeros(2, 5))
        ((1, 8, 8), (64, 1), (5,))
    """
    if x.dim() < 3 or channel_dim is None:
        return tuple(x.shape[1:])
    if isinstance(channel_dim, bool) or not isinstance(channel_dim, int) or not -(x.dim() - 1) <= channel_dim < x.dim() or channel_dim == 0 or channel_dim == -x.dim():
        raise ValueError(f"Expected argument `channel_dim` to be None or a dimension of the inputs {list(x.shape)} other than "
                         f"the samples' (1 to {x.dim() - 1}, or negative) but got {channel_dim!r}")
    d = channel_dim % x.dim()
    if x.dim() == 3 and d == 1 and x.shape[1] > x.shape[2]:
        warnings.warn(
            f"Neural Cleanse's mask for inputs {list(x.shape)} is shared along dimension 1 (channels, as [N, C, T]); "
            f"here dimension 1 is the longer one, as in a features-last sequence [N, T, F], whose mask would then be one "
            f"entry per feature shared by every step: pass `channel_dim=-1` (in `reverse_options` for the audit and the "
            "repair term) if the features are last", UserWarning, stacklevel=3)
    shape = list(x.shape[1:])
    shape[d - 1] = 1
    return tuple(shape)


def _input_range(x: Tensor, input_range: tuple[float, float] | None) -> tuple[float, float]:
    if input_range is None:
        lo, hi = float(x.min()), float(x.max())
        return (lo, hi) if hi > lo else (lo, lo + 1.0)
    if not isinstance(input_range, (tuple, list)) or len(input_range) != 2 or not float(input_range[0]) < float(input_range[1]):
        raise ValueError(f"Expected argument `input_range` to be None or a pair (low, high) with low < high but got {input_range!r}")
    return float(input_range[0]), float(input_range[1])


def _init_theta(shape: tuple[int, ...], g: torch.Generator, device: torch.device) -> Tensor:
    """Parameters whose squashed value is uniform on (0, 1) (Neural Cleanse's random start)."""
    return torch.atanh((2 * torch.rand(shape, generator=g) - 1) * 0.99).to(device)


MAX_STARTS = 10


def _half_window(h: int, w: int) -> tuple[int, int]:
    """Side of a localised start's window: ``ceil(h/2) x ceil(w/2)``."""
    return -(-h // 2), -(-w // 2)


def _window_corners(h: int, w: int, count: int) -> list[tuple[int, int]]:
    """Top-left corners of ``count`` windows of :func:`_half_window`'s size: the four corners,
    the centre, then the four edge midpoints."""
    wh, ww = _half_window(h, w)
    top, left, mid_r, mid_c = h - wh, w - ww, (h - wh) // 2, (w - ww) // 2
    spots = [(0, 0), (0, left), (top, 0), (top, left), (mid_r, mid_c), (0, mid_c), (top, mid_c), (mid_r, 0), (mid_r, left)]
    return spots[:count]


def _local_theta(num_classes: int, mshape: tuple[int, ...], corner: tuple[int, int], device: torch.device) -> Tensor:
    """Mask parameters squashing to 0.6 inside one window and 0.02 outside (a localised start)."""
    wh, ww = _half_window(mshape[-2], mshape[-1])
    m = torch.full((num_classes, *mshape), 0.02)
    r, c = corner
    m[..., r : r + wh, c : c + ww] = 0.6
    return torch.atanh(2 * m - 1).to(device)


def _best_start(masks: Tensor, patterns: Tensor, lambdas: Tensor, reached: Tensor, num_classes: int,
                window: int, compactness: float) -> tuple[Tensor, Tensor, Tensor]:
    """Per class, the start with the lowest score ``|m|_1 / κ^p`` (the rule's score up to the
    median, which all starts share; ``p = 0``: the smallest mask) among those that reached the
    target rate (start 0 if none did); rows are ordered ``s * C + c``."""
    score = divide_by_concentration(masks.flatten(1).sum(1), mask_concentration(masks, window), compactness)
    score = score.view(-1, num_classes)
    ok = reached.view(-1, num_classes)
    pick = torch.where(ok, score, torch.full_like(score, float("inf"))).argmin(0)
    pick = torch.where(ok.any(0), pick, torch.zeros_like(pick))
    rows = pick * num_classes + torch.arange(num_classes, device=masks.device)
    return masks[rows], patterns[rows], lambdas[rows]


def _final_rates(model: Forward, x: Tensor, pred: Tensor, masks: Tensor, patterns: Tensor, rows: int) -> Tensor:
    """``[C]`` attack rate of each class's trigger on the inputs not already predicted as that class."""
    n, c = x.shape[0], masks.shape[0]

    def evaluate(idx: Tensor) -> Tensor:
        cls, s = idx // n, idx % n
        xt = (1 - masks[cls]) * x[s] + masks[cls] * patterns[cls]
        return (model(xt.to(x.dtype), rows=s).argmax(1) == cls).float()

    hit = map_rows(c * n, rows, evaluate, x.device).view(c, n)
    keep = (pred.unsqueeze(0) != torch.arange(c, device=x.device).unsqueeze(1)).float()
    return (hit * keep).sum(1) / keep.sum(1).clamp_min(1)


def neural_cleanse(
    model: nn.Module,
    x: Tensor,
    num_classes: int,
    steps: int = 300,
    *,
    lr: float = 0.1,
    init_lambda: float = 1e-3,
    target_asr: float | str = "auto",
    batch_size: int = 64,
    patience: int = 10,
    threshold: float = 2.0,
    input_range: tuple[float, float] | None = None,
    generator: torch.Generator | None = None,
    max_batch_size: int | None = None,
    min_concentration: float | None = None,
    window: int = 3,
    starts: int = 1,
    max_ratio: float | str | None = "auto",
    compactness: float = COMPACTNESS,
    output: OutputSpec = None,
    additional_forward_args: Any = None,
    channel_dim: int | None = 1,
) -> ReversedTriggers:
    """Reverse-engineer the smallest trigger of every class and flag anomalously small ones
    (Neural Cleanse, Wang et al. 2019).

    For each class ``c``, with ``m_c = (tanh θ_m + 1)/2`` (one mask shared by the channels) and
    ``p_c = lo + (hi − lo)(tanh θ_p + 1)/2``, Adam (β = (0.5, 0.9)) minimises

    .. math:: \\mathbb{E}_x\\, CE\\big(f((1 − m_c)\\,x + m_c\\,p_c),\\ c\\big) + λ_c \\lVert m_c \\rVert_1

    over inputs not already predicted as ``c``. ``λ_c`` starts at ``init_lambda``; after
    ``patience`` consecutive steps at or above ``target_asr`` it is multiplied by 1.5, after
    ``patience`` steps below divided by 1.5^1.5. The smallest mask reaching ``target_asr`` is kept
    (the last one if none did). A backdoor target needs a much smaller trigger than the other
    classes. Two flagging rules:

    - **ratio rule** (default, ``max_ratio``): flag class ``c`` if its score
      ``s_c = (|m_c|_1 / median_k |m_k|_1) / κ_c^p <= max_ratio`` (:func:`compact_ratio`, with
      ``κ_c`` the :func:`mask_concentration` of image masks and ``p = compactness``; without
      images or with ``p = 0`` the score is the :func:`norm_ratio`). ``max_ratio="auto"`` is
      :data:`MAX_RATIO` (0.75) on the compact score, :data:`MAX_NORM_RATIO` (0.6) on the
      plain norm ratio of images (``compactness=0``) and :data:`MAX_PLAIN_RATIO` (0.35) on
      inputs that are not images (signals, tabular rows; chosen on the development set of
      ``benchmarks/bench_backdoor_nonimage.py``, where 0.6 flagged 5 of 12 clean models: on
      such inputs a class with a small natural trigger is common, and detection is weak).
    - **index rule** (``max_ratio=None``, plain Neural Cleanse): flag ``c`` if its anomaly index
      (:func:`mad_anomaly_index`, positive = small) is ``>= threshold``. With ``C`` classes and
      normal norms a clean model has some class at index 2 with probability
      ``≈ 1 − (1 − 0.023)^C`` (≈ 21% for 10 classes).

    The defaults (``target_asr="auto"``: 0.5 with the compact score, 0.99 without;
    ``compactness=1``; the bounds above) were chosen on the
    development cases of ``benchmarks/backdoor_protocol.py`` (two sets: 86 fold models whose
    patch backdoor was learned, 39 clean ones): Neural Cleanse's own 0.99 rate makes a weakly
    learned trigger (one that moves only 55–80% of inputs by itself) add a class's natural
    strokes until its mask is no smaller than a clean class's; at 0.5 the reversed mask is the
    stamp, or the part of it that the model learned, and the concentration keeps the spread
    strokes of easy clean classes from being flagged. There the target was flagged on 75 of 86
    learned models (67 with ``target_asr=0.99`` and the plain ratio ≤ 0.6), with 0 of 39 false
    alarms either way. The index rule flagged 4 of 10 clean development models. Plain Neural
    Cleanse: ``target_asr=0.99, compactness=0, max_ratio=None``.

    Each mask's :func:`mask_concentration` is returned for image inputs; ``min_concentration``
    (e.g. 0.8) flags a class only if its trigger is also that compact (a hard cut instead of
    the score's weight). Both cost triggers that are not patches (blended, spread-out): use
    ``compactness=0`` for those.

    ``θ_m`` and ``θ_p`` are optimised in the model's dtype, at least float32: on a bfloat16 or
    float16 model the stamped inputs are cast to the model's dtype (Adam's steps in float16 would be
    NaN), the triggers are returned in the model's dtype and their norms and indices in float32.

    Localised starts (``starts > 1``): the objective is not convex, and from a uniform random
    mask the optimiser can settle on a class's natural strokes and miss a larger patch elsewhere.
    Starting also from masks concentrated in each part of the image finds a compact trigger
    there if one exists, at ``starts`` times the rows per step. Each class keeps the start its
    score ranks best, so that a compact stamp is not traded for smaller spread-out strokes.

    All classes (and starts) are optimised together: one forward pass of
    ``C × starts × batch_size`` rows per step (the (class, start) pairs split into groups of
    ``max_batch_size // batch_size`` if ``max_batch_size`` is set; the random draws are the same
    either way). Deterministic for a given ``generator`` (default:
    seed 0); the global RNG is never used. The model runs in eval mode with its parameters'
    ``requires_grad`` off (no ``.grad`` is created) and every flag restored afterwards. Gradients
    are enabled inside, so this also works under ``torch.no_grad``/``inference_mode``.

    Args:
        model: classifier returning logits ``[N, num_classes]``.
        x: clean inputs ``[N, ...]`` (images ``[N, C, H, W]`` get a ``[1, H, W]`` mask; see
            ``channel_dim``).
        channel_dim: the input dimension whose entries share one mask entry (:func:`mask_shape`):
            1 (default: channels), ``-1`` for features-last sequences ``[N, T, F]``, ``None``: none.
        num_classes: number of classes (``>= 2``).
        steps: optimisation steps. lr: Adam learning rate. init_lambda: initial ``λ``.
        target_asr: attack rate a trigger must reach (``"auto"``: 0.5 with the compact score,
            0.99 without). batch_size: inputs per step and class.
        patience: steps before ``λ`` changes. threshold: anomaly index of the index rule.
        input_range: ``(low, high)`` of the pattern (default: the range of ``x``).
        generator: private random generator. max_batch_size: rows per forward pass.
        min_concentration: ``None`` (default) or a number in (0, 1]: also require
            ``mask_concentration >= min_concentration`` to flag (image inputs only).
        window: side of :func:`mask_concentration`'s square.
        max_ratio: the ratio rule's bound: ``"auto"`` (default), a number, or ``None`` (the index
            rule with ``threshold``).
        compactness: the exponent ``p`` of the concentration in the score (0: the norm ratio).
        output: which tensor of the model's return value holds the logits
            (:class:`~lightning_causal.causal.engine.forward.Forward`).
        additional_forward_args: further arguments of the model (Captum's convention; tensors
            with one row per input follow their rows).
        starts: optimisation starts per class (1 to 10; ``> 1`` for image inputs only). Start 0
            is Neural Cleanse's random one (so ``starts=1`` is plain Neural Cleanse); start
            ``s >= 1`` puts the mask at 0.6 inside one window of half the image's side (the
            four corners, the centre, then the edge midpoints) and 0.02 elsewhere. All starts
            run batched together; each class keeps, over the starts that reached ``target_asr``
            (start 0's if none did), the mask of lowest ``|m|_1 / κ^p``: the rule's score (the
            median is common to all starts), the smallest mask when the score is the norm ratio.

    Returns:
        :class:`ReversedTriggers`.

    Examples:
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 3))
        >>> res = neural_cleanse(model, torch.rand(8, 1, 2, 2, generator=torch.Generator().manual_seed(0)), 3, steps=5)
        >>> len(res.triggers), res.triggers[2].target, res.anomaly_index.shape
        (3, 2, torch.Size([3]))
    """
    _check_model(model)
    check_float("compactness", compactness, minimum=0.0)
    compact = isinstance(x, Tensor) and x.dim() == 4 and compactness > 0
    target_asr = resolve_target_asr(target_asr, compact)
    _check_reverse_args(x, num_classes, steps, lr, init_lambda, target_asr, batch_size, patience, generator)
    check_float("threshold", threshold, minimum=0.0, open_min=True)
    check_int("window", window, minimum=1)
    check_int("starts", starts, minimum=1, maximum=MAX_STARTS)
    if starts > 1 and x.dim() != 4:
        raise ValueError(f"Expected image inputs [N, C, H, W] with `starts` > 1 but got {list(x.shape)}")
    if min_concentration is not None:
        check_float("min_concentration", min_concentration, minimum=0.0, maximum=1.0, open_min=True)
        if x.dim() != 4:
            raise ValueError(f"Expected image inputs [N, C, H, W] with `min_concentration` but got {list(x.shape)}")
    max_ratio = resolve_max_ratio(max_ratio, compact, image=x.dim() == 4)
    run = _prepare(model, x, steps, lr, init_lambda, target_asr, batch_size, patience, input_range, generator,
                   max_batch_size, output, additional_forward_args, channel_dim)
    fwd, cfg, g, mbs, mshape, batches, dev = run.fwd, run.cfg, run.generator, run.max_batch_size, run.mshape, run.batches, x.device
    b = cfg.batch_size
    with torch.inference_mode(False):
        x = x.detach().clone()
        opt = _optimisation_dtype(x)
        theta_m = [_init_theta((num_classes, *mshape), g, dev).to(opt)]
        theta_p = [_init_theta((num_classes, *x.shape[1:]), g, dev).to(opt)]
        for corner in _window_corners(x.shape[-2], x.shape[-1], starts - 1):  # drawn after start 0: it stays as it was
            theta_m.append(_local_theta(num_classes, mshape, corner, dev).to(opt))
            theta_p.append(_init_theta((num_classes, *x.shape[1:]), g, dev).to(opt))
        theta_m, theta_p = torch.cat(theta_m), torch.cat(theta_p)  # row s * C + c: start s of class c
        row_class = torch.arange(num_classes, device=dev).repeat(starts)
        with audit_mode(model, grad=True), frozen_params(model), torch.enable_grad():
            with torch.no_grad():
                warn_separate_noise(fwd, (x,), "neural_cleanse")  # each step of the search sees another draw
                pred = _logits(model, x, mbs, forward=fwd)
            if pred.shape[1] != num_classes:
                raise ValueError(f"Expected argument `num_classes` to match the model's {pred.shape[1]} outputs but got {num_classes}")
            pred = pred.argmax(1)
            per_pass = num_classes * starts if mbs is None else max(1, mbs // b)
            parts = [
                _optimise_classes(fwd, x, pred, row_class[rows], theta_m[rows], theta_p[rows], batches, cfg)
                for rows in torch.arange(num_classes * starts, device=dev).split(per_pass)
            ]
            masks, patterns, lambdas, reached = (torch.cat(t).detach() for t in zip(*parts))
            if starts > 1:
                masks, patterns, lambdas = _best_start(masks, patterns, lambdas, reached, num_classes, window,
                                                       float(compactness) if compact else 0.0)
            masks, patterns = masks.to(x.dtype), patterns.to(x.dtype)  # the triggers in the model's dtype, their norms in >= float32
            with torch.no_grad():
                rates = _final_rates(fwd, x, pred, masks, patterns, mbs or rows_per_pass(model, (x,), forward=fwd))
    norms = masks.flatten(1).to(_optimisation_dtype(x)).sum(1)
    triggers = [Trigger(masks[c], patterns[c], c) for c in range(num_classes)]
    conc = mask_concentration(masks, window) if x.dim() == 4 else None
    result = ReversedTriggers(triggers, mad_anomaly_index(norms), norms, rates, lambdas, float(threshold), conc,
                              None if min_concentration is None else float(min_concentration),
                              max_ratio, compactness=float(compactness))
    if num_classes == 2 and result.flagged:
        warnings.warn(
            f"Neural Cleanse flagged class {result.flagged[0]} of a model with 2 classes: with two classes the rule can only "
            "compare the two triggers' sizes, and a natural imbalance between the classes is flagged as well (a clean "
            "binary tabular model was flagged in a trial). Confirm with a known trigger before repairing",
            UserWarning, stacklevel=2)
    return result


def reverse_engineer_triggers(model: nn.Module, x: Tensor, num_classes: int, **options: Any) -> tuple[list[Trigger], Tensor]:
    """Neural Cleanse's per-class triggers and anomaly indices; see :func:`neural_cleanse`
    (which also returns the norms, attack rates and flagged classes; ``options`` are its keyword
    arguments). Under plain Neural Cleanse's index rule a class is flagged at an index ``>= 2``;
    the default rule (:func:`neural_cleanse`'s ``max_ratio``) flags by the trigger's size relative
    to the median, and can flag classes whose index is below 2: read ``neural_cleanse(...).flagged``
    for the classes it flags. With 2 classes the index is always ``±0.67``.

    Examples:
        >>> model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
        >>> triggers, index = reverse_engineer_triggers(model, torch.ones(4, 1, 2, 2), 2, steps=3)
        >>> [t.target for t in triggers], index.shape
        ([0, 1], torch.Size([2]))
    """
    res = neural_cleanse(model, x, num_classes, **options)
    return res.triggers, res.anomaly_index


def check_reverse_options(options: Any, name: str = "reverse_options") -> dict[str, Any]:
    """``options`` as a dict of :func:`neural_cleanse`'s keyword arguments, so that a misspelt key
    fails where it is given, not when training starts.

    Examples:
        >>> check_reverse_options({"steps": 50})
        {'steps': 50}
    """
    import inspect

    if options is None:
        return {}
    if not isinstance(options, Mapping):
        raise TypeError(f"Expected argument `{name}` to be None or a mapping of neural_cleanse's options but got {type(options).__name__}")
    allowed = set(inspect.signature(neural_cleanse).parameters) - {"model", "x", "num_classes"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        raise ValueError(f"Expected the keys of argument `{name}` to be options of neural_cleanse, {sorted(allowed)}, but got {unknown}")
    return dict(options)

