"""A padded graph's node mask under another name than `attention_mask` (`forward(self, x, adj, node_mask)`, the name
docs/recipes.md used before) reaches the model but is not read as padding: InputEffectAudit's per-node means then count
padded slots as nodes of effect 0, silently (a slot that few molecules hold ranked low). The audit now warns, naming the
argument and the fix; the mask named `attention_mask` gives no warning."""

import pytest
import torch
from torch import nn

from lightning_causal.audits import InputEffectAudit, Probe
from lightning_causal.causal.engine.probe_warnings import ProbeContentsWarning


class Graphs(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2)

    def forward(self, x, adj, node_mask):
        m = node_mask.to(x.dtype)[..., None]
        h = (x + adj @ x) * m
        return self.lin(h.sum(1) / m.sum(1))


class Named(Graphs):
    def forward(self, x, adj, attention_mask):
        return super().forward(x, adj, attention_mask)


def _probe() -> Probe:
    torch.manual_seed(0)
    mask = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1], [1, 1, 1, 0]], dtype=torch.bool)
    x = torch.randn(3, 4, 3) * mask[..., None]
    adj = (torch.ones(4, 4) - torch.eye(4)).expand(3, 4, 4) * mask[:, :, None] * mask[:, None, :]
    return Probe(x, None, (adj, mask))


SLOTS = torch.arange(4)[:, None].expand(1, 4, 3)


def test_a_node_mask_under_another_name_is_named():
    with pytest.warns(ProbeContentsWarning, match=r"positional forward argument 1.*attention_mask"):
        InputEffectAudit(feature_mask=SLOTS, ace_values=None).run(Graphs().eval(), _probe())


def test_attention_mask_gives_no_warning(recwarn):
    InputEffectAudit(feature_mask=SLOTS, ace_values=None).run(Named().eval(), _probe())
    assert not [w for w in recwarn if issubclass(w.category, ProbeContentsWarning)]
