"""Samples that every estimator would turn into NaN: non-finite inputs whose explained output is not finite."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

from lightning_causal.causal.engine.forward_args import ForwardArgs

__all__ = ["check_finite_samples", "check_finite_value", "per_sample_tensors"]


def check_finite_value(name: str, value: object) -> None:
    """A baseline (a number or a floating tensor) must be finite: a NaN or infinite one turns every
    attribution or curve it enters into NaN. Other forms (a tuple, a callable, integer token ids) pass.

    Args:
        name: the argument's name in the message.
        value: the value given.

    Examples:
        >>> check_finite_value("baseline", float("nan"))
        Traceback (most recent call last):
        ...
        ValueError: Expected argument `baseline` to be finite but got nan
    """
    if isinstance(value, bool) or not isinstance(value, (int, float, Tensor)):
        return
    t = torch.as_tensor(value)
    if t.is_floating_point() and not bool(t.isfinite().all()):
        raise ValueError(f"Expected argument `{name}` to be finite but got {value!r:.80}")


def check_finite_samples(xs: tuple[Tensor, ...], explained: Tensor, name: str = "inputs", names: Sequence[str] | None = None) -> None:
    """Refuse samples whose inputs hold NaN or infinity and whose explained output ``[N]`` is not
    finite: every effect of such a sample is NaN, and the means, rankings and shares of every
    estimator that averages over samples become NaN with it. A sample the model reads NaN in as
    missing (a finite output) is accepted, and so is a non-finite output of finite inputs (a
    diverged model: its NaN effects are reported, not refused).

    ``names``: what to call each tensor of ``xs`` in the message (default: ``input k of the tuple``
    when there are several).

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
            holders.append(names[k] if names is not None else f"input {k} of the tuple" if len(xs) > 1 else "")
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


def per_sample_tensors(args: object, n: int, prefix: str = "additional_forward_args") -> list[tuple[str, Tensor]]:
    """The floating tensors of ``n`` rows in forward arguments (a tuple: positional, a Mapping:
    keywords, or one tensor), each with its name, e.g. ``additional_forward_args['meta']``; not those a cut probe
    passes whole (:func:`~lightning_causal.causal.engine.forward_args.mark_whole`: a weight of ``n`` rows beside a
    probe cut to ``n`` samples), which hold no sample's values.

    Args:
        args: the forward arguments.
        n: the samples.
        prefix: the name of ``args`` in the names given.

    Examples:
        >>> [k for k, _ in per_sample_tensors({"meta": torch.zeros(3, 2), "mask": torch.ones(3, 2, dtype=torch.long)}, 3)]
        ["additional_forward_args['meta']"]
        >>> from lightning_causal.causal.engine.forward_args import mark_whole
        >>> per_sample_tensors(mark_whole((torch.zeros(3, 2),), [0]), 3)  # a weight the probe passes whole
        []
    """
    fargs = ForwardArgs(args, n)  # reads the marks: what the probe passes whole is no sample's
    items = (list(args.items()) if isinstance(args, Mapping) else list(enumerate(args)) if isinstance(args, (tuple, list))
             else [(None, args)])
    return [(prefix if key is None else f"{prefix}[{key!r}]", t) for key, t in items
            if isinstance(t, Tensor) and (t.is_floating_point() or t.is_complex()) and t.dim() > 0 and t.shape[0] == n
            and not fargs.is_whole(t)]
