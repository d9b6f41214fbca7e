"""First-order (attribution-patching) estimates of hidden-unit effects, from one forward and one
backward pass through the suffix (Nanda 2023, "Attribution patching"; AtP, Kramár et al. 2024).

For an intervention that sets unit u of ``h`` to ``b``, the effect ``f_t(h) − f_t(h | do(h_u := b))``
is estimated by the first-order Taylor expansion of ``f_t`` around ``h``:

.. math:: \\hat e_u(x) = \\sum_{i \\in u} (h_i - b_i)\\, \\frac{\\partial f_t}{\\partial h_i}(x)

(the AtP estimate ``(b − h)·∂f_t/∂h`` of the output change, with the sign of the exact effects).
It is exact when ``f_t`` is linear in ``h`` on the segment from ``h`` to ``b``; it misses
saturation and ReLU kinks in between. The gradient is taken at the layer's first call (a layer
used twice contributes only that call's first-order term).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from lightning_causal.causal.engine.batching import map_rows
from lightning_causal.causal.engine.interventions import Intervention
from lightning_causal.causal.engine.prefix_cache import PrefixCache
from lightning_causal.causal.engine.state import gather_target
from lightning_causal.causal.engine.units import Layout, unit_sums

__all__ = ["target_gradient", "attribution_estimates"]


def target_gradient(cache: PrefixCache, target_idx: Tensor, max_batch_size: int | None = None) -> Tensor:
    """``∂f_t/∂h`` ``[N, ...]`` of each sample's target output with respect to the layer's output,
    by backpropagation through the suffix only (chunked; no parameter ``.grad`` is written)."""
    h = cache.value.detach()
    n = h.shape[0]
    rows = max(1, cache.rows_per_pass(max_batch_size) // (1 if max_batch_size else 2))

    def grad_rows(s: Tensor) -> Tensor:
        with torch.enable_grad():
            leaf = h[s].requires_grad_(True)
            f = gather_target(cache(leaf.clone(), s), target_idx[s])
            (g,) = torch.autograd.grad(f.sum(), leaf, allow_unused=True)
        return torch.zeros_like(leaf) if g is None else g.detach()

    return map_rows(n, rows, grad_rows, h.device)


def attribution_estimates(
    cache: PrefixCache,
    interventions: Sequence[Intervention],
    units: Tensor,
    layout: Layout,
    target_idx: Tensor,
    *,
    max_batch_size: int | None = None,
) -> Tensor:
    """First-order estimates ``[N, U]`` of the effects of ``interventions`` on ``units``.

    One intervention: ``ê_u = Σ_{i∈u} (h_i − b_i) ∂f_t/∂h_i``. A do-grid (several interventions):
    the range over the grid of the first-order curve ``f_t − ê_u(b_k)``, as the exact effect
    takes the range of the interventional curve.

    Examples:
        >>> from torch import nn
        >>> from lightning_causal.causal.engine.prefix_cache import cache_prefix
        >>> from lightning_causal.causal.engine.units import resolve_layout
        >>> from lightning_causal.causal.engine.interventions import Zero
        >>> net = nn.Sequential(nn.Linear(2, 2), nn.Identity(), nn.Linear(2, 1))
        >>> with torch.no_grad():
        ...     _ = net[0].weight.copy_(torch.eye(2)); _ = net[0].bias.zero_()
        ...     _ = net[2].weight.copy_(torch.tensor([[3.0, -1.0]])); _ = net[2].bias.zero_()
        ...     cache = cache_prefix(net, torch.tensor([[1.0, 2.0]]), "1")
        >>> layout = resolve_layout(cache.value.shape)
        >>> attribution_estimates(cache, [Zero()], torch.arange(2), layout, torch.zeros(1, dtype=torch.long))
        tensor([[ 3., -2.]])
    """
    h = cache.value.detach()
    g = target_gradient(cache, target_idx, max_batch_size)
    estimates = []
    for iv in interventions:
        b = iv.values(h).to(h.dtype).expand_as(h)
        estimates.append(unit_sums((h - b) * g, layout)[:, units])
    if len(estimates) == 1:
        return estimates[0]
    curve = -torch.stack(estimates)  # f_t(do) - f_t, first order, [K, N, U]
    return curve.max(0).values - curve.min(0).values
