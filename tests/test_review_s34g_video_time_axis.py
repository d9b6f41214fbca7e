"""Review of a9700ef2 (a 5-D input's lengths read along dimension 2, the frames, as ``Conv3d`` takes a video), on layouts
it was not tuned on. (1) A volume laid out ``[N, C, H, W, D]`` (MONAI's), padded to its deepest volume's 24 slices with
noise or its last slice repeated, lost its depth to the rows: a9700ef2 read dimension 2 wherever it held the longest
length, also where the depth alone was as long as it (32 x 32 slices), so each slice's rows from each length on were
taken for padding, never set. (2) A video of as many channels as its longest clip's frames or more (16 bands over 8
frames, zero-padded) was read along its channels: dimension 2, alone zero after every length, was never looked at."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects
from lightning_causal.causal.engine.ablation import time_axis


class _StepMean(nn.Module):
    """A linear score of each step along ``axis`` averaged over each sample's ``lengths`` steps -> 2 classes."""

    def __init__(self, shape: tuple[int, ...], axis: int) -> None:
        super().__init__()
        self.axis = axis
        rest = 1
        for a, s in enumerate(shape[1:], 1):
            rest *= s if a != axis else 1
        self.score = nn.Linear(rest, 2)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        steps = x.movedim(self.axis, 1).flatten(2)  # [N, T, rest]
        real = (torch.arange(steps.shape[1])[None] < lengths[:, None]).float().unsqueeze(-1)
        return (self.score(steps) * real).sum(1) / lengths[:, None]


def _pad(x: torch.Tensor, lengths: torch.Tensor, axis: int, how: str) -> torch.Tensor:
    shape = [x.shape[0]] + [1] * (x.dim() - 1)
    shape[axis] = x.shape[axis]
    steps = torch.arange(x.shape[axis])
    pad = (steps[None] >= lengths[:, None]).view(shape).expand_as(x)
    if how == "zero":
        fill = torch.zeros_like(x)
    elif how == "noise":
        fill = 0.05 * torch.randn_like(x)
    else:  # the last real step repeated
        fill = torch.gather(x, axis, torch.minimum(steps[None], lengths[:, None] - 1).view(shape).expand_as(x))
    return torch.where(pad, fill, x)


def _check(shape: tuple[int, ...], axis: int, lengths: list[int], how: str) -> None:
    torch.manual_seed(0)
    lengths = torch.tensor(lengths)
    x = _pad(torch.randn(shape), lengths, axis, how)
    assert time_axis(x, lengths) == axis
    model = _StepMean(shape, axis).eval()
    view = [1] * len(shape)
    view[axis] = shape[axis]
    groups = torch.arange(shape[axis]).view(view)  # one group per step along the axis
    effects = input_effects(model, x, groups, target=0, additional_forward_args={"lengths": lengths})
    with torch.no_grad():  # by hand: each step set to 0 in turn, the clean logit less the intervened one
        clean = model(x, lengths)[:, 0]
        hand = torch.stack([clean - model(torch.where(groups == g, 0.0, x), lengths)[:, 0] for g in range(shape[axis])], 1)
    assert torch.allclose(effects, hand, atol=1e-5)


@pytest.mark.parametrize("how", ["noise", "repeat"])
def test_a_volume_laid_out_depth_last_keeps_its_depth(how):
    """[N, 1, H, W, D] padded to its deepest 24 slices: dimension 4 alone is as long as the longest length (was 2)."""
    _check((4, 1, 32, 32, 24), 4, [24, 20, 18, 10], how)


def test_a_video_of_more_channels_than_frames_is_read_along_its_frames():
    """16 bands over 8 zero-padded frames: dimension 2 alone shows the pad (was 1, the bands)."""
    _check((4, 16, 8, 12, 12), 2, [8, 6, 5, 4], "zero")


@pytest.mark.parametrize(("shape", "lengths"), [
    ((4, 3, 16, 16, 16), [16, 12, 9, 8]),  # frames as wide as the clips are long: a9700ef2's case, kept
    ((4, 1, 16, 12, 12), [12, 11, 9, 8]),  # the longest clip as wide as the frames, shorter than the clips: still frames
    ((4, 3, 16, 16, 16), [12, 11, 9, 8]),  # the probe's longest clip shorter than the frames
])
def test_noise_padded_clips_laid_out_for_conv3d_keep_their_frames(shape, lengths):
    _check(shape, 2, lengths, "noise")
