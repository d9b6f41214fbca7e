"""Samples that every estimator would turn into NaN: non-finite inputs whose explained output is not finite."""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["check_finite_samples"]


def check_finite_samples(xs: tuple[Tensor, ...], explained: Tensor, name: str = "inputs") -> None:
    """Refuse samples whose inputs hold NaN or infinity and whose explained output ``[N]`` is not
    finite: every effect of such a sample is NaN, and the means, rankings and shares of every
    estimator that averages over samples become NaN with it. A sample the model reads NaN in as
    missing (a finite output) is accepted, and so is a non-finite output of finite inputs (a
    diverged model: its NaN effects are reported, not refused).

    Raises:
        ValueError: naming ``name``, the samples, the input that holds the values and the outputs.

    Examples:
        >>> check_finite_samples((torch.tensor([[1.0], [float("nan")]]),), torch.tensor([0.5, float("nan")]))
        Traceback (most recent call last):
        ...
        ValueError: Expected argument `inputs` to be finite but sample [1] of 2 holds NaN or infinity ...
    """
    bad_out = ~torch.isfinite(explained.detach())
    if not bool(bad_out.any()):
        return
    n = bad_out.shape[0]
    bad_in = torch.zeros(n, dtype=torch.bool, device=bad_out.device)
    holders = []
    for k, x in enumerate(xs):
        if not (x.is_floating_point() or x.is_complex()) or x.shape[0] != n:
            continue
        rows = (~torch.isfinite(x.detach())).reshape(n, -1).any(1).to(bad_out.device) & bad_out
        if bool(rows.any()):
            holders.append(f"input {k} of the tuple" if len(xs) > 1 else "")
            bad_in |= rows
    samples = bad_in.nonzero().flatten().tolist()
    if not samples:
        return
    where = f" (in {', '.join(h for h in holders if h)})" if any(holders) else ""
    shown = f"{samples[:8]}{' ...' if len(samples) > 8 else ''}"
    values = explained.detach()[bad_in][:3].tolist()
    raise ValueError(
        f"Expected argument `{name}` to be finite but sample{'s' if len(samples) > 1 else ''} {shown} of {n} "
        f"hold{'' if len(samples) > 1 else 's'} NaN or infinity{where} and the explained output there is {values}: "
        "every effect of such a sample is NaN, and so is every mean over the samples. Drop or impute those samples "
        "(a model that reads NaN as a missing value and returns a finite output is accepted)")
