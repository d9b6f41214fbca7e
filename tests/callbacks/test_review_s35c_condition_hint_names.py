"""Review of cf5a2f75: the refusal's advice for a class-conditional denoiser (the labels are ``forward``'s ``y``, make
``t`` in ``unpack_batch=``) fired on any ``forward`` whose parameter after the given values was not named as a condition
while a later one was: a recurrent cell's classifier ``forward(x, h, c)`` on ``(x, y)`` batches was told its class labels
are ``c``, "a condition (a class-conditional denoiser's labels)", and to pass them after a made ``h`` (``c`` is the cell
state). The advice now needs the missing parameter to be named as a denoiser's noise level (``t``, ``timesteps``,
``sigma``, ...); elsewhere the refusal keeps its general advice."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import InputEffectAudit, audit_model


class CellClassifier(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.cell, self.head = nn.LSTMCell(4, 8), nn.Linear(8, 3)

    def forward(self, x, h, c):
        return self.head(self.cell(x, (h, c))[0])


class MaskedClassifier(nn.Module):  # labels given for a loss, as Hugging Face models take them
    def __init__(self) -> None:
        super().__init__()
        self.head = nn.Linear(4, 3)

    def forward(self, x, mask, labels=None):
        return self.head(x * mask)


class EdmDenoiser(nn.Module):  # EDM's signature: the noise level sigma, then class_labels
    def __init__(self) -> None:
        super().__init__()
        self.lin, self.emb = nn.Linear(4, 4), nn.Embedding(3, 4)

    def forward(self, x, sigma, class_labels=None):
        return self.lin(x) * sigma[:, None] + (0 if class_labels is None else self.emb(class_labels))


def _refusal(model) -> str:
    g = torch.Generator().manual_seed(0)
    data = DataLoader(TensorDataset(torch.randn(8, 4, generator=g), torch.randint(0, 3, (8,), generator=g)), batch_size=8)
    with pytest.raises(MisconfigurationException) as info:
        audit_model(model, [InputEffectAudit(ace_values=None)], data, probe_size=8)
    return str(info.value)


@pytest.mark.parametrize("model", [CellClassifier, MaskedClassifier])
def test_labels_are_no_condition_where_the_missing_parameter_is_no_noise_level(model):
    message = _refusal(model())
    assert "missing" in message and "positional argument" in message
    assert "a condition" not in message and "make(batch[0])" not in message


def test_a_denoiser_of_a_noise_level_sigma_gets_the_conditions_advice():
    message = _refusal(EdmDenoiser())
    assert "`forward` takes them as its `class_labels`" in message and "make `sigma` in `unpack_batch=`" in message
