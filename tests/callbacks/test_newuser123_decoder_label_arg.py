"""docs/your_model.md, 'Capsule networks: vector units': a capsule network whose ``forward(x, y)`` also runs the
reconstruction decoder masked by the true class (Sabour et al. 2017) is audited with the label as a forward argument,
``unpack_batch=lambda b: (b[0], b[1], (b[1],))`` and ``output=0``: the input effects equal those of the same network
without the decoder (the label is no input group, and the lengths do not read it)."""

import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import TensorDataset

from lightning_causal import InputEffectAudit
from lightning_causal.callbacks import audit_model


class Lengths(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 3 * 4, 3)  # 3 class capsules of 4 components, pooled

    def capsules(self, x):
        s = self.conv(x).mean((2, 3)).view(len(x), 3, 4)
        n2 = (s * s).sum(-1, keepdim=True)
        return n2 / (1 + n2) * s / torch.sqrt(n2 + 1e-8)

    def forward(self, x):
        return self.capsules(x).norm(dim=-1)


class WithDecoder(nn.Module):
    def __init__(self, net: Lengths) -> None:
        super().__init__()
        self.net, self.decoder = net, nn.Linear(12, 16)

    def forward(self, x, y):
        v = self.net.capsules(x)
        return v.norm(dim=-1), self.decoder((v * F.one_hot(y, 3)[..., None]).flatten(1))


def test_the_label_as_a_forward_argument_gives_the_classifiers_effects():
    torch.manual_seed(0)
    net = Lengths().eval()
    data = TensorDataset(torch.rand(12, 1, 4, 4), torch.randint(0, 3, (12,)))
    plain = audit_model(net, [InputEffectAudit(patch_size=2)], data, probe_size=12)[0]
    with_decoder = audit_model(WithDecoder(net).eval(), [InputEffectAudit(patch_size=2, output=0)], data, probe_size=12,
                               unpack_batch=lambda b: (b[0], b[1], (b[1],)))[0]
    assert with_decoder.scalars == plain.scalars
    assert [row["group"] for row in with_decoder.tables["top_groups"]] == [row["group"] for row in plain.tables["top_groups"]]
    assert len(with_decoder.tables["top_groups"]) <= 4  # the 4 patches of the image; no group of the label
