"""newuser72 trial (video classifiers on synthetic moving-blob clips, ``[N, C, T, H, W]`` with ``lengths`` frames).

Clips whose padded frames hold no one value (sensor noise, or the last frame repeated) were read along their last
dimension, the columns, whenever the frames were as wide as the longest clip (16 frames of 16 x 16) or no axis was as
long as it (a probe whose longest clip is 12 of 16 frames): the columns at and after each clip's length were taken for
padding in every frame, their effects 0 and never set, so the effect of a frame was that of its first columns only (a
frame-wise GRU that packs its frames: effects off by up to 2.3 against a hand loop, without a word). A 5-D input whose
dimension 1 is shorter than the longest length is a video laid out as ``Conv3d`` takes it: its frames, dimension 2,
are read where they hold the longest length, unless another axis alone shows one pad value after every length.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lightning_causal.causal import input_effects
from lightning_causal.causal.engine.ablation import padding_positions, time_axis


class _FrameMean(nn.Module):
    """A per-frame linear score averaged over each clip's ``lengths`` frames -> 2 classes."""

    def __init__(self, c: int, h: int, w: int) -> None:
        super().__init__()
        self.score = nn.Linear(c * h * w, 2)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        n, c, t, h, w = x.shape
        per_frame = self.score(x.permute(0, 2, 1, 3, 4).reshape(n, t, c * h * w))  # [N, T, 2]
        real = (torch.arange(t)[None] < lengths[:, None]).float().unsqueeze(-1)
        return (per_frame * real).sum(1) / lengths[:, None]


def _hand(model: nn.Module, x: torch.Tensor, mask: torch.Tensor, groups: int, lengths: torch.Tensor) -> torch.Tensor:
    """Each group set to 0 in turn, target 0: the clean logit less the intervened one, by hand."""
    with torch.no_grad():
        clean = model(x, lengths)[:, 0]
        return torch.stack([clean - model(torch.where(mask == g, 0.0, x), lengths)[:, 0] for g in range(groups)], 1)


@pytest.mark.parametrize(("t", "side", "lengths"), [
    (16, 16, [16, 12, 9, 8]),  # square frames as wide as the clips are long: the columns were read
    (16, 16, [12, 11, 9, 8]),  # the probe's longest clip shorter than the frames: no axis as long, the last was read
    (8, 16, [7, 6, 5, 4]),  # frames wider than the clips: the same
])
def test_noise_padded_clips_are_padded_along_their_frames(t, side, lengths):
    torch.manual_seed(0)
    lengths = torch.tensor(lengths)
    pad = (torch.arange(t)[None] >= lengths[:, None]).view(4, 1, t, 1, 1)
    x = torch.randn(4, 1, t, side, side)
    x = torch.where(pad, 0.05 * torch.randn_like(x), x)  # the padded frames hold noise, no one value
    assert time_axis(x, lengths) == 2  # was 4, the columns
    assert padding_positions(x, {"lengths": lengths}).flatten(1).sum(1).tolist() == (t - lengths).tolist()
    model = _FrameMean(1, side, side).eval()
    frames = torch.arange(t).view(1, 1, t, 1, 1)
    effects = input_effects(model, x, frames, target=0, additional_forward_args={"lengths": lengths})
    assert torch.allclose(effects, _hand(model, x, frames, t, lengths), atol=1e-5)  # was off by up to ~1
    assert bool((effects[~pad.view(4, t)] != 0).all()) and bool((effects[pad.view(4, t)] == 0).all())


def test_a_video_with_time_last_and_one_pad_value_keeps_its_last_axis():
    """``[N, C, H, W, T]`` zero-padded after each length: the last axis alone shows the pad, and is read."""
    lengths = torch.tensor([16, 10])
    x = torch.randn(2, 1, 16, 16, 16).masked_fill((torch.arange(16)[None] >= lengths[:, None]).view(2, 1, 1, 1, 16), 0.0)
    assert time_axis(x, lengths) == 4
