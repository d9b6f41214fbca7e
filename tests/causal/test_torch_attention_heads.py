"""Heads of PyTorch's own ``nn.MultiheadAttention`` at ``"<attention>.out_proj:input"``.

The attention combines its heads in functional code, so no hook saw them; while the site exists the
attention calls ``out_proj`` as a module (``engine/torch_attention.py``). The reference here is an
attention written out by hand (in-projection, per-head softmax, the head zeroed, concatenation,
``out_proj``), patched in for one full forward pass per head, in float64.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lightning_causal._compat import module_hooks_fire
from lightning_causal.causal import Zero, capture, intervene, unit_effects
from tests.helpers.models import all_hook_counts

E, H, T = 16, 4, 5


class _Encoder(nn.Module):
    """Two torch transformer layers over ``[N, T, E]``; ``pad`` (``[N, T]``, True = padding) is the key padding mask."""

    def __init__(self, batch_first: bool) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.batch_first = batch_first
        layer = nn.TransformerEncoderLayer(E, H, 32, dropout=0.0, batch_first=batch_first)
        self.encoder = nn.TransformerEncoder(layer, 2, enable_nested_tensor=False)
        self.head = nn.Linear(E, 3)

    def forward(self, x: torch.Tensor, pad: torch.Tensor | None = None) -> torch.Tensor:
        h = self.encoder(x if self.batch_first else x.transpose(0, 1), src_key_padding_mask=pad)
        h = h if self.batch_first else h.transpose(0, 1)
        keep = torch.ones(x.shape[:2], dtype=x.dtype) if pad is None else (~pad).to(x.dtype)
        return self.head((h * keep[..., None]).sum(1) / keep.sum(1, keepdim=True))


def _by_hand(attn: nn.MultiheadAttention, zero_head: int | None):
    """A forward for ``attn`` written out: the heads computed one by one, ``zero_head``'s output set to 0."""
    d = E // H

    def forward(query, key, value, key_padding_mask=None, need_weights=True, attn_mask=None, **_):
        q, k, v = (t if attn.batch_first else t.transpose(0, 1) for t in (query, key, value))
        w, b = attn.in_proj_weight, attn.in_proj_bias
        qkv = [F.linear(t, w[i * E:(i + 1) * E], b[i * E:(i + 1) * E]) for i, t in enumerate((q, k, v))]
        n = q.shape[0]
        qh, kh, vh = (t.reshape(n, -1, H, d).transpose(1, 2) for t in qkv)  # [N, H, T, d]
        scores = qh @ kh.transpose(-1, -2) / d ** 0.5
        if key_padding_mask is not None:  # the layer hands it on as a float mask (-inf at padding) or booleans
            kpm = key_padding_mask
            scores = scores.masked_fill(kpm[:, None, None, :], float("-inf")) if kpm.dtype == torch.bool else scores + kpm[:, None, None, :]
        heads = scores.softmax(-1) @ vh
        if zero_head is not None:
            heads[:, zero_head] = 0.0
        out = attn.out_proj(heads.transpose(1, 2).reshape(n, -1, E))
        return (out if attn.batch_first else out.transpose(0, 1)), None

    return forward


def _no_fast_path(*_):
    """A hook: ``nn.TransformerEncoderLayer`` in eval mode without gradients runs a fused kernel that
    never calls its attention's forward, unless a hook is attached to one of its modules."""


def _reference(model: _Encoder, layer: int, x: torch.Tensor, pad: torch.Tensor | None, target: int) -> torch.Tensor:
    attn = model.encoder.layers[layer].self_attn
    cols = []
    handle = attn.register_forward_pre_hook(_no_fast_path)
    with torch.no_grad(), module_hooks_fire():  # torch < 2.5 takes the fast path with hooks attached
        for head in [None, *range(H)]:
            attn.forward = _by_hand(attn, head)
            try:
                cols.append(model(x, pad)[:, target])
            finally:
                del attn.forward
    handle.remove()
    return torch.stack([cols[0] - c for c in cols[1:]], 1)


@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("padded", [False, True])
def test_head_effects_equal_a_hand_written_attention_with_the_head_zeroed(batch_first, padded):
    model = _Encoder(batch_first).double().eval()
    x = torch.randn(6, T, E, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    pad = torch.arange(T)[None, :] >= torch.tensor([5, 3, 4, 5, 2, 5])[:, None] if padded else None
    args = {"pad": pad} if padded else None
    for layer in (0, 1):
        site = f"encoder.layers.{layer}.self_attn.out_proj:input"
        want = _reference(model, layer, x, pad, target=2)
        assert float(want.abs().min()) > 1e-6  # every head acts: a zero here could not tell a missed hook
        for use_suffix in (True, False):
            got = unit_effects(model, x, site, target=2, num_heads=H, use_suffix=use_suffix, additional_forward_args=args)
            torch.testing.assert_close(got, want, rtol=0, atol=1e-10)
        attn = model.encoder.layers[layer].self_attn
        assert "forward" not in vars(attn) and all_hook_counts(model) == 0


def test_a_head_whose_value_weights_are_zero_has_effect_zero():
    model = _Encoder(batch_first=True).double().eval()
    attn = model.encoder.layers[0].self_attn
    with torch.no_grad():  # head 2's value rows: its output is 0 whatever it attends to
        attn.in_proj_weight[2 * E + 2 * (E // H):2 * E + 3 * (E // H)] = 0.0
        attn.in_proj_bias[2 * E + 2 * (E // H):2 * E + 3 * (E // H)] = 0.0
    x = torch.randn(4, T, E, dtype=torch.float64, generator=torch.Generator().manual_seed(2))
    got = unit_effects(model, x, "encoder.layers.0.self_attn.out_proj:input", target=0, num_heads=H)
    assert float(got[:, 2].abs().max()) == 0.0 and float(got.abs().max()) > 1e-6


def test_capture_sees_the_heads_and_the_model_is_left_as_it_was():
    model = _Encoder(batch_first=False).double().eval()
    x = torch.randn(3, T, E, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    attn = model.encoder.layers[1].self_attn
    before = model(x)
    seen = {}

    def by_hand(query, key, value, **kwargs):  # the hand-written attention, its heads kept before out_proj
        out_proj = attn.out_proj
        attn.out_proj = nn.Identity()
        try:
            seen["heads"] = _by_hand(attn, None)(query, key, value, **kwargs)[0]
        finally:
            attn.out_proj = out_proj
        return _by_hand(attn, None)(query, key, value, **kwargs)

    handle = attn.register_forward_pre_hook(_no_fast_path)
    attn.forward = by_hand
    with torch.no_grad():
        model(x)
    del attn.forward
    handle.remove()
    with capture(model, ["encoder.layers.1.self_attn.out_proj:input"]) as got:
        routed = model(x)
    heads = got["encoder.layers.1.self_attn.out_proj:input"]
    assert heads.shape == (3, T, E)  # samples first, although the layer is not batch_first
    torch.testing.assert_close(heads, seen["heads"].transpose(0, 1), rtol=0, atol=1e-12)
    torch.testing.assert_close(routed, before, rtol=0, atol=1e-12)
    assert "forward" not in vars(attn) and all_hook_counts(model) == 0
    assert torch.equal(model(x), before)


def test_the_routing_is_removed_when_the_block_raises():
    model = _Encoder(batch_first=True).eval()
    attn = model.encoder.layers[0].self_attn
    with pytest.raises(RuntimeError, match="boom"):
        with intervene(model, {"encoder.layers.0.self_attn.out_proj:input": Zero(units=1, num_heads=H)}):
            assert "forward" in vars(attn)
            raise RuntimeError("boom")
    assert "forward" not in vars(attn) and all_hook_counts(model) == 0
    assert attn.out_proj.weight.requires_grad and attn.out_proj.weight.shape == (E, E)


def test_a_causal_graph_over_the_heads_of_two_torch_layers_has_the_unit_effects_as_node_effects():
    from lightning_causal.causal import causal_graph

    model = _Encoder(batch_first=True).double().eval()
    x = torch.randn(6, T, E, dtype=torch.float64, generator=torch.Generator().manual_seed(4))
    sites = [f"encoder.layers.{i}.self_attn.out_proj:input" for i in (0, 1)]
    graph = causal_graph(model, x, sites, target=1, num_heads=H)
    assert graph.nodes, "no head was kept"
    for node in graph.nodes:
        if node.startswith("output"):
            continue
        site, head = node.rsplit(":", 1)
        want = unit_effects(model, x, site, target=1, num_heads=H)[:, int(head)].mean()
        assert graph.node_stats[node]["effect"] == pytest.approx(float(want), abs=1e-10)
    assert all_hook_counts(model) == 0 and not any("forward" in vars(m) for m in model.modules())
