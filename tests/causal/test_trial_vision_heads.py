"""Findings of the vision trial: heads of a ViT built from torch's own transformer layers.

``nn.TransformerEncoderLayer`` attends with ``nn.MultiheadAttention``, which combines its heads in
functional code: no module returns them. ``num_heads`` there was refused with "Name the
module that returns the concatenated heads before the output projection (Hugging Face BERT's
`attention.self`)", a module such a model does not have; the heads are the input of ``out_proj``,
which the attention calls as a module while that site exists.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal._compat import module_hooks_fire
from lightning_causal.causal import unit_effects


class _TinyViT(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Conv2d(1, 8, 2, stride=2)
        layer = nn.TransformerEncoderLayer(8, 2, 16, dropout=0.0, batch_first=True)
        self.encoder = nn.TransformerEncoder(layer, 1, enable_nested_tensor=False)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(self.embed(x).flatten(2).transpose(1, 2)).mean(1))


@pytest.mark.parametrize("site", ["encoder.layers.0.self_attn", "encoder.layers.0"])
def test_heads_of_a_torch_multihead_attention_are_sent_to_the_out_proj_input(site):
    model, x = _TinyViT().eval(), torch.randn(2, 1, 4, 4)
    with pytest.raises(ValueError, match="num_heads") as err:
        unit_effects(model, x, site, num_heads=2)
    message = str(err.value)
    assert "'encoder.layers.0.self_attn.out_proj:input'" in message
    assert "attention.self" not in message  # no such module in this model


def test_the_features_of_a_torch_attention_block_equal_a_hook_loop():
    """What works instead: the block's output features (unit_dim=-1), each zeroed at every position."""
    torch.manual_seed(0)
    model, x = _TinyViT().double().eval(), torch.randn(3, 1, 4, 4, dtype=torch.float64)
    got = unit_effects(model, x, "encoder.layers.0.self_attn", target=2, unit_dim=-1)
    attn = model.encoder.layers[0].self_attn
    with torch.no_grad(), module_hooks_fire():  # torch < 2.5 takes the fast path with hooks attached
        base, cols = model(x)[:, 2], []
        for u in range(8):
            def zero(module, args, out, u=u):
                h = out[0].clone()
                h[..., u] = 0
                return (h, *out[1:])
            handle = attn.register_forward_hook(zero)
            cols.append(base - model(x)[:, 2])
            handle.remove()
    torch.testing.assert_close(got, torch.stack(cols, 1))
