"""Review of newuser94's padded-graph changes (e1760327, 2b7a88de, 20968a25), as ordinary users meet them:

- an `attention_mask` of soft weights (0 at the padding, 0.3 or 0.8 at real positions), read as a keep mask before
  e1760327, was refused by `mask_padding`: it is a keep mask again (no negative value, so no additive one);
- UnitImportanceAudit(unit_dim=1) on a Conv1d's output `[N, C, T]` whose channel count equals the padded length
  averaged each channel over the samples in which the position of that number is real (20968a25), silently;
- a node-level model that zeroes its padded nodes' outputs, explained by `out[..., c].sum(1)` (exactly the sum over
  the real nodes), was warned that the sum moves with padded outputs which move with a real node (2b7a88de)."""
import warnings

import pytest
import torch
from torch import nn

from lightning_causal.audits import Probe, UnitImportanceAudit
from lightning_causal.causal import MeanOf, input_effects, unit_effects
from lightning_causal.causal.engine.ablation import mask_padding
from tests.audits.test_trial_newuser94_position_units_padding import _Nodes as _Pooled

_KEEP = torch.arange(6)[None] < torch.tensor([6, 3, 5, 2, 4, 6])[:, None]


class _Soft(nn.Module):
    """Soft token weights scale the features; weight 0 leaves a key out."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.inp, self.head = nn.Linear(3, 8), nn.Linear(8, 2)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)

    def forward(self, x, attention_mask):
        h = self.inp(x) * attention_mask[..., None]
        a, _ = self.attn(h, h, h, key_padding_mask=attention_mask == 0, need_weights=False)
        return self.head(a[:, 0])


def test_soft_weight_mask_is_a_keep_mask_as_before():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(6, 6, 3, generator=g) * _KEEP[..., None]
    soft = _KEEP * torch.tensor([1.0, 0.3, 0.8, 0.5, 1.0, 0.9])
    model, args = _Soft().eval(), {"attention_mask": soft}
    fm = torch.arange(6)[:, None].expand(1, 6, 3)
    effects = input_effects(model, x, fm, target=1, additional_forward_args=args)  # refused at e1760327
    with torch.no_grad():
        f0 = model(x, **args)[:, 1]
        hand = torch.stack([f0 - model(x.masked_fill(torch.arange(6)[None, :, None] == j, 0.0), **args)[:, 1]
                            for j in range(6)], 1) * _KEEP
    assert hand.abs().max() > 1e-3
    torch.testing.assert_close(effects, hand, atol=1e-6, rtol=1e-5)
    assert not mask_padding(torch.tensor([[1.0, 0.5]])).any()  # no zero: no padding, either way it is read


def test_mean_of_still_refuses_soft_weights():
    ref = torch.randn(2, 3, 4)
    with pytest.raises(ValueError, match=r"hold 0 \(padding\) and 1 \(a real token\) only, or to be an additive float mask"):
        MeanOf(ref, unit_dim=-1, attention_mask=torch.tensor([[1.0, 0.5, 0.0], [1.0, 1.0, 1.0]]))


class _Conv(nn.Module):
    """Padded sequences [N, T, F] with lengths, a Conv1d of as many channels as the padded length (6) over the steps."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv, self.head = nn.Conv1d(3, 6, 3, padding=1), nn.Linear(6, 2)

    def forward(self, x, lengths):
        h = torch.relu(self.conv(x.transpose(1, 2)))  # [N, C = 6, T = 6]
        keep = (torch.arange(x.shape[1])[None] < lengths[:, None]).to(h.dtype)
        return self.head((h * keep[:, None]).sum(2) / lengths[:, None])


def test_conv_channels_keep_the_plain_mean_where_their_count_equals_the_padded_length():
    lengths = _KEEP.sum(1)
    x = torch.randn(6, 6, 3, generator=torch.Generator().manual_seed(1)) * _KEEP[..., None]
    model, args = _Conv().eval(), {"lengths": lengths}
    result = UnitImportanceAudit(["conv"], unit_dim=1, target=1).run(model, Probe(x, additional_forward_args=args))
    e = unit_effects(model, x, "conv", unit_dim=1, target=1, additional_forward_args=args)  # [N, channels]
    torch.testing.assert_close(result.vectors["importance/conv"], e.abs().mean(0))


class _Nodes(_Pooled):
    """Node-level logits [B, N, 2] of the pooled model's nodes; `zero`: the padded nodes' outputs set to 0 by the model."""

    def __init__(self, zero: bool):
        super().__init__(seed=1)
        self.zero = zero

    def forward(self, x, adj, attention_mask):
        a, keep = self.attend(x, adj, attention_mask)
        out = self.head(a)
        return out * keep[..., None] if self.zero else out


@pytest.mark.parametrize("zero", [True, False])
def test_sum_over_nodes_warned_only_where_padded_outputs_move(zero):
    g = torch.Generator().manual_seed(2)
    x = torch.randn(6, 6, 3, generator=g) * _KEEP[..., None]
    adj = (torch.rand(6, 6, 6, generator=g) < 0.5).float() * _KEEP[:, :, None] * _KEEP[:, None, :]
    args = {"adj": adj, "attention_mask": _KEEP.long()}
    fm = torch.arange(6)[:, None].expand(1, 6, 3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        input_effects(_Nodes(zero).eval(), x, fm, target=None, output=lambda o: o[..., 1].sum(1), additional_forward_args=args)
    told = [w for w in caught if "moves with the model's outputs at the positions" in str(w.message)]
    assert len(told) == (0 if zero else 1)


@pytest.mark.parametrize("zero", [False, True])
@pytest.mark.parametrize("lengths", [[6, 6, 5, 6, 6, 6], [6, 6, 3, 6, 6, 6]])
def test_one_padded_graph_whose_padded_nodes_share_an_output_still_warned(lengths, zero):
    """Final read D of e7c3b017: with one padded graph in the probe, its padded nodes (no positional encoding) share
    one output by symmetry, which the 'one value across the rows' shortcut took for a model zeroing them: the unmasked
    model's sum over every node (about twice the real nodes' sum in that row) went unwarned."""
    keep = torch.arange(6)[None] < torch.tensor(lengths)[:, None]
    g = torch.Generator().manual_seed(2)
    x = torch.randn(6, 6, 3, generator=g) * keep[..., None]
    adj = (torch.rand(6, 6, 6, generator=g) < 0.5).float() * keep[:, :, None] * keep[:, None, :]
    fm = torch.arange(6)[:, None].expand(1, 6, 3)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        input_effects(_Nodes(zero).eval(), x, fm, target=None, output=lambda o: o[..., 1].sum(1),
                      additional_forward_args={"adj": adj, "attention_mask": keep.long()})
    # the model zeroing its padded outputs is not (second final read of 0f4a0f67: it was warned to change right code)
    assert len([w for w in caught if "moves with the model's outputs at the positions" in str(w.message)]) == (not zero)
