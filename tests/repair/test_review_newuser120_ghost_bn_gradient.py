"""Review of newuser120 (ghost BatchNorm paired by virtual batch, 7d274b3c): the term's gradient, not only its value.

The twins' virtual batch ``k`` is normalised by the rows' virtual batch ``k``, whose statistics depend on the weights:
the gradient flows through them. With the statistics detached in the paired pass (``PairedPasses._record`` mutated
to detach every call's input) the value is unchanged and the weights' gradient is off (by up to 0.075 on the fixture
of ``test_newuser120_ghost_batchnorm_pairs.py``, whose value-only tests all pass there); this test fails there.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lightning_causal import CounterfactualFairnessTerm
from lightning_causal.causal import AttributeFlip


class _Ghost(nn.Module):
    def __init__(self, d: int, vbs: int) -> None:
        super().__init__()
        self.vbs, self.bn = vbs, nn.BatchNorm1d(d)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.bn(c) for c in x.chunk(max(1, math.ceil(x.shape[0] / self.vbs)))])


def _net() -> nn.Sequential:
    torch.manual_seed(3)
    return nn.Sequential(nn.Linear(5, 6), _Ghost(6, vbs=8), nn.Tanh(), nn.Linear(6, 3)).train()


def _reference(net: nn.Sequential, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """Rows ``a`` in virtual batches of their own; ``b``'s virtual batch k normalised by ``a``'s k, in float64."""
    fc, bn, head = net[0].double(), net[1].bn.double(), net[3].double()
    k = max(1, math.ceil(a.shape[0] / net[1].vbs))
    ha, hb = fc(a.double()), fc(b.double())

    def norm(h: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
        return (h - ref.mean(0)) / torch.sqrt(ref.var(0, unbiased=False) + bn.eps) * bn.weight + bn.bias

    za = torch.cat([norm(c, c) for c in ha.chunk(k)])
    zb = torch.cat([norm(c, r) for c, r in zip(hb.chunk(k), ha.chunk(k))])
    return torch.cat([head(torch.tanh(za)), head(torch.tanh(zb))])


@pytest.mark.parametrize("n", [20, 13])  # 20: rows 7/7/6, joint 8/8/8/8/8; 13: rows 7/6, joint 7/7/7/5
def test_value_and_gradient_equal_the_virtual_batch_reference(n: int) -> None:
    g = torch.Generator().manual_seed(n)
    x = torch.randn(n, 5, generator=g)
    x[:, 4] = (torch.rand(n, generator=g) < 0.5).float()
    y = torch.randint(0, 3, (n,), generator=g)
    term, flip = CounterfactualFairnessTerm(AttributeFlip(4)), AttributeFlip(4)
    net = _net()
    got = term.loss(net, x, y)
    got.backward()
    ref_net = _net()
    out = _reference(ref_net, x, flip(x))
    want = term.loss_from_outputs(out[:n], out[n:], y)
    want.backward()
    torch.testing.assert_close(got.double(), want, rtol=1e-5, atol=1e-7)
    for (name, p), q in zip(net.named_parameters(), ref_net.parameters()):
        torch.testing.assert_close(p.grad.double(), q.grad, rtol=1e-4, atol=1e-6, msg=f"gradient of {name}")
    assert int(net[1].bn.num_batches_tracked) == math.ceil(n / 8)  # the rows' virtual batches only
