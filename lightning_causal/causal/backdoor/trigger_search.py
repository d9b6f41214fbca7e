"""The optimisation that reverses triggers, shared by :func:`~lightning_causal.causal.backdoor.neural_cleanse.neural_cleanse`
and :func:`~lightning_causal.causal.backdoor.reverse.reverse_trigger`: the arguments checked, the set-up every
run shares (model call, optimiser settings, generator, mask shape, minibatch indices), the random start and
the Adam search of masks and patterns for several classes at once with Neural Cleanse's ``λ`` schedule."""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from lightning_causal.causal.backdoor.triggers import _predicted
from lightning_causal.causal.engine.batching import check_max_batch_size
from lightning_causal.causal.engine.checks import check_float, check_int, check_type
from lightning_causal.causal.engine.forward import Forward, OutputSpec
from lightning_causal.causal.engine.gradient_cuts import float_reading
from lightning_causal.causal.engine.state import check_logits
from lightning_causal.causal.engine.user_frame import outside_package

__all__ = ["mask_shape"]


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
        low = out.dtype in (torch.float16, torch.bfloat16)  # in float32: torch before 2.4 has no float16 cross-entropy on the CPU
        ce = F.cross_entropy(out.float() if low else out, labels, reduction="none").view(k, b)
        norm = m.flatten(1).sum(1)
        loss = ((ce * keep).sum(1) / keep.sum(1).clamp_min(1) + lam * norm).sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        with torch.no_grad():
            hit = (_predicted(out).view(k, b) == cls.unsqueeze(1)).float()  # a row of no class (-inf in each) reaches none
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


def _check_finite_logits(logits: Tensor, caller: str) -> None:
    """Refuse clean outputs ``[N, C]`` that hold NaN or +infinity, or -infinity in every class of a sample, before a
    trigger search starts: its loss (cross-entropy of ``log_softmax``, which is NaN there), and then every mask and
    pattern it optimises, would be NaN, and the search ended in
    :class:`~lightning_causal.causal.backdoor.triggers.Trigger`'s refusal of a mask outside [0, 1], which the caller never
    gave (a model whose weights diverged in training). A -infinity beside finite outputs passes: a class ruled out for
    the sample (``out.masked_fill(illegal, float("-inf"))`` of a policy's illegal actions, a float16 logit that
    overflows below) has probability 0 and a finite gradient, and the search gives what it gives with a large finite
    value there. The message names each cause it sees, from its opening on: NaN or +infinity (a diverged model), -infinity in every class
    of a sample (every class ruled out there, no divergence: on a :class:`~.feature_shift.Contrast`, the model and its
    copy ruling out different classes). Finite outputs are then checked to be logits
    (:func:`~lightning_causal.causal.engine.state.check_logits`: probabilities refused, concentrations warned of)."""
    out = logits.detach().flatten(1)
    diverged, every = (out.isnan() | out.isposinf()).any(1), out.isneginf().all(1)
    if not bool((diverged | every).any()):  # finite: then logits, not probabilities nor concentrations
        check_logits(logits, f"{caller} (its trigger search minimises the cross-entropy of the outputs)")
        return
    seen, causes = [], []  # what the opening says was seen, and its cause, for each seen
    if bool(diverged.any()):
        seen.append(f"they hold NaN or infinity at samples {_listed(diverged)}")
        causes.append("A model whose weights hold NaN or infinity (training diverged: a learning rate too high, a loss of "
                      "log(0)) or that overflows its dtype cannot be searched; audit a checkpoint from before the divergence")
    if bool(every.any()):  # every class masked: not a divergence, and no NaN nor infinity where it is all that was seen
        seen.append(f"{'are' if seen else 'they are'} -infinity in every class at samples {_listed(every)}")
        causes.append(f"At samples {_listed(every)} every output is -infinity: the model rules every class out there (on "
                      "a Contrast, the model and its feature-shifted copy rule out different classes there, none of "
                      "both); leave those samples out of `x`")
    expected = "finite" if bool(diverged.any()) else "finite in one class at least for each sample"
    raise ValueError(
        f"Expected the model's outputs on the samples `x` searched over to be {expected}, but {' and '.join(seen)} of "
        f"{logits.shape[0]}: {caller}'s trigger search optimises each trigger against those "
        "outputs and would give NaN masks and patterns (a -infinity beside finite outputs, a class ruled out, is "
        f"accepted). {'. '.join(causes)}")


def _listed(rows: Tensor) -> str:
    """The samples where ``rows`` (bool ``[N]``) is true, as a list of at most 8 (``"[1, 4, 6]"``), ``" ..."`` after."""
    found = rows.nonzero().flatten().tolist()
    return f"{found[:8]}{' ...' if len(found) > 8 else ''}"


def _unattacked(pred: Tensor) -> list[int]:
    """The class every input is already predicted as (``pred``: the model's classes ``[N]``), in a list; ``[]`` where the
    inputs span classes. Its reversed trigger has no input to move: the search's loss over the inputs not yet in it is
    empty, the mask penalty alone acts, and the mask shrinks to nearly nothing, which says nothing of a backdoor
    (:attr:`~lightning_causal.causal.backdoor.flagging.ReversedTriggers.unattacked`; ``reverse_trigger`` warns)."""
    return [int(pred[0])] if pred.numel() and bool((pred == pred[0]).all()) else []


def _ruled_out(logits: Tensor) -> list[int]:
    """The classes whose output is -inf on every input (``logits`` ``[N, C]``: ``out.masked_fill(~seen, float("-inf"))`` of
    a class a class-incremental model has not seen yet). The search gets no gradient from an output of -inf, so its
    trigger is rarely reached and its mask, grown as the mask penalty's weight falls, measures no trigger: those whose
    reversed trigger moved no input into them are left out of the median and the MAD as an unattacked class is
    (:attr:`~lightning_causal.causal.backdoor.flagging.ReversedTriggers.ruled_out`)."""
    return logits.detach().flatten(1).isneginf().all(0).nonzero().flatten().tolist()


def _check_reverse_args(x: Tensor, num_classes: int, steps: int, lr: float, init_lambda: float, target_asr: float,
                        batch_size: int, patience: int, generator: torch.Generator | None) -> None:
    if not isinstance(x, Tensor) or x.dim() < 2 or x.shape[0] == 0:
        got = list(x.shape) if isinstance(x, Tensor) else type(x).__name__
        raise ValueError(f"Expected argument `x` to be a non-empty floating-point batch [N, D, ...] (samples, then features) but got {got}")
    if not x.is_floating_point():  # the shape alone read as the fault
        raise ValueError(f"Expected argument `x` to be a floating-point batch but got dtype {x.dtype} (shape {list(x.shape)}): a "
                         "trigger's mask and pattern are optimised over continuous inputs, and any trigger, a known one "
                         "(BackdoorAudit(trigger=...)) too, is stamped as (1 - mask) * x + mask * pattern; give the inputs "
                         f"as floats to a model that reads them so ({float_reading(x.dtype)}); token ids and category "
                         "codes take no such stamp")
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

    Args:
        x: the inputs ``[N, ...]``.
        channel_dim: the dimension whose entries share one mask entry, as above (not 0); ``None``: every
            element.

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
            "repair term) if the features are last", UserWarning, stacklevel=outside_package())
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
