"""Node-level logits [B, N, C] of padded graphs (a GPS-style layer: local A @ X W beside global attention whose
key_padding_mask hides the padded keys, not the padded queries) explained with `output=lambda out: out[..., 1].mean(1)`,
the averaging that the refusal of a [N, T, C] output suggests: the padded nodes' outputs move when a real node does, so
the mean mixed them into every effect, silently (46% of the effects' scale on generated graphs). The check that warns of
`out[:, -1]` on right padding now also warns of an explained output that moves with the padded positions."""
import warnings

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects


class _GPS(nn.Module):
    def __init__(self, f: int = 3, d: int = 8):
        super().__init__()
        torch.manual_seed(0)
        self.inp, self.local, self.head = nn.Linear(f, d), nn.Linear(d, d), nn.Linear(d, 2)
        self.attn = nn.MultiheadAttention(d, 2, batch_first=True)

    def forward(self, x, adj, attention_mask):
        h = self.inp(x)
        g, _ = self.attn(h, h, h, key_padding_mask=~attention_mask.bool(), need_weights=False)
        return self.head(torch.relu(h + adj @ self.local(h) + g))  # [B, N, 2]


class _RealMean(nn.Module):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x, adj, attention_mask):
        m = attention_mask[..., None].float()
        return (self.model(x, adj, attention_mask) * m).sum(1) / m.sum(1)


def _graphs():
    g = torch.Generator().manual_seed(0)
    keep = torch.arange(5)[None] < torch.tensor([3, 5, 4, 2])[:, None]
    x = torch.randn(4, 5, 3, generator=g) * keep[..., None]
    adj = (torch.rand(4, 5, 5, generator=g) < 0.5).float() * keep[:, :, None] * keep[:, None, :]
    return x, {"adj": adj, "attention_mask": keep}


def _effects(model, output):
    x, args = _graphs()
    fm = torch.arange(5)[:, None].expand(1, 5, 3)  # one group per node
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        e = input_effects(model, x, fm, target=1, output=output, additional_forward_args=args)
    return e, [str(w.message) for w in caught if "padding" in str(w.message)]


def test_mean_over_every_node_warned_and_differs_from_the_real_mean():
    model = _GPS().eval()
    every, said = _effects(model, lambda out: out.mean(1))
    real, quiet = _effects(_RealMean(model), None)
    assert (every - real).abs().max() > 1e-2  # the mixed-in padded nodes change the answer
    assert not quiet
    assert len(said) == 1 and "moves with the model's outputs at the positions the forward arguments mark as padding" in said[0]
    assert "(out * m).sum(1) / m.sum(1)" in said[0]


@pytest.mark.parametrize("output", [lambda out: out[:, 0], lambda out: out[:, :2].mean(1)])
def test_real_positions_only_not_warned(output):
    _, said = _effects(_GPS().eval(), output)  # nodes 0 and 1 are real in every graph
    assert not said
