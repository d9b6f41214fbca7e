"""A denoiser's predicted noise ``[N, 1, 16, 16]`` flattened by ``output=lambda out: out.flatten(1)`` is 256 pixels,
which ``target=None`` read as 256 class scores: each sample was explained at whichever pixel of its predicted noise
was largest, silently (the model holds no loss module, its MSE is written in ``training_step``). An explained output of
more columns than the channels of a return value shaped as one of the model's inputs (a denoiser's noise, an
autoencoder's reconstruction) is now warned of at set-up under ``target=None``, naming a region's mean and ``target=k``;
a pixel's channel scores of a segmentation map (``out[:, :, i, j]``, as wide as its channels) and one region score are
not."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from lightning_causal import CausalGraphAudit, InputEffectAudit, audit_model


class Denoiser(nn.Module):
    def __init__(self, channels: int = 1) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.temb = nn.Embedding(10, channels)

    def forward(self, x_t, t):
        return self.conv(x_t) + self.temb(t)[:, :, None, None]


def _warnings(model, output, channels=1, target=None):
    g = torch.Generator().manual_seed(0)
    x, t = torch.randn(8, channels, 8, 8, generator=g), torch.randint(0, 10, (8,), generator=g)
    loader = DataLoader(TensorDataset(x, t), batch_size=8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audit_model(model, [InputEffectAudit(patch_size=4, output=output, target=target, ace_values=None)], loader,
                    probe_size=8, unpack_batch=lambda b: ((b[0], b[1]), None, None), explain="x_t")
    return [str(w.message) for w in caught if "pixels of" in str(w.message)]


def test_a_flattened_denoiser_output_under_target_none_is_warned_of():
    (message,) = _warnings(Denoiser(), lambda out: out.flatten(1))
    assert "64 outputs" in message and "[8, 1, 8, 8]" in message
    assert "out[:, :, 2:6, 2:6].mean((2, 3))" in message and "target=k" in message


@pytest.mark.parametrize("case", ["region", "target", "segmentation pixel"])
def test_one_score_a_fixed_element_and_a_pixel_s_channels_are_not(case):
    if case == "region":
        assert _warnings(Denoiser(), lambda out: out[:, :, 2:6, 2:6].mean((2, 3))) == []
    elif case == "target":
        assert _warnings(Denoiser(), lambda out: out.flatten(1), target=5) == []
    else:  # 3 classes per pixel of a 3-channel image: the classes of one pixel
        assert _warnings(Denoiser(3), lambda out: out[:, :, 4, 4], channels=3) == []


class CharModel(nn.Module):
    """A character model on one-hot inputs [N, T, V], returning the next character's scores at each position [N, T, V]."""

    def __init__(self) -> None:
        super().__init__()
        self.rnn, self.head = nn.GRU(12, 16, batch_first=True), nn.Linear(16, 12)

    def forward(self, x):
        return self.head(self.rnn(x)[0])


def test_review_s35c_one_position_s_classes_of_one_hot_inputs_are_not_warned_of():
    """Review of 7f868701: a character model's last position's 12 scores, of one-hot inputs as wide, are classes."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, 12, (8, 6), generator=g)
    loader = DataLoader(TensorDataset(torch.nn.functional.one_hot(ids, 12).float(), ids[:, -1]), batch_size=8)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audit_model(CharModel(), [InputEffectAudit(output=lambda out: out[:, -1], ace_values=None)], loader, probe_size=8)
    assert [str(w.message) for w in caught if "pixels of" in str(w.message)] == []


def test_review_s35c_a_causal_graph_of_a_flattened_denoiser_output_is_warned_of():
    """Review of 7f868701: CausalGraphAudit keeps its target among its options, which the check did not read."""
    g = torch.Generator().manual_seed(0)
    x, t = torch.randn(8, 1, 8, 8, generator=g), torch.randint(0, 10, (8,), generator=g)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        audit_model(Denoiser(), [CausalGraphAudit(["conv"], output=lambda out: out.flatten(1), stability_resamples=0)],
                    DataLoader(TensorDataset(x, t), batch_size=8), probe_size=8,
                    unpack_batch=lambda b: ((b[0], b[1]), None, None), explain="x_t")
    assert any("pixels of" in str(w.message) and "64 outputs" in str(w.message) for w in caught)
