"""The heads of PyTorch's own ``nn.MultiheadAttention`` as the input of its ``out_proj``.

``nn.MultiheadAttention`` combines its heads in functional code: ``F.multi_head_attention_forward``
(or the fused kernel of its fast path) applies ``out_proj``'s weight itself, so ``out_proj`` never
runs as a module and no hook sees the heads side by side. While the site
``"<attention>.out_proj:input"`` exists (:func:`~lightning_causal.causal.engine.input_sites.input_sites`),
:func:`out_proj_called` routes the attention's forward through its ``out_proj`` module: the
attention runs with ``out_proj``'s parameters swapped for an identity and a zero bias, which returns
the concatenated heads ``[N, T, H·d]`` exactly (a product by 1 and sums of zeros round nothing),
and ``out_proj`` is then called on them as a module, so that hooks on it, and the input site, see the
heads. The attention's own forward and every parameter are restored on exit, also on errors.

Examples:
    >>> attn = nn.MultiheadAttention(8, 2, batch_first=True).eval()
    >>> x = torch.randn(3, 5, 8)
    >>> seen = []
    >>> handle = attn.out_proj.register_forward_pre_hook(lambda m, a: seen.append(a[0].shape))
    >>> with out_proj_called(attn):
    ...     routed = attn(x, x, x)[0]
    >>> handle.remove()
    >>> seen, torch.allclose(routed, attn(x, x, x)[0], atol=1e-6), "forward" in vars(attn)
    ([torch.Size([3, 5, 8])], True, False)
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch
from torch import nn

__all__ = ["out_proj_called", "owning_attention"]


def owning_attention(model: nn.Module, name: str) -> nn.MultiheadAttention | None:
    """The ``nn.MultiheadAttention`` whose ``out_proj`` is the module ``name`` of ``model``, if any.

    Examples:
        >>> model = nn.Sequential(nn.MultiheadAttention(4, 2))
        >>> type(owning_attention(model, "0.out_proj")).__name__, owning_attention(model, "0")
        ('MultiheadAttention', None)
    """
    if not name.endswith("out_proj"):
        return None
    parent = name.rsplit(".", 1)[0] if "." in name else ""
    try:
        owner = model.get_submodule(parent)
    except AttributeError:
        return None
    if isinstance(owner, nn.MultiheadAttention) and owner.out_proj is model.get_submodule(name):
        return owner
    return None


@contextlib.contextmanager
def out_proj_called(attention: nn.MultiheadAttention) -> Iterator[None]:
    """Route ``attention``'s forward through its ``out_proj`` module for the ``with`` block (a block
    inside another one for the same attention leaves the outer routing in place)."""
    if not isinstance(attention, nn.MultiheadAttention):
        raise TypeError(f"Expected argument `attention` to be a torch.nn.MultiheadAttention but got {type(attention)}")
    if "forward" in vars(attention):  # routed by an enclosing block (or replaced by the user): leave it
        yield
        return
    attention.forward = _routed(attention)
    try:
        yield
    finally:
        del attention.forward


def _routed(attention: nn.MultiheadAttention):
    original = type(attention).forward

    def forward(query, key, value, *args, **kwargs):
        if query.is_nested or key.is_nested or value.is_nested:  # the fast path's nested tensors: as it was
            return original(attention, query, key, value, *args, **kwargs)
        proj = attention.out_proj
        params = proj._parameters
        weight, bias = params["weight"], params.get("bias")
        identity = {"weight": torch.eye(weight.shape[1], dtype=weight.dtype, device=weight.device),
                    "bias": None if bias is None else torch.zeros_like(bias, requires_grad=False)}
        proj._parameters = identity  # the attention reads out_proj.weight/.bias: the heads come back unprojected
        try:
            heads, weights = original(attention, query, key, value, *args, **kwargs)
        finally:
            proj._parameters = params
        if heads.dim() == 3 and not attention.batch_first:  # [T, N, E]: out_proj sees the samples first
            return proj(heads.transpose(0, 1)).transpose(0, 1), weights
        return proj(heads), weights

    return forward
