"""UnitImportanceAudit with `unit_dim=1` on a layer of padded graphs' nodes [B, N, D] ranks node slots: a padded slot's
effect is 0 by design (the model masks it), and the importance averaged it in, so a slot that few graphs hold ranked
low (slot 9 of graphs of 5 to 10 nodes at a fifth of its mean over the graphs that have it), silently. Now each slot's
importance is its mean over the samples in which it is a real node, as InputEffectAudit's node groups are."""
import torch
from torch import nn

from lightning_causal.audits import Probe, UnitImportanceAudit
from lightning_causal.causal import unit_effects


class _Nodes(nn.Module):
    """Padded graphs' nodes through attention over the real ones, pooled over them (``attend``: the nodes' states,
    which tests/causal/test_review_s39_nu94_masks.py's node-level model reads too)."""

    def __init__(self, seed: int = 0):
        super().__init__()
        torch.manual_seed(seed)
        self.inp, self.head = nn.Linear(3, 8), nn.Linear(8, 2)
        self.attn = nn.MultiheadAttention(8, 2, batch_first=True)

    def attend(self, x, adj, attention_mask):
        keep = attention_mask.bool()
        h = self.inp(x) + adj @ self.inp(x)
        a, _ = self.attn(h, h, h, key_padding_mask=~keep, need_weights=False)
        return a, keep

    def forward(self, x, adj, attention_mask):
        a, keep = self.attend(x, adj, attention_mask)
        return self.head((a * keep[..., None]).sum(1))


def _probe():
    g = torch.Generator().manual_seed(0)
    keep = torch.arange(6)[None] < torch.tensor([6, 3, 4, 2, 5, 3])[:, None]
    x = torch.randn(6, 6, 3, generator=g) * keep[..., None]
    adj = (torch.rand(6, 6, 6, generator=g) < 0.4).float() * keep[:, :, None] * keep[:, None, :]
    return Probe(x, additional_forward_args={"adj": adj, "attention_mask": keep}), keep


def test_node_slot_importance_is_its_mean_over_the_graphs_holding_it():
    probe, keep = _probe()
    model = _Nodes().eval()
    result = UnitImportanceAudit(["attn"], unit_dim=1, target=1).run(model, probe)
    e = unit_effects(model, probe.inputs, "attn", unit_dim=1, target=1, additional_forward_args=probe.additional_forward_args)
    assert e[~keep].abs().max() < 1e-5 < e[keep].abs().min()  # padded slots: effect 0 by design (to rounding)
    by_hand = (e.abs() * keep).sum(0) / keep.sum(0)
    torch.testing.assert_close(result.vectors["importance/attn"], by_hand)
    assert result.tables["top_units/attn"][0]["unit"] == int(by_hand.argmax())


def test_feature_units_keep_the_plain_mean():
    probe, _ = _probe()
    model = _Nodes().eval()
    result = UnitImportanceAudit(["attn"], unit_dim=-1, target=1).run(model, probe)
    e = unit_effects(model, probe.inputs, "attn", unit_dim=-1, target=1, additional_forward_args=probe.additional_forward_args)
    torch.testing.assert_close(result.vectors["importance/attn"], e.abs().mean(0))
