"""InputEffectAudit's effect map of padded graphs (molecules as x [N, max_nodes, F], the node mask the forward argument
`attention_mask`): a group spanning every node (feature k of every atom: its type) painted its effect onto the padded
nodes too, so TensorBoard's map showed effects on nodes that do not exist and that no intervention set. Padded positions
are 0 in the map now; the real nodes keep their group's effect, equal to a hand 'set, rerun, difference' loop."""

import torch
from torch import nn

from lightning_causal.audits import InputEffectAudit, Probe


class MaskedMean(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.lin = nn.Linear(3, 2)

    def forward(self, x, attention_mask):
        m = attention_mask.to(x.dtype)[..., None]
        return self.lin((x * m).sum(1) / m.sum(1))


def test_padded_nodes_get_no_painted_effect():
    torch.manual_seed(0)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    x = torch.randn(2, 5, 3) * mask[..., None]
    model = MaskedMean().eval()
    channels = torch.arange(3).expand(1, 5, 3)  # group k: feature k of every node
    result = InputEffectAudit(feature_mask=channels, target=1, ace_values=None).run(model, Probe(x, None, (mask,)))
    effect = result.maps["effect"]
    assert (effect[0, 3:] == 0).all()  # the padded nodes of molecule 0
    with torch.no_grad():
        clean = model(x, mask)[:, 1]
        for k in range(3):
            cut = x.clone()
            cut[..., k] = 0.0
            hand = clean - model(cut, mask)[:, 1]
            torch.testing.assert_close(effect[0, :3, k], hand[0].expand(3), rtol=0, atol=1e-6)
            torch.testing.assert_close(effect[1, :, k], hand[1].expand(5), rtol=0, atol=1e-6)
