"""Review of 0eba593e: UnitImportanceAudit counted as "unreached" (``meta["unreached/<layer>"]``, a note blaming "an
exit taken before it, a block or expert their route skips", and the bars' title) every probe sample whose unit
effects are all exactly 0. A plain ReLU network has such samples without any exit: where a sample's ReLU outputs are
all 0, zeroing any one of them (or the negative pre-activation before it) changes nothing, though the layer feeds the
output (a trained width-2 ReLU MLP on breast cancer: 69 of 128 samples "unreached" at all four layers); a bfloat16
model's per-unit effects round to 0 under its logits' ulp (94 of 100 samples). A sample is unreached now only where
setting all the layer's units at once changes nothing either."""

from __future__ import annotations

import torch
from torch import nn

from lightning_causal.audits import Probe, UnitImportanceAudit
from lightning_causal.causal import SetTo, intervene


def _relu_net() -> nn.Sequential:
    """No exit, no route: h = ReLU(x0, x1, x0 + x1), all 0 where x0, x1 < 0; y = h @ W + b."""
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2))
    with torch.no_grad():
        net[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        net[0].bias.zero_()
        net[2].weight.copy_(torch.tensor([[1.0, -0.5, 0.3], [-1.0, 0.8, 0.2]]))
        net[2].bias.copy_(torch.tensor([0.1, -0.1]))
    return net.eval()


X = torch.randn(40, 2, generator=torch.Generator().manual_seed(3))


def test_a_relu_layer_all_zero_for_a_sample_is_not_unreached():
    net = _relu_net()
    dead = (X < 0).all(1)
    assert 0 < int(dead.sum()) < 40  # the premise: some samples' ReLU outputs are all 0
    with torch.no_grad():  # ...and the layer does reach them: all its units set to 1 moves their output
        out = net(X)
        with intervene(net, {"1": SetTo(1.0)}):
            moved = net(X)
    assert ((out - moved)[dead].abs().amax(1) > 0.1).all()
    result = UnitImportanceAudit(["0", "1"]).run(net, Probe(X))
    assert not any(k.startswith("unreached/") for k in result.meta)
    assert not any("an exit taken before it" in n for n in result.meta.get("notes", []))
    # the importances are those of the units, dead samples counting 0 as before
    assert float(result.vectors["importance/1"].min()) > 0


def test_bfloat16_effects_rounded_to_zero_are_not_unreached():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 512), nn.Tanh(), nn.Linear(512, 4))
    with torch.no_grad():  # a confident logit near 9: its bfloat16 ulp (0.0625) swallows any one unit's effect
        net[2].weight.mul_(0.3)
        net[2].bias.add_(torch.tensor([9.0, 0.0, 0.0, 0.0]))
    net = net.to(torch.bfloat16).eval()
    x = torch.randn(60, 8, generator=torch.Generator().manual_seed(1)).to(torch.bfloat16)
    result = UnitImportanceAudit(["1"]).run(net, Probe(x))
    assert "unreached/1" not in result.meta


def test_an_exit_before_the_layer_is_still_counted_beside_dead_relu_rows():
    """An exit by torch.where after a ReLU block: the samples that leave early are unreached by the second block, the
    samples the second block's ReLU is all 0 for are not."""

    class Exit(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.first = nn.Linear(2, 2)
            self.second = _relu_net()

        def forward(self, x):
            return torch.where(x[:, :1] > 1.0, self.first(x), self.second(x))

    torch.manual_seed(0)
    model = Exit().eval()
    early, dead = X[:, 0] > 1.0, (X < 0).all(1)
    assert int(early.sum()) > 0 and int(dead.sum()) > 0
    result = UnitImportanceAudit(["second.1"]).run(model, Probe(X))
    assert result.meta["unreached/second.1"] == int(early.sum())
    note = next(n for n in result.meta["notes"] if n.startswith("second.1:"))
    assert f"over the {40 - int(early.sum())} probe samples it changes" in note


def test_a_convolution_whose_relu_is_all_zero_for_a_sample_runs_and_is_reached():
    """The check sets the whole layer as one head of its unit dimension: on a channels-first output too (num_heads
    without unit_dim is refused there)."""
    net = nn.Sequential(nn.Conv2d(1, 3, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(3 * 4 * 4, 2))
    with torch.no_grad():
        net[0].weight.fill_(0.2)
        net[0].bias.zero_()
    net.eval()
    x = torch.rand(20, 1, 4, 4, generator=torch.Generator().manual_seed(0))
    x[::3] *= -1  # every pre-activation negative: the ReLU is all 0 for these samples
    result = UnitImportanceAudit(["0", "1"]).run(net, Probe(x))
    assert not any(k.startswith("unreached/") for k in result.meta)
