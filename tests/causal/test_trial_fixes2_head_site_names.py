"""Attention output projections are recognised by whole dotted name components: a module whose name
merely ends with the letters of one (`proto_out.0` for `to_out.0`, `myself_attn.dense` for
`self_attn.dense`) or a module named with the letters `att` inside a word (`scatter`) holding a
`c_proj` is no attention, and `num_heads` on it is taken (effects equal a float64 hook loop) instead
of refused as an output projection; the real names are still refused."""

import pytest
import torch
from torch import nn

from lightning_causal.causal import unit_effects


class Holder(nn.Module):
    """A module holding one child under the name `part` and calling it."""

    def __init__(self, part: str, child: nn.Module) -> None:
        super().__init__()
        self.part = part
        self.add_module(part, child)

    def forward(self, x):
        return getattr(self, self.part)(x)


class Residual(nn.Module):
    """x + c_proj(x): a block that holds a linear layer named `c_proj`."""

    def __init__(self, c_proj: nn.Module) -> None:
        super().__init__()
        self.c_proj = c_proj

    def forward(self, x):
        return x + self.c_proj(x)


class Net(nn.Module):
    """x [N, 6] -> trunk -> a module under test `site` ([N, 8] features) -> head [N, 3]."""

    def __init__(self, path: str) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(0)
        self.trunk = nn.Linear(6, 8)
        parts = path.split(".")
        inner: nn.Module = nn.Linear(8, 8)
        for part in reversed(parts[1:]):
            inner = nn.Sequential(inner) if part == "0" else Holder(part, inner)
        self.add_module(parts[0], inner)
        self.path = path
        self.head = nn.Linear(8, 3)
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g))

    def forward(self, x):
        return self.head(torch.tanh(getattr(self, self.path.split(".")[0])(torch.tanh(self.trunk(x)))))


@pytest.mark.parametrize("path", ["proto_out.0", "myself_attn.dense", "decoder.subattention.dense"])
def test_a_name_ending_with_a_projections_letters_is_no_projection(path):
    torch.manual_seed(0)
    x = torch.randn(5, 6)
    effects = unit_effects(Net(path).eval(), x, path, num_heads=2, target=1)
    ref = Net(path).double().eval()
    cols = []
    with torch.no_grad():
        f0 = ref(x.double())[:, 1]
        for u in range(2):  # head u: features 4u .. 4u + 3
            site = ref.get_submodule(path)
            handle = site.register_forward_hook(lambda m, i, o, u=u: o.index_fill(1, torch.arange(4 * u, 4 * u + 4), 0.0))
            try:
                cols.append(f0 - ref(x.double())[:, 1])
            finally:
                handle.remove()
    torch.testing.assert_close(effects.double(), torch.stack(cols, 1), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("word", ["scatter", "attribute_head"])
def test_a_word_holding_att_with_a_c_proj_inside_is_no_attention(word):
    torch.manual_seed(0)
    x = torch.randn(5, 6)
    model = Net(f"{word}.c_proj").eval()
    setattr(model, word, Residual(getattr(model, word).c_proj))  # its output is no linear layer's own: the residual stream
    effects = unit_effects(model, x, word, num_heads=2, target=1)  # refused before: 'holds an attention output projection'
    assert effects.shape == (5, 2)


def test_a_block_holding_an_attention_projection_is_still_refused():
    model = Net("att_block.c_proj").eval()
    model.att_block = Residual(model.att_block.c_proj)
    with pytest.raises(ValueError, match="holds an attention output projection"):
        unit_effects(model, torch.randn(4, 6), "att_block", num_heads=2, target=1)


@pytest.mark.parametrize("path", ["blocks.attn.proj", "layer.crossattention.output.dense", "att.to_out.0"])
def test_real_output_projections_are_still_refused(path):
    with pytest.raises(ValueError, match="attention output projection"):
        unit_effects(Net(path).eval(), torch.randn(4, 6), path, num_heads=2, target=1)
