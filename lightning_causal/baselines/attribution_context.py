"""How the Captum baselines run the model: autograd on, eval mode, parameters frozen, RNG seeded.

Every call runs the model in eval mode with autograd on (also when the caller is inside
``torch.inference_mode()``, as during Lightning's validation), with the parameters frozen so that
no ``.grad`` is written, and restores each parameter's ``requires_grad``/``.grad`` and each
submodule's ``training`` flag afterwards (:func:`attribution_context`). Randomised methods
(GradientShap, NoiseTunnel, ShapleyValueSampling) draw from the global RNG inside Captum, so they run
under :func:`seeded_rng`, seeded from a private seed (:func:`seed_of`): the caller's random streams
are untouched and results are reproducible. Ops without a deterministic implementation warn instead
of raising meanwhile (:func:`deterministic_warn_only`).
"""

from __future__ import annotations

import contextlib
import random
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from lightning_causal.causal.engine.checks import check_seed
from lightning_causal.causal.engine.lazy_modules import check_built
from lightning_causal.causal.engine.state import audit_mode, rng_preserved

__all__ = ["SeedLike", "attribution_context", "deterministic_warn_only", "seed_of", "seeded_rng"]

SeedLike = torch.Generator | int | None


def seed_of(generator: SeedLike) -> int:
    if generator is None:
        return 0
    if isinstance(generator, torch.Generator):
        return int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    if isinstance(generator, bool) or not isinstance(generator, int):
        raise TypeError(f"Expected argument `generator` to be a torch.Generator, an int seed or None but got {generator!r}")
    return check_seed(generator, "generator")


@contextlib.contextmanager
def seeded_rng(seed: int) -> Iterator[None]:
    """Run a block with the global torch, NumPy and ``random`` generators seeded with ``seed`` (Captum
    draws from all of them, e.g. GradientShap's NumPy ``uniform``), then restore their states.

    Args:
        seed: the seed of the three generators inside the block (NumPy's taken modulo ``2**32``).

    Examples:
        >>> with seeded_rng(0):
        ...     a = torch.rand(1)
        >>> with seeded_rng(0):
        ...     b = torch.rand(1)
        >>> torch.equal(a, b)
        True
    """
    check_seed(seed)
    with rng_preserved():
        torch.manual_seed(seed)
        np.random.seed(seed % 2**32)
        random.seed(seed)
        yield


@contextlib.contextmanager
def deterministic_warn_only() -> Iterator[None]:
    """Inside, ops without a deterministic implementation warn instead of raising when
    ``torch.use_deterministic_algorithms(True)`` is on (as ``Trainer(deterministic=True)`` sets
    it); the setting is restored afterwards, also on exceptions.

    Captum's DeepLift rule for max-pooling calls ``max_unpool2d``, which has no deterministic
    implementation, so DeepLift (and NoiseTunnel(DeepLift)) on a max-pooling CNN would stop a
    deterministic training run. Nothing changes when determinism is off or already warn-only.

    Examples:
        >>> torch.use_deterministic_algorithms(True)
        >>> with deterministic_warn_only():
        ...     inside = torch.is_deterministic_algorithms_warn_only_enabled()
        >>> inside, torch.is_deterministic_algorithms_warn_only_enabled()
        (True, False)
        >>> torch.use_deterministic_algorithms(False)
    """
    if not torch.are_deterministic_algorithms_enabled() or torch.is_deterministic_algorithms_warn_only_enabled():
        yield
        return
    torch.use_deterministic_algorithms(True, warn_only=True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(True, warn_only=False)


@contextlib.contextmanager
def attribution_context(model: nn.Module, seed: int | None = None) -> Iterator[None]:
    """Autograd on (even inside ``torch.inference_mode()``), eval mode, parameters frozen, ops
    without a deterministic implementation warning instead of raising
    (:func:`deterministic_warn_only`); restores every parameter's ``requires_grad``, the determinism setting and,
    when ``seed`` is given, the global RNG state (seeded with ``seed`` inside); ``audit_mode`` the training flags and
    the parameters' ``.grad`` (the very tensors, set aside for the block:
    :func:`~lightning_causal.causal.engine.inner_steps.inner_steps_kept`).

    Args:
        model: the model the attribution runs on.
        seed: seed of the global generators inside the block; ``None``: not seeded (they are
            restored on exit either way, by ``audit_mode``).
    """
    check_built(model)
    saved = [(p, p.requires_grad) for p in model.parameters()]
    rng = seeded_rng(seed) if seed is not None else contextlib.nullcontext()
    try:
        with torch.inference_mode(False), torch.enable_grad(), audit_mode(model, grad=True), rng, deterministic_warn_only():
            for p, _ in saved:
                p.requires_grad_(False)
            yield
    finally:
        for p, requires_grad in saved:
            p.requires_grad_(requires_grad)
