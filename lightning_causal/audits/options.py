"""Constructor checks shared by the audits (fail at construction, naming the argument)."""

from __future__ import annotations

from typing import Any

from torch import Tensor

from lightning_causal.causal.engine.checks import check_int

__all__ = ["check_target", "check_baseline", "check_mask_options", "check_names"]


def check_target(target: Any) -> int | None:
    """``None`` (the predicted class) or a class index >= 0."""
    return check_int("target", target, minimum=0, none_ok=True)


def check_baseline(baseline: Any) -> Any:
    """A number, a tensor, or a tuple of those (one per input).

    Examples:
        >>> check_baseline("zero")
        Traceback (most recent call last):
        ...
        TypeError: Expected argument `baseline` to be a number, a tensor or a tuple of them but got 'zero'
    """
    values = baseline if isinstance(baseline, tuple) else (baseline,)
    if not values or any(isinstance(b, bool) or not isinstance(b, (int, float, Tensor)) for b in values):
        raise TypeError(f"Expected argument `baseline` to be a number, a tensor or a tuple of them but got {baseline!r}")
    return baseline


def check_mask_options(feature_mask: Any, patch_size: Any) -> None:
    """At most one of ``feature_mask`` (an integer tensor) and ``patch_size`` (a positive int)."""
    if feature_mask is not None and patch_size is not None:
        raise ValueError("Expected at most one of `feature_mask` and `patch_size` but got both")
    if feature_mask is not None:
        if not isinstance(feature_mask, Tensor):
            raise TypeError(f"Expected argument `feature_mask` to be an integer tensor but got {type(feature_mask).__name__}")
        if feature_mask.is_floating_point() or feature_mask.is_complex() or feature_mask.dtype.is_floating_point:
            raise TypeError(f"Expected argument `feature_mask` to hold integer group ids but got dtype {feature_mask.dtype}")
    check_int("patch_size", patch_size, minimum=1, none_ok=True)


def check_names(name: str, names: Any) -> list[str] | None:
    """``None`` or a sequence of strings (feature or class names)."""
    if names is None:
        return None
    if isinstance(names, str) or not all(isinstance(n, str) for n in names):
        raise TypeError(f"Expected argument `{name}` to be None or a sequence of strings but got {names!r:.80}")
    return list(names)
