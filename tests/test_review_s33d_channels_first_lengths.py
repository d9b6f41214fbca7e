"""Review of the change f1f2ae0b (``lengths`` read along the last dimension of a channels-first input).

Two things that change left: (1) an image ``[N, 3, H, W]`` explained beside the token ids its ``lengths`` count (a
question answered about the image) now had dimension 1 shorter than the longest length, so its last dimension was read as
time, and, as a 4-D tensor holding the longest length, it beat the ids: the image's columns at and after each question's
length were taken for padding, their effects 0 without a word (before f1f2ae0b the ids were chosen). A tensor read along
its last dimension now comes after one read along dimension 1 unless its padding shows it (one pad value after every
length). (2) ``input_effects(..., input_layer=)`` of a channels-first input with ``lengths`` failed on torch's bare
``shape '[4, 1, 1]' is invalid`` (the padding viewed as ``[N, T]``); it is now broadcast as the mask is.
"""

from __future__ import annotations

import torch
from torch import nn

from lightning_causal.causal import input_effects
from lightning_causal.causal.engine.ablation import input_padding, padding_positions


class _ImageQuestion(nn.Module):
    """An image ``[N, 3, 16, 16]`` and a question's token ids ``[N, T]``, ``lengths`` tokens long -> 3 answers."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.emb = nn.Embedding(50, 4)
        self.head = nn.Linear(8, 3)

    def forward(self, img: torch.Tensor, ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        real = (torch.arange(ids.shape[1])[None] < lengths[:, None]).float()
        question = (self.emb(ids) * real[..., None]).sum(1) / lengths[:, None]
        return self.head(torch.cat([self.conv(img).relu().mean((2, 3)), question], 1))


def _hand(model: nn.Module, x: torch.Tensor, mask: torch.Tensor, groups: int, *args: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        clean = model(x, *args)[:, 0]
        return torch.stack([clean - model(torch.where(mask == g, 0.0, x), *args)[:, 0] for g in range(groups)], 1)


def test_an_image_beside_the_token_ids_its_lengths_count_keeps_every_column():
    torch.manual_seed(0)
    model = _ImageQuestion().eval()
    img, ids, lengths = torch.randn(4, 3, 16, 16), torch.randint(1, 50, (4, 12)), torch.tensor([12, 8, 5, 3])
    args = {"ids": ids, "lengths": lengths}
    assert padding_positions(img, args, model=model) is None
    assert input_padding((img, ids), {"lengths": lengths})[0] is None
    strips = (torch.arange(16) // 4).view(1, 1, 1, 16).expand(1, 3, 16, 16)  # four column strips
    effects = input_effects(model, img, strips, target=0, additional_forward_args=args)
    assert bool((effects != 0).all())  # the strips past a question's length are read too
    assert torch.allclose(effects, _hand(model, img, strips, 4, ids, lengths), atol=1e-6)


def test_zero_padded_frames_beside_a_wider_table_still_take_the_lengths():
    frames = torch.randn(3, 16, 40)
    lengths = torch.tensor([40, 25, 6])
    frames = frames.masked_fill(torch.arange(40)[None, None] >= lengths[:, None, None], 0.0)
    table = torch.randn(3, 50)  # as wide as the longest length and more: read along dimension 1, it would fit too
    pads = input_padding((frames, table), {"lengths": lengths})
    assert pads[1] is None and pads[0].shape == (3, 1, 40) and pads[0][:, 0].sum(1).tolist() == [0, 15, 34]


class _Frames(nn.Module):
    """``[N, M, T]`` frames through an identity ``front`` (the input layer) -> 3 classes, reading ``lengths`` frames."""

    def __init__(self) -> None:
        super().__init__()
        self.front = nn.Identity()
        self.conv = nn.Conv1d(16, 8, 3, padding=1)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        real = torch.arange(x.shape[-1])[None, None] < lengths[:, None, None]
        h = torch.relu(self.conv(self.front(x) * real)) * real
        return self.head(h.sum(-1) / lengths[:, None])


def test_input_layer_effects_of_channels_first_frames_with_lengths_equal_the_input_effects():
    torch.manual_seed(1)
    model = _Frames().eval()
    lengths = torch.tensor([40, 30, 10, 5])
    x = torch.randn(4, 16, 40).masked_fill(torch.arange(40)[None, None] >= lengths[:, None, None], 0.0)
    windows = (torch.arange(40) // 10).view(1, 1, 40).expand(1, 16, 40)
    args = {"lengths": lengths}
    at_layer = input_effects(model, x, windows, target=0, additional_forward_args=args, input_layer="front")
    at_input = input_effects(model, x, windows, target=0, additional_forward_args=args)
    assert torch.allclose(at_layer, at_input, atol=1e-6)
    assert at_layer[3, 1:].abs().max() == 0  # the 5-frame clip's windows 1-3 lie in padding


class _Bins(nn.Module):
    """``[N, 64, T]`` frames of 64 bins -> 3 classes, reading ``lengths`` frames."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(64, 8, 3, padding=1)
        self.head = nn.Linear(8, 3)

    def forward(self, x: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        real = torch.arange(x.shape[-1])[None, None] < lengths[:, None, None]
        return self.head((torch.relu(self.conv(x * real)) * real).sum(-1) / lengths[:, None])


def test_a_probe_of_full_clips_fewer_frames_than_bins_keeps_every_bin():
    """Four full clips of 50 frames and 64 bins: read along dimension 1, bins 50-63 were padding in every clip (band 3
    half set; /tmp/review_s33d/s/full.py: 0.00002 for clip 0 where zeroing it by hand moves the logit by -0.043)."""
    torch.manual_seed(2)
    model = _Bins().eval()
    x, lengths = torch.randn(4, 64, 50), torch.full((4,), 50)
    assert not bool(padding_positions(x, {"lengths": lengths}).any())
    bands = (torch.arange(64) // 16).view(1, 64, 1)
    effects = input_effects(model, x, bands, target=0, additional_forward_args={"lengths": lengths})
    assert torch.allclose(effects, _hand(model, x, bands, 4, lengths), atol=1e-6)
    # laid out batch first, [N, 50 steps, 64 features], full sequences keep dimension 1, with no padding
    seq = x.transpose(1, 2).contiguous()
    pad = padding_positions(seq, {"lengths": lengths})
    assert pad.shape == (4, 50, 1) and not bool(pad.any())
    seq[1, 30:] = 0.0  # a shorter one, zero-padded: its steps 30-49 along dimension 1
    assert padding_positions(seq, {"lengths": torch.tensor([50, 30, 50, 50])})[:, :, 0].sum(1).tolist() == [0, 20, 0, 0]


def test_step_positions_of_an_empty_padding_is_its_empty_steps():
    from lightning_causal.causal.engine.ablation import step_positions

    assert step_positions(torch.zeros(0, 6, 1, dtype=torch.bool)).shape == (0, 6)  # was IndexError (padding[0, 0])
    assert step_positions(torch.zeros(0, 1, 6, dtype=torch.bool)) is None
    assert step_positions(torch.zeros(3, 6, dtype=torch.bool)).shape == (3, 6)
