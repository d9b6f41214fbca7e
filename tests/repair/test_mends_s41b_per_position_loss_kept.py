"""The per-position cross-entropy refusal advises wrapping the user's own loss, which keeps its class weights and
label smoothing, not a plain F.cross_entropy that drops them (final_read_A 5)."""

import functools

import pytest
import torch
import torch.nn.functional as F
from lightning.fabric.utilities.exceptions import MisconfigurationException
from torch import nn

from lightning_causal.repair.module_arguments import check_task_outputs

WEIGHTED = nn.CrossEntropyLoss(weight=torch.tensor([1.0, 5.0, 1.0]), label_smoothing=0.1)


@pytest.mark.parametrize("loss", [WEIGHTED, functools.partial(F.cross_entropy, label_smoothing=0.2)])
def test_the_advice_wraps_the_users_own_loss(loss):
    out, y = torch.randn(4, 5, 3, generator=torch.Generator().manual_seed(0)), torch.arange(20).reshape(4, 5) % 3
    with pytest.raises(MisconfigurationException) as raised:
        check_task_outputs(loss, out, y)
    said = str(raised.value)
    assert "`task_loss=lambda out, y: loss(out.transpose(1, 2), y)`" in said and "keeps its class `weight`" in said
    assert "F.cross_entropy(out.transpose(1, 2), y)" not in said
    # the wrapper is the user's loss over every position, weights and smoothing kept
    torch.testing.assert_close(loss(out.transpose(1, 2), y), loss(out.flatten(0, 1), y.flatten()))


def test_the_default_loss_keeps_its_advice():
    with pytest.raises(MisconfigurationException, match=r"F\.cross_entropy\(out\.transpose\(1, 2\), y\)"):
        check_task_outputs(F.cross_entropy, torch.zeros(4, 5, 3), torch.zeros(4, 5, dtype=torch.long))
