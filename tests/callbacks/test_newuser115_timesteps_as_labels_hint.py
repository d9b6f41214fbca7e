"""A denoiser ``forward(x_t, t, y=None)`` (classifier-free guidance's condition ``y`` optional) given batches of noisy
inputs and their timesteps ``(x_t, t)`` gets the batch read as inputs and labels, ``model(x_t)``, refused. The refusal
said only that the labels were its condition ``y`` and advised making ``t`` in ``unpack_batch=`` and passing the labels
after it: followed, that noises ``x_t`` a second time and feeds the timesteps in as class labels, explained silently.
Where the condition has a default, the refusal now says that the labels may be the timesteps themselves, given as
``((x_t, t),)``; where it has none (``forward(x_t, t, y)``), it says what it said."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn

from lightning_causal import InputEffectAudit, audit_model

T = 10


class Optional(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(1, 1, 3, padding=1)
        self.temb, self.yemb = nn.Embedding(T, 1), nn.Embedding(11, 1)

    def forward(self, x_t, t, y=None):
        h = self.conv(x_t) + self.temb(t)[:, :, None, None]
        return h if y is None else h + self.yemb(y)[:, :, None, None]


class Required(Optional):
    def forward(self, x_t, t, y):
        return super().forward(x_t, t, y)


def _refusal(model: nn.Module) -> str:
    g = torch.Generator().manual_seed(0)
    x_t, t = torch.randn(8, 1, 4, 4, generator=g), torch.randint(0, T, (8,), generator=g)
    region = lambda out: out[:, :, 1:3, 1:3].mean((2, 3))  # noqa: E731
    with pytest.raises(MisconfigurationException) as info:
        audit_model(model, [InputEffectAudit(output=region, ace_values=None)], (x_t, t))
    return str(info.value)


def test_labels_beside_an_optional_condition_may_be_the_timesteps():
    said = _refusal(Optional())
    assert "missing 1 required positional argument: 't'" in said
    assert "`forward` takes them as its `y`" in said  # the reading of batches (x0, y) stays
    assert "which is right only where they are the timesteps themselves: a batch (x_t, t)" in said
    assert "given as ((x_t, t),)" in said


def test_a_required_condition_keeps_its_one_reading():
    said = _refusal(Required())
    assert "`forward` takes them as its `y`" in said
    assert "timesteps themselves" not in said


def test_the_batch_given_as_the_refusal_says_runs():
    g = torch.Generator().manual_seed(0)
    x_t, t = torch.randn(8, 1, 4, 4, generator=g), torch.randint(0, T, (8,), generator=g)
    region = lambda out: out[:, :, 1:3, 1:3].mean((2, 3))  # noqa: E731
    result = audit_model(Optional(), [InputEffectAudit(output=region, ace_values=None)], ((x_t, t),), explain="x_t")[0]
    assert result.scalars["mean_abs_effect"] > 0
