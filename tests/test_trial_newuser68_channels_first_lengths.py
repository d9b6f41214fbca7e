"""newuser68's trial: audio models laid out channels first, ``[N, C, T]`` as ``Conv1d`` takes them, given ``lengths``.

A frame model over log-mel frames ``[N, n_mels, frames]`` (channels = frequency bins) that ignores the frames at and
after each clip's length, ``forward(x, lengths)``, was explained as if ``lengths`` counted dimension 1: the mel bins at
and above a short clip's length were taken for padding, their effects 0 and never set, without a word (a 5-frame clip's
bands 8-15 of 16 read 0 where zeroing them by hand moves the logit by 0.06). ``lengths`` now count the last dimension
of such an input, where dimension 1 is shorter than the longest length or where only the last holds one pad value after
every length.
"""

from __future__ import annotations

import torch
from torch import nn

from lightning_causal.causal import input_effects
from lightning_causal.causal.engine.ablation import padding_positions


class _FrameCNN(nn.Module):
    """``[N, M, T]`` frames of M bins -> 3 classes; the frames at and after ``lengths[n]`` are never read."""

    def __init__(self, bins: int) -> None:
        super().__init__()
        self.conv = nn.Conv1d(bins, 8, 3, padding=1)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        real = torch.arange(x.shape[-1])[None, None] < lengths[:, None, None]
        h = torch.relu(self.conv(x * real)) * real
        return self.head(h.sum(-1) / lengths[:, None])


def _clips(bins: int, frames: int, lengths: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(len(lengths), bins, frames, generator=torch.Generator().manual_seed(0))
    lengths_t = torch.tensor(lengths)
    x = x.masked_fill(torch.arange(frames)[None, None] >= lengths_t[:, None, None], 0.0)  # zero-padded frames
    return x, lengths_t


def _hand(model: nn.Module, x: torch.Tensor, mask: torch.Tensor, lengths: torch.Tensor, groups: int) -> torch.Tensor:
    with torch.no_grad():
        clean = model(x, lengths)[:, 0]
        return torch.stack([clean - model(torch.where(mask == g, 0.0, x), lengths)[:, 0] for g in range(groups)], 1)


def test_frequency_bands_of_clips_longer_than_the_bins_equal_zeroing_them_by_hand():
    torch.manual_seed(0)
    model = _FrameCNN(16).eval()
    x, lengths = _clips(16, 40, [40, 30, 10, 5])  # 10 and 5 frames: shorter than the 16 bins
    bands = (torch.arange(16) // 4).reshape(1, 16, 1)
    effects = input_effects(model, x, bands, target=0, additional_forward_args={"lengths": lengths})
    assert torch.allclose(effects, _hand(model, x, bands, lengths, 4), atol=1e-6)
    assert bool((effects[3, 2:] != 0).all())  # bands 8-15 of the 5-frame clip: read, so not 0


def test_frequency_bands_when_every_clip_is_shorter_than_the_bins_equal_zeroing_them_by_hand():
    torch.manual_seed(1)
    model = _FrameCNN(16).eval()
    x, lengths = _clips(16, 20, [16, 12, 6, 4])  # every length fits both dimension 1 and the frames
    bands = (torch.arange(16) // 4).reshape(1, 16, 1)
    effects = input_effects(model, x, bands, target=0, additional_forward_args=(lengths,))
    assert torch.allclose(effects, _hand(model, x, bands, lengths, 4), atol=1e-6)


def test_the_padding_of_channels_first_inputs_lies_along_their_frames():
    x, lengths = _clips(16, 20, [16, 12, 6, 4])
    pad = padding_positions(x, {"lengths": lengths})
    assert pad.shape == (4, 1, 20)
    assert pad[:, 0].sum(1).tolist() == [4, 8, 14, 16]
    wave = torch.zeros(2, 1, 800)  # a waveform [N, 1, L]: the lengths count samples
    assert padding_positions(wave, {"lengths": torch.tensor([800, 300])})[:, 0].sum(1).tolist() == [0, 500]
    spec = torch.zeros(2, 1, 8, 50)  # a spectrogram [N, 1, bins, frames]
    assert padding_positions(spec, {"lengths": torch.tensor([50, 20])}).shape == (2, 1, 1, 50)
    # batch first [N, T, F] stays along dimension 1, also where its features are as many as the longest length
    seq = torch.randn(2, 12, 12)
    seq[1, 5:] = 0
    assert padding_positions(seq, {"lengths": torch.tensor([12, 5])})[:, :, 0].sum(1).tolist() == [0, 7]


def test_time_windows_in_padding_get_no_effect_and_windows_before_equal_the_hand_loop():
    torch.manual_seed(2)
    model = _FrameCNN(16).eval()
    x, lengths = _clips(16, 40, [40, 30, 10, 5])
    windows = (torch.arange(40) // 10).reshape(1, 1, 40)
    effects = input_effects(model, x, windows, target=0, additional_forward_args={"lengths": lengths})
    assert torch.allclose(effects, _hand(model, x, windows, lengths, 4), atol=1e-6)
    assert effects[2, 1:].abs().max() == 0 and effects[3, 1:].abs().max() == 0


def test_the_layer_map_and_the_graph_of_a_channels_first_model_with_lengths_run():
    from lightning_causal.causal import causal_graph, layer_causal_map

    torch.manual_seed(3)
    model = _FrameCNN(16).eval()
    x, lengths = _clips(16, 40, [40, 30, 10, 5])
    windows = (torch.arange(40) // 10).reshape(1, 1, 40)
    lm = layer_causal_map(model, x, windows, ["conv", "head"], additional_forward_args={"lengths": lengths})
    assert lm.nodes
    graph = causal_graph(model, x, ["conv"], target=0, additional_forward_args={"lengths": lengths})
    assert graph.nodes
