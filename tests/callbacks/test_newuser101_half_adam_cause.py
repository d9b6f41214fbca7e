"""newuser101: ``Trainer(precision="16-true")`` with a ``LightningClassifier`` (Adam at its default ``eps=1e-8``) gave NaN
weights at the first step, and the audits' warning named "a learning rate too high, a loss of log(0)": in float16 Adam's
``eps`` is 0, so a weight whose squared gradient rounds to 0 steps by 0/0. The sentence that names diverged weights now
names that cause where the non-finite weights are float16, and not where they are float32."""

import torch
from torch import nn

from lightning_causal.callbacks._one_audit import non_finite_weights


def _stepped(dtype: torch.dtype, eps: float) -> nn.Module:
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(4, 32), nn.ReLU(), nn.Linear(32, 2)).to(dtype)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2, eps=eps)
    x = torch.randn(64, 4, generator=torch.Generator().manual_seed(1)).to(dtype)
    loss = nn.functional.cross_entropy(net(x).float(), (x[:, 0] > 0).long())
    loss.backward()
    opt.step()  # one step, as a "16-true" fit's first
    return net


def test_float16_weights_under_adam_name_its_eps():
    said = non_finite_weights(_stepped(torch.float16, 1e-8))
    assert said.startswith("the model's weights hold NaN or infinite values (0.weight")
    assert "`eps=1e-8`, which is 0 in float16" in said and "give the optimizer `eps=1e-4`" in said  # before: not named
    assert non_finite_weights(_stepped(torch.float16, 1e-4)) == ""  # the way out it names trains


def test_float32_weights_that_diverged_keep_the_plain_causes():
    net = nn.Linear(2, 1)
    with torch.no_grad():
        net.weight[0, 0] = float("nan")
    said = non_finite_weights(net)
    assert said.endswith("(a learning rate too high, a loss of log(0))") and "float16" not in said
