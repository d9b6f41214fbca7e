"""newuser72 trial: a trigger patch in frames 2-4 of 16 x 16 clips ``[N, 1, 8, 16, 16]``, its mask built as the feature
masks are, ``[1, 1, 8, 16, 16]`` (with a batch dimension), was refused naming the shapes alone; the refusal now names the
batch dimension and the way, ``mask[0]``, which runs."""

from __future__ import annotations

import pytest
import torch

from lightning_causal.causal import Trigger, attack_success_rate


def test_a_mask_with_a_batch_dimension_is_refused_naming_it_and_the_way():
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(8 * 16 * 16, 2)).eval()
    x = torch.rand(4, 1, 8, 16, 16)
    mask = torch.zeros(1, 1, 8, 16, 16)
    mask[..., 2:5, 12:15, 12:15] = 1.0
    with pytest.raises(ValueError, match=r"`mask` laid out with a batch dimension \[1, \.\.\.\].*give one input's, mask\[0\]"):
        attack_success_rate(model, x, torch.zeros(4, dtype=torch.long), Trigger(mask, 1.0, 1))
    rate = attack_success_rate(model, x, torch.zeros(4, dtype=torch.long), Trigger(mask[0], 1.0, 1))  # the way runs
    assert 0.0 <= rate <= 1.0
    with pytest.raises(ValueError, match=r"to broadcast to one input of shape \[1, 8, 16, 16\]$"):  # no batch dimension
        attack_success_rate(model, x, torch.zeros(4, dtype=torch.long), Trigger(torch.zeros(1, 4, 16, 16), 1.0, 1))
