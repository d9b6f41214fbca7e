"""Whether a model treats its samples independently, the premise of every estimator that runs rows of
many samples in one batch (:func:`check_samples_independent`), and the comparison of two passes' outputs
that allows for the rounding of batch-size dependent kernels (:func:`same_outputs`)."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from lightning_causal.causal.engine.forward import Forward
from lightning_causal.causal.engine.live_values import close, trial_rows
from lightning_causal.causal.engine.noise import GeneratorWatch

__all__ = ["check_samples_independent", "same_outputs"]


def check_samples_independent(forward: Forward, xs: tuple[Tensor, ...], output: Tensor, what: str) -> None:
    """Refuse a model whose output for a sample depends on the other samples of its batch.

    Every estimator runs intervened rows of many samples (and units) in one batch, so two probe
    samples run alone must give the probe's (selected) ``output`` for them; else (control flow on a
    batch statistic such as ``if (confidence > t).all(): return early``, statistics over the batch)
    ``ValueError``: each effect would mix the branches of whichever rows share its batch, silently.
    ``what`` names the estimator's action in the message. Differences within 1% of the output's
    scale (``1 + max |output|``; 16 ulps for half precision) are taken for the rounding of
    batch-size dependent kernels (TF32 convolutions, split-K matrix products on accelerators). A
    model that draws from a global generator while the two samples run alone (MC dropout kept on in
    eval; :class:`~.noise.GeneratorWatch`), or that differs from itself when they run alone twice,
    draws noise: that is not the batch's doing, and it passes (noise with few draws per sample made
    the two runs alone agree by chance, and such models were refused).

    Args:
        forward: the model's prepared :class:`~lightning_causal.causal.engine.forward.Forward`.
        xs: the probe inputs ``[N, ...]``.
        output: the (selected) output of the whole probe's pass ``[N, ...]``.
        what: the estimator's action, as above.
    """
    _, rows = trial_rows(xs[0].shape[0], xs[0].device)
    with GeneratorWatch() as watch:
        alone = forward(*(x[rows] for x in xs), rows=rows)
    if watch.moved:
        return  # the model draws random numbers (MC dropout kept on): its outputs differ by the draw, not by the batch
    clean = output[rows]
    diff, same = same_outputs(alone, clean)
    if not same and not same_outputs(forward(*(x[rows] for x in xs), rows=rows), alone)[1]:
        return  # the model differs from itself run twice alone (noise from a generator of its own), not by the batch
    if not same:
        batch_norms = [name for name, m in forward.model.named_modules()
                       if isinstance(m, nn.modules.batchnorm._BatchNorm) and not m.track_running_stats]
        cause = (f"its normalisation layer(s) {batch_norms[:3]} have track_running_stats=False, so even in eval mode "
                 "they normalise by the batch's statistics; build them with track_running_stats=True (and train "
                 "them), or use a per-sample normalisation (LayerNorm, GroupNorm)" if batch_norms else
                 "its forward depends on the batch (control flow on a batch statistic, e.g. "
                 "`if (p > t).all(): return early`, or normalisation over the batch)")
        raise ValueError(
            f"Expected the model to treat samples independently, but the outputs of probe samples {rows.tolist()} "
            f"run alone differ from their outputs in the batch of {xs[0].shape[0]} (max |difference| "
            f"{diff:.3g}): {cause}. {what} runs rows of many "
            "samples in one batch, which would mix their branches silently; make the forward per-sample (e.g. "
            "`torch.where` per row) or pass one sample at a time")


def same_outputs(a: Tensor, b: Tensor) -> tuple[float, bool]:
    """``(max |a - b|, whether that is within 1% of the scale 1 + max |b|)`` (16 ulps for half
    precision; NaN outputs are not judged); :func:`close` for outputs that are not floating point.

    Examples:
        >>> same_outputs(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.015625]))  # 1% of 1 + 2.015625: 0.0302
        (0.015625, True)
        >>> same_outputs(torch.tensor([1.0, 2.0]), torch.tensor([1.0, 2.5]))
        (0.5, False)
    """
    if a.shape == b.shape and a.is_floating_point() and b.is_floating_point():
        diff = float((a.detach().double() - b.detach().double()).abs().max()) if b.numel() else 0.0
        scale = 1.0 + (float(b.detach().abs().max()) if b.numel() else 0.0)
        return diff, not diff > max(1e-2, 16 * torch.finfo(b.dtype).eps) * scale
    return float("nan"), close(a, b)
