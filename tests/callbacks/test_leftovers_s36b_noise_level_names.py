"""A class-conditional denoiser whose noise level ``forward`` names ``tau`` (a flow's time), ``noise_cond`` (a score
model's), ``c_noise`` (EDM's preconditioned input) or ``log_sigma``, audited on ``(x0, y)`` batches, got the refusal's
general advice (give the batch as ``((x_t, t),)``, which feeds the labels in as the noise level) where one naming it ``t``
or ``sigma`` is told the labels are its condition and to make the noise level in ``unpack_batch=``: these names are
read as a noise level too."""

from __future__ import annotations

import pytest
import torch
from lightning.pytorch.utilities.exceptions import MisconfigurationException
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import InputEffectAudit, audit_model


def _denoiser(level: str) -> nn.Module:
    class Denoiser(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.lin, self.emb = nn.Linear(4, 4), nn.Embedding(3, 4)

        def _forward(self, x, noise, y=None):
            return self.lin(x) * noise[:, None] + (0 if y is None else self.emb(y))

    ns: dict = {}
    exec(f"def forward(self, x, {level}, y=None):\n    return self._forward(x, {level}, y)", ns)
    Denoiser.forward = ns["forward"]
    return Denoiser()


@pytest.mark.parametrize("level", ["t", "sigma", "tau", "noise_cond", "c_noise", "log_sigma", "log_snr", "noise_level"])
def test_a_denoiser_of_any_usual_noise_level_name_gets_the_conditions_advice(level):
    g = torch.Generator().manual_seed(0)
    data = DataLoader(TensorDataset(torch.randn(8, 4, generator=g), torch.randint(0, 3, (8,), generator=g)), batch_size=8)
    with pytest.raises(MisconfigurationException) as info:
        audit_model(_denoiser(level), [InputEffectAudit(ace_values=None)], data, probe_size=8)
    message = str(info.value)
    assert "`forward` takes them as its `y`" in message and f"make `{level}` in `unpack_batch=`" in message
    assert "give the batch (x_t, t) as ((x_t, t),)" not in message  # the general advice: the labels would be its noise level
