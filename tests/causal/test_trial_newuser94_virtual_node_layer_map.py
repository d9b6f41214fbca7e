"""A Graphormer-style model prepends a virtual node inside forward: its layers' outputs are [B, N + 1, D] beside the
input's padding [B, N], which the layer map could not lay on them, so the padded nodes' hidden states counted in the
responses, silently, and the map moved with the length the probe is padded to (a response 0.123 padded to 10 nodes,
0.0995 to 16, on generated graphs). It cannot tell where the extra position lies; it now warns, naming the layers."""
import warnings

import torch
from torch import nn

from lightning_causal.causal import layer_causal_map


class _Block(nn.Module):
    def __init__(self, d: int = 8):
        super().__init__()
        self.attn = nn.MultiheadAttention(d, 2, batch_first=True)
        self.ff = nn.Linear(d, d)

    def forward(self, h, keep):
        a, _ = self.attn(h, h, h, key_padding_mask=~keep, need_weights=False)
        return h + torch.tanh(self.ff(h + a))


class _Nodes(nn.Module):
    def __init__(self, virtual: bool):
        super().__init__()
        torch.manual_seed(0)
        self.inp, self.blocks, self.head = nn.Linear(3, 8), nn.ModuleList([_Block(), _Block()]), nn.Linear(8, 2)
        self.vnode = nn.Parameter(torch.randn(1, 1, 8)) if virtual else None

    def forward(self, x, attention_mask):
        keep, h = attention_mask.bool(), self.inp(x)
        if self.vnode is not None:
            h = torch.cat([self.vnode.expand(len(x), 1, -1), h], 1)
            keep = torch.cat([keep.new_ones(len(x), 1), keep], 1)
        for block in self.blocks:
            h = block(h, keep)
        return self.head(h[:, 0])


def _map(model, extra):
    g = torch.Generator().manual_seed(0)
    sizes = torch.tensor([3, 6, 4, 5, 2, 6, 3, 5])
    keep = torch.arange(6 + extra)[None] < sizes[:, None]
    x = torch.randn(8, 10, 3, generator=g)[:, :6 + extra] * keep[..., None]  # the same real nodes at any padding
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = layer_causal_map(model, x, torch.arange(3).expand(1, 6 + extra, 3), layers=["blocks.0", "blocks.1"],
                             additional_forward_args={"attention_mask": keep}, target=1)
    return m.response, [str(w.message) for w in caught if "hold more positions than the input" in str(w.message)]


def test_virtual_node_layers_warned_and_the_map_moves_with_the_padding():
    model = _Nodes(virtual=True).eval()
    (short, said), (long, _) = _map(model, 0), _map(model, 4)
    assert not torch.allclose(short, long, atol=1e-4)  # what the warning is about
    assert len(said) == 1 and "'blocks.0' [N, 7, ...]" in said[0] and "'blocks.1'" in said[0]


def test_layers_as_long_as_the_input_quiet_and_the_map_does_not_move():
    model = _Nodes(virtual=False).eval()
    (short, said), (long, _) = _map(model, 0), _map(model, 4)
    torch.testing.assert_close(short, long)
    assert not said


class _Zeroed(_Block):
    def forward(self, h, keep):
        return super().forward(h, keep) * keep[..., None]  # the padded nodes' hidden states zeroed in the layer's output


def test_padded_hidden_states_zeroed_quiet_and_the_map_does_not_move():
    model = _Nodes(virtual=True).eval()
    model.blocks = nn.ModuleList([_Zeroed(), _Zeroed()])
    (short, said), (long, _) = _map(model, 0), _map(model, 4)
    torch.testing.assert_close(short, long)
    assert not said
