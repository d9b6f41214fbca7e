"""The Adam that the package builds on a user's weights (:class:`~lightning_causal.models.LightningClassifier`,
:class:`~lightning_causal.repair.CausalRepairModule`, :func:`~lightning_causal.models.fit_classifier` and the tuned copy of
:func:`~lightning_causal.causal.backdoor.feature_shift.feature_shifted`): its ``eps`` in float16."""

from __future__ import annotations

from collections.abc import Iterable

import torch

__all__ = ["HALF_EPS", "adam_eps"]

#: Adam's ``eps`` over float16 weights (``Trainer(precision="16-true")``, ``model.half()``): torch's 1e-8 is 0 in float16,
#: so a weight whose gradient squares to 0 there (below about 2e-4) stepped by 0/0 or m/0 and a float16 MLP's weights
#: were NaN after its first step; at 1e-4 they trained (cross-entropy 0.03 after 50 steps)
HALF_EPS = 1e-4


def adam_eps(params: Iterable[torch.Tensor]) -> float:
    """Adam's ``eps`` for ``params``: torch's default 1e-8, or :data:`HALF_EPS` where one of them is float16 (a
    ``"16-true"`` fit converts the module before ``configure_optimizers`` builds the optimizer). bfloat16 holds 1e-8.

    Examples:
        >>> adam_eps(torch.nn.Linear(2, 1).parameters()), adam_eps(torch.nn.Linear(2, 1).half().parameters())
        (1e-08, 0.0001)
        >>> adam_eps(torch.nn.Linear(2, 1).bfloat16().parameters())
        1e-08
    """
    return HALF_EPS if any(p.dtype == torch.float16 for p in params) else 1e-8
