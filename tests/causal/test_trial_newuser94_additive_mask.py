"""An additive attention mask (0 to attend, -1e9 / -inf to leave out), as a Graphormer adds to its attention scores,
passed as `attention_mask` beside padded graphs: read as a keep mask, its 0s took every real node for padding (every
node's effect 0, silently, where the padded nodes hold a value; a refusal telling of torch's key_padding_mask where they
hold zeros). Now its negative entries are the padding (`mask_padding`), and values that are neither mask are refused."""
import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects
from lightning_causal.causal.engine.ablation import mask_padding, padding_positions


def _graphs(pad_value: float):
    g = torch.Generator().manual_seed(0)
    sizes = torch.tensor([3, 5, 4, 2, 5, 3])
    b, n, f = len(sizes), int(sizes.max()), 3
    keep = torch.arange(n)[None] < sizes[:, None]
    x = torch.where(keep[..., None], torch.randn(b, n, f, generator=g), torch.full((b, n, f), pad_value))
    adj = (torch.rand(b, n, n, generator=g) < 0.5).float()
    adj = ((adj + adj.transpose(1, 2)) > 0).float() * keep[:, :, None] * keep[:, None, :]
    return x, adj, keep


class _Graphormer(nn.Module):
    """One attention layer whose scores get the additive mask and a learned per-edge bias, a virtual node prepended."""

    def __init__(self, f: int = 3, d: int = 8):
        super().__init__()
        torch.manual_seed(0)
        self.inp, self.edge = nn.Linear(f, d), nn.Parameter(torch.tensor(0.7))
        self.vnode = nn.Parameter(torch.randn(1, 1, d))
        self.attn = nn.MultiheadAttention(d, 2, batch_first=True)
        self.head = nn.Linear(d, 2)

    def forward(self, x, adj, attention_mask):  # attention_mask [B, N]: 0 at a node, -1e9 at padding
        b, n, _ = x.shape
        h = torch.cat([self.vnode.expand(b, 1, -1), self.inp(x)], 1)
        bias = torch.zeros(b, n + 1, n + 1)
        bias[:, 1:, 1:] = self.edge * adj
        bias = bias + torch.cat([attention_mask.new_zeros(b, 1), attention_mask], 1)[:, None, :]
        out, _ = self.attn(h, h, h, attn_mask=bias.repeat_interleave(2, 0), need_weights=False)
        return self.head(out[:, 0])


def _hand(model, x, args, keep):
    """Set node j to 0, rerun, difference: the effect of each real node (0 at the padding)."""
    with torch.no_grad():
        f0 = model(x, **args)[:, 1]
        out = torch.stack([f0 - model(x.masked_fill(torch.arange(x.shape[1])[None, :, None] == j, 0.0), **args)[:, 1]
                           for j in range(x.shape[1])], 1)
    return out * keep


@pytest.mark.parametrize("pad_value", [-1.0, 0.0])
@pytest.mark.parametrize("pad", [-1e9, float("-inf"), torch.finfo(torch.float32).min, -1e4])
def test_additive_mask_node_effects_equal_hand_loop(pad_value, pad):
    x, adj, keep = _graphs(pad_value)
    model = _Graphormer().eval()
    args = {"adj": adj, "attention_mask": torch.where(keep, 0.0, pad)}
    fm = torch.arange(x.shape[1])[:, None].expand(1, *x.shape[1:])  # one group per node
    effects = input_effects(model, x, fm, target=1, additional_forward_args=args)
    hand = _hand(model, x, args, keep)
    assert hand[keep].abs().max() > 1e-3  # real nodes matter
    torch.testing.assert_close(effects, hand, atol=1e-5, rtol=1e-4)
    assert torch.equal(padding_positions(x, args).squeeze(-1), ~keep)


def test_keep_masks_read_as_before():
    keep = torch.tensor([[True, True, False], [True, False, False]])
    for m in (keep, keep.long(), keep.float()):
        assert torch.equal(mask_padding(m), ~keep)
    assert not mask_padding(torch.zeros(2, 3)).any()  # an additive mask of graphs of one size: no padding
    assert mask_padding(torch.zeros(2, 3, dtype=torch.long)).all()  # an integer keep mask of no real position


@pytest.mark.parametrize("values", [[0.0, -0.5], [0.0, -1.0], [1.0, -1e9], [0.0, float("nan")]])
def test_mask_that_is_neither_refused(values):
    x = torch.ones(1, 2, 3)
    with pytest.raises(ValueError, match=r"argument `attention_mask` to be a keep mask .* or an additive float mask"):
        padding_positions(x, {"attention_mask": torch.tensor([values])})


class _Biased(_Graphormer):
    """The same model taking its additive mask under another name, `attn_bias`."""

    def forward(self, x, adj, attn_bias):
        return super().forward(x, adj, attn_bias)


def test_additive_mask_under_another_name_is_told():
    from lightning_causal.audits import InputEffectAudit, Probe
    from lightning_causal.audits.base import ProbeContentsWarning

    x, adj, keep = _graphs(0.0)
    probe = Probe(x, additional_forward_args={"adj": adj, "attn_bias": torch.where(keep, 0.0, -1e9)})
    with pytest.warns(ProbeContentsWarning, match=r"'attn_bias' is -1000000000.0 where the inputs are all zero.*pass it as "
                                                  r"`attention_mask` \(an additive mask"):
        InputEffectAudit(ace_values=None).run(_Biased().eval(), probe)


def test_mean_of_takes_the_models_additive_mask():
    from lightning_causal.causal import MeanOf

    ref = torch.randn(3, 4, 5, generator=torch.Generator().manual_seed(0))
    keep = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 0], [1, 1, 1, 1]]).bool()
    by_hand = (ref * keep[..., None]).sum(0) / keep.sum(0)[:, None]  # each position over the samples real there
    for pad in (-1e9, float("-inf")):
        torch.testing.assert_close(MeanOf(ref, unit_dim=-1, attention_mask=torch.where(keep, 0.0, pad)).mean, by_hand)
    with pytest.raises(ValueError, match="keep mask .* or an additive float mask"):
        MeanOf(ref, unit_dim=-1, attention_mask=torch.where(keep, 0.0, -0.5))
