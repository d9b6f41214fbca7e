"""newuser64 trial: a neural operator maps a 1-D field to a field, ``[N, 1, 128] -> [N, 1, 128]``. Explained as it
returns, the refusal advised ``output=lambda out: out.mean(1)`` "for per-position scores [N, T, C]": on a
one-channel field that gives ``[N, 128]``, 128 positions taken for classes (``target=None``: each sample's largest
point). It now names a point ``out[:, :, j]`` or a region ``out[:, :, a:b].mean(2)`` of the field, with which the
effects are the operator's own (checked here on a circular convolution, whose effect of a patch on a point is
the sum of its weights times the patch's values)."""

import pytest
import torch
from torch import nn

from lightning_causal import InputEffectAudit, audit_model
from lightning_causal.causal import input_effects

W = torch.tensor([0.25, 0.5, 0.25], dtype=torch.float64)  # u_j -> 0.25 u_{j-1} + 0.5 u_j + 0.25 u_{j+1} (periodic)


def _operator() -> nn.Conv1d:
    conv = nn.Conv1d(1, 1, 3, padding=1, padding_mode="circular", bias=False).double()
    with torch.no_grad():
        conv.weight.copy_(W.view(1, 1, 3))
    return conv.eval()


def _fields() -> torch.Tensor:
    return torch.randn(5, 1, 16, dtype=torch.float64, generator=torch.Generator().manual_seed(0))


def test_the_refusal_names_a_point_or_a_region_of_a_one_channel_field() -> None:
    with pytest.raises(ValueError, match=r"shape \(5, 1, 16\)") as raised:
        input_effects(_operator(), _fields(), torch.arange(16).view(1, 1, 16) // 4)
    message = str(raised.value)
    assert "out[:, :, j]" in message and "out[:, :, a:b].mean(2)" in message and "one-channel field" in message
    assert "out.mean(1)" not in message  # a field's positions are no classes to average over
    with pytest.raises(ValueError, match=r"out\[:, :, j\]"):  # the audits' dry run says the same
        audit_model(_operator(), [InputEffectAudit(feature_mask=torch.arange(16).view(1, 1, 16) // 4)], _fields())


def test_the_advised_point_gives_the_operators_effects() -> None:
    x = _fields()
    mask = torch.arange(16).view(1, 1, 16) // 4  # 4 patches of 4 positions
    effects = input_effects(_operator(), x, mask, output=lambda out: out[:, :, 8])  # the point j = 8
    # do(patch := 0) removes the patch's terms of 0.25 u_7 + 0.5 u_8 + 0.25 u_9: u_7 lies in patch 1, u_8, u_9 in patch 2
    want = torch.zeros(5, 4, dtype=torch.float64)
    want[:, 1] = 0.25 * x[:, 0, 7]
    want[:, 2] = 0.5 * x[:, 0, 8] + 0.25 * x[:, 0, 9]
    torch.testing.assert_close(effects, want)
